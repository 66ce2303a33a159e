"""Literals — condition leaves, negated or not, and facts — and what those on one field allow.

:class:`Literal` is the unit of :mod:`rules.consistency`'s reasoning. :func:`field_possible`
decides whether the literals about one field can all hold at once. It is *sound, not complete*:
``False`` means no value (and, for change literals, no before / after pair) satisfies them all,
under the operators' exact rules for null, lists, case and numbers; when it cannot tell it says
``True``. It knows

- scalar fields (text, enum, id, time): the values ``equals`` / ``in`` allow and ``not_equals`` /
  ``not_in`` exclude, ``exists``, an enum's value list, substrings (``contains`` on text), regexes
  tried on the values allowed, number and time ranges (``gt`` ...), ages (``older_than`` /
  ``within``); a negated range (``not: gt 5``) only binds a field known not to be null;
- list fields (tags, ``links.jira``): elements present and absent, ``contains_any`` /
  ``contains_all`` groups, emptiness, ``not matches`` against elements known to be present;
- the change set: ``changed_to x`` means the field is ``x`` now and was not before (for tags: ``x``
  is there now and was not before), ``changed_from x`` the reverse, ``not changed`` that nothing
  changed. Negated ``changed_to`` / ``changed_from`` are disjunctions and bind nothing.

Strings compare case-insensitively unless a literal is case-sensitive. Two values count as
*possibly* equal when their texts (or their numbers: ``1`` and ``1.0``) agree, and as *surely*
equal only when their texts do and a number is not compared with text — so mixed cases and types
make the analysis say less, never something false.
"""

from __future__ import annotations

__all__ = ["BEFORE", "CHANGE_OPS", "NOW", "Literal", "field_possible"]

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from .context import parse_instant
from .fields import FieldKind
from .model import FieldCondition
from .operators import Op, compile_pattern, parse_duration

NOW, BEFORE = "now", "before"
CHANGE_OPS = frozenset({Op.CHANGED, Op.CHANGED_TO, Op.CHANGED_FROM})
_LISTS = frozenset({FieldKind.TAGS, FieldKind.LIST})


@dataclass(frozen=True, slots=True)
class Literal:
    """One constraint: a leaf (``positive`` false when an odd number of ``not`` surround it), or a
    fact (``leaf`` is ``None``; ``note`` says where it comes from). ``slot`` is ``before`` for a
    fact about the value before the event (only :func:`rules.consistency.event_facts` makes those).
    """

    field: str
    op: Op
    value: Any = None
    case_sensitive: bool = False
    positive: bool = True
    leaf: FieldCondition | None = None
    note: str = ""
    slot: str = NOW

    @classmethod
    def of(cls, leaf: FieldCondition, positive: bool = True) -> Literal:
        return cls(leaf.field, leaf.op, leaf.value, leaf.case_sensitive, positive, leaf)

    def negated(self) -> Literal:
        return replace(self, positive=not self.positive)

    @property
    def gates_on_change(self) -> bool:
        """True for ``changed`` / ``changed_to`` / ``changed_from`` (not negated)."""
        return self.positive and self.op in CHANGE_OPS

    def describe(self) -> str:
        """``not ticket.tags contains 'x'`` — the leaf as written, with its negation."""
        text = f"{self.field} {self.op.value}"
        if self.value is not None:
            shown = list(self.value) if isinstance(self.value, tuple) else self.value
            text += f" {shown!r}"
        if self.case_sensitive:
            text += " (case-sensitive)"
        return text if self.positive else f"not {text}"


# --- values --------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Val:
    """The strings one value stands for: itself (``cs``) or every case variant of it.

    ``numeric``: the value was a number (a field holding ``1.0`` equals it). ``fuzzy``: the class
    came from a number match with another text, so text tests on ``text`` prove nothing.
    """

    text: str
    cs: bool
    numeric: bool = False
    fuzzy: bool = False

    @classmethod
    def of(cls, value: Any, cs: bool) -> _Val:
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        return cls(_text(value), cs, numeric)


def _same_text(a: str, b: str, cs: bool) -> bool:
    return a == b if cs else a.casefold() == b.casefold()


def _may_equal(a: _Val, b: _Val) -> bool:
    if _same_text(a.text, b.text, a.cs and b.cs):
        return True
    left, right = _number(a.text), _number(b.text)
    return left is not None and left == right


def _covers(x: _Val, y: _Val) -> bool:
    """Every string ``y`` stands for equals ``x`` as ``x`` compares (so excluding ``x`` excludes
    all of ``y``, and having ``y`` means having ``x``)."""
    if not (x.numeric or not y.numeric) or y.fuzzy:
        return False
    return x.text.casefold() == y.text.casefold() if not x.cs else (y.cs and x.text == y.text)


def _contains_surely(haystack: _Val, needle: _Val) -> bool:
    if haystack.fuzzy:
        return False
    if needle.cs:
        return haystack.cs and needle.text in haystack.text
    return needle.text.casefold() in haystack.text.casefold()


def _contains_maybe(haystack: _Val, needle: _Val) -> bool:
    if haystack.fuzzy:
        return True
    if haystack.cs and needle.cs:
        return needle.text in haystack.text
    return needle.text.casefold() in haystack.text.casefold()


def _search(pattern: str, cs: bool, val: _Val) -> bool | None:
    """Whether the regex finds a match in every string ``val`` stands for (``None``: unknown)."""
    if val.fuzzy or (cs and not val.cs):
        return None
    try:
        return compile_pattern(pattern, cs).search(val.text, timeout=0.05) is not None
    except TimeoutError:  # a pathological pattern proves nothing
        return None


@dataclass(slots=True)
class _Range:
    lo: Any = None
    lo_strict: bool = False
    hi: Any = None
    hi_strict: bool = False

    def add(self, op: Op, bound: Any) -> None:
        if op in (Op.GT, Op.GTE):
            strict = op is Op.GT
            if self.lo is None or bound > self.lo or (bound == self.lo and strict):
                self.lo, self.lo_strict = bound, strict
        else:
            strict = op is Op.LT
            if self.hi is None or bound < self.hi or (bound == self.hi and strict):
                self.hi, self.hi_strict = bound, strict

    def empty(self) -> bool:
        if self.lo is None or self.hi is None:
            return False
        if self.lo == self.hi:
            return self.lo_strict or self.hi_strict
        return bool(self.lo > self.hi)

    def holds(self, x: Any) -> bool:
        if self.lo is not None and (x < self.lo or (x == self.lo and self.lo_strict)):
            return False
        return not (self.hi is not None and (x > self.hi or (x == self.hi and self.hi_strict)))


_FLIP = {Op.GT: Op.LTE, Op.GTE: Op.LT, Op.LT: Op.GTE, Op.LTE: Op.GT}


def _bound(value: Any) -> tuple[str, float | datetime] | None:
    number = _number(value)
    if number is not None:
        return "number", number
    instant = parse_instant(value)
    return None if instant is None else ("time", instant)


# --- one scalar field ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Scalar:
    """What the literals say about one scalar value (a field now, or before the event)."""

    domain: tuple[str, ...]
    alts: list[_Val] | None = None
    excluded: list[_Val] = field(default_factory=list)
    nonnull: bool = False
    nonempty: bool = False
    empty: bool = False
    subs: list[_Val] = field(default_factory=list)
    not_subs: list[_Val] = field(default_factory=list)
    any_subs: list[list[_Val]] = field(default_factory=list)
    patterns: list[tuple[str, bool, bool]] = field(default_factory=list)
    ranges: dict[str, _Range] = field(default_factory=dict)
    soft: dict[str, _Range] = field(default_factory=dict)

    def allow(self, values: Iterable[Any], cs: bool) -> None:
        self.nonnull = True
        given = [_Val.of(v, cs) for v in values]
        if self.alts is None:
            self.alts = given
            return
        kept: list[_Val] = []
        for a in self.alts:
            for c in given:
                if not _may_equal(a, c):
                    continue
                if _same_text(a.text, c.text, a.cs and c.cs):
                    kept.append(a if a.cs or not c.cs else c)
                else:
                    kept.append(replace(a, fuzzy=True))
        self.alts = kept

    def exclude(self, values: Iterable[Any], cs: bool) -> None:
        self.excluded += [_Val.of(v, cs) for v in values]

    def bound(self, op: Op, value: Any, *, hard: bool) -> None:
        kind_bound = _bound(value)
        if kind_bound is None:
            return
        kind, at = kind_bound
        target = self.ranges if hard else self.soft
        target.setdefault(kind, _Range()).add(op, at)
        if hard:
            self.nonempty = True

    def age(self, op: Op, value: Any, positive: bool) -> None:
        seconds = parse_duration(value).total_seconds()
        older = op is Op.OLDER_THAN
        if positive:
            self.ranges.setdefault("age", _Range()).add(Op.GT if older else Op.LTE, seconds)
            self.nonempty = True
        else:
            self.soft.setdefault("age", _Range()).add(Op.LTE if older else Op.GT, seconds)

    def add(self, lit: Literal) -> None:
        op, value, cs, pos = lit.op, lit.value, lit.case_sensitive, lit.positive
        items = list(value) if isinstance(value, tuple) else [value]
        if op in (Op.EQUALS, Op.IN, Op.NOT_EQUALS, Op.NOT_IN):
            (self.allow if pos == (op in (Op.EQUALS, Op.IN)) else self.exclude)(items, cs)
        elif op is Op.EXISTS:
            if pos:
                self.nonempty = True
            else:
                self.empty = True
        elif op in (Op.CONTAINS, Op.CONTAINS_ALL):
            if pos:
                self.subs += [_Val.of(v, cs) for v in items]
                self.nonnull = True
            elif op is Op.CONTAINS:
                self.not_subs += [_Val.of(v, cs) for v in items]
        elif op in (Op.CONTAINS_ANY, Op.CONTAINS_NONE):
            if pos == (op is Op.CONTAINS_ANY):
                self.any_subs.append([_Val.of(v, cs) for v in items])
                self.nonnull = True
            else:
                self.not_subs += [_Val.of(v, cs) for v in items]
        elif op is Op.MATCHES:
            self.patterns.append((str(value), cs, pos))
            self.nonnull = self.nonnull or pos
        elif op in _FLIP:
            self.bound(op if pos else _FLIP[op], value, hard=pos)
        elif op in (Op.OLDER_THAN, Op.WITHIN):
            self.age(op, value, pos)

    def possible(self) -> bool:
        nonempty = self.nonempty or any(s.text for s in self.subs)
        nonnull = self.nonnull or nonempty
        if self.empty and nonempty:
            return False
        ranges = {kind: replace(rng) for kind, rng in self.ranges.items()}
        if nonnull:  # "not gt 5" is "lte 5 or null": a bound only on a value known to be set
            for kind, soft in self.soft.items():
                merged = ranges.setdefault(kind, _Range())
                if soft.lo is not None:
                    merged.add(Op.GT if soft.lo_strict else Op.GTE, soft.lo)
                if soft.hi is not None:
                    merged.add(Op.LT if soft.hi_strict else Op.LTE, soft.hi)
        if any(r.empty() for r in ranges.values()):
            return False
        if "number" in self.ranges and "time" in self.ranges:
            return False  # a value is never both a number and a time
        for needle in self.subs:
            if any(_contains_surely(needle, no) for no in self.not_subs):
                return False
        for group in self.any_subs:
            if all(any(_contains_surely(g, no) for no in self.not_subs) for g in group):
                return False
        if self.empty:
            for pattern, cs, positive in self.patterns:
                if positive and _search(pattern, cs, _Val("", True)) is False:
                    return False
        alts = self.alts
        if alts is None and nonnull and self.domain:
            alts = [_Val(v, False) for v in self.domain]
        if alts is None:
            return True
        return any(self._fits(a, ranges) for a in alts)

    def _fits(self, a: _Val, ranges: dict[str, _Range]) -> bool:
        if self.empty and a.text != "":
            return False
        if any(_covers(x, a) for x in self.excluded):
            return False
        if not all(_contains_maybe(a, s) for s in self.subs):
            return False
        if any(_contains_surely(a, s) for s in self.not_subs):
            return False
        if not all(any(_contains_maybe(a, g) for g in group) for group in self.any_subs):
            return False
        for pattern, cs, positive in self.patterns:
            found = _search(pattern, cs, a)
            if found is not None and found != positive:
                return False
        for kind, rng in ranges.items():
            if kind == "age" or a.fuzzy:
                continue
            at = _bound(a.text)
            if at is None or at[0] != kind or not rng.holds(at[1]):
                return False
        return True


# --- one list field ------------------------------------------------------------------------------


@dataclass(slots=True)
class _List:
    """What the literals say about one list (tags, links): elements present, absent, ..."""

    present: list[_Val] = field(default_factory=list)
    absent: list[_Val] = field(default_factory=list)
    any_of: list[list[_Val]] = field(default_factory=list)
    not_all: list[list[_Val]] = field(default_factory=list)
    nonempty: bool = False
    empty: bool = False
    not_matching: list[tuple[str, bool]] = field(default_factory=list)

    def add(self, lit: Literal) -> None:
        op, value, cs, pos = lit.op, lit.value, lit.case_sensitive, lit.positive
        items = [_Val.of(v, cs) for v in (value if isinstance(value, tuple) else [value])]
        if op in (Op.CONTAINS, Op.CONTAINS_ALL):
            if pos:
                self.present += items
            elif op is Op.CONTAINS:
                self.absent += items
            else:
                self.not_all.append(items)
        elif op in (Op.CONTAINS_ANY, Op.CONTAINS_NONE):
            if pos == (op is Op.CONTAINS_ANY):
                self.any_of.append(items)
            else:
                self.absent += items
        elif op is Op.EXISTS:
            if pos:
                self.nonempty = True
            else:
                self.empty = True
        elif op is Op.MATCHES:
            if pos:
                self.nonempty = True
            else:
                self.not_matching.append((str(value), cs))

    def possible(self) -> bool:
        if self.empty and (self.nonempty or self.present or self.any_of):
            return False
        for have in self.present:
            if any(_covers(no, have) for no in self.absent):
                return False
        for group in self.any_of:
            if all(any(_covers(no, g) for no in self.absent) for g in group):
                return False
        for group in self.not_all:
            if all(any(_covers(g, have) for have in self.present) for g in group):
                return False
        for pattern, cs in self.not_matching:
            if any(_search(pattern, cs, have) for have in self.present):
                return False
        return True


# --- one field -----------------------------------------------------------------------------------


def field_possible(kind: FieldKind, domain: tuple[str, ...], lits: Sequence[Literal]) -> bool:
    """Whether the literals about one field (of ``kind``; ``domain``: an enum's values) can all
    hold at once. ``False`` is a proof; ``True`` may just mean "cannot tell"."""
    if any(lit.gates_on_change for lit in lits) and any(
            lit.op is Op.CHANGED and not lit.positive for lit in lits):
        return False  # changed (to / from) and "not changed"
    now: _List | _Scalar
    before: _List | _Scalar
    now, before = (_List(), _List()) if kind in _LISTS else (_Scalar(domain), _Scalar(domain))
    for lit in lits:
        if lit.slot == BEFORE:
            before.add(lit)
        elif lit.op in (Op.CHANGED_TO, Op.CHANGED_FROM):
            if not lit.positive:
                continue  # "not changed_to x" is a disjunction: binds nothing
            here = Literal(lit.field, Op.CONTAINS if kind in _LISTS else Op.EQUALS,
                           lit.value, lit.case_sensitive)
            new, old = (now, before) if lit.op is Op.CHANGED_TO else (before, now)
            new.add(here)
            old.add(here.negated())
        elif lit.op is not Op.CHANGED:
            now.add(lit)
    return now.possible() and before.possible()
