"""The loaded, validated form of rules: frozen dataclasses built only by :mod:`rules.loader`."""

from __future__ import annotations

__all__ = [
    "ActionCall",
    "All",
    "AtMost",
    "Any_",
    "Condition",
    "FieldCondition",
    "FrozenDict",
    "Mode",
    "Not",
    "Rule",
    "RuleSet",
    "Throttle",
    "Window",
    "condition_fields",
    "freeze",
    "thaw",
]

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NoReturn

from .operators import Op

if TYPE_CHECKING:
    from .context import EvalContext


class FrozenDict(dict[str, Any]):
    """A dict that refuses mutation, so it stays JSON-serialisable as is (``json.dumps`` works)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("this mapping is read-only")

    __setitem__ = _refuse
    __delitem__ = _refuse
    __ior__ = _refuse
    clear = _refuse
    pop = _refuse
    popitem = _refuse
    setdefault = _refuse
    update = _refuse

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        return (FrozenDict, (dict(self),))


def freeze(value: Any) -> Any:
    """Deep read-only copy: mappings become :class:`FrozenDict`, lists become tuples."""
    if isinstance(value, Mapping):
        return FrozenDict({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Deep plain copy (dicts and lists): the inverse of :func:`freeze`."""
    if isinstance(value, Mapping):
        return {str(k): thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value


class Mode(StrEnum):
    """``live`` acts; ``shadow`` decides and logs but never acts; ``off`` is not evaluated."""

    LIVE = "live"
    SHADOW = "shadow"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class FieldCondition:
    """A leaf: ``{field, op, value, case_sensitive}``; ``path`` is e.g. ``if.all[1]``.

    A list ``value`` is kept as a tuple.
    """

    field: str
    op: Op
    value: Any
    case_sensitive: bool
    path: str
    line: int | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", freeze(self.value))


@dataclass(frozen=True, slots=True)
class All:
    conditions: tuple[Condition, ...]
    path: str
    line: int | None


@dataclass(frozen=True, slots=True)
class Any_:
    conditions: tuple[Condition, ...]
    path: str
    line: int | None


@dataclass(frozen=True, slots=True)
class Not:
    condition: Condition
    path: str
    line: int | None


Condition = FieldCondition | All | Any_ | Not


@dataclass(frozen=True, slots=True)
class ActionCall:
    """One ``then:`` step: the action name and its validated params (defaults filled in).

    ``params`` is deep-frozen but JSON-serialisable as is; templates are unrendered.
    ``uses`` holds the template roots the params reference (``{"ticket", "jira"}``), which the
    planner uses to wire dependencies.
    """

    name: str
    params: Mapping[str, Any]
    index: int
    line: int | None
    uses: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", freeze(self.params))


@dataclass(frozen=True, slots=True)
class Window:
    """``window:`` — fire once per group when ``count`` distinct tickets matched within ``within``.

    ``group_by`` is a field path (``ticket.fields.error_code``) or ``None`` (one group). The
    episode that a fire opens ends after ``quiet_for`` without a new match (default: ``within``);
    then the rule's ``after_quiet`` actions, if any, run once.
    """

    count: int
    within: timedelta
    group_by: str | None
    quiet_for: timedelta | None
    line: int | None

    @property
    def quiet(self) -> timedelta:
        """How long a group must go without a match for its episode to end."""
        return self.quiet_for if self.quiet_for is not None else self.within


@dataclass(frozen=True, slots=True)
class AtMost:
    """``at_most: {count, per, by}`` — at most ``count`` fires per ``per`` for each ``by`` value."""

    count: int
    per: timedelta
    by: str | None


@dataclass(frozen=True, slots=True)
class Throttle:
    """``throttle:`` — limits on how often a matching rule fires (checked after any window)."""

    once_until_resolved: bool
    at_most: AtMost | None
    line: int | None


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule. ``fields_used`` lists the ticket field paths its conditions and templates read.

    ``window`` and ``throttle`` gate a match (see :mod:`rules.engine`); ``while_open`` are the
    actions run for each later match that joins a window's open episode, ``after_quiet`` those
    run when the episode ends.
    """

    id: str
    description: str
    mode: Mode
    on: tuple[str, ...]
    condition: Condition | None
    actions: tuple[ActionCall, ...]
    file: str
    line: int | None
    fields_used: frozenset[str] = field(default=frozenset())
    window: Window | None = None
    throttle: Throttle | None = None
    after_quiet: tuple[ActionCall, ...] = ()
    while_open: tuple[ActionCall, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleSet:
    """All loaded rules, in file order.

    :meth:`for_event` is indexed by event type (built once, with the set); :meth:`matching`
    decides every rule for an event through compiled rules (:mod:`rules.compiled`), built on
    first use per event type.
    """

    rules: tuple[Rule, ...]
    _by_event: dict[str, tuple[Rule, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict)
    _indexes: dict[str, Any] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        for event_type in dict.fromkeys(e for r in self.rules for e in r.on):
            self._by_event[event_type] = tuple(
                r for r in self.rules if r.mode is not Mode.OFF and event_type in r.on)

    def __reduce__(self) -> tuple[type[RuleSet], tuple[tuple[Rule, ...]]]:
        return (RuleSet, (self.rules,))  # the indexes hold closures; they are rebuilt

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, rule_id: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.id == rule_id), None)

    def for_event(self, event_type: str) -> tuple[Rule, ...]:
        """Rules listening to ``event_type`` whose mode is not ``off``, in file order."""
        return self._by_event.get(event_type, ())

    def matching(self, ctx: EvalContext) -> tuple[Rule, ...]:
        """The rules of :meth:`for_event` (``ctx.event_type``) that match ``ctx``, in file order.

        The same as ``[r for r in for_event(...) if evaluate(r, ctx).matched]``, without traces,
        and checking only the rules whose cheap necessary tests the event passes. Never raises
        for operator failures (such a rule does not match).
        """
        index = self._indexes.get(ctx.event_type)
        if index is None:
            from .compiled import RuleIndex  # compiled imports this module

            index = RuleIndex(self.for_event(ctx.event_type))
            self._indexes[ctx.event_type] = index
        result: tuple[Rule, ...] = index.matching(ctx)
        return result

    def fields_used(self, event_type: str | None = None) -> frozenset[str]:
        """Ticket field paths read by the non-off rules (for ``event_type``, or for any event)."""
        rules = (
            self.for_event(event_type)
            if event_type is not None
            else (r for r in self.rules if r.mode is not Mode.OFF)
        )
        used: set[str] = set()
        for rule in rules:
            used |= rule.fields_used
        return frozenset(used)


def condition_fields(condition: Condition | None) -> set[str]:
    """Every field path a condition tree tests (a rule's ``if:``), nested groups included."""
    if condition is None:
        return set()
    if isinstance(condition, FieldCondition):
        return {condition.field}
    if isinstance(condition, Not):
        return condition_fields(condition.condition)
    return set().union(*(condition_fields(c) for c in condition.conditions))
