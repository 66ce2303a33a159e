"""Table-driven tests of matches, gt/gte/lt/lte and older_than/within (null and list cases too)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rules import OPERATORS, Op, OperatorError, evaluate
from rules.operators import REGEX_MAX_CHARS, Timed, ValueProblem, parse_duration

from .helpers import load_text, make_ctx

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
ERROR = OperatorError  # marker: the operator must raise (a rule error, never a silent no-match)


def run(op: Op, actual: object, expected: object = None, case_sensitive: bool = False) -> bool:
    return OPERATORS[op].fn(actual, expected, case_sensitive)


def check(op: Op, actual: object, expected: object, case_sensitive: bool, want: Any) -> None:
    if want is ERROR:
        with pytest.raises(OperatorError):
            run(op, actual, expected, case_sensitive)
    else:
        assert run(op, actual, expected, case_sensitive) is want


MATCHES = [
    # actual, pattern, case_sensitive, expected
    ("Error E42 at checkout", r"\bE\d+\b", False, True),
    ("error e42 at checkout", r"\bE\d+\b", False, True),
    ("error e42 at checkout", r"\bE\d+\b", True, False),
    ("no code here", r"\bE\d+\b", False, False),
    ("Refund please", r"^refund", False, True),
    (None, r".*", False, False),                                   # None: false
    ([], r".*", False, False),                                     # empty list: false
    (["billing", "vip"], r"^vi", False, True),                     # list: any element
    (["billing", "VIP"], r"^vi", True, False),
    (["billing", None], r"^vi", False, False),                     # None elements skipped
    ((("a",),), r"a", False, ERROR),                               # nested list: error
    ({"a": 1}, r"a", False, ERROR),                                # mapping: error
    (4012, r"^40", False, True),                                   # numbers searched as text
    (True, r"^true$", False, True),
]


@pytest.mark.parametrize(("actual", "pattern", "case_sensitive", "want"), MATCHES)
def test_matches(actual: object, pattern: str, case_sensitive: bool, want: Any) -> None:
    check(Op.MATCHES, actual, pattern, case_sensitive, want)


def test_matches_catastrophic_backtracking_is_a_rule_error_within_a_second() -> None:
    start = time.monotonic()
    with pytest.raises(OperatorError, match="gave up"):
        run(Op.MATCHES, "a" * 50_000 + "b", r"(a+)+$")
    assert time.monotonic() - start < 1.0


def test_matches_time_budget_covers_the_whole_list_not_each_element() -> None:
    start = time.monotonic()
    with pytest.raises(OperatorError, match="gave up"):
        run(Op.MATCHES, ["a" * 30_000 + "b"] * 50, r"(a|aa)+$")
    assert time.monotonic() - start < 1.0


def test_matches_searches_only_the_first_chars_of_a_text() -> None:
    text = "x" * REGEX_MAX_CHARS + "needle"
    assert not run(Op.MATCHES, text, "needle")
    assert run(Op.MATCHES, "x" * (REGEX_MAX_CHARS - 6) + "needle", "needle")


ORDERED = [
    # op, actual, value, expected
    (Op.GT, 5, 3, True),
    (Op.GT, 3, 3, False),
    (Op.GTE, 3, 3, True),
    (Op.LT, 2.5, 3, True),
    (Op.LTE, 3.0, 3, True),
    (Op.LT, 4, 3, False),
    (Op.GT, "10", 9, True),                 # numeric text on the field side (custom fields)
    (Op.GT, " 10.5 ", "10", True),          # numeric text value
    (Op.LT, "-2", 0, True),
    (Op.GT, "10", "9", True),               # numbers, not text order
    (Op.GT, "2026-01-05T10:00:00Z", "2026-01-05T09:00:00Z", True),
    (Op.GT, "2026-01-05T10:00:00+02:00", "2026-01-05T09:00:00Z", False),  # instants, not text
    (Op.LTE, "2026-01-05T10:00:00Z", "2026-01-05T12:00:00+02:00", True),
    (Op.GTE, "2026-01-05", "2026-01-05T00:00:00Z", True),                 # no offset = UTC
    (Op.LT, NOW, "2026-01-06T00:00:00Z", True),                           # datetime field
    (Op.GT, None, 3, False),                 # None: false
    (Op.LT, None, "2026-01-05T10:00:00Z", False),
    (Op.LTE, None, 0, False),
    (Op.GT, [5], 3, ERROR),                  # list: error
    (Op.LT, ("2026-01-05T10:00:00Z",), "2026-01-06T00:00:00Z", ERROR),
    (Op.GT, "high", 3, ERROR),               # text vs number: error
    (Op.GT, True, 0, ERROR),                 # booleans are not numbers
    (Op.GT, "nan", 0, ERROR),
    (Op.GT, 5, "2026-01-05T10:00:00Z", ERROR),       # number vs time: error
    (Op.LT, "soon", "2026-01-05T10:00:00Z", ERROR),  # text vs time: error
    (Op.GT, {"a": 1}, 3, ERROR),
]


@pytest.mark.parametrize(("op", "actual", "value", "want"), ORDERED)
def test_ordered(op: Op, actual: object, value: object, want: Any) -> None:
    check(op, actual, value, False, want)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


DURATIONS = [
    # op, field time, duration, event time, expected
    (Op.OLDER_THAN, ago(hours=3), "2h", NOW, True),
    (Op.OLDER_THAN, ago(hours=1), "2h", NOW, False),
    (Op.OLDER_THAN, ago(hours=2), "2h", NOW, False),      # exactly 2 h is not older
    (Op.OLDER_THAN, ago(days=8), "1w", NOW, True),
    (Op.OLDER_THAN, ago(seconds=91), "90s", NOW, True),
    (Op.WITHIN, ago(minutes=10), "15m", NOW, True),
    (Op.WITHIN, ago(minutes=15), "15m", NOW, True),       # at most: inclusive
    (Op.WITHIN, ago(minutes=16), "15m", NOW, False),
    (Op.WITHIN, ago(days=2), "3d", NOW, True),
    (Op.WITHIN, "2026-01-05T12:10:00Z", "15m", NOW, True),  # after the event: within
    (Op.OLDER_THAN, "2026-01-05T13:00:00+02:00", "30m", NOW, True),  # offsets are instants
    (Op.OLDER_THAN, NOW - timedelta(hours=3), "2h", NOW, True),      # datetime field
    (Op.OLDER_THAN, None, "2h", NOW, False),               # None: false
    (Op.WITHIN, None, "15m", NOW, False),
    (Op.WITHIN, None, "15m", None, False),
    (Op.OLDER_THAN, [ago(hours=3)], "2h", NOW, ERROR),     # list: error
    (Op.WITHIN, (ago(minutes=1),), "15m", NOW, ERROR),
    (Op.WITHIN, "yesterday", "15m", NOW, ERROR),           # not a time: error
    (Op.WITHIN, 1767600000, "15m", NOW, ERROR),
    (Op.WITHIN, ago(minutes=1), "15m", None, ERROR),       # no event time: error
]


@pytest.mark.parametrize(("op", "field_time", "duration", "now", "want"), DURATIONS)
def test_durations(op: Op, field_time: object, duration: str, now: datetime | None,
                   want: Any) -> None:
    check(op, Timed(field_time, now), duration, False, want)


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("15m", 900), ("2h", 7200), ("3d", 259200), ("1w", 604800), (" 2H ", 7200),
])
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["2", "2x", "h", "1.5h", "-2h", "0m", "2h30m", "", 15, None,
                                 True, ["2h"]])
def test_bad_durations_are_refused(bad: object) -> None:
    with pytest.raises(ValueProblem):
        parse_duration(bad)


# --- through the loader and the evaluator ----------------------------------------------------

AGE_RULE = """\
rules:
  - id: stale
    on: [ticket.updated]
    if:
      all:
        - {field: ticket.created_at, op: older_than, value: 2h}
        - {field: ticket.updated_at, op: within, value: 15m}
    then: [{zendesk.update: {add_tags: [stale]}}]
"""


def test_durations_use_the_event_time_not_the_wall_clock() -> None:
    rule = load_text(AGE_RULE).rules[0]
    created = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    updated = datetime(2026, 1, 5, 11, 55, tzinfo=UTC)
    ctx = make_ctx(created_at=created, updated_at=updated)  # no now: event time = updated_at
    assert evaluate(rule, ctx).matched
    late = make_ctx(created_at=created, updated_at=updated)
    late = type(late)(late.event_type, late.event_source, late.ticket, now=updated
                      + timedelta(minutes=20))
    result = evaluate(rule, late)
    assert not result.matched and result.error is None
    assert result.first_failure is not None and result.first_failure.field == "ticket.updated_at"
    young = make_ctx(created_at=datetime(2026, 1, 5, 11, 0, tzinfo=UTC), updated_at=updated)
    assert not evaluate(rule, young).matched


def test_a_regex_timeout_is_recorded_in_the_trace_as_a_rule_error() -> None:
    rule = load_text("""\
        rules:
          - id: redos
            on: [ticket.updated]
            if: {field: ticket.description, op: matches, value: '(a+)+$'}
            then: [{zendesk.update: {add_tags: [x]}}]
        """).rules[0]
    start = time.monotonic()
    result = evaluate(rule, make_ctx(description="a" * 50_000 + "b"))
    assert time.monotonic() - start < 1.0
    assert not result.matched
    assert result.error is not None and "gave up" in result.error
    (leaf,) = result.trace
    assert leaf.result is None and leaf.error and "gave up" in leaf.error


def test_matches_gt_and_within_load_and_explain() -> None:
    rule = load_text("""\
        rules:
          - id: r
            on: [ticket.updated]
            if:
              all:
                - {field: ticket.subject, op: matches, value: '^checkout\\b'}
                - {field: ticket.fields.error_code, op: matches, value: '^E\\d+$',
                   case_sensitive: true}
                - {field: ticket.tags, op: matches, value: '^bug_'}
                - {field: ticket.id, op: gte, value: 4000}
                - {field: ticket.created_at, op: lt, value: '2026-02-01T00:00:00Z'}
            then: [{zendesk.update: {add_tags: [x]}}]
        """).rules[0]
    result = evaluate(rule, make_ctx())
    assert result.matched, result.explain()
    assert "ticket.id is at least 4000 (saw 4012)" in result.explain()


class _WaitsThenFinds:
    """A pattern whose first searches run out of wall-clock time without searching: what a
    thread kept waiting by a busy hub (the GIL, a loaded machine) sees."""

    def __init__(self, waits: int) -> None:
        self.waits = waits
        self.calls = 0

    def search(self, text: str, timeout: float) -> object | None:
        self.calls += 1
        if self.calls <= self.waits:
            raise TimeoutError
        return object() if "support" in text else None


def test_matches_retries_a_search_whose_thread_waited_instead_of_searching(monkeypatch) -> None:
    import rules.operators as operators

    pattern = _WaitsThenFinds(waits=2)
    monkeypatch.setattr(operators, "compile_pattern", lambda *_: pattern)
    assert operators.matches("[support] update 89", r"^(?:\[support\])+", False) is True
    assert pattern.calls == 3


def test_matches_gives_up_when_the_thread_never_gets_to_search(monkeypatch) -> None:
    import rules.operators as operators

    pattern = _WaitsThenFinds(waits=10_000)
    monkeypatch.setattr(operators, "compile_pattern", lambda *_: pattern)
    with pytest.raises(OperatorError, match="too busy"):
        operators.matches("[support] update 89", r"^(?:\[support\])+", False)
    assert pattern.calls == operators.REGEX_TRIES
