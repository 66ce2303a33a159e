"""Whether condition leaves can all hold at once: the reasoning behind ``validate``'s lints.

A condition tree becomes disjunctive normal form (:func:`disjuncts`): a list of conjunctions of
:class:`~rules.literals.Literal` — a leaf, negated or not, once every ``not`` is pushed down to the
leaves. :meth:`Reasoner.conflict` then decides, field by field
(:func:`rules.literals.field_possible`), whether a conjunction can hold; :meth:`Reasoner.core`
names a minimal clashing subset for a message. The analysis is *sound, not complete*: when it
says "these cannot all be true" no ticket and no event can make them true; when it cannot tell, it
says nothing.

Facts that are not leaves are literals too, with a ``note`` and no ``leaf``: what an action
writes (:mod:`rules.loops`), and what an event type implies (:func:`event_facts`): the event's
type, "on ticket.created every field was null before", "on ticket.solved the status has just
changed to solved". Nothing here does I/O.
"""

from __future__ import annotations

__all__ = ["ByField", "Reasoner", "TooComplex", "by_field", "disjuncts", "event_facts"]

from collections.abc import Iterable, Sequence

from .fields import FieldKind, FieldRegistry
from .literals import BEFORE, CHANGE_OPS, Literal, field_possible
from .model import All, Condition, FieldCondition, Not
from .operators import Op

CREATED, SOLVED = "ticket.created", "ticket.solved"
#: Beyond this many disjuncts a condition is not analysed (no finding rather than a slow one).
MAX_DISJUNCTS = 256

class TooComplex(Exception):
    """A condition's normal form has more than :data:`MAX_DISJUNCTS` disjuncts."""


# --- normal form ---------------------------------------------------------------------------------


def disjuncts(condition: Condition | None) -> list[tuple[Literal, ...]]:
    """``condition`` as an OR of ANDs of literals; ``[()]`` (always true) for no condition.

    Raises :class:`TooComplex` past :data:`MAX_DISJUNCTS`.
    """
    return [()] if condition is None else _dnf(condition, True)


def _dnf(condition: Condition, positive: bool) -> list[tuple[Literal, ...]]:
    if isinstance(condition, FieldCondition):
        return [(Literal.of(condition, positive),)]
    if isinstance(condition, Not):
        return _dnf(condition.condition, not positive)
    parts = [_dnf(child, positive) for child in condition.conditions]
    out: list[tuple[Literal, ...]]
    if isinstance(condition, All) == positive:  # an AND (all, or a negated any)
        out = [()]
        for part in parts:
            out = [left + right for left in out for right in part]
            if len(out) > MAX_DISJUNCTS:
                raise TooComplex
    else:
        out = [d for part in parts for d in part]
        if len(out) > MAX_DISJUNCTS:
            raise TooComplex
    return out


def event_facts(event_type: str, literals: Iterable[Literal], *,
                with_type: bool = True) -> list[Literal]:
    """What is known on an event of ``event_type`` (``literals``: what will be tested).

    ``event.type`` is the event's type (unless ``with_type`` is false: for two rules fired by one
    change as different event types). On ``ticket.created`` every ticket field tested for a change
    was null before and every ``changes.<field>.from`` is null (there was no earlier state to diff
    against); on ``ticket.solved`` the status has just changed to ``solved``.
    """
    facts = [Literal("event.type", Op.EQUALS, event_type, True, note=f"on {event_type}")
             ] if with_type else []
    tested = list(literals)
    if event_type == CREATED:
        note = "on ticket.created, where every field was null before"
        facts += [Literal(name, Op.EXISTS, positive=False, slot=BEFORE, note=note)
                  for name in dict.fromkeys(lit.field for lit in tested if lit.op in CHANGE_OPS)]
        facts += [Literal(name, Op.EXISTS, positive=False, note=note)
                  for name in dict.fromkeys(lit.field for lit in tested)
                  if name.startswith("changes.") and name.endswith(".from")]
    elif event_type == SOLVED:
        note = "on ticket.solved, where the status has just changed to solved"
        facts += [Literal("ticket.status", Op.CHANGED_TO, "solved", note=note),
                  Literal("changes.status.to", Op.EQUALS, "solved", note=note),
                  Literal("changes.status.from", Op.EQUALS, "solved", positive=False, note=note)]
    return facts


# --- conjunctions --------------------------------------------------------------------------------


#: Literals grouped by field path.
ByField = dict[str, list[Literal]]


def by_field(literals: Iterable[Literal]) -> ByField:
    """The literals grouped by field path (what :meth:`Reasoner.clash` takes)."""
    out: ByField = {}
    for lit in literals:
        out.setdefault(lit.field, []).append(lit)
    return out


class Reasoner:
    """Decides whether literals can all hold, for the fields of one registry.

    Verdicts are remembered per field and set of literals, since the lints ask about the same
    combinations many times (every pair of rules). A field the registry does not know is skipped:
    no verdict rests on it.
    """

    def __init__(self, registry: FieldRegistry) -> None:
        self._registry = registry
        self._memo: dict[frozenset[Literal], bool] = {}

    def is_list(self, path: str) -> bool:
        """Whether field ``path`` holds a list (tags, links)."""
        spec = self._registry.get(path)
        return spec is not None and spec.kind in (FieldKind.TAGS, FieldKind.LIST)

    def _field_conflicts(self, name: str, lits: Sequence[Literal]) -> bool:
        key = frozenset(lits)
        verdict = self._memo.get(key)
        if verdict is None:
            spec = self._registry.get(name)
            verdict = spec is not None and not field_possible(spec.kind, spec.values, lits)
            self._memo[key] = verdict
        return verdict

    def conflict(self, literals: Iterable[Literal]) -> bool:
        """True when the literals cannot all be true at once (for any ticket and event)."""
        return any(self._field_conflicts(name, lits)
                   for name, lits in by_field(literals).items())

    def clash(self, left: ByField, right: ByField) -> bool:
        """Whether two sets of literals that can each hold on their own cannot hold together.

        Only fields both constrain are decided (the others keep their own, possible, verdicts).
        """
        small, large = (left, right) if len(left) <= len(right) else (right, left)
        return any(self._field_conflicts(name, [*lits, *large[name]])
                   for name, lits in small.items() if name in large)

    def core(self, literals: Iterable[Literal]) -> tuple[Literal, ...] | None:
        """A minimal subset of ``literals`` that cannot all be true (all on one field), or
        ``None`` when they can. Minimal: dropping any one of them leaves a set that may hold.
        """
        for name, lits in by_field(literals).items():
            if not self._field_conflicts(name, lits):
                continue
            core = list(lits)
            for lit in list(core):
                trial = [other for other in core if other is not lit]
                if self._field_conflicts(name, trial):
                    core = trial
            return tuple(core)
        return None

    def requires_change(self, lit: Literal) -> bool:
        """True when ``lit`` can only hold on an event that changed its field: ``changed`` /
        ``changed_to`` / ``changed_from``, or a ``changes.<field>.from/.to`` test that fails on
        null (both sides are null when the field did not change)."""
        if lit.op in CHANGE_OPS:
            return lit.positive
        if lit.field.startswith("changes."):
            return self.conflict([lit, Literal(lit.field, Op.EXISTS, positive=False)])
        return False
