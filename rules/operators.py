"""The fixed table of condition operators: small pure functions keyed by :class:`Op`.

Every operator has the signature ``fn(actual, expected, case_sensitive) -> bool``. Operators that
read the event's change set (``reads=Reads.CHANGE``) get the field's :class:`~rules.context.Change`
(or ``None`` when the field did not change) as ``actual``. Strings compare case-insensitively unless
the condition says ``case_sensitive: true``. A number and a string compare by their text
(``42 == "42"``); booleans compare as ``true``/``false``.

An operator raises :class:`OperatorError` when the value it is handed cannot be tested that way
(``contains`` on a number); the evaluator records that as a rule error, never as a silent "no
match". The table also declares, per operator, what ``value:`` it needs (:class:`ValueShape`) and
which field kinds it applies to; the loader checks both (and, for ``matches``, ``gt``... and
``older_than`` / ``within``, the value itself: a pattern that compiles, a number or time, a
duration — :attr:`OperatorSpec.check`).

``matches`` runs a rule's regex against text a stranger wrote, so it uses the ``regex`` package
with a time budget (:data:`REGEX_TIMEOUT` per condition) and searches at most
:data:`REGEX_MAX_CHARS` characters: a pattern that backtracks catastrophically is a rule error,
never a hung hub. ``older_than`` / ``within`` measure from the event's time
(:class:`Timed`), not the wall clock, so a backtest decides as live processing did.
"""

from __future__ import annotations

__all__ = [
    "OPERATORS",
    "REGEX_MAX_CHARS",
    "REGEX_TIMEOUT",
    "REGEX_TRIES",
    "Op",
    "OperatorError",
    "OperatorSpec",
    "Reads",
    "Timed",
    "ValueProblem",
    "ValueShape",
    "compile_pattern",
    "parse_duration",
]

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum, StrEnum
from functools import lru_cache
from typing import Any

import regex

from .context import Change, parse_instant
from .fields import FieldKind
from .prefilter import UNTIMED_STEPS, required_strings, search_cost


class OperatorError(Exception):
    """An operator was handed a value it cannot test (a rule error, shown in the trace)."""


class Op(StrEnum):
    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    CONTAINS_ANY = "contains_any"
    CONTAINS_ALL = "contains_all"
    CONTAINS_NONE = "contains_none"
    EXISTS = "exists"
    CHANGED = "changed"
    CHANGED_TO = "changed_to"
    CHANGED_FROM = "changed_from"
    MATCHES = "matches"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    OLDER_THAN = "older_than"
    WITHIN = "within"


class ValueShape(Enum):
    """What ``value:`` an operator takes."""

    NONE = "no value"
    SCALAR = "a single value (text, number or true/false)"
    LIST = "a non-empty list of values"
    PATTERN = "a regular expression (text)"
    ORDERED = "a number or an ISO-8601 time (e.g. 5, 2.5, 2026-01-05T10:00:00Z)"
    DURATION = "a duration such as 90s, 15m, 2h, 3d or 1w"


class Reads(Enum):
    """What the operator is handed as ``actual``."""

    VALUE = "value"
    CHANGE = "change"
    TIMED = "value and event time"


class ValueProblem(Exception):
    """A condition's ``value:`` is unusable for its operator (a load problem, with a hint)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Timed:
    """What ``Reads.TIMED`` operators get: the field's value and the event's time (or None)."""

    value: Any
    now: datetime | None


OperatorFn = Callable[[Any, Any, bool], bool]
#: Load-time check of ``(value, case_sensitive)``; raises :class:`ValueProblem`.
ValueCheck = Callable[[Any, bool], None]


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    """One operator: the function, its explain label, its value shape and applicable kinds."""

    op: Op
    label: str
    fn: OperatorFn
    value: ValueShape
    kinds: frozenset[FieldKind]
    reads: Reads = Reads.VALUE
    check: ValueCheck | None = None

    @property
    def doc(self) -> str:
        return (self.fn.__doc__ or "").strip()


def _is_list(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _same(actual: Any, expected: Any, case_sensitive: bool) -> bool:
    """Scalar equality with the module's string, number and boolean rules."""
    if actual is None or expected is None:
        return actual is expected
    if isinstance(actual, str) and isinstance(expected, str):
        return actual == expected if case_sensitive else actual.casefold() == expected.casefold()
    if type(actual) is type(expected) or (
        isinstance(actual, int | float) and isinstance(expected, int | float)
        and not isinstance(actual, bool) and not isinstance(expected, bool)
    ):
        return bool(actual == expected)
    left, right = _text(actual), _text(expected)
    return left == right if case_sensitive else left.casefold() == right.casefold()


def _scalar(actual: Any, op: str) -> None:
    if _is_list(actual) or isinstance(actual, Mapping):
        raise OperatorError(
            f"'{op}' compares one value, but the field holds {type(actual).__name__} "
            f"{actual!r}; use contains / contains_any for lists"
        )


def _has(actual: Any, item: Any, case_sensitive: bool) -> bool:
    """Membership for lists, substring for text; ``None`` contains nothing."""
    if actual is None:
        return False
    if _is_list(actual):
        return any(_same(element, item, case_sensitive) for element in actual)
    if isinstance(actual, str):
        needle = _text(item)
        if case_sensitive:
            return needle in actual
        return needle.casefold() in actual.casefold()
    raise OperatorError(
        f"contains needs text or a list, but the field holds {type(actual).__name__} {actual!r}"
    )


def equals(actual: Any, expected: Any, case_sensitive: bool) -> bool:
    """True when the field equals ``value``. ``None`` equals nothing. A list raises."""
    _scalar(actual, "equals")
    return _same(actual, expected, case_sensitive)


def not_equals(actual: Any, expected: Any, case_sensitive: bool) -> bool:
    """True when the field does not equal ``value``; ``None`` is not equal. A list raises."""
    _scalar(actual, "not_equals")
    return not _same(actual, expected, case_sensitive)


def in_(actual: Any, expected: Any, case_sensitive: bool) -> bool:
    """True when the field equals one of the listed values; ``None`` is in none. A list raises."""
    _scalar(actual, "in")
    return any(_same(actual, item, case_sensitive) for item in expected)


def not_in(actual: Any, expected: Any, case_sensitive: bool) -> bool:
    """True when the field equals none of the listed values; ``None`` is in none. A list raises."""
    _scalar(actual, "not_in")
    return not any(_same(actual, item, case_sensitive) for item in expected)


def contains(actual: Any, expected: Any, case_sensitive: bool) -> bool:
    """Lists (tags): ``value`` is an element. Text: ``value`` is a substring. ``None``: false."""
    return _has(actual, expected, case_sensitive)


def contains_any(actual: Any, expected: Any, case_sensitive: bool) -> bool:
    """Like ``contains`` for at least one of the listed values. ``None``: false."""
    return any(_has(actual, item, case_sensitive) for item in expected)


def contains_all(actual: Any, expected: Any, case_sensitive: bool) -> bool:
    """Like ``contains`` for every listed value. ``None``: false."""
    return all(_has(actual, item, case_sensitive) for item in expected)


def contains_none(actual: Any, expected: Any, case_sensitive: bool) -> bool:
    """Like ``contains`` for none of the listed values. ``None`` contains none: true."""
    return not any(_has(actual, item, case_sensitive) for item in expected)


def exists(actual: Any, expected: Any, case_sensitive: bool) -> bool:
    """True unless the field is ``None``, the empty string, or an empty list/mapping."""
    if actual is None or actual == "":
        return False
    return not ((_is_list(actual) or isinstance(actual, Mapping)) and len(actual) == 0)


def _differs(change: Change, case_sensitive: bool) -> bool:
    if _is_list(change.from_) or _is_list(change.to):
        before = {_text(v) if case_sensitive else _text(v).casefold() for v in change.from_ or ()}
        after = {_text(v) if case_sensitive else _text(v).casefold() for v in change.to or ()}
        return before != after
    return not _same(change.from_, change.to, case_sensitive)


def changed(actual: Change | None, expected: Any, case_sensitive: bool) -> bool:
    """True when the field is in this event's change set with a different before and after.

    Lists (tags) compare as sets. A field absent from the change set did not change.
    """
    return actual is not None and _differs(actual, case_sensitive)


def changed_to(actual: Change | None, expected: Any, case_sensitive: bool) -> bool:
    """True when the field changed in this event to ``value`` and was not ``value`` before.

    For lists (tags): ``value`` was added in this event. ``None`` before/after is just a value.
    """
    if actual is None:
        return False
    if _is_list(actual.to) or _is_list(actual.from_):
        return _has(actual.to or [], expected, case_sensitive) and not _has(
            actual.from_ or [], expected, case_sensitive
        )
    return _same(actual.to, expected, case_sensitive) and not _same(
        actual.from_, expected, case_sensitive
    )


def changed_from(actual: Change | None, expected: Any, case_sensitive: bool) -> bool:
    """True when the field changed in this event away from ``value``.

    For lists (tags): ``value`` was removed in this event.
    """
    if actual is None:
        return False
    return changed_to(Change(actual.to, actual.from_), expected, case_sensitive)


# --- matches -------------------------------------------------------------------------------------

#: Time budget of one ``matches`` condition (all list elements together), in seconds.
REGEX_TIMEOUT = 0.05
#: Wall-clock budgets a ``matches`` condition may start before it gives up when its thread
#: waited (for the GIL, for the machine) instead of searching: at most 1 s in all.
REGEX_TRIES = 20
#: Only this many leading characters of a text are searched by ``matches``.
REGEX_MAX_CHARS = 100_000


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str, case_sensitive: bool) -> Any:
    """The compiled ``regex`` pattern (cached); raises ``regex.error`` for a bad pattern."""
    flags = 0 if case_sensitive else regex.IGNORECASE
    return regex.compile(pattern, flags)


def _check_pattern(value: Any, case_sensitive: bool) -> None:
    if not isinstance(value, str):
        raise ValueProblem(f"needs {ValueShape.PATTERN.value}, not "
                           f"{type(value).__name__}", "quote the pattern")
    try:
        compile_pattern(value, case_sensitive)
    except regex.error as exc:
        raise ValueProblem(f"bad regular expression {value!r}: {exc}",
                           "YAML: write the pattern in single quotes so backslashes stay as is"
                           ) from None


def matches(actual: Any, expected: Any, case_sensitive: bool) -> bool:
    """True when the regex ``value`` is found in the field's text (a search, not a full match).

    Case-insensitive unless ``case_sensitive``. ``None``: false. Lists (tags): true if any
    element matches (``None`` elements are skipped). Numbers are searched as their text. Only the
    first 100,000 characters of a text are searched, and the whole condition has a 0.05 s time
    budget: a pattern that uses up a budget of this thread's CPU time (catastrophic backtracking)
    is a rule error, never a silent no-match, within about two budgets. Time the thread spent
    waiting (a busy hub) does not count. A text that lacks every string a match must contain
    (the pattern's literal words, :mod:`rules.prefilter`) is not searched: it cannot match. A
    search whose work the pattern bounds to well under the budget (no nested or backtracking-
    prone repeats, a short enough text: :func:`rules.prefilter.search_cost`) runs untimed.
    """
    if actual is None:
        return False
    if isinstance(actual, Mapping):
        raise OperatorError(f"'matches' needs text or a list, but the field holds a mapping "
                            f"{actual!r}")
    pattern = compile_pattern(expected, case_sensitive)
    required = required_strings(expected, case_sensitive)
    cost = search_cost(expected, case_sensitive)
    items = actual if _is_list(actual) else (actual,)
    # The budget is CPU time of this thread. The search is given what is left of a wall-clock
    # budget, and a busy hub (other threads holding the GIL, a loaded machine) can use that up
    # while this thread waits, on a 20-character text. A search that ran out of time is tried
    # again with a fresh budget; the thread's own CPU clock (a system call, so read only from the
    # first timeout on) decides when the pattern itself has used a whole budget.
    cpu_start: float | None = None
    deadline = time.monotonic() + REGEX_TIMEOUT
    untimed = UNTIMED_STEPS  # steps the condition's untimed searches may take, together
    for item in items:
        if item is None:
            continue
        if _is_list(item) or isinstance(item, Mapping):
            raise OperatorError(f"'matches' cannot search {type(item).__name__} {item!r}")
        text = _text(item)[:REGEX_MAX_CHARS]
        if required is not None and required.excludes(text):
            continue  # lacks a string every match contains: cannot match (rules.prefilter)
        if cost is not None:  # bounded work, while the condition's searches stay small
            steps = cost.steps(len(text))
            if steps <= untimed:
                untimed -= steps
                if pattern.search(text) is not None:
                    return True
                continue
        for _ in range(REGEX_TRIES):
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                found = pattern.search(text, timeout=left) is not None
                break
            except TimeoutError:
                if cpu_start is None:
                    cpu_start = time.thread_time()  # the budgets from here on are measured
                elif time.thread_time() - cpu_start >= REGEX_TIMEOUT:
                    raise OperatorError(
                        f"regex {expected!r} gave up after {REGEX_TIMEOUT} s on {len(text)} "
                        "characters (catastrophic backtracking?); simplify the pattern"
                    ) from None
                deadline = time.monotonic() + REGEX_TIMEOUT  # waited, or not yet measured
        else:
            raise OperatorError(f"regex {expected!r} could not run: the hub is too busy (no "
                                f"CPU time within {REGEX_TRIES} x {REGEX_TIMEOUT} s)")
        if found:
            return True
    return False


# --- gt / gte / lt / lte -------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _number(value: Any) -> float | int | None:
    """An int/float (not bool), or numeric text as a number; ``None`` otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            number = float(text)
            return number if math.isfinite(number) else None
    return None


def _check_ordered(value: Any, case_sensitive: bool) -> None:
    if _number(value) is None and parse_instant(value) is None:
        raise ValueProblem(f"needs {ValueShape.ORDERED.value}, not {value!r}",
                           "for an age use older_than / within with a duration such as 2h")


def _order(actual: Any, expected: Any, op: str) -> int | None:
    """-1/0/1 comparing the field with ``value``; ``None`` when the field is ``None``."""
    if actual is None:
        return None
    if _is_list(actual) or isinstance(actual, Mapping):
        raise OperatorError(f"'{op}' compares one value, but the field holds "
                            f"{type(actual).__name__} {actual!r}")
    number = _number(expected)
    if number is not None:
        left = _number(actual)
        if left is None:
            raise OperatorError(f"'{op}' compares numbers, but the field holds "
                                f"{type(actual).__name__} {actual!r}")
        return (left > number) - (left < number)
    instant = parse_instant(expected)
    if instant is None:
        raise OperatorError(f"'{op}' needs a number or a time as value, not {expected!r}")
    seen = parse_instant(actual)
    if seen is None:
        raise OperatorError(f"'{op}' compares times, but the field holds "
                            f"{type(actual).__name__} {actual!r}")
    return (seen > instant) - (seen < instant)


def gt(actual: Any, expected: Any, case_sensitive: bool) -> bool:
    """True when the field is greater than ``value``: numbers (numeric text counts), or ISO-8601
    times compared as instants (later is greater). ``None``: false. A list, or a field that is
    not comparable with ``value`` (text vs a number), raises.
    """
    order = _order(actual, expected, "gt")
    return order is not None and order > 0


def gte(actual: Any, expected: Any, case_sensitive: bool) -> bool:
    """Like ``gt``, for greater than or equal. ``None``: false. A list raises."""
    order = _order(actual, expected, "gte")
    return order is not None and order >= 0


def lt(actual: Any, expected: Any, case_sensitive: bool) -> bool:
    """Like ``gt``, for less than (earlier, for times). ``None``: false. A list raises."""
    order = _order(actual, expected, "lt")
    return order is not None and order < 0


def lte(actual: Any, expected: Any, case_sensitive: bool) -> bool:
    """Like ``gt``, for less than or equal. ``None``: false. A list raises."""
    order = _order(actual, expected, "lte")
    return order is not None and order <= 0


# --- older_than / within -------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@lru_cache(maxsize=1024)
def _duration(text: str) -> timedelta | None:
    found = _DURATION.fullmatch(text.strip().lower())
    if found is None:
        return None
    seconds = int(found.group(1)) * _UNITS[found.group(2)]
    return timedelta(seconds=seconds) if 0 < seconds <= 100 * 366 * 86400 else None


def parse_duration(value: Any) -> timedelta:
    """``15m`` -> 15 minutes (units ``s``, ``m``, ``h``, ``d``, ``w``); raises ValueProblem."""
    duration = _duration(value) if isinstance(value, str) else None
    if duration is None:
        hint = (f"add a unit: '{value}m' or '{value}h'" if isinstance(value, int)
                and not isinstance(value, bool) else
                "a whole number and one unit: 90s, 15m, 2h, 3d, 1w")
        raise ValueProblem(f"bad duration {value!r}: needs {ValueShape.DURATION.value}", hint)
    return duration


def _check_duration(value: Any, case_sensitive: bool) -> None:
    parse_duration(value)


def _age(actual: Timed, op: str) -> timedelta | None:
    """How long before the event the field's time is; ``None`` when the field is ``None``."""
    value = actual.value
    if value is None:
        return None
    if _is_list(value) or isinstance(value, Mapping):
        raise OperatorError(f"'{op}' needs one time, but the field holds "
                            f"{type(value).__name__} {value!r}")
    seen = parse_instant(value)
    if seen is None:
        raise OperatorError(f"'{op}' needs an ISO-8601 time, but the field holds {value!r}")
    if actual.now is None:
        raise OperatorError(f"'{op}' needs the event's time, and this event has none "
                            "(no event time and no ticket.updated_at)")
    return actual.now - seen


def older_than(actual: Timed, expected: Any, case_sensitive: bool) -> bool:
    """True when the field's time is more than the duration ``value`` before the event's time.

    Measured from the event's time (the ticket's ``updated_at`` when the event has none), never
    the wall clock. ``None``: false. A list, or text that is not a time, raises.
    """
    age = _age(actual, "older_than")
    return age is not None and age > parse_duration(expected)


def within(actual: Timed, expected: Any, case_sensitive: bool) -> bool:
    """True when the field's time is at most the duration ``value`` before the event's time.

    A time after the event's time counts as within. ``None``: false. A list, or text that is
    not a time, raises.
    """
    age = _age(actual, "within")
    return age is not None and age <= parse_duration(expected)


_SCALARS = frozenset({FieldKind.TEXT, FieldKind.ENUM, FieldKind.ID})
_CONTAINERS = frozenset({FieldKind.TEXT, FieldKind.TAGS, FieldKind.LIST})
_ALL = frozenset(FieldKind)
_TRACKED = frozenset({FieldKind.TEXT, FieldKind.ENUM, FieldKind.ID, FieldKind.TAGS})
_SEARCHABLE = frozenset({FieldKind.TEXT, FieldKind.ENUM, FieldKind.ID, FieldKind.TAGS,
                         FieldKind.LIST})
_ORDERED = frozenset({FieldKind.TEXT, FieldKind.ID, FieldKind.TIME})
_TIMES = frozenset({FieldKind.TEXT, FieldKind.TIME})

OPERATORS: dict[Op, OperatorSpec] = {
    spec.op: spec
    for spec in (
        OperatorSpec(Op.EQUALS, "is", equals, ValueShape.SCALAR, _SCALARS),
        OperatorSpec(Op.NOT_EQUALS, "is not", not_equals, ValueShape.SCALAR, _SCALARS),
        OperatorSpec(Op.IN, "is one of", in_, ValueShape.LIST, _SCALARS),
        OperatorSpec(Op.NOT_IN, "is not one of", not_in, ValueShape.LIST, _SCALARS),
        OperatorSpec(Op.CONTAINS, "contains", contains, ValueShape.SCALAR, _CONTAINERS),
        OperatorSpec(Op.CONTAINS_ANY, "contains any of", contains_any, ValueShape.LIST,
                     _CONTAINERS),
        OperatorSpec(Op.CONTAINS_ALL, "contains all of", contains_all, ValueShape.LIST,
                     _CONTAINERS),
        OperatorSpec(Op.CONTAINS_NONE, "contains none of", contains_none, ValueShape.LIST,
                     _CONTAINERS),
        OperatorSpec(Op.EXISTS, "exists", exists, ValueShape.NONE, _ALL),
        OperatorSpec(Op.CHANGED, "changed", changed, ValueShape.NONE, _ALL, Reads.CHANGE),
        OperatorSpec(Op.CHANGED_TO, "changed to", changed_to, ValueShape.SCALAR, _TRACKED,
                     Reads.CHANGE),
        OperatorSpec(Op.CHANGED_FROM, "changed from", changed_from, ValueShape.SCALAR, _TRACKED,
                     Reads.CHANGE),
        OperatorSpec(Op.MATCHES, "matches", matches, ValueShape.PATTERN, _SEARCHABLE,
                     check=_check_pattern),
        OperatorSpec(Op.GT, "is greater than", gt, ValueShape.ORDERED, _ORDERED,
                     check=_check_ordered),
        OperatorSpec(Op.GTE, "is at least", gte, ValueShape.ORDERED, _ORDERED,
                     check=_check_ordered),
        OperatorSpec(Op.LT, "is less than", lt, ValueShape.ORDERED, _ORDERED,
                     check=_check_ordered),
        OperatorSpec(Op.LTE, "is at most", lte, ValueShape.ORDERED, _ORDERED,
                     check=_check_ordered),
        OperatorSpec(Op.OLDER_THAN, "is older than", older_than, ValueShape.DURATION, _TIMES,
                     Reads.TIMED, _check_duration),
        OperatorSpec(Op.WITHIN, "is within", within, ValueShape.DURATION, _TIMES,
                     Reads.TIMED, _check_duration),
    )
}
