"""The fast path decides exactly as the explaining evaluator: for every rule and context,
``matches(rule, ctx) == evaluate(rule, ctx).matched``, and ``RuleSet.matching(ctx)`` is the
rules of ``for_event`` that ``evaluate`` matches — errors, nulls, lists, case and regex timeouts
included."""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bench.rules import events, load_bench_rules
from rules import (
    All,
    Any_,
    Change,
    Condition,
    EvalContext,
    FieldCondition,
    Mode,
    Not,
    Op,
    Rule,
    RuleSet,
    evaluate,
    matches,
)

from .helpers import load_text
from .test_operators_more import DURATIONS, ERROR, MATCHES, ORDERED

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
X = "ticket.fields.x"


def leaf(field: str, op: Op, value: Any = None, case_sensitive: bool = False) -> FieldCondition:
    return FieldCondition(field, op, value, case_sensitive, "if", None)


TRUE = leaf("event.type", Op.EQUALS, "ticket.updated")
FALSE = leaf("event.type", Op.EQUALS, "ticket.created")


def shapes(cond: Condition) -> Iterator[Condition]:
    """``cond`` where its outcome or its error decides the rule in different ways."""
    yield cond
    yield Not(cond, "if.not", None)
    yield All((TRUE, cond), "if.all", None)
    yield All((cond, FALSE), "if.all", None)
    yield Any_((cond, TRUE), "if.any", None)           # an error here still spoils the match
    yield Any_((FALSE, cond), "if.any", None)
    yield Not(Any_((FALSE, cond), "if.not.any", None), "if.not", None)
    yield Not(All((TRUE, cond), "if.not.all", None), "if.not", None)
    yield All((Any_((cond, FALSE), "a", None), Not(FALSE, "b", None)), "if.all", None)


def rule(cond: Condition | None, on: tuple[str, ...] = ("ticket.updated",),
         mode: Mode = Mode.LIVE, rule_id: str = "r") -> Rule:
    return Rule(rule_id, "", mode, on, cond, (), "t.yaml", 1)


def context(ticket: dict[str, Any] | None = None, *, changes: dict[str, Change] | None = None,
            links: dict[str, tuple[str, ...]] | None = None, now: datetime | None = NOW,
            event_type: str = "ticket.updated", **extra: Any) -> EvalContext:
    return EvalContext(event_type, "webhook", ticket or {}, changes or {}, links or {}, now=now,
                       **extra)


def assert_agrees(rules: Iterable[Rule], contexts: Iterable[EvalContext]) -> set[bool]:
    """Every rule decides alike on both paths for every context; so does a RuleSet of them.
    The outcomes seen."""
    rules = list(rules)
    ruleset = RuleSet(tuple(rule(r.condition, r.on, r.mode, f"r{i}") for i, r in enumerate(rules)))
    outcomes = set()
    for ctx in contexts:
        for r in rules:
            expected = evaluate(r, ctx).matched
            assert matches(r, ctx) is expected, (r.condition, ctx, evaluate(r, ctx).explain())
            outcomes.add(expected)
        want = tuple(r for r in ruleset.for_event(ctx.event_type) if evaluate(r, ctx).matched)
        assert ruleset.matching(ctx) == want
    return outcomes


# -- generated rules and events (the benchmark's) -----------------------------------------------


def test_generated_rules_and_events_decide_alike() -> None:
    ruleset = load_bench_rules(200, seed=5)
    matched = decided = 0
    for ctx in events(250, seed=11):
        listening = {r.id for r in ruleset.for_event(ctx.event_type)}
        expected = []
        for r in ruleset:  # every rule: off ones and ones for another event type too
            want = evaluate(r, ctx).matched
            assert matches(r, ctx) is want, (r.id, evaluate(r, ctx).explain())
            if want and r.id in listening:
                expected.append(r)
            matched += want
            decided += 1
        assert ruleset.matching(ctx) == tuple(expected)
    assert 0 < matched < decided / 5  # a realistic mix: some matches, mostly not


# -- operators on every kind of value ---------------------------------------------------------

ODD_VALUES: list[Any] = [
    None, "", "Bug", "bug", "BUG_confirmed", "a bug here", "42", " 10.5 ", "nan", "true", 42, 0,
    -1, 4.5, True, False, [], ["Bug", "billing"], ["bug", None], ("x", "BUG"), ["bug", 5],
    [["bug"]], [None], [True, 4.5], {"a": 1}, {}, NOW, "2026-01-05T11:00:00Z", "2026-01-05",
]
EXPECTED: dict[Op, list[Any]] = {
    Op.EQUALS: ["bug", "BUG", 42, "42", True, "true", 4.5],
    Op.IN: [("bug", "billing"), (42, 7), ("42", 0), (True, "x"), ("BUG",)],
    Op.CONTAINS: ["bug", "BUG", 5, "5", "True", "a b", True],
    Op.CONTAINS_ANY: [("bug", "none"), ("BUG", "x"), (5, "q"), ("zz", "5"), ("4.5",)],
    Op.CONTAINS_ALL: [("bug", "billing"), ("bug",), ("bug", 5), ("true", "4.5")],
    Op.EXISTS: [None],
    Op.MATCHES: [r"^bug", r"BUG", r"\d+", r"^$", r"x|true"],
    Op.GT: [10, "10", 0, "2026-01-05T10:00:00Z", -2.5],
    Op.OLDER_THAN: ["30m", "2h", "1d"],
}
EXPECTED[Op.NOT_EQUALS] = EXPECTED[Op.EQUALS]
EXPECTED[Op.NOT_IN] = EXPECTED[Op.IN]
EXPECTED[Op.CONTAINS_NONE] = EXPECTED[Op.CONTAINS_ANY]
EXPECTED[Op.GTE] = EXPECTED[Op.LT] = EXPECTED[Op.LTE] = EXPECTED[Op.GT]
EXPECTED[Op.WITHIN] = EXPECTED[Op.OLDER_THAN]
VALUE_OPS = sorted(EXPECTED, key=lambda op: op.value)


@pytest.mark.parametrize("op", VALUE_OPS, ids=lambda op: op.value)
def test_value_operators_decide_alike_on_odd_values_in_every_position(op: Op) -> None:
    outcomes: set[bool] = set()
    for expected, case_sensitive in itertools.product(EXPECTED[op], (False, True)):
        rules = [rule(shape) for field in (X, "ticket.tags", "requester.fields.plan")
                 for shape in shapes(leaf(field, op, expected, case_sensitive))]
        outcomes |= assert_agrees(rules, (
            context({"fields": {"x": actual}, "tags": actual, "updated_at": None},
                    requester={"fields": {"plan": actual}}) for actual in ODD_VALUES))
    assert outcomes == {True, False}


CHANGE_SIDES: list[Any] = [None, "", "Open", "solved", 5, True, [], ["Bug", "vip"],
                           ("open", None), ["bug", 5], "a bug", {"a": 1}]


@pytest.mark.parametrize("op", [Op.CHANGED, Op.CHANGED_TO, Op.CHANGED_FROM],
                         ids=lambda op: op.value)
def test_change_operators_decide_alike_on_odd_changes(op: Op) -> None:
    values = [None] if op is Op.CHANGED else ["open", "bug", 5, True]
    rules = [rule(shape) for expected, case_sensitive in itertools.product(values, (False, True))
             for field in ("ticket.status", X)
             for shape in shapes(leaf(field, op, expected, case_sensitive))]
    contexts = [context()]  # nothing changed
    for before, after in itertools.product(CHANGE_SIDES, repeat=2):
        change = Change(before, after)
        contexts.append(context(changes={"status": change, "fields.x": change}))
    assert assert_agrees(rules, contexts) == {True, False}


def test_links_and_event_fields_decide_alike() -> None:
    conds = [leaf("links.jira", Op.EXISTS), leaf("links.jira", Op.CONTAINS, "sup-1"),
             leaf("links.jira", Op.MATCHES, r"^SUP-\d+$", True),
             leaf("event.source", Op.IN, ("webhook", "poller")),
             leaf("ticket.fields.x.deeper", Op.EQUALS, "y")]
    rules = [rule(shape) for cond in conds for shape in shapes(cond)]
    assert_agrees(rules, (
        context({"fields": {"x": x}}, links=links)
        for links in ({}, {"jira": ()}, {"jira": ("SUP-1",)}, {"jira": ("sup-1", "OPS-2")})
        for x in (None, "y", {"deeper": "Y"}, {"deeper": ["y"]})))


# -- the operator tables of test_operators_more ---------------------------------------------------


def _table_cases() -> Iterator[tuple[Op, Any, Any, bool, datetime | None, Any]]:
    for actual, pattern, case_sensitive, want in MATCHES:
        yield Op.MATCHES, actual, pattern, case_sensitive, NOW, want
    for op, actual, value, want in ORDERED:
        yield op, actual, value, False, NOW, want
    for op, field_time, duration, now, want in DURATIONS:
        yield op, field_time, duration, False, now, want


@pytest.mark.parametrize(("op", "actual", "value", "case_sensitive", "now", "want"),
                         list(_table_cases()))
def test_operator_table_cases_decide_alike(op: Op, actual: Any, value: Any,
                                           case_sensitive: bool, now: datetime | None,
                                           want: Any) -> None:
    cond = leaf(X, op, value, case_sensitive)
    ctx = context({"fields": {"x": actual}}, now=now)
    plain = rule(cond)
    assert_agrees([rule(shape) for shape in shapes(cond)], [ctx])
    if want is ERROR:
        assert evaluate(plain, ctx).error is not None and not matches(plain, ctx)
    else:
        assert matches(plain, ctx) is want


# -- whole rules ----------------------------------------------------------------------------------


def test_an_error_anywhere_spoils_the_match_even_when_the_rest_holds() -> None:
    raising = leaf(X, Op.EQUALS, "E42")  # the field holds a list: equals raises
    ctx = context({"fields": {"x": ["E42"]}})
    for cond in (Any_((TRUE, raising), "if.any", None),
                 Not(All((FALSE, raising), "if.not.all", None), "if.not", None),
                 Any_((All((FALSE, raising), "a", None), TRUE), "if.any", None)):
        assert evaluate(rule(cond), ctx).error is not None
        assert not matches(rule(cond), ctx)
    assert assert_agrees([rule(Any_((TRUE, raising), "if.any", None)), rule(TRUE)],
                         [ctx]) == {False, True}


def test_a_regex_timeout_is_no_match_on_every_path() -> None:
    redos = leaf("ticket.description", Op.MATCHES, "(a+)+$")
    ctx = context({"description": "a" * 50_000 + "b"})
    rules = [rule(redos), rule(Not(redos, "if.not", None)),
             rule(Any_((TRUE, redos), "if.any", None)), rule(TRUE)]
    assert assert_agrees(rules, [ctx]) == {False, True}
    assert [matches(r, ctx) for r in rules] == [False, False, False, True]
    assert "gave up" in (evaluate(rules[2], ctx).error or "")


def test_rules_without_conditions_other_events_and_off_mode() -> None:
    always = rule(None, on=("ticket.created",))
    off = rule(TRUE, mode=Mode.OFF)
    ctx = context()
    assert matches(always, context(event_type="ticket.created"))
    assert not matches(always, ctx)  # evaluate says "skipped"
    assert matches(off, ctx) is evaluate(off, ctx).matched is True  # mode is the engine's call
    ruleset = RuleSet((always, off, rule(TRUE, rule_id="on")))
    assert [r.id for r in ruleset.matching(ctx)] == ["on"]  # off rules are not for_event's


RULES = """\
rules:
  - id: tag-added
    on: [ticket.updated]
    if: {field: ticket.tags, op: changed_to, value: bug_confirmed}
    then: [{zendesk.update: {add_tags: [x]}}]
  - id: tag-removed
    on: [ticket.updated]
    if: {field: ticket.tags, op: changed_from, value: VIP}
    then: [{zendesk.update: {add_tags: [x]}}]
  - id: status
    on: [ticket.updated]
    if:
      all:
        - {field: ticket.status, op: changed_to, value: solved}
        - {field: ticket.priority, op: in, value: [high, urgent]}
    then: [{zendesk.update: {add_tags: [x]}}]
  - id: any-tags
    on: [ticket.updated]
    if:
      any:
        - {field: ticket.tags, op: contains_any, value: [vip, enterprise]}
        - {field: ticket.fields.error_code, op: equals, value: E42}
        - not: {field: ticket.priority, op: not_in, value: [urgent]}
    then: [{zendesk.update: {add_tags: [x]}}]
  - id: all-tags
    on: [ticket.updated]
    if: {field: ticket.tags, op: contains_all, value: [bug, billing]}
    then: [{zendesk.update: {add_tags: [x]}}]
  - id: assignee
    on: [ticket.updated]
    if:
      all:
        - {field: ticket.assignee_id, op: changed}
        - {field: ticket.group_id, op: in, value: [12, 13]}
    then: [{zendesk.update: {add_tags: [x]}}]
  - id: ungated
    on: [ticket.updated]
    if: {not: {field: ticket.tags, op: contains, value: spam}}
    then: [{zendesk.update: {add_tags: [x]}}]
"""

ODD_TICKETS: list[dict[str, Any]] = [
    {"tags": ["bug", "billing"], "status": "solved", "priority": "HIGH"},
    {"tags": "bug billing vip", "priority": "urgent"},         # tags as text: substring tests
    {"tags": ["VIP", 7], "priority": 3, "group_id": "12"},      # odd elements, number as text
    {"tags": ("Enterprise",), "priority": None, "group_id": 12},
    {"tags": None, "fields": {"error_code": "e42"}},
    {"tags": [None, "bug"], "fields": {"error_code": ["E42"]}},  # equals on a list raises
    {"tags": {"vip": True}, "priority": ["urgent"]},
    {},
]
ODD_CHANGES: list[dict[str, Change]] = [
    {},
    {"tags": Change(["bug"], ["bug", "bug_confirmed"])},
    {"tags": Change(["vip"], "bug_confirmed_later")},             # list -> text: substring
    {"tags": Change("VIP and more", ["x"])},
    {"tags": Change(None, ["BUG_CONFIRMED"]), "status": Change("open", "Solved")},
    {"tags": Change(["Vip", 3], []), "status": Change(None, ["solved"])},
    {"status": Change("solved", "solved"), "assignee_id": Change(None, 5)},
    {"tags": Change(("a",), ("bug_confirmed", None)), "status": Change(1, "solved")},
]


def test_matching_gates_never_hide_a_rule_that_evaluate_matches() -> None:
    ruleset = load_text(RULES)
    seen: set[str] = set()
    for ticket, changes in itertools.product(ODD_TICKETS, ODD_CHANGES):
        ctx = context(ticket, changes=changes)
        want = tuple(r for r in ruleset.for_event("ticket.updated")
                     if evaluate(r, ctx).matched)
        assert ruleset.matching(ctx) == want, (ticket, changes)
        seen.update(r.id for r in want)
    assert seen == {r.id for r in ruleset}  # every rule matched somewhere


def test_for_event_is_indexed_but_unchanged() -> None:
    ruleset = load_bench_rules(60, seed=2)
    for event_type in ("ticket.created", "ticket.updated", "ticket.solved", "nope"):
        assert ruleset.for_event(event_type) == tuple(
            r for r in ruleset.rules if r.mode is not Mode.OFF and event_type in r.on)
    ctx = next(events(1))
    before = ruleset.matching(ctx)
    copy = pickle.loads(pickle.dumps(ruleset))
    assert copy == ruleset and copy.matching(ctx) == before


def test_same_leaf_in_many_rules_is_decided_once_per_event_alike() -> None:
    shared = leaf("ticket.subject", Op.MATCHES, r"\brefund\b")
    timed = leaf("ticket.created_at", Op.OLDER_THAN, "2h")
    rules = [rule(All((shared, timed), "a", None)), rule(Not(shared, "b", None)),
             rule(Any_((shared, FALSE), "c", None)), rule(Not(timed, "d", None))]
    assert assert_agrees(rules, (
        context({"subject": subject, "created_at": created})
        for subject, created in itertools.product(
            ("Refund please", "no", None, ["refund"], {"a": 1}),
            ((NOW - timedelta(hours=3)).isoformat(), "soon", None, NOW)))) == {True, False}
