"""Warnings about rules that load but would misbehave: ``switchboard validate``'s lints.

:func:`lint` returns :class:`Lint` findings (each with ``file:line``, the rule ids, a kind, a
plain-language message and a hint); it never changes whether rules are valid. The reasoning about
what conditions can hold is :mod:`rules.consistency`'s (per field: :mod:`rules.literals`), which
only reports what it can prove: a lint that cannot decide stays silent. The loop graph is
:mod:`rules.loops`'; this module decides what is worth a warning and words it. Three kinds:

``never-true``
    A condition no ticket and no event can satisfy: contradictions inside an ``all`` (a field equal
    to two values, disjoint ``in`` lists, ``exists`` with ``not exists``, ``contains t`` with
    ``not contains t``, ``gt 5`` with ``lt 3``, ``changed_to x`` with ``changed_from x``,
    ``older_than 2h`` with ``within 1h`` ...), and event-type mismatches: on ``ticket.created``
    every field was null before (the processor diffs against no earlier state), so ``changed_from
    <value>`` is never true there; on ``ticket.solved`` the status has just become ``solved``; and
    ``event.type`` is the event's type. A rule is only reported when its condition fails on
    *every* event type it listens to. A branch of an ``any`` that can never be true is reported
    too (the rest of the rule can still match). Empty lists (``in: []``, ``any: []``) never get
    here: the loader refuses them.

``loop``
    A graph with an edge A -> B when A's writes can make B's condition true on a *later* event of
    the same ticket; cycles (a rule re-triggering itself included) are reported with the chain
    (``a -> b -> a``) and the tag or field involved. What a rule writes: ``zendesk.update``'s
    ``add_tags`` / ``remove_tags`` / ``fields`` / ``status`` (a constant value is known; a template
    is taken to be non-empty), the marker tag every ``zendesk.update`` adds (so tags exist), and
    ``jira.create_or_link_bug``, which links the ticket (``links.jira`` exists: the processor
    counts a bug being created as linked). Why an edge needs more than "A writes what B reads":

    - A write is never seen by the event it answers: rules run on a *later* event, and what
      makes a loop is that *any* later change (``ticket.updated``) fires the rule again. The later
      event is never ``ticket.created`` (a ticket's first event), nor ``ticket.solved`` /
      ``ticket.comment_added``, which need a person to solve or comment (Switchboard's own status
      write is subtracted, its own notes are not "added comments"): a rule listening only to
      those has no incoming edge. Unknown (future) event types count as possible later events.
    - Switchboard subtracts its own writes from the change set (``sync.processor.subtract_own``),
      and an event whose only changes are its own writes runs no rule. So a ``changed`` /
      ``changed_to`` / ``changed_from`` leaf, or a ``changes.<field>.from/.to`` test that fails on
      null, is never made true by a write; a disjunct of B that requires one fires only when a
      person (or another system) changes that field, which is what the rule asks for — such a
      disjunct gives no edge.
    - Self-limiting rules are not loops: the state right after A's write must be consistent with
      the disjunct of B, so a rule that adds tag ``x`` and requires ``not contains x``, or creates
      a bug and requires ``not links.jira exists``, has no edge to itself.
    - What A's firing disjunct required of fields A does not overwrite still holds on the next
      event (a loop is rules firing again while the ticket otherwise stays as it is): A that needs
      tag ``x`` and adds ``y`` gives no edge to B that needs ``y`` and ``not contains x``.
    - The write must *support* the disjunct: some literal of it must follow from the writes.
      A rule whose condition merely stays true (``priority in [high, urgent]``) re-fires on later
      events for reasons of its own, not because of a write, and is not reported.

    - A rule that cannot fire again for the same ticket takes no part in a loop: one with a
      ``window`` (it fires once per episode; so its ``after_quiet`` actions cannot close a cycle
      either) or ``throttle: once_until_resolved``. ``at_most`` only slows a loop down, which is
      still reported.

    Shadow rules count as if live (they record what they would do; the loop happens once they
    go live) and the message says so; ``off`` rules are left out. Each cycle of two or more rules
    is reported once per strongly connected group of rules, with its shortest cycle through the
    group's first rule; self-loops are reported one by one. Not modelled: Zendesk triggers or
    other systems that react to Switchboard's writes.

``duplicate-side-effect``
    Two ``live`` rules that one change can fire — a common event type, or two types one change can
    be at once (``ticket.updated`` and ``ticket.solved`` ...: :data:`TOGETHER`) — whose
    conditions are not provably exclusive (some disjunct pair of the two conditions is consistent
    for that change; ``event.type`` is each rule's own), that have the same side effect: both
    ``jira.create_or_link_bug`` into one project (no ``dedupe_by``, or the same one: two bugs, or
    one bug reached twice; different ones: two bugs for one ticket), the same note text, the same
    tag added (or removed) by both or added by one and removed by the other, the same custom field
    or the status set by both (to different values: the last update wins). Shadow rules execute
    nothing and are left out.
"""

from __future__ import annotations

__all__ = ["Lint", "LintKind", "lint"]

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .consistency import ByField, Reasoner, TooComplex, by_field, disjuncts, event_facts
from .context import Change
from .fields import FieldRegistry
from .literals import Literal
from .loops import BUG, UPDATE, Edge, Forms, cycles
from .model import ActionCall, Mode, Rule, RuleSet
from .occurrence import event_types


def _together() -> frozenset[frozenset[str]]:
    """Pairs of event types one ticket change can be at once, as :mod:`rules.occurrence` says."""
    pairs: set[frozenset[str]] = set()
    for base in ("ticket.created", "ticket.updated"):
        for solved in (False, True):
            changes = {"status": Change("open", "solved")} if solved else {}
            for comment in (False, True):
                types = event_types(base, changes, comment=comment)
                pairs |= {frozenset({a, b}) for a in types for b in types if a != b}
    return frozenset(pairs)


#: Pairs of event types one inbound change can be at once (``ticket.updated`` and
#: ``ticket.solved`` ...); a change is never both ``ticket.created`` and ``ticket.updated``.
TOGETHER = _together()


class LintKind(StrEnum):
    LOOP = "loop"
    NEVER_TRUE = "never-true"
    DUPLICATE_SIDE_EFFECT = "duplicate-side-effect"


@dataclass(frozen=True, slots=True)
class Lint:
    """One warning: where (``file:line``, ``path`` in the rule), which rules, what, and a hint."""

    kind: LintKind
    file: str
    line: int | None
    rule_ids: tuple[str, ...]
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: warning [{self.kind.value}] {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


def lint(rules: RuleSet, *, custom_fields: Collection[str] = (),
         user_fields: Collection[str] = (),
         organization_fields: Collection[str] = ()) -> list[Lint]:
    """Every lint finding for a loaded RuleSet, ordered by file (as the rules come) and line.

    The field names are those the rules were loaded with (see :func:`rules.load_rules`); a field
    they do not name is left out of the reasoning (no finding rests on it).
    """
    reason = Reasoner(FieldRegistry(custom_fields, user_fields=user_fields,
                                    organization_fields=organization_fields))
    forms: dict[str, list[tuple[Literal, ...]] | None] = {}
    for rule in rules:
        try:
            forms[rule.id] = disjuncts(rule.condition)
        except TooComplex:
            forms[rule.id] = None
    found = [*_never_true(rules, forms, reason), *_loops(rules, forms, reason),
             *_duplicates(rules, forms, reason)]
    files = list(dict.fromkeys(rule.file for rule in rules))
    return sorted(found, key=lambda f: (files.index(f.file) if f.file in files else len(files),
                                        f.line or 0, f.kind.value, f.rule_ids))


def _where(rule: Rule, line: int | None) -> str:
    return f"{rule.file}:{line}" if line else rule.file


def _leaf_text(lit: Literal) -> str:
    path = lit.leaf.path if lit.leaf else ""
    return f"{path} `{lit.describe()}`" if path else f"`{lit.describe()}`"


# --- never-true ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Dead:
    leaves: tuple[Literal, ...]  # the rule's literals that clash, in line order
    facts: tuple[str, ...]  # event facts involved ("on ticket.created, where ...")
    text: str


def _why_dead(rule: Rule, conj: tuple[Literal, ...], reason: Reasoner) -> _Dead | None:
    """Why ``conj`` is never true on any of the rule's events, or ``None`` if it can be."""
    core = reason.core(conj)
    if core is not None:
        cores = [core]
    else:
        cores = []
        for event in rule.on:
            found = reason.core([*conj, *event_facts(event, conj)])
            if found is None:
                return None
            cores.append(found)
    parts: list[str] = []
    leaves: dict[int, Literal] = {}
    facts: list[str] = []
    for found in cores:
        mine = [lit for lit in found if lit.leaf is not None]
        notes = list(dict.fromkeys(lit.note for lit in found if lit.leaf is None))
        for lit in mine:
            leaves.setdefault(id(lit), lit)
        facts += notes
        said = " and ".join(_leaf_text(lit) for lit in mine)
        verb = ("cannot all be true" if len(mine) > 2 else
                "cannot both be true" if len(mine) == 2 else "cannot be true")
        parts.append(f"{said} {verb}{' ' + ' and '.join(notes) if notes else ''}")
    ordered = tuple(sorted(leaves.values(), key=lambda lit: (lit.leaf.line or 0) if lit.leaf
                           else 0))
    return _Dead(ordered, tuple(dict.fromkeys(facts)), "; ".join(dict.fromkeys(parts)))


def _never_true_hint(dead: _Dead) -> str:
    if any("ticket.created" in fact for fact in dead.facts):
        return ("on ticket.created nothing changes *from* a value: test the value itself "
                "(equals / exists), or listen to ticket.updated")
    if dead.facts:
        return "check the rule's 'on' list against what the condition expects"
    return ("the conditions exclude each other: did you mean 'any' instead of 'all', or "
            "another value?")


def _never_true(rules: RuleSet, forms: Forms, reason: Reasoner) -> Iterator[Lint]:
    for rule in rules:
        form = forms[rule.id]
        if rule.condition is None or not form:
            continue
        deaths = [(conj, _why_dead(rule, conj, reason)) for conj in form]
        live = {id(lit.leaf) for conj, dead in deaths if dead is None for lit in conj}
        whole = all(dead is not None for _, dead in deaths)
        said: set[str] = set()
        for _, dead in deaths:
            if dead is None or dead.text in said or not dead.leaves:
                continue
            if whole:
                at = dead.leaves[-1]
                message = f"rule '{rule.id}' can never match: {dead.text}"
            else:
                stuck = [lit for lit in dead.leaves if id(lit.leaf) not in live]
                if not stuck:
                    continue  # a combination of branches that each can match elsewhere
                at = stuck[0]
                message = (f"rule '{rule.id}' has a branch that can never be true: "
                           f"{dead.text} (the rest of the rule can still match)")
            said.add(dead.text)
            leaf = at.leaf
            yield Lint(LintKind.NEVER_TRUE, rule.file, leaf.line if leaf else rule.line,
                       (rule.id,), leaf.path if leaf else "if", message, _never_true_hint(dead))


# --- loop ----------------------------------------------------------------------------------------


def _step_text(edge: Edge, *, itself: bool = False) -> str:
    """``'a' adds tag 'x' (a.yaml:12), which the condition of 'b' tests (if.all[0] ... at ...)``."""
    calls = {w.action.index: w.action for w in edge.writes}
    lines = ", ".join(_where(edge.source, c.line) for c in calls.values())
    lit = edge.tested
    at = _where(edge.target, lit.leaf.line if lit.leaf else edge.target.line)
    whose = "its own condition" if itself else f"the condition of '{edge.target.id}'"
    subject = "it" if itself else f"'{edge.source.id}'"
    return (f"{subject} {' and '.join(w.fact.note for w in edge.writes)} ({lines}), "
            f"which {whose} tests ({_leaf_text(lit)} at {at})")


LOOP_HINT = ("make a rule self-limiting — require the absence of what it writes, e.g. "
             "not: {field: ticket.tags, op: contains, value: <tag>} — or gate it on a change "
             "people make (changed_to / changed_from), which Switchboard's own writes never fire")


def _shadow_note(rules: Iterable[Rule]) -> str:
    shadow = [r.id for r in rules if r.mode is Mode.SHADOW]
    return f" (once {', '.join(repr(s) for s in shadow)} go live)" if shadow else ""


def _loop_lint(cycle: list[Edge]) -> Lint:
    first = cycle[0]
    rules = [edge.source for edge in cycle]
    chain = " -> ".join([*(f"'{r.id}'" for r in rules), f"'{rules[0].id}'"])
    if len(cycle) == 1:
        message = (f"rule '{first.source.id}' re-triggers itself{_shadow_note(rules)}: "
                   f"{_step_text(first, itself=True)}, and nothing it writes makes that "
                   "condition false, so it matches again on every later event of the ticket")
    else:
        steps = "; ".join(_step_text(edge) for edge in cycle)
        message = (f"rules loop {chain}{_shadow_note(rules)}: {steps} — each later event of the "
                   "ticket fires the next rule of the chain")
    action = first.writes[0].action
    return Lint(LintKind.LOOP, first.source.file, action.line or first.source.line,
                tuple(r.id for r in rules), f"then[{action.index}]", message, LOOP_HINT)


def _loops(rules: RuleSet, forms: Forms, reason: Reasoner) -> Iterator[Lint]:
    for cycle in cycles(rules, forms, reason):
        yield _loop_lint(cycle)


# --- duplicate-side-effect -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Effect:
    key: tuple[str, ...]  # what is touched: ("bug", project), ("tag", name), ("note", text) ...
    value: Any  # what it is set to / how it is touched
    action: ActionCall


def _effects(rule: Rule) -> list[_Effect]:
    out: list[_Effect] = []
    for call in rule.actions:
        params = call.params
        if call.name == BUG:
            dedupe = params.get("dedupe_by")
            out.append(_Effect(("bug", str(params["project"])),
                               " ".join(dedupe.split()) if dedupe else None, call))
        elif call.name == UPDATE:
            if params.get("note"):
                out.append(_Effect(("note", " ".join(str(params["note"]).split())), None, call))
            for tag in params.get("add_tags") or ():
                out.append(_Effect(("tag", str(tag).casefold()), "add", call))
            for tag in params.get("remove_tags") or ():
                out.append(_Effect(("tag", str(tag).casefold()), "remove", call))
            for name, value in (params.get("fields") or {}).items():
                out.append(_Effect(("field", name), value, call))
            if params.get("status"):
                out.append(_Effect(("status",), params["status"], call))
    return out


def _shared(mine: _Effect, theirs: _Effect) -> str:
    """What the two effects do together, in words."""
    kind = mine.key[0]
    if kind == "bug":
        project = mine.key[1]
        if mine.value is None and theirs.value is None:
            return f"create a Jira bug in {project} without dedupe_by: two bugs for one ticket"
        if mine.value == theirs.value:
            return (f"create or link a Jira bug in {project} with the same dedupe_by: the ticket "
                    "is sent to Jira twice (two bugs whenever the key renders empty)")
        return (f"create or link a Jira bug in {project} (dedupe_by {mine.value!r} vs "
                f"{theirs.value!r}): the ticket can end up on two bugs")
    if kind == "note":
        text = mine.key[1]
        return f"post the note {text[:60] + '…' if len(text) > 60 else text!r}: it appears twice"
    if kind == "tag":
        if mine.value == theirs.value:
            return f"{mine.value} tag '{mine.key[1]}'"
        return (f"change tag '{mine.key[1]}' (one adds it, the other removes it): the result "
                "depends on which update lands last")
    what = f"ticket.fields.{mine.key[1]}" if kind == "field" else "the status"
    if mine.value == theirs.value:
        return f"set {what} to {mine.value!r}"
    return (f"set {what}, to different values ({mine.value!r} vs {theirs.value!r}): the last "
            "update wins")


class _Sides:
    """Each rule's condition as one side of a joint check, per change: the disjuncts that can hold
    when a change is ``events`` (the rule matching as ``own``), without ``event.type`` (each
    rule's own) and with what those events imply, grouped by field. Built on demand, kept."""

    def __init__(self, forms: Forms, reason: Reasoner) -> None:
        self.forms = forms
        self.reason = reason
        self._memo: dict[tuple[str, str, frozenset[str]], list[ByField] | None] = {}

    def get(self, rule: Rule, own: str, events: frozenset[str]) -> list[ByField] | None:
        """``None`` when the condition is too complex to analyse."""
        key = (rule.id, own, events)
        if key not in self._memo:
            form = self.forms[rule.id]
            self._memo[key] = None if form is None else self._build(form, own, events)
        return self._memo[key]

    def _build(self, form: list[tuple[Literal, ...]], own: str,
               events: frozenset[str]) -> list[ByField]:
        out: list[ByField] = []
        for conj in form:
            if self.reason.conflict([*conj, *event_facts(own, conj)]):
                continue
            rest = [lit for lit in conj if lit.field != "event.type"]
            side = [*rest, *(f for e in sorted(events) for f in event_facts(e, rest,
                                                                          with_type=False))]
            if not self.reason.conflict(side):
                out.append(by_field(side))
        return out


def _overlap(a: Rule, b: Rule, sides: _Sides) -> tuple[str, str] | None:
    """Event types (of ``a``, of ``b``) as which one change can make both rules match, or ``None``
    when they provably cannot. ``event.type`` is each rule's own; the change is shared."""
    for left_event in a.on:
        for right_event in b.on:
            if left_event != right_event and frozenset({left_event, right_event}) not in TOGETHER:
                continue
            events = frozenset({left_event, right_event})
            lefts, rights = sides.get(a, left_event, events), sides.get(b, right_event, events)
            if lefts is None or rights is None:
                return left_event, right_event  # too complex to tell: assume they can
            if any(not sides.reason.clash(left, right) for left in lefts for right in rights):
                return left_event, right_event
    return None


DUPLICATE_HINT = ("make the conditions exclusive (add a `not:` of the other rule's distinguishing "
                  "condition), merge the rules, or drop the action from one of them")


def _duplicates(rules: RuleSet, forms: Forms, reason: Reasoner) -> Iterator[Lint]:
    live = [r for r in rules if r.mode is Mode.LIVE]
    effects = {r.id: _effects(r) for r in live}
    touching: dict[tuple[str, ...], set[int]] = {}
    for i, rule in enumerate(live):
        for effect in effects[rule.id]:
            touching.setdefault(effect.key, set()).add(i)
    sides = _Sides(forms, reason)
    for i, a in enumerate(live):
        partners = sorted({j for e in effects[a.id] for j in touching[e.key] if j > i})
        for b in (live[j] for j in partners):
            pairs = [(mine, theirs) for mine in effects[a.id] for theirs in effects[b.id]
                     if mine.key == theirs.key]
            events = _overlap(a, b, sides)
            if events is None:
                continue
            when = (f"the same {events[0]} event" if events[0] == events[1] else
                    f"one change (as {events[0]} and as {events[1]})")
            said = list(dict.fromkeys(_shared(m, t) for m, t in pairs))
            mine, theirs = pairs[0]
            message = (f"rules '{a.id}' ({_where(a, mine.action.line)}) and '{b.id}' "
                       f"({_where(b, theirs.action.line)}) can both match {when} and both "
                       f"{'; both '.join(said)}")
            yield Lint(LintKind.DUPLICATE_SIDE_EFFECT, a.file, mine.action.line or a.line,
                       (a.id, b.id), f"then[{mine.action.index}]", message, DUPLICATE_HINT)
