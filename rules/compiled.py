"""The fast path: rules compiled once into closures that answer only "does it match?".

:func:`matches` gives exactly ``evaluate(rule, ctx).matched`` (:mod:`rules.evaluator`) without
building a trace, and :class:`RuleIndex` (behind :meth:`rules.RuleSet.matching`) does so for all
the rules of an event type at once. They are for the many rules that do not match an event;
:func:`~rules.evaluate` stays the explanation (``switchboard test``, the decision log, explain).

Why a rule can stop early and still agree with :func:`~rules.evaluate`: a rule matches only when
no leaf raises *and* its condition is true. So the condition is flattened into the checks that
must *all* hold for a match — under ``all`` every child must be true, under ``not any`` every
child false, ``not`` flips what is required — and the first check that fails (or raises) decides
"no match", whatever the other leaves would have done. Such checks are independent, so they run
cheapest first (change-set lookups, then scalar and tag tests, ..., regexes last). What cannot be
flattened — an ``any`` that must be true, a ``not all`` — is evaluated whole, every leaf, since
any leaf in it that raises makes the rule an error.

Leaves are specialised for the common value types (text, whole numbers, lists of text) and hand
every other value to the operator function itself, so null, list and mapping values, case
sensitivity, number/text comparison and operator errors behave as in :mod:`rules.operators`. Field
lookups mirror :func:`rules.fields.resolve` and :func:`rules.fields.change_of`.

:class:`RuleIndex` adds two things. **Gates**: necessary conditions read off a rule (a
``changed_to`` that must hold needs its field in the change set, with that value on the ``to``
side; a ``contains`` that must hold on tags needs that tag; an ``in`` on a text field needs one of
those values), indexed, so that an event only reaches the rules whose gates it opens; anything a
gate cannot judge opens it. **Shared leaves**: within one call, a costly leaf (regex, text search,
times) that several rules spell the same way is computed once. Its :meth:`~RuleIndex.matching`
runs the rules' checks as generated code (:mod:`rules.codegen`), built from these closures.
"""

from __future__ import annotations

__all__ = ["CompiledRule", "Gate", "RuleIndex", "compile_rule", "matches"]

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import operators as ops
from .context import EvalContext
from .fields import change_key, resolve
from .model import All, Any_, Condition, FieldCondition, Not, Rule
from .operators import OPERATORS, Op, Reads, Timed

#: Results of costly leaves within one call, by leaf slot (see :func:`_slot`).
Memo = dict[int, Any]
#: A compiled condition: ``True`` when the condition has the value the rule needs. Raises what the
#: operator raises (the rule is then an error, hence not matched).
Check = Callable[[EvalContext, Memo], bool]
Getter = Callable[[EvalContext], Any]

# Rough relative cost of a leaf, used only to order independent checks (cheap first).
_COST: dict[Op, int] = {
    Op.CHANGED: 0, Op.CHANGED_TO: 0, Op.CHANGED_FROM: 0,
    Op.EQUALS: 1, Op.NOT_EQUALS: 1, Op.IN: 1, Op.NOT_IN: 1, Op.EXISTS: 1,
    Op.CONTAINS: 2, Op.CONTAINS_ANY: 2, Op.CONTAINS_ALL: 2, Op.CONTAINS_NONE: 2,
    Op.GT: 4, Op.GTE: 4, Op.LT: 4, Op.LTE: 4,
    Op.OLDER_THAN: 5, Op.WITHIN: 5,
    Op.MATCHES: 6,
}
_GROUP_COST = 8
#: Operators that are exactly another operator, negated (``not_equals`` is ``not equals``).
_NEGATED: dict[Op, Op] = {Op.NOT_EQUALS: Op.EQUALS, Op.NOT_IN: Op.IN,
                          Op.CONTAINS_NONE: Op.CONTAINS_ANY}
#: Leaves worth sharing between rules within one call (costlier than a memo lookup).
_SHARED = frozenset({Op.CONTAINS, Op.CONTAINS_ANY, Op.CONTAINS_ALL, Op.MATCHES, Op.GT, Op.GTE,
                     Op.LT, Op.LTE, Op.OLDER_THAN, Op.WITHIN})
_CHANGE_OPS = (Op.CHANGED, Op.CHANGED_TO, Op.CHANGED_FROM)

#: The operator functions the specialised leaves were written against; if the table ever holds
#: another function, that operator is left to the function itself.
_KNOWN: dict[Op, Any] = {
    Op.EQUALS: ops.equals, Op.NOT_EQUALS: ops.not_equals, Op.IN: ops.in_,
    Op.NOT_IN: ops.not_in, Op.CONTAINS: ops.contains, Op.CONTAINS_ANY: ops.contains_any,
    Op.CONTAINS_ALL: ops.contains_all, Op.CONTAINS_NONE: ops.contains_none,
    Op.EXISTS: ops.exists, Op.CHANGED: ops.changed, Op.CHANGED_TO: ops.changed_to,
    Op.CHANGED_FROM: ops.changed_from, Op.MATCHES: ops.matches, Op.GT: ops.gt, Op.GTE: ops.gte,
    Op.LT: ops.lt, Op.LTE: ops.lte, Op.OLDER_THAN: ops.older_than, Op.WITHIN: ops.within,
}


@dataclass(frozen=True, slots=True)
class Gate:
    """A test an event must pass for a rule to possibly match (never a reason to match).

    ``change``: ``field`` (a change-set key) is in ``ctx.changes``. ``to`` / ``from``: it is, and
    that side of the change is a text, or a list of texts, whose case-folded value is one of
    ``keys``. ``equal``: the field (a path) holds a text whose case-folded value is one of
    ``keys``. ``member``: the field holds a list of texts one of which is in ``keys``. A missing
    value (``None``) closes a gate; a value of another shape opens it.
    """

    kind: str
    field: str
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule's decision as one call: ``check(ctx, {}) == evaluate(rule, ctx).matched``.

    ``gates``: the rule can match only an event that opens at least one of them; ``None`` when
    no such test was found (the rule must always be checked).
    """

    rule: Rule
    check: Check
    gates: tuple[Gate, ...] | None
    #: The checks that must all hold, cheapest first (``check`` = the event type, then these,
    #: any exception meaning "no match").
    steps: tuple[Check, ...] = ()
    #: The same checks with what they test (:mod:`rules.codegen` writes them as code).
    plan: tuple[Step, ...] = ()


class _SharedLeafError(Exception):
    """A shared leaf raised earlier in this call (the rule is an error)."""


_ERROR = object()
_SLOTS: dict[tuple[Any, ...], int] = {}
_NEXT_SLOT = itertools.count()


def _slot(signature: tuple[Any, ...]) -> int:
    """A number per distinct leaf spelling, the key of its result in a call's memo.

    Never forgotten (one entry per distinct leaf ever compiled), so numbers are never reused.
    """
    slot = _SLOTS.get(signature)
    if slot is None:
        slot = _SLOTS.setdefault(signature, next(_NEXT_SLOT))
    return slot


# -- field lookups ----------------------------------------------------------------------------


def _getter(path: str) -> Getter:
    """A function reading ``path`` from a context, as :func:`rules.fields.resolve` does."""
    root, *rest = path.split(".")
    if root == "ticket" and len(rest) == 1:
        key = rest[0]
        return lambda ctx: ctx.ticket.get(key)
    if root == "ticket" and len(rest) == 2:
        outer, inner = rest

        def nested(ctx: EvalContext) -> Any:
            value = ctx.ticket.get(outer)
            if type(value) is dict or isinstance(value, Mapping):
                return value.get(inner)
            return None

        return nested
    if root == "links" and len(rest) == 1:
        kind = rest[0]
        return lambda ctx: ctx.links.get(kind)
    if path == "event.type":
        return lambda ctx: ctx.event_type
    if path == "event.source":
        return lambda ctx: ctx.event_source
    return lambda ctx: resolve(path, ctx)


# -- leaves -----------------------------------------------------------------------------------
# Each factory returns a check computing ``value != flip``, where ``value`` is the positive
# operator's result; ``flip`` folds in negative operators, ``not`` and "must be false".


def _all_type(values: Any, kind: type) -> bool:
    return (isinstance(values, tuple) and bool(values)
            and all(type(v) is kind for v in values))


def _generic(cond: FieldCondition, flip: bool) -> Check:
    """The operator function itself, on the value :mod:`rules.evaluator` would hand it."""
    spec = OPERATORS[cond.op]
    fn, expected, cs = spec.fn, cond.value, cond.case_sensitive
    if spec.reads is Reads.CHANGE:
        key = change_key(cond.field)

        def change(ctx: EvalContext, memo: Memo) -> bool:
            return bool(fn(None if key is None else ctx.changes.get(key), expected, cs)) != flip

        return change
    get = _getter(cond.field)
    if spec.reads is Reads.TIMED:

        def timed(ctx: EvalContext, memo: Memo) -> bool:
            return bool(fn(Timed(get(ctx), ctx.event_time), expected, cs)) != flip

        return timed

    def plain(ctx: EvalContext, memo: Memo) -> bool:
        return bool(fn(get(ctx), expected, cs)) != flip

    return plain


def _changed(cond: FieldCondition, flip: bool) -> Check:
    """changed / changed_to / changed_from are false when the field is not in the change set."""
    key = change_key(cond.field)
    if key is None:
        return _generic(cond, flip)
    fn, expected, cs = OPERATORS[cond.op].fn, cond.value, cond.case_sensitive

    def check(ctx: EvalContext, memo: Memo) -> bool:
        change = ctx.changes.get(key)
        if change is None:
            return flip
        return bool(fn(change, expected, cs)) != flip

    return check


def _changed_text(cond: FieldCondition, flip: bool) -> Check:
    """changed / changed_to / changed_from (a text value), case-insensitive, for changes between
    texts (or ``None``) and between lists of texts (tags); any other change goes to the
    operator."""
    key, expected = change_key(cond.field), cond.value
    if key is None or cond.case_sensitive or not (cond.op is Op.CHANGED or type(expected) is str):
        return _changed(cond, flip)
    fn = OPERATORS[cond.op].fn
    if cond.op is Op.CHANGED:

        def changed(ctx: EvalContext, memo: Memo) -> bool:
            change = ctx.changes.get(key)
            if change is None:
                return flip
            before, after = change.from_, change.to
            if type(before) is str and type(after) is str:
                return (before.casefold() != after.casefold()) != flip
            if before is None and (after is None or type(after) is str):
                return (after is not None) != flip
            if after is None and type(before) is str:
                return not flip
            return bool(fn(change, expected, False)) != flip

        return changed
    folded = expected.casefold()
    to_side = cond.op is Op.CHANGED_TO

    def check(ctx: EvalContext, memo: Memo) -> bool:
        change = ctx.changes.get(key)
        if change is None:
            return flip
        # changed_to: `value` is on the new side and not on the old; changed_from: the reverse.
        new, old = (change.to, change.from_) if to_side else (change.from_, change.to)
        kind_new, kind_old = type(new), type(old)
        if (kind_new is str or new is None) and (kind_old is str or old is None):
            return ((new is not None and new.casefold() == folded)
                    and not (old is not None and old.casefold() == folded)) != flip
        if kind_new is list or kind_new is tuple:
            added = _member_keys(new)
            if added is not None:
                if folded not in added:
                    return flip
                if old is None:
                    return not flip
                if kind_old is list or kind_old is tuple:
                    removed = _member_keys(old)
                    if removed is not None:
                        return (folded not in removed) != flip
        return bool(fn(change, expected, False)) != flip

    return check


def _equals(cond: FieldCondition, flip: bool) -> Check:
    """equals (a text or whole-number value); other field values go to the operator."""
    get, expected, cs = _getter(cond.field), cond.value, cond.case_sensitive
    equals = ops.equals
    if type(expected) is str and not cs:
        folded = expected.casefold()

        def text(ctx: EvalContext, memo: Memo) -> bool:
            value = get(ctx)
            if type(value) is str:
                return (value.casefold() == folded) != flip
            if value is None:
                return flip
            return equals(value, expected, cs) != flip

        return text
    if type(expected) is int:

        def number(ctx: EvalContext, memo: Memo) -> bool:
            value = get(ctx)
            if type(value) is int:
                return (value == expected) != flip
            if value is None:
                return flip
            return equals(value, expected, cs) != flip

        return number
    return _generic(cond, flip)


def _in(cond: FieldCondition, flip: bool) -> Check:
    """in (a list of texts or of whole numbers); other field values go to the operator."""
    get, expected, cs = _getter(cond.field), cond.value, cond.case_sensitive
    in_ = ops.in_
    if _all_type(expected, str) and not cs:
        texts = frozenset(v.casefold() for v in expected)

        def text(ctx: EvalContext, memo: Memo) -> bool:
            value = get(ctx)
            if type(value) is str:
                return (value.casefold() in texts) != flip
            if value is None:
                return flip
            return in_(value, expected, cs) != flip

        return text
    if _all_type(expected, int):
        numbers = frozenset(expected)

        def number(ctx: EvalContext, memo: Memo) -> bool:
            value = get(ctx)
            if type(value) is int:
                return (value in numbers) != flip
            if value is None:
                return flip
            return in_(value, expected, cs) != flip

        return number
    return _generic(cond, flip)


def _contains(cond: FieldCondition, flip: bool) -> Check:
    """contains (a text value) on a list of texts (tags) or a text; else the operator."""
    get, expected, cs = _getter(cond.field), cond.value, cond.case_sensitive
    if type(expected) is not str or cs:
        return _generic(cond, flip)
    folded = expected.casefold()
    contains = ops.contains

    def check(ctx: EvalContext, memo: Memo) -> bool:
        value = get(ctx)
        kind = type(value)
        if kind is list or kind is tuple:
            for element in value:
                if type(element) is str:
                    if element.casefold() == folded:
                        return not flip
                elif element is not None:  # the operator decides (and may raise)
                    return contains(value, expected, cs) != flip
            return flip
        if kind is str:
            return (folded in value.casefold()) != flip
        if value is None:
            return flip
        return contains(value, expected, cs) != flip

    return check


def _contains_many(cond: FieldCondition, flip: bool, *, every: bool) -> Check:
    """contains_any / contains_all (a list of texts) on a list of texts or a text."""
    get, expected, cs = _getter(cond.field), cond.value, cond.case_sensitive
    if not _all_type(expected, str) or cs:
        return _generic(cond, flip)
    fn = ops.contains_all if every else ops.contains_any
    wanted = frozenset(v.casefold() for v in expected)
    needles = tuple(v.casefold() for v in expected)

    def check(ctx: EvalContext, memo: Memo) -> bool:
        value = get(ctx)
        kind = type(value)
        if kind is list or kind is tuple:
            seen = set()
            for element in value:
                if type(element) is str:
                    seen.add(element.casefold())
                elif element is not None:  # the operator decides (and may raise)
                    return fn(value, expected, cs) != flip
            return (wanted <= seen if every else not wanted.isdisjoint(seen)) != flip
        if kind is str:
            text = value.casefold()
            if every:
                return all(needle in text for needle in needles) != flip
            return any(needle in text for needle in needles) != flip
        if value is None:
            return flip
        return fn(value, expected, cs) != flip

    return check


def _exists(cond: FieldCondition, flip: bool) -> Check:
    get, exists = _getter(cond.field), ops.exists

    def check(ctx: EvalContext, memo: Memo) -> bool:
        value = get(ctx)
        if value is None:
            return flip
        kind = type(value)
        if kind is str or kind is list or kind is tuple:
            return bool(value) != flip  # not empty
        return exists(value, None, False) != flip

    return check


def _none_is_false(cond: FieldCondition, flip: bool) -> Check:
    """matches, gt, gte, lt, lte: false for a missing (``None``) field without calling them."""
    get, fn = _getter(cond.field), OPERATORS[cond.op].fn
    expected, cs = cond.value, cond.case_sensitive

    def check(ctx: EvalContext, memo: Memo) -> bool:
        value = get(ctx)
        if value is None:
            return flip
        return bool(fn(value, expected, cs)) != flip

    return check


def _specialised(cond: FieldCondition, flip: bool) -> Check:
    op = cond.op
    if op in _CHANGE_OPS:
        return _changed_text(cond, flip)
    if op is Op.EQUALS:
        return _equals(cond, flip)
    if op is Op.IN:
        return _in(cond, flip)
    if op is Op.CONTAINS:
        return _contains(cond, flip)
    if op in (Op.CONTAINS_ANY, Op.CONTAINS_ALL):
        return _contains_many(cond, flip, every=op is Op.CONTAINS_ALL)
    if op is Op.EXISTS:
        return _exists(cond, flip)
    if op in (Op.MATCHES, Op.GT, Op.GTE, Op.LT, Op.LTE):
        return _none_is_false(cond, flip)
    return _generic(cond, flip)


def _shared(cond: FieldCondition, flip: bool) -> Check:
    """The leaf's positive value computed once per call (memo) and shared by every rule."""
    # The value's type and repr, not the value: 1, 1.0 and true are equal keys but different tests.
    slot = _slot((cond.field, cond.op, cond.case_sensitive, type(cond.value), repr(cond.value)))
    compute = _specialised(cond, False)

    def check(ctx: EvalContext, memo: Memo) -> bool:
        value = memo.get(slot)
        if value is None:
            try:
                value = compute(ctx, memo)
            except Exception:
                memo[slot] = _ERROR
                raise
            memo[slot] = value
        elif value is _ERROR:
            raise _SharedLeafError
        return bool(value != flip)

    return check


def _leaf(cond: FieldCondition, flip: bool) -> Check:
    op = cond.op
    if OPERATORS[op].fn is not _KNOWN.get(op):
        return _generic(cond, flip)
    if op in _NEGATED:
        cond = FieldCondition(cond.field, _NEGATED[op], cond.value, cond.case_sensitive,
                              cond.path, cond.line)
        flip = not flip
    if cond.op in _SHARED:
        return _shared(cond, flip)
    return _specialised(cond, flip)


# -- conditions -------------------------------------------------------------------------------


def _whole(cond: Condition, flip: bool) -> Check:
    """The exact value of ``cond`` (!= ``flip``), every leaf evaluated: nothing that could raise
    is skipped."""
    if isinstance(cond, Not):
        return _whole(cond.condition, not flip)
    if isinstance(cond, FieldCondition):
        return _leaf(cond, flip)
    children = tuple(_whole(child, False) for child in cond.conditions)
    if len(children) == 2:
        first, second = children
        if isinstance(cond, All):

            def all2(ctx: EvalContext, memo: Memo) -> bool:
                left, right = first(ctx, memo), second(ctx, memo)  # both: either may raise
                return (left and right) != flip

            return all2

        def any2(ctx: EvalContext, memo: Memo) -> bool:
            left, right = first(ctx, memo), second(ctx, memo)  # both: either may raise
            return (left or right) != flip

        return any2
    combine = all if isinstance(cond, All) else any

    def group(ctx: EvalContext, memo: Memo) -> bool:
        return combine([child(ctx, memo) for child in children]) != flip

    return group


def _cost(cond: Condition) -> int:
    if isinstance(cond, Not):
        return _cost(cond.condition)
    if isinstance(cond, FieldCondition):
        return _COST.get(cond.op, _GROUP_COST)
    return _GROUP_COST + sum(_cost(child) for child in cond.conditions)


@dataclass(frozen=True, slots=True)
class Step:
    """One check a rule needs: ``check(ctx, memo) == (value of condition != flip)``."""

    condition: Condition
    flip: bool
    check: Check


def _required(cond: Condition, want: bool, out: list[tuple[int, int, Step]]) -> None:
    """Append the checks that must all hold for ``cond`` to be ``want`` (with no error)."""
    if isinstance(cond, Not):
        _required(cond.condition, not want, out)
        return
    if isinstance(cond, All) and want or isinstance(cond, Any_) and not want:
        for child in cond.conditions:
            _required(child, want, out)
        return
    if isinstance(cond, FieldCondition):
        check = _leaf(cond, not want)
        # Likely-true tests (negative operators, "must be false") go after equally cheap ones.
        loose = (cond.op in _NEGATED) == want
    else:
        check = _whole(cond, not want)
        loose = False
    out.append((_cost(cond) * 2 + loose, len(out), Step(cond, not want, check)))


def _rule_check(on: tuple[str, ...], checks: tuple[Check, ...]) -> Check:
    if not checks:
        return lambda ctx, memo: ctx.event_type in on
    if len(checks) == 1:
        (only,) = checks

        def single(ctx: EvalContext, memo: Memo) -> bool:
            if ctx.event_type not in on:
                return False
            try:
                return only(ctx, memo)
            except Exception:  # an operator error makes the rule an error: not matched
                return False

        return single

    def every(ctx: EvalContext, memo: Memo) -> bool:
        if ctx.event_type not in on:
            return False
        try:
            for check in checks:
                if not check(ctx, memo):
                    return False
        except Exception:  # an operator error makes the rule an error: not matched
            return False
        return True

    return every


# -- gates ------------------------------------------------------------------------------------


def _leaf_gate(cond: FieldCondition, want: bool) -> Gate | None:
    """A gate that ``cond`` being ``want`` implies, if there is a simple one."""
    op, value = cond.op, cond.value
    if OPERATORS[op].fn is not _KNOWN.get(op):
        return None
    if op in _NEGATED:
        op, want = _NEGATED[op], not want
    if not want:
        return None
    if op in _CHANGE_OPS:
        key = change_key(cond.field)
        if key is None:
            return None
        if op is Op.CHANGED or cond.case_sensitive or type(value) is not str:
            return Gate("change", key)
        return Gate("to" if op is Op.CHANGED_TO else "from", key, (value.casefold(),))
    if cond.case_sensitive:
        return None
    if op is Op.EQUALS and type(value) is str:
        return Gate("equal", cond.field, (value.casefold(),))
    if op is Op.IN and _all_type(value, str):
        return Gate("equal", cond.field, tuple(v.casefold() for v in value))
    if op is Op.CONTAINS and type(value) is str:
        return Gate("member", cond.field, (value.casefold(),))
    if op is Op.CONTAINS_ANY and _all_type(value, str):
        return Gate("member", cond.field, tuple(v.casefold() for v in value))
    if op is Op.CONTAINS_ALL and _all_type(value, str):
        return Gate("member", cond.field, (value[0].casefold(),))
    return None


_KIND_RANK = {"to": 0, "from": 0, "change": 1, "member": 2, "equal": 3}


def _selectivity(gates: tuple[Gate, ...]) -> tuple[int, int]:
    """Smaller is (probably) more selective: change sets are small, then tags, then values."""
    return (max(_KIND_RANK[g.kind] for g in gates), sum(max(1, len(g.keys)) for g in gates))


def _gates(cond: Condition, want: bool) -> tuple[Gate, ...] | None:
    """Gates of which one at least is open whenever ``cond`` is ``want``; ``None`` if unknown."""
    if isinstance(cond, Not):
        return _gates(cond.condition, not want)
    if isinstance(cond, FieldCondition):
        gate = _leaf_gate(cond, want)
        return None if gate is None else (gate,)
    options = [_gates(child, want) for child in cond.conditions]
    if isinstance(cond, All) == want:  # every child must be `want`: any one child's gates do
        known = [o for o in options if o is not None]
        return min(known, key=_selectivity) if known else None
    if any(o is None for o in options):  # one child being `want` is enough: need them all
        return None
    return tuple(gate for o in options if o is not None for gate in o)


# -- rules ------------------------------------------------------------------------------------


def compile_rule(rule: Rule) -> CompiledRule:
    """Compile ``rule`` (no caching here; :func:`matches` caches)."""
    ordered: list[tuple[int, int, Step]] = []
    gates: tuple[Gate, ...] | None = None
    if rule.condition is not None:
        _required(rule.condition, True, ordered)
        gates = _gates(rule.condition, True)
    ordered.sort(key=lambda item: item[:2])
    plan = tuple(step for _, _, step in ordered)
    checks = tuple(step.check for step in plan)
    return CompiledRule(rule, _rule_check(rule.on, checks), gates, checks, plan)


_CACHE: dict[int, CompiledRule] = {}
#: The cache is dropped when it grows past this (rules reloaded many times); it refills lazily.
_CACHE_LIMIT = 8192


def compiled(rule: Rule) -> CompiledRule:
    """The compiled form of ``rule``, compiled on first use and cached (by identity)."""
    entry = _CACHE.get(id(rule))
    if entry is not None and entry.rule is rule:
        return entry
    entry = compile_rule(rule)
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[id(rule)] = entry  # the entry holds the rule, so its id is not reused meanwhile
    return entry


def matches(rule: Rule, ctx: EvalContext) -> bool:
    """``evaluate(rule, ctx).matched``, without the trace; never raises for operator failures."""
    entry = _CACHE.get(id(rule))
    if entry is None or entry.rule is not rule:
        entry = compiled(rule)
    return entry.check(ctx, {})


# -- many rules at once -------------------------------------------------------------------------


def _side_keys(value: Any, other: Any) -> list[str] | None:
    """What a ``to`` / ``from`` gate looks up for one side of a change (``other``: the other
    side); ``None``: the gate cannot judge it (open)."""
    kind = type(value)
    if kind is str:
        # With a list on the other side, changed_to searches the text (substring): cannot judge.
        return None if isinstance(other, list | tuple) else [value.casefold()]
    if kind is list or kind is tuple:
        return _member_keys(value)
    return [] if value is None else None


def _member_keys(value: Any) -> list[str] | None:
    """Case-folded texts of a list of texts (``None`` elements skipped); ``None`` otherwise."""
    keys = []
    for element in value:
        if type(element) is str:
            keys.append(element.casefold())
        elif element is not None:
            return None
    return keys


class RuleIndex:
    """The rules of one event type, compiled and indexed by their gates.

    :meth:`matching` decides them all for one context: it checks only the rules whose gates the
    event opens (and those without gates), with the rules' checks written out as generated
    functions (:mod:`rules.codegen`) that read each field once and share costly leaves.
    """

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        from .codegen import decider  # codegen builds on this module

        self.rules = rules
        compiled_rules = [compiled(rule) for rule in rules]
        self._decide = decider(compiled_rules)
        always: list[int] = []
        by_change: dict[str, set[int]] = {}
        tables: dict[tuple[str, str], dict[str, set[int]]] = {}
        for position, entry in enumerate(compiled_rules):
            if entry.gates is None:
                always.append(position)
                continue
            for gate in entry.gates:
                if gate.kind == "change":
                    by_change.setdefault(gate.field, set()).add(position)
                    continue
                table = tables.setdefault((gate.kind, gate.field), {})
                for key in gate.keys:
                    table.setdefault(key, set()).add(position)
        self._always = frozenset(always)
        self._by_change = {key: frozenset(p) for key, p in by_change.items()}
        frozen = {where: {key: frozenset(p) for key, p in table.items()}
                  for where, table in tables.items()}
        #: (is it the ``to`` side, change key, key -> positions, every position in the table)
        self._sides = tuple((kind == "to", field, table, frozenset().union(*table.values()))
                            for (kind, field), table in frozen.items()
                            if kind in ("to", "from"))
        #: (is it ``member``, field reader, key -> positions, every position in the table)
        self._values = tuple((kind == "member", _getter(field), table,
                              frozenset().union(*table.values()))
                             for (kind, field), table in frozen.items()
                             if kind in ("equal", "member"))

    def candidates(self, ctx: EvalContext) -> set[int]:
        """Positions (in :attr:`rules`) of the rules that ``ctx`` opens a gate of, and of those
        without gates."""
        found = set(self._always)
        changes = ctx.changes
        for key, bucket in self._by_change.items():
            if key in changes:
                found |= bucket
        keys: list[str] | None
        for to_side, change_at, table, everyone in self._sides:
            change = changes.get(change_at)
            if change is None:
                continue
            if to_side:
                keys = _side_keys(change.to, change.from_)
            else:
                keys = _side_keys(change.from_, change.to)
            if keys is None:
                found |= everyone
                continue
            for key in keys:
                hit = table.get(key)
                if hit is not None:
                    found |= hit
        for member, read, table, everyone in self._values:
            value = read(ctx)
            if value is None:
                continue
            kind = type(value)
            if not member:
                keys = [value.casefold()] if kind is str else None
            elif kind is list or kind is tuple:
                keys = _member_keys(value)
            else:
                keys = None
            if keys is None:
                found |= everyone
                continue
            for key in keys:
                hit = table.get(key)
                if hit is not None:
                    found |= hit
        return found

    def matching(self, ctx: EvalContext) -> tuple[Rule, ...]:
        """The rules that match ``ctx``, in file order (each as :func:`matches` decides)."""
        return tuple(self._decide(ctx, self.candidates(ctx)))
