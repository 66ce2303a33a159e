"""``matches`` skips the search of a text that lacks every string a match must contain — and
that shortcut never changes an answer: the strings are read off the pattern as the ``regex``
package parses it, and under case-insensitive matching they are used only on ASCII text."""

from __future__ import annotations

import random

import pytest
import regex

from rules import operators
from rules.operators import OperatorError, compile_pattern
from rules.prefilter import UNTIMED_STEPS, Cost, Required, required_strings, search_cost


@pytest.mark.parametrize(("pattern", "case_sensitive", "strings", "fold"), [
    (r"^E4\d\d$", False, ("e4",), True),
    (r"^E4\d\d$", True, ("E4",), False),
    (r"\b(refund|chargeback)\b", False, ("chargeback", "refund"), True),
    (r"(Traceback \(most recent call last\)|NullPointerException)", False,
     ("traceback (most recent call last)", "nullpointerexception"), True),
    (r"(?i)Abc", True, ("abc",), True),                 # an inline flag folds
    (r"(?x) a b  # comment", False, ("ab",), True),     # verbose: spaces and comments dropped
    (r"ab(?=cd)", False, ("ab",), True),                # a lookahead's text is not counted
    (r"(a|)bc", False, ("bc",), True),                  # an empty alternative requires nothing
    (r"x{e<=1}yz", False, ("yz",), True),               # fuzzy matching: x is not required
    (r"[[:digit:]]x", False, ("x",), True),             # a POSIX class is a class, not text
    (r"Straße", False, ("stra",), True),                # ß folds to ss: not used folded
    (r"Straße", True, ("Straße",), False),
    (r"(?:ab)+c", False, ("ab",), True),
])
def test_required_strings_read_off_the_pattern(pattern: str, case_sensitive: bool,
                                               strings: tuple[str, ...], fold: bool) -> None:
    assert required_strings(pattern, case_sensitive) == Required(strings, fold)


@pytest.mark.parametrize("pattern", [
    r".*", r"", r"\d+", r"(a|b*)", r"a?", r"a{0,3}", r"(?=abc)", r"[abc]", r"\p{Lu}",
    r"(?(1)a|b)", r"(.)\1", r"\L<words>", "(unbalanced",
])
def test_no_strings_when_nothing_is_certain(pattern: str) -> None:
    assert required_strings(pattern, False) is None


def test_case_insensitive_strings_apply_to_ascii_text_only() -> None:
    required = required_strings("kelvin", False)
    assert required is not None and required.fold
    assert required.excludes("celsius only")
    assert not required.excludes("KELVIN scale")
    # U+212A KELVIN SIGN matches "k" case-insensitively: a non-ASCII text is always searched.
    assert not required.excludes("\u212aelvin")
    assert operators.matches("\u212aelvin", "kelvin", False) is True


# -- the shortcut never changes an answer -----------------------------------------------------

PIECES = ["a", "b", "k", "K", "s", "ß", "\u212a", "\u017f", "ab", "(", ")", "|", "*", "+", "?",
          "{2}", "{0,2}", "[ab]", ".", r"\b", "^", "$", "(?i)", "(?-i:", "(?:", r"\d", " ",
          "(?=b)", "(?!a)", "{e<=1}"]
LETTERS = ["a", "b", "k", "K", "s", "S", "ß", "ss", "\u212a", "\u017f", " ", "1", "\n", "AB"]


def _patterns(rng: random.Random, count: int) -> list[str]:
    found: list[str] = []
    while len(found) < count:
        pattern = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 7)))
        try:
            regex.compile(pattern)
        except regex.error:
            continue
        found.append(pattern)
    return found


def test_excluded_texts_never_match_on_random_patterns_and_texts() -> None:
    rng = random.Random(20261128)
    texts = ["".join(rng.choice(LETTERS) for _ in range(rng.randint(0, 8))) for _ in range(300)]
    checked = excluded = 0
    for pattern in _patterns(rng, 400):
        for case_sensitive in (False, True):
            required = required_strings(pattern, case_sensitive)
            compiled = compile_pattern(pattern, case_sensitive)
            for text in texts:
                found = compiled.search(text) is not None
                assert operators.matches(text, pattern, case_sensitive) is found, (pattern, text)
                if required is not None and required.excludes(text):
                    assert not found, (pattern, case_sensitive, text, required)
                    excluded += 1
                checked += 1
    assert excluded > checked / 10  # the shortcut is taken often, and never wrongly


class _NeverSearched:
    def search(self, text: str, timeout: float | None = None) -> object | None:
        raise AssertionError(f"searched {text!r}")


def test_a_text_without_the_required_strings_is_not_searched(monkeypatch) -> None:
    monkeypatch.setattr(operators, "compile_pattern", lambda *_: _NeverSearched())
    assert operators.matches("Please refund me", r"\bchargeback\b", False) is False
    assert operators.matches(["billing", "vip"], r"^outage", False) is False
    with pytest.raises(AssertionError, match="searched"):
        operators.matches("a chargeback", r"\bchargeback\b", False)


def test_catastrophic_backtracking_is_still_an_error_when_the_text_has_the_strings() -> None:
    with pytest.raises(OperatorError, match="gave up"):
        operators.matches("x" + "a" * 30_000 + "!", r"x(a+)+$", False)


# -- searches whose work the pattern bounds run without the budget's clock ---------------------


@pytest.mark.parametrize(("pattern", "cost"), [
    (r"^E4\d\d$", Cost(0, 6)),
    (r"\b(refund|chargeback)\b", Cost(0, 36)),
    (r"^[A-Z]+-\d+$", Cost(2, 5)),                      # two unbounded repeats of one node
    (r"^\s*#eng\b", Cost(1, 7)),
    (r"a{2,5}b", Cost(0, (1 + 1 + 1 + 1) * 6)),           # each count of a bounded repeat
    (r"[\p{L}\p{M}\d]*x", Cost(1, 4)),                    # a set costs one step per item
])
def test_search_cost_bounds_patterns_without_runaway_repeats(pattern: str, cost: Cost) -> None:
    assert search_cost(pattern, False) == cost


@pytest.mark.parametrize("pattern", [
    r"(a+)+$", r"(a|a)*b", r"(a*)*", r"(?:ab)+", r"(x)\1", r"a{e<=1}", r"(?(1)a|b)",
    r"(a(?1)?b)", r"\X+", r"(?fi)[sß]*\d", r"(?V1)s*x", r"(?f)ss",
])
def test_no_bound_for_nested_or_unusual_repeats(pattern: str) -> None:
    assert search_cost(pattern, False) is None


class _Recorder:
    def __init__(self) -> None:
        self.timeouts: list[float | None] = []

    def search(self, text: str, timeout: float | None = None) -> object | None:
        self.timeouts.append(timeout)
        return None


@pytest.mark.parametrize(("pattern", "text", "timed"), [
    (r"^E4\d\d$", "E404", False),
    (r"^E4\d\d$", "E4" + "0" * 2_000, False),            # no repeat: linear in the text
    (r"^E4\d\d$", "E4" + "0" * 200_000, True),           # ... but a long one is timed
    (r"(?fi)[sß]*\d", "s" * 20, True),                    # full case folding: no bound
    (r"^\s*#eng\b", "  #eng look", False),
    (r"^\s*#eng\b", "#eng " + "x" * 2_000, True),         # quadratic bound, too long a text
    (r"(a+)+$", "aaaa", True),                             # no bound at all
])
def test_only_searches_the_pattern_cannot_bound_are_timed(monkeypatch, pattern: str, text: str,
                                                           timed: bool) -> None:
    recorder = _Recorder()
    monkeypatch.setattr(operators, "compile_pattern", lambda *_: recorder)
    assert operators.matches(text, pattern, False) is False
    assert len(recorder.timeouts) == 1 and (recorder.timeouts[0] is not None) is timed


def test_the_untimed_bound_is_what_the_cost_says() -> None:
    cost = search_cost(r"\w*x", False)
    assert cost is not None and cost.repeats == 1
    longest = max(n for n in range(5_000) if (n + 1) ** 2 * cost.paths <= UNTIMED_STEPS)
    assert cost.untimed(longest) and not cost.untimed(longest + 1)


def test_a_conditions_untimed_searches_share_one_bound(monkeypatch) -> None:
    # Each tag alone is small enough to search untimed; together they are not: once the
    # condition's searches would pass UNTIMED_STEPS, the rest run under the time budget.
    recorder = _Recorder()
    monkeypatch.setattr(operators, "compile_pattern", lambda *_: recorder)
    pattern = r"\w*\d"
    cost = search_cost(pattern, False)
    assert cost is not None
    text = "a" * 100
    per_search = cost.steps(len(text))
    assert per_search <= UNTIMED_STEPS
    tags = [text] * (UNTIMED_STEPS // per_search + 3)
    assert operators.matches(tags, pattern, False) is False
    untimed = [t for t in recorder.timeouts if t is None]
    assert len(untimed) == UNTIMED_STEPS // per_search
    assert len(recorder.timeouts) == len(tags)
