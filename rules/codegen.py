"""The rules of one event type written out as one Python function, for :class:`RuleIndex`.

:mod:`rules.compiled` decides a rule by calling its checks one by one, each a closure that reads
its field again. Here the checks of every rule of an event type are written, cheapest first as
there, into the body of a single generated function, compiled once per rule set:

- each field, change, folded text and tag set an event needs is read once, into a local, the
  first time a check needs it, and shared by every later check of every rule;
- the common cases — a text or whole number compared with ``equals`` / ``in``, tags or text
  tested with ``contains`` / ``contains_any`` / ``contains_all``, ``exists``, a change to or from
  a text, a missing field — are written as plain expressions;
- everything else (other value types, other operators, groups that must be evaluated whole,
  regexes, times, operators replaced in the table) calls the step's own closure from
  :mod:`rules.compiled`, with the call's memo: the exact same decision, only not inlined.

A fast path is written only for the value types whose result it computes exactly as the closure
would (the closure's own type tests), and falls back to the closure for any other value, so the
generated function decides as :func:`rules.compiled.matches` does; ``tests/rules/test_compiled.py``
holds both to :func:`rules.evaluate` on odd values in every position.

Nothing from a rule is written into the code as text: values, sets, closures and rules are bound
as constants (``k0``, ``k1``...) of the function's namespace, and field names are ``repr``'d
literals, so a rule file cannot inject code.
"""

from __future__ import annotations

__all__ = ["CHUNK", "decider", "exhaustive"]

from collections.abc import Callable, Mapping
from datetime import timedelta
from operator import itemgetter
from typing import Any

from .compiled import (
    _CHANGE_OPS,
    _ERROR,
    _KNOWN,
    _NEGATED,
    CompiledRule,
    Gate,
    _all_type,
    _generic,
    _getter,
    _SharedLeafError,
    _specialised,
)
from .context import EvalContext, parse_instant
from .fields import change_key
from .model import All, Condition, FieldCondition, Not, Rule
from .operators import OPERATORS, Op, ValueProblem, parse_duration
from .prefilter import required_strings

Decide = Callable[[EvalContext, set[int]], list[Rule]]
Survey = Callable[[EvalContext], list[int]]

_UNSET = object()
_first = itemgetter(0)


def _members(value: Any) -> frozenset[str] | None:
    """Case-folded texts of a list of texts (``None`` elements skipped); ``None`` for any other
    value, or a list holding anything else (then the step's closure decides)."""
    if type(value) is not list and type(value) is not tuple:
        return None
    keys = set()
    for element in value:
        if type(element) is str:
            keys.add(element.casefold())
        elif element is not None:
            return None
    return frozenset(keys)


def _nested(ticket: Mapping[str, Any], outer: str, inner: str) -> Any:
    """``ticket.<outer>.<inner>``, as :func:`rules.compiled._getter` reads it."""
    value = ticket.get(outer)
    if type(value) is dict or isinstance(value, Mapping):
        return value.get(inner)
    return None


_BAD = object()


def _age(value: Any, ctx: EvalContext) -> timedelta | None | object:
    """How long before the event ``value`` (a time) is, as ``older_than`` measures it; ``None``
    for a missing field; ``_BAD`` where the operator raises (the leaf then says why)."""
    if value is None:
        return None
    if isinstance(value, list | tuple | Mapping):
        return _BAD
    seen = parse_instant(value)
    now = ctx.event_time
    if seen is None or now is None:
        return _BAD
    return now - seen


def _duration(value: Any) -> timedelta | None:
    try:
        return parse_duration(value)
    except ValueProblem:
        return None


class _Writer:
    """Writes one function's body; ``bound`` is its namespace."""

    def __init__(self) -> None:
        self.bound: dict[str, Any] = {"_U": _UNSET, "_ERR": _ERROR, "_Failed": _SharedLeafError,
                                      "_members": _members, "_nested": _nested, "_age": _age,
                                      "_timedelta": timedelta}
        self.names: dict[int, str] = {}
        self.locals: dict[tuple[str, str], str] = {}
        self.temps = 0

    def temp(self) -> str:
        """A fresh local for a group's part (always set before it is read)."""
        self.temps += 1
        return f"t{self.temps}"

    def const(self, value: Any) -> str:
        """A name for ``value`` in the namespace (one per object)."""
        name = self.names.get(id(value))
        if name is None or self.bound[name] is not value:
            name = self.names[id(value)] = f"k{len(self.bound)}"
            self.bound[name] = value
        return name

    def fallback(self, cond: FieldCondition) -> str:
        """A call of compiled's leaf for the positive value of ``cond`` (one per leaf)."""
        name = self.locals.get(("closure", repr(cond)))
        if name is None:
            name = self.locals[("closure", repr(cond))] = self.const(_specialised(cond, False))
        return f"{name}(ctx, memo)"

    def local(self, kind: str, key: str) -> str:
        name = self.locals.get((kind, key))
        if name is None:
            name = self.locals[(kind, key)] = f"{kind}{len(self.locals)}"
        return name

    def lazies(self) -> list[str]:
        return [name for (kind, _), name in self.locals.items() if kind != "closure"]

    # -- values read once per event, when first needed ----------------------------------------

    def field(self, path: str, out: list[str], ind: str) -> str:
        name = self.local("f", path)
        root, *rest = path.split(".")
        if root == "ticket" and len(rest) == 1:
            read = f"tk.get({rest[0]!r})"
        elif root == "ticket" and len(rest) == 2:
            read = f"_nested(tk, {rest[0]!r}, {rest[1]!r})"
        elif root == "links" and len(rest) == 1:
            read = f"lk.get({rest[0]!r})"
        elif path == "event.type":
            read = "ctx.event_type"
        elif path == "event.source":
            read = "ctx.event_source"
        else:
            read = f"{self.const(_getter(path))}(ctx)"
        out.append(f"{ind}if {name} is _U: {name} = {read}")
        return name

    def folded(self, path: str, out: list[str], ind: str) -> tuple[str, str]:
        """The field and its case-folded text (``None`` when it is not a text)."""
        value = self.field(path, out, ind)
        name = self.local("g", path)
        out.append(f"{ind}if {name} is _U: {name} = {value}.casefold() "
                   f"if type({value}) is str else None")
        return value, name

    def members(self, path: str, out: list[str], ind: str) -> str:
        """The field's case-folded tag set (``None`` when it is not a list of texts)."""
        value = self.field(path, out, ind)
        name = self.local("m", path)
        out.append(f"{ind}if {name} is _U: {name} = _members({value})")
        return name

    def side(self, key: str, side: str, out: list[str], ind: str, change: str) -> str:
        """One side of a change as a case-folded tag set (``None`` if not a list of texts)."""
        name = self.local("s", f"{key}.{side}")
        out.append(f"{ind}if {name} is _U: {name} = _members({change}.{side})")
        return name

    def change(self, key: str, out: list[str], ind: str) -> str:
        name = self.local("c", key)
        out.append(f"{ind}if {name} is _U: {name} = ch.get({key!r})")
        return name


def _need(value: str, flip: bool, ind: str) -> str:
    """Fail (``break``) unless the step holds: its ``value`` (a bool local) differs from flip."""
    return f"{ind}if {value}: break" if flip else f"{ind}if not {value}: break"


def _value(w: _Writer, cond: FieldCondition, target: str, out: list[str], ind: str) -> None:
    """Code setting ``target`` to the value (a bool) of ``cond``; raises as the operator does."""
    op = cond.op
    if OPERATORS[op].fn is not _KNOWN.get(op):
        out.append(f"{ind}{target} = {w.const(_generic(cond, False))}(ctx, memo)")
        return
    negated = op in _NEGATED
    if negated:
        cond = FieldCondition(cond.field, _NEGATED[op], cond.value, cond.case_sensitive,
                              cond.path, cond.line)
    if cond.op in _MEMO:
        # Computed once per event and shared by every rule that spells it the same way (a
        # regex that timed out once stays an error for the later rules too).
        signature = (cond.field, cond.op, cond.case_sensitive, type(cond.value), repr(cond.value))
        shared = w.local("x", repr(signature))
        out.append(f"{ind}if {shared} is _U:")
        out.append(f"{ind}    {shared} = _ERR")
        _positive(w, cond, shared, out, ind + "    ")
        out.append(f"{ind}elif {shared} is _ERR:")
        out.append(f"{ind}    raise _Failed")
        out.append(f"{ind}{target} = {'not ' if negated else ''}{shared}")
        return
    _positive(w, cond, target, out, ind)
    if negated:
        out.append(f"{ind}{target} = not {target}")


#: Leaves whose value is kept for the rest of the event (costly: a search, a time).
_MEMO = frozenset({Op.MATCHES, Op.GT, Op.GTE, Op.LT, Op.LTE, Op.OLDER_THAN, Op.WITHIN})


def _positive(w: _Writer, cond: FieldCondition, target: str, out: list[str], ind: str) -> None:
    """Code setting ``target`` to the value of ``cond``, a known, positive operator. Each fast
    path covers the value types compiled's leaf tests for; any other value goes to the leaf."""
    op, expected, cs, path = cond.op, cond.value, cond.case_sensitive, cond.field

    def rest(value: str) -> str:  # a missing field: false; any other value: the leaf
        return f"{value} is not None and {w.fallback(cond)}"

    if op in _CHANGE_OPS:
        key = change_key(path)
        if key is None:
            out.append(f"{ind}{target} = {w.fallback(cond)}")
        else:
            _change(w, cond, key, target, out, ind)
        return
    text_ci = not cs and type(expected) is str
    texts_ci = not cs and _all_type(expected, str)
    if op in (Op.EQUALS, Op.IN) and (text_ci if op is Op.EQUALS else texts_ci):
        value, folded = w.folded(path, out, ind)
        keys = (expected.casefold() if op is Op.EQUALS
                else frozenset(v.casefold() for v in expected))
        test = "==" if op is Op.EQUALS else "in"
        out.append(f"{ind}{target} = {folded} {test} {w.const(keys)} if {folded} is not None "
                   f"else {rest(value)}")
        return
    if op in (Op.EQUALS, Op.IN) and (type(expected) is int if op is Op.EQUALS
                                     else _all_type(expected, int)):
        value = w.field(path, out, ind)
        keys = expected if op is Op.EQUALS else frozenset(expected)
        test = "==" if op is Op.EQUALS else "in"
        out.append(f"{ind}{target} = {value} {test} {w.const(keys)} if type({value}) is int "
                   f"else {rest(value)}")
        return
    if (op is Op.CONTAINS and text_ci
            or op in (Op.CONTAINS_ANY, Op.CONTAINS_ALL) and texts_ci):
        needles = tuple(v.casefold() for v in ((expected,) if op is Op.CONTAINS else expected))
        wanted = w.const(frozenset(needles))
        members = w.members(path, out, ind)
        value, folded = w.folded(path, out, ind)
        in_list = (f"{wanted} <= {members}" if op is Op.CONTAINS_ALL
                   else f"not {wanted}.isdisjoint({members})")
        join = " and " if op is Op.CONTAINS_ALL else " or "
        in_text = join.join(f"{w.const(n)} in {folded}" for n in needles)
        out.append(f"{ind}{target} = {in_list} if {members} is not None else ({in_text}) "
                   f"if {folded} is not None else {rest(value)}")
        return
    if op is Op.EXISTS:
        value = w.field(path, out, ind)
        out.append(f"{ind}{target} = bool({value}) if type({value}) is str or type({value}) "
                   f"is list or type({value}) is tuple else {rest(value)}")
        return
    if op in (Op.OLDER_THAN, Op.WITHIN) and _duration(expected) is not None:
        # The field's age at the event's time, once per event; a value the operator refuses
        # (not a time, a list, no event time) goes to the leaf, which raises as it does.
        value = w.field(path, out, ind)
        age = w.local("a", path)
        out.append(f"{ind}if {age} is _U: {age} = _age({value}, ctx)")
        test = ">" if op is Op.OLDER_THAN else "<="
        out.append(f"{ind}{target} = {age} {test} {w.const(_duration(expected))} "
                   f"if type({age}) is _timedelta else {rest(age)}")
        return
    if op in (Op.MATCHES, Op.GT, Op.GTE, Op.LT, Op.LTE):
        # False for a missing field without calling the operator (as compiled's leaf does).
        call = f"bool({w.const(OPERATORS[op].fn)}({{value}}, {w.const(expected)}, {cs!r}))"
        required = required_strings(expected, cs) if op is Op.MATCHES else None
        if required is None:
            value = w.field(path, out, ind)
            out.append(f"{ind}{target} = {call.format(value=value)} if {value} is not None "
                       "else False")
            return
        # A text lacking every string a match contains is no match (rules.prefilter): the
        # operator would say so too, after a timed search. casefold() is lower() on ASCII.
        if required.fold:
            value, text = w.folded(path, out, ind)
            when = f"{text} is not None and {value}.isascii()"
        else:
            value = text = w.field(path, out, ind)
            when = f"type({value}) is str"
        tests = " or ".join(f"{w.const(n)} in {text}" for n in required.strings)
        call = call.format(value=value)
        out.append(f"{ind}{target} = (({tests}) and {call}) if {when} else {call} "
                   f"if {value} is not None else False")
        return
    out.append(f"{ind}{target} = {w.fallback(cond)}")


def _change(w: _Writer, cond: FieldCondition, key: str, target: str, out: list[str],
            ind: str) -> None:
    """changed / changed_to / changed_from: false when the field did not change; a change
    between texts (or whole numbers, for ``changed``) or of tags inline, the rest by the leaf."""
    op, expected = cond.op, cond.value
    change = w.change(key, out, ind)
    leaf = w.fallback(cond)
    if cond.case_sensitive or op is not Op.CHANGED and type(expected) is not str:
        out.append(f"{ind}{target} = {change} is not None and {leaf}")
        return
    i2 = ind + "    "
    out.append(f"{ind}if {change} is None:")
    out.append(f"{i2}{target} = False")
    if op is Op.CHANGED:
        out.append(f"{ind}elif type({change}.from_) is str and type({change}.to) is str:")
        out.append(f"{i2}{target} = {change}.from_.casefold() != {change}.to.casefold()")
        out.append(f"{ind}elif type({change}.from_) is int and type({change}.to) is int:")
        out.append(f"{i2}{target} = {change}.from_ != {change}.to")
        out.append(f"{ind}else:")
        out.append(f"{i2}{target} = {leaf}")
        return
    new, old = ("to", "from_") if op is Op.CHANGED_TO else ("from_", "to")
    k = w.const(expected.casefold())
    out.append(f"{ind}else:")
    out.append(f"{i2}_a = {change}.{new}")
    out.append(f"{i2}_b = {change}.{old}")
    out.append(f"{i2}if (type(_a) is str or _a is None) and (type(_b) is str or _b is None):")
    out.append(f"{i2}    {target} = (_a is not None and _a.casefold() == {k}) and "
               f"not (_b is not None and _b.casefold() == {k})")
    out.append(f"{i2}else:")
    # A list (tags): the value was added (changed_to) or removed (changed_from).
    i3 = i2 + "    "
    added = w.side(key, new, out, i3, change)
    removed = w.side(key, old, out, i3, change)
    out.append(f"{i3}if {added} is not None and {k} not in {added}:")
    out.append(f"{i3}    {target} = False")
    out.append(f"{i3}elif {added} is not None and _b is None:")
    out.append(f"{i3}    {target} = True")
    out.append(f"{i3}elif {added} is not None and {removed} is not None:")
    out.append(f"{i3}    {target} = {k} not in {removed}")
    out.append(f"{i3}else:")
    out.append(f"{i3}    {target} = {leaf}")


def _whole(w: _Writer, cond: Condition, target: str, out: list[str], ind: str) -> None:
    """Code setting ``target`` to the value of ``cond``, every leaf evaluated (any may raise)."""
    if isinstance(cond, Not):
        _whole(w, cond.condition, target, out, ind)
        out.append(f"{ind}{target} = not {target}")
        return
    if isinstance(cond, FieldCondition):
        _value(w, cond, target, out, ind)
        return
    parts = []
    for child in cond.conditions:
        part = w.temp()
        _whole(w, child, part, out, ind)
        parts.append(part)
    join = " and " if isinstance(cond, All) else " or "
    out.append(f"{ind}{target} = {join.join(parts) or repr(isinstance(cond, All))}")


#: Rules per generated function (rule sets are split into even chunks of at most this many).
#: Compiling a function takes memory in proportion to its size (CPython's compiler holds its
#: whole tree), much of which the process keeps: about 12 MB for 200 rules in chunks of up to 100,
#: 22 MB in one function each per event type. Each chunk reads the fields it needs once, so
#: smaller chunks cost time: ~19% more instructions per event in chunks of 50 than in one.
CHUNK = 100


def _chunk(entries: list[CompiledRule], offset: int, *, exhaustive: bool,
           listening: tuple[bool, ...] = ()) -> Callable[..., None]:
    """A function appending to ``found`` what it decides of ``entries`` (positions from
    ``offset``). Not ``exhaustive``: the rules that match (a gated rule only if its position is
    in ``gates``), each stopping at its first failing step. ``exhaustive``: the
    positions of the rules that match *or raise* — every step of every rule runs, as an error
    anywhere must be seen; a rule not ``listening`` to the event is always listed."""
    w = _Writer()
    body: list[str] = []
    if exhaustive:
        _survey_blocks(w, entries, offset, listening, body)
    else:
        _gated_blocks(w, entries, offset, body)
    head = ["def decide(ctx, gates, found):",
            "    tk = ctx.ticket",
            "    ch = ctx.changes",
            "    lk = ctx.links",
            "    memo = {}"]
    if w.lazies():
        head.append("    " + " = ".join(w.lazies()) + " = _U")
    source = "\n".join([*head, *body, ""])
    namespace = dict(w.bound)
    exec(compile(source, "<rules.codegen>", "exec"), namespace)  # noqa: S102 - see module doc
    chunk: Callable[..., None] = namespace["decide"]
    chunk.__source__ = source  # type: ignore[attr-defined]
    return chunk


def _survey_blocks(w: _Writer, entries: list[CompiledRule], offset: int,
                   listening: tuple[bool, ...], body: list[str]) -> None:
    """Each rule's block, every step run, appending its position when it matches or raises."""
    for position, entry in enumerate(entries, offset):
        if listening and not listening[position - offset]:
            body.append(f"    found.append({position})")
            continue
        body.append("    try:")
        body.append("        ok = True")
        for step in entry.plan:
            _whole(w, step.condition, "v", body, "        ")
            body.append(f"        if {'' if step.flip else 'not '}v: ok = False")
        body.append(f"        if ok: found.append({position})")
        body.append("    except Exception:  # an operator error: the caller says which")
        body.append(f"        found.append({position})")


def _gated_blocks(w: _Writer, entries: list[CompiledRule], offset: int,
                  body: list[str]) -> None:
    """Each rule's block, appending ``(position, rule)`` when it matches. Rules with the same
    gates are candidates together, so they are written together under one test of their
    gates: a rule set's many rules that an event does not reach cost one test per gate set,
    not one per rule (the caller sorts what was found back into file order)."""
    groups: dict[tuple[Gate, ...] | None, list[int]] = {}
    for position, entry in enumerate(entries, offset):
        groups.setdefault(entry.gates, []).append(position)
    for gates, positions in groups.items():
        ind = "    "
        if gates is not None:
            body.append(f"    if {positions[0]} in gates:")
            ind = "        "
        for position in positions:
            entry = entries[position - offset]
            rule = w.const(entry.rule)
            body.append(f"{ind}try:")
            body.append(f"{ind}    while True:")
            for step in entry.plan:
                _whole(w, step.condition, "v", body, ind + "        ")
                body.append(_need("v", step.flip, ind + "        "))
            body.append(f"{ind}        found.append(({position}, {rule}))")
            body.append(f"{ind}        break")
            body.append(f"{ind}except Exception:  # an operator error makes the rule an error")
            body.append(f"{ind}    pass")



def _chunks(entries: list[CompiledRule], *, exhaustive: bool,
            listening: tuple[bool, ...] = ()) -> tuple[Callable[..., None], ...]:
    size = -(-len(entries) // max(1, -(-len(entries) // CHUNK))) or 1  # even, <= CHUNK
    return tuple(_chunk(entries[start:start + size], start, exhaustive=exhaustive,
                        listening=listening[start:start + size])
                 for start in range(0, len(entries), size))


def decider(entries: list[CompiledRule]) -> Decide:
    """One call deciding every rule of ``entries`` (one event type) for a context: the rules
    that match, in order. A rule with gates is checked only if its position is in ``gates``
    (:meth:`RuleIndex.candidates`: one hash lookup per value the event holds, cheaper than
    testing each rule's gates); each rule's steps run cheapest first and stop at the first that
    fails; an exception in a rule's steps makes that rule not match."""
    chunks = _chunks(entries, exhaustive=False)

    def decide(ctx: EvalContext, gates: set[int]) -> list[Rule]:
        found: list[tuple[int, Rule]] = []
        for chunk in chunks:
            chunk(ctx, gates, found)
        found.sort(key=_first)
        return [rule for _, rule in found]

    decide.chunks = chunks  # type: ignore[attr-defined]
    return decide


def exhaustive(entries: list[CompiledRule], listening: tuple[bool, ...]) -> Survey:
    """One call listing, for a context, the positions (in order) of the rules of ``entries``
    that match or raise an operator error, every step of every rule evaluated; a rule that is
    not ``listening`` to the context's event type is always listed (its caller evaluates it)."""
    chunks = _chunks(entries, exhaustive=True, listening=listening)
    gates: set[int] = set()  # not read: every rule is decided

    def survey(ctx: EvalContext) -> list[int]:
        found: list[int] = []
        for chunk in chunks:
            chunk(ctx, gates, found)
        return found

    return survey
