"""The fixed table of condition operators: small pure functions keyed by :class:`Op`.

Every operator has the signature ``fn(actual, expected, case_sensitive) -> bool``. Operators that
read the event's change set (``reads=Reads.CHANGE``) get the field's :class:`~rules.context.Change`
(or ``None`` when the field did not change) as ``actual``. Strings compare case-insensitively unless
the condition says ``case_sensitive: true``. A number and a string compare by their text
(``42 == "42"``); booleans compare as ``true``/``false``.

An operator raises :class:`OperatorError` when the value it is handed cannot be tested that way
(``contains`` on a number); the evaluator records that as a rule error, never as a silent "no
match". The table also declares, per operator, what ``value:`` it needs (:class:`ValueShape`) and
which field kinds it applies to; the loader checks both.
"""

from __future__ import annotations

__all__ = ["OPERATORS", "Op", "OperatorError", "OperatorSpec", "Reads", "ValueShape"]

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from .context import Change
from .fields import FieldKind


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


class ValueShape(Enum):
    """What ``value:`` an operator takes."""

    NONE = "no value"
    SCALAR = "a single value (text, number or true/false)"
    LIST = "a non-empty list of values"


class Reads(Enum):
    """What the operator is handed as ``actual``."""

    VALUE = "value"
    CHANGE = "change"


OperatorFn = Callable[[Any, Any, bool], bool]


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    """One operator: the function, its explain label, its value shape and applicable kinds."""

    op: Op
    label: str
    fn: OperatorFn
    value: ValueShape
    kinds: frozenset[FieldKind]
    reads: Reads = Reads.VALUE

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


_SCALARS = frozenset({FieldKind.TEXT, FieldKind.ENUM, FieldKind.ID})
_CONTAINERS = frozenset({FieldKind.TEXT, FieldKind.TAGS, FieldKind.LIST})
_ALL = frozenset(FieldKind)
_TRACKED = frozenset({FieldKind.TEXT, FieldKind.ENUM, FieldKind.ID, FieldKind.TAGS})

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
    )
}
