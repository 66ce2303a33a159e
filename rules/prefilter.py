"""Strings a regex cannot match without: a cheap test that spares most ``matches`` searches.

A rule's regex is usually searched in text it does not match (a subject without "refund", an
error code of another family), and a timed search costs several microseconds even on a short
text — mostly the ``regex`` package's time budget, which reads the process's CPU clock. Most
patterns name text that every match contains: ``\\b(refund|chargeback)\\b`` cannot match a
subject that contains neither word. :func:`required_strings` reads that off the pattern, as the
``regex`` package itself parses it, so that :func:`rules.operators.matches` answers "no match"
for such a text with a substring test and runs the search only when the text might match.

The analysis only ever says "every match contains one of these strings" when that is certain:

- a run of literal characters in a sequence is required; so is what a group, an atomic group or
  a repeat of at least once requires; a branch requires one of what each alternative requires
  (nothing, if one alternative requires nothing);
- anything else — classes, ``.``, anchors, lookarounds, backreferences, optional parts, fuzzy
  matching, conditionals, node types this module does not know — requires nothing and ends a run;
- under case-insensitive matching (the rule's default, or an inline ``(?i)``) a literal
  character counts only if it is ASCII, and the caller lower-cases both sides and uses the
  strings only for an ASCII text: there, case-insensitive equality of ASCII characters is exactly
  equality after ``str.lower``. A text with other characters is always searched.

A pattern the analysis cannot read (a private parser API that changed) gets no strings: it is
searched every time, as before.

:func:`search_cost` bounds the work of a search the same way, from the parsed pattern: a
pattern whose unbounded repeats (``*``, ``+``, ``{n,}``) each repeat a single node, are never
nested, and that uses no backreference, recursion or fuzzy matching, takes at most
``(n + 1) ** (repeats + 1) * paths`` steps on a text of ``n`` characters — unless full case
folding is on (``(?f)``, version 1's default), where one node can match several characters
and no bound is given. While a condition's searches stay under :data:`UNTIMED_STEPS` together
they need no time budget: they cannot run away, and the budget's clock reads cost more than
such a search. Anything else is searched under the budget.
"""

from __future__ import annotations

__all__ = ["UNTIMED_STEPS", "Cost", "Required", "required_strings", "search_cost"]

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import regex

try:  # the regex package's own parser: the same reading of the pattern as the search uses
    from regex import _regex_core as _core
except ImportError:  # pragma: no cover - a regex release without it: no prefilter
    _core = None


@dataclass(frozen=True, slots=True)
class Required:
    """Every match of the pattern contains one of ``strings``.

    ``fold``: compare case-insensitively — ``strings`` are lower-cased ASCII and apply only to an
    ASCII text, lower-cased.
    """

    strings: tuple[str, ...]
    fold: bool

    def excludes(self, text: str) -> bool:
        """True when ``text`` certainly holds no match (so it need not be searched)."""
        if self.fold:
            if not text.isascii():
                return False
            text = text.lower()
        for needle in self.strings:  # noqa: SIM110 - a loop is cheaper than all(...)
            if needle in text:
                return False
        return True


# A requirement while reading: (alternatives, any of them case-insensitive).
_Req = tuple[frozenset[str], bool]


def _better(a: _Req | None, b: _Req | None) -> _Req | None:
    """The more selective requirement: longer shortest alternative, then fewer alternatives."""
    if a is None:
        return b
    if b is None:
        return a
    key_a = (min(map(len, a[0])), -len(a[0]))
    key_b = (min(map(len, b[0])), -len(b[0]))
    return b if key_b > key_a else a


def _literal(node: Any) -> tuple[str, bool] | None:
    """The character a node matches literally (and whether case-insensitively), if it does."""
    if type(node) is not _core.Character or not node.positive or node.zerowidth:
        return None
    char = chr(node.value)
    folded = bool(node.case_flags & regex.IGNORECASE)
    if folded and not char.isascii():
        return None  # matches characters whose lower-casing str.lower does not mirror
    return char, folded


def _sequence(items: list[Any]) -> _Req | None:
    best: _Req | None = None
    run: list[str] = []
    run_folded = False
    for item in [*items, None]:
        literal = None if item is None else _literal(item)
        if literal is not None:
            run.append(literal[0])
            run_folded = run_folded or literal[1]
            continue
        if run:
            best = _better(best, (frozenset({"".join(run)}), run_folded))
            run, run_folded = [], False
        if item is not None:
            best = _better(best, _required(item))
    return best


def _required(node: Any) -> _Req | None:
    kind = type(node)
    if kind is _core.Sequence:
        return _sequence(node.items)
    if kind is _core.Character:
        literal = _literal(node)
        return None if literal is None else (frozenset({literal[0]}), literal[1])
    if kind in (_core.Group, _core.Atomic):
        return _required(node.subpattern)
    if kind in (_core.GreedyRepeat, _core.LazyRepeat, _core.PossessiveRepeat):
        return _required(node.subpattern) if node.min_count >= 1 else None
    if kind is _core.Branch:
        strings: set[str] = set()
        folded = False
        for branch in node.branches:
            found = _required(branch)
            if found is None:
                return None
            strings |= found[0]
            folded = folded or found[1]
        return frozenset(strings), folded
    return None  # classes, anchors, lookarounds, references, fuzzy, conditionals, the unknown


def _parse(pattern: str, case_sensitive: bool) -> Any:
    """The pattern as the ``regex`` package parses it (before its own optimisations)."""
    flags = 0 if case_sensitive else regex.IGNORECASE
    for _ in range(3):  # as regex.compile: a global inline flag ((?i) ...) restarts the parse
        source = _core.Source(pattern)
        info = _core.Info(flags, source.char_type, {})
        info.guess_encoding = _core.UNICODE
        source.ignore_space = bool(info.flags & regex.VERBOSE)
        try:
            parsed = _core._parse_pattern(source, info)
        except _core._UnscopedFlagSet:
            flags = info.global_flags
            continue
        if not source.at_end():
            raise ValueError("unbalanced parenthesis")
        return parsed
    raise ValueError("flags keep changing")


@lru_cache(maxsize=4096)
def required_strings(pattern: str, case_sensitive: bool) -> Required | None:
    """What every match of ``pattern`` contains, or ``None`` when nothing certain is known."""
    if _core is None:
        return None
    try:
        found = _required(_parse(pattern, case_sensitive))
    except Exception:  # noqa: BLE001 - unreadable (bad pattern, changed parser): search always
        return None
    if found is None or "" in found[0]:
        return None
    strings, folded = found
    if folded:
        strings = frozenset(s.lower() for s in strings)
    return Required(tuple(sorted(strings, key=lambda s: (-len(s), s))), folded)


# -- a bound on the work of a search -----------------------------------------------------------

#: Steps (a character compared with a pattern node, a set counting one per item) a condition's
#: untimed searches may be bounded by, together. The worst cost per step measured was ~7 ns
#: (``\w*\d`` on a repeated letter, and sets of Unicode properties), so this is under a
#: millisecond — against the 0.05 s budget of rules.operators.
UNTIMED_STEPS = 100_000

def _kinds(*names: str) -> frozenset[type]:
    return frozenset(getattr(_core, name) for name in names
                     if _core is not None and hasattr(_core, name))


#: Node kinds that consume one character: one step each (a set, one per item).
_CHARACTER = _kinds("Any", "AnyAll", "AnyU", "Character", "Property", "Range", "SetDiff",
                    "SetInter", "SetSymDiff", "SetUnion")
#: Node kinds that test one character, or none (anchors, word boundaries).
_SINGLE = _CHARACTER | _kinds(
    "Boundary", "DefaultBoundary", "DefaultEndOfWord", "DefaultStartOfWord", "EndOfLine",
    "EndOfLineU", "EndOfString", "EndOfStringLine", "EndOfStringLineU", "EndOfWord",
    "StartOfLine", "StartOfLineU", "StartOfString", "StartOfWord", "SearchAnchor")


@dataclass(frozen=True, slots=True)
class Cost:
    """A bound on a backtracking search of a text of ``n`` characters:
    ``(n + 1) ** (repeats + 1) * paths`` steps.

    ``paths``: the pattern's nodes times the ways its alternations and bounded repeats can be
    taken; ``repeats``: the most unbounded repeats (``*``, ``+``, ``{2,}``) one way through the
    pattern passes, each of a single node (so each can stop at no more than ``n + 1`` places).
    """

    repeats: int
    paths: int

    def steps(self, length: int) -> int:
        """The bound on the steps of a search of ``length`` characters."""
        return int((length + 1) ** (self.repeats + 1) * self.paths)

    def untimed(self, length: int) -> bool:
        """Whether a search of ``length`` characters is bounded by :data:`UNTIMED_STEPS`."""
        return self.steps(length) <= UNTIMED_STEPS


def _width(node: Any) -> int:
    """Steps one test of a single-character node costs: a set, one per item."""
    items = getattr(node, "items", None)
    if not items:
        return 1
    return sum(_width(item) for item in items)


def _cost(node: Any) -> tuple[int, int, int] | None:
    """(repeats, ways through, nodes) of ``node``; ``None`` if no polynomial bound is known."""
    kind = type(node)
    if getattr(node, "case_flags", 0) & regex.FULLCASE:
        return None  # full case folding: one node can match several characters ("ß" ~ "ss")
    if kind in _SINGLE:
        return 0, 1, _width(node)
    if kind in (_core.String, _core.Literal):
        return 0, 1, max(1, len(node.characters))
    if kind is _core.Sequence:
        repeats, ways, nodes = 0, 1, 0
        for item in node.items:
            found = _cost(item)
            if found is None:
                return None
            repeats, ways, nodes = repeats + found[0], ways * found[1], nodes + found[2]
        return repeats, ways, nodes
    if kind is _core.Branch:
        costs = [_cost(branch) for branch in node.branches]
        if any(c is None for c in costs):
            return None
        return (max(c[0] for c in costs if c is not None), sum(c[1] for c in costs if c),
                sum(c[2] for c in costs if c))
    if kind in (_core.Group, _core.Atomic, _core.LookAround):
        return _cost(node.subpattern)
    if kind in (_core.GreedyRepeat, _core.LazyRepeat, _core.PossessiveRepeat):
        body = _cost(node.subpattern)
        if body is None:
            return None
        low, high = node.min_count, node.max_count
        if high is not None and high <= 16:  # a bounded repeat: each count is a way through
            repeats, ways, nodes = body
            if repeats and high > 1:
                return None
            return repeats * high, sum(ways ** k for k in range(low, high + 1)), nodes * high
        if type(node.subpattern) not in _CHARACTER:  # a repeat of more: maybe exponential
            return None
        return 1, 1, body[2]
    return None  # references, fuzzy, conditionals, recursion, graphemes, the unknown


@lru_cache(maxsize=4096)
def search_cost(pattern: str, case_sensitive: bool) -> Cost | None:
    """A bound on the work of searching ``pattern``, or ``None`` when none is known (the search
    must then run under a time budget)."""
    if _core is None:
        return None
    try:
        found = _cost(_parse(pattern, case_sensitive))
    except Exception:  # noqa: BLE001 - unreadable: no bound
        return None
    if found is None:
        return None
    repeats, ways, nodes = found
    return Cost(repeats, ways * nodes)
