"""Rule gates (windows, throttles) and shadow mode, decided by rules.engine on in-memory state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rules import Change, EvalContext, ProblemsError
from rules.engine import MemoryRuleState, decide, sweep

from .helpers import CUSTOM_FIELDS, load_text, make_ticket

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

SPIKE = """\
rules:
  - id: spike
    on: [ticket.created]
    if: {field: ticket.tags, op: contains, value: outage}
    window: {count: 3, within: 15m, group_by: ticket.fields.error_code, quiet_for: 30m}
    then:
      - zendesk.update:
          note: "{{ window.count }} tickets with {{ window.group }} in {{ window.within }}"
    after_quiet:
      - zendesk.update:
          note: "quiet again after {{ window.count }} tickets: {{ window.tickets }}"
"""


def ctx(ticket_id: int, at: datetime, *, event: str = "ticket.created", code: str | None = "E1",
        tags: tuple[str, ...] = ("outage",), status: str = "open",
        changes: dict[str, Change] | None = None, org: int = 70) -> EvalContext:
    ticket = make_ticket(id=ticket_id, updated_at=at, tags=tags, status=status,
                         organization_id=org, custom_fields={"error_code": code})
    return EvalContext.for_ticket(ticket, event_type=event, event_source="webhook",
                                  changes=changes, now=at)


def run(rules, state, context, key=None):
    follow_ups, outcomes = decide(rules, context, state, key or f"e:{context.ticket['id']}:"
                                  f"{context.event_time.isoformat()}")
    return follow_ups, {o.rule.id: o for o in outcomes}


def test_window_fires_once_when_the_count_of_distinct_tickets_is_reached_in_time():
    rules, state = load_text(SPIKE), MemoryRuleState()
    _, first = run(rules, state, ctx(1, T0))
    assert first["spike"].matched and not first["spike"].fired
    assert "1 of 3 tickets within 15m" in first["spike"].gate
    # The same ticket again does not count twice.
    _, again = run(rules, state, ctx(1, T0 + timedelta(minutes=1), event="ticket.created"))
    assert "1 of 3" in again["spike"].gate
    run(rules, state, ctx(2, T0 + timedelta(minutes=5)))
    _, third = run(rules, state, ctx(3, T0 + timedelta(minutes=10)))
    fired = third["spike"]
    assert fired.fired and len(fired.intents) == 1
    assert fired.window == {**fired.window, "count": 3, "group": "E1", "tickets": [1, 2, 3]}
    assert fired.namespace["window"]["count"] == 3
    # The fourth match extends the episode without firing again.
    _, fourth = run(rules, state, ctx(4, T0 + timedelta(minutes=12)))
    assert not fourth["spike"].fired and "already fired" in fourth["spike"].gate


def test_window_counts_only_matches_inside_the_sliding_period():
    rules, state = load_text(SPIKE), MemoryRuleState()
    run(rules, state, ctx(1, T0))
    run(rules, state, ctx(2, T0 + timedelta(minutes=10)))
    _, late = run(rules, state, ctx(3, T0 + timedelta(minutes=16)))  # ticket 1 fell out
    assert not late["spike"].fired and "2 of 3" in late["spike"].gate


def test_window_groups_count_separately_and_an_empty_group_value_is_not_counted():
    rules, state = load_text(SPIKE), MemoryRuleState()
    for n, code in enumerate(("E1", "E2", "E1", "E2"), 1):
        _, out = run(rules, state, ctx(n, T0 + timedelta(minutes=n), code=code))
        assert not out["spike"].fired
    _, none = run(rules, state, ctx(9, T0 + timedelta(minutes=6), code=None))
    assert "is empty" in none["spike"].gate
    _, out = run(rules, state, ctx(5, T0 + timedelta(minutes=7), code="E2"))
    assert out["spike"].fired and out["spike"].window["group"] == "E2"


def test_after_the_quiet_period_the_follow_up_runs_once_and_the_next_burst_fires_again():
    rules, state = load_text(SPIKE), MemoryRuleState()
    for n in (1, 2, 3):
        run(rules, state, ctx(n, T0 + timedelta(minutes=n)))
    run(rules, state, ctx(4, T0 + timedelta(minutes=20)))  # extends: last match at +20m
    assert sweep(rules, state, T0 + timedelta(minutes=49)) == []
    [follow] = sweep(rules, state, T0 + timedelta(minutes=50))
    assert follow.rule.id == "spike" and follow.episode.count == 4
    assert follow.namespace["window"]["tickets"] == [1, 2, 3, 4]
    assert len(follow.intents) == 1 and follow.ticket_id == 4
    assert sweep(rules, state, T0 + timedelta(hours=5)) == []  # once
    # A new burst opens a new episode, with its own keys.
    keys = set()
    for n in (5, 6, 7):
        _, out = run(rules, state, ctx(n, T0 + timedelta(hours=6, minutes=n)))
    keys = {i.idempotency_key for i in out["spike"].intents}
    assert out["spike"].fired and keys.isdisjoint({i.idempotency_key for i in follow.intents})


def test_decide_ends_quiet_episodes_before_it_counts_the_event():
    rules, state = load_text(SPIKE), MemoryRuleState()
    for n in (1, 2, 3):
        run(rules, state, ctx(n, T0 + timedelta(minutes=n)))
    follow_ups, out = run(rules, state, ctx(8, T0 + timedelta(hours=2)))
    assert [f.rule.id for f in follow_ups] == ["spike"]
    assert "1 of 3" in out["spike"].gate  # the old episode is over; counting starts again


ONCE = """\
rules:
  - id: vip-note
    on: [ticket.created, ticket.updated]
    if: {field: ticket.tags, op: contains, value: vip}
    throttle: {once_until_resolved: true}
    then: [{zendesk.update: {note: "VIP"}}]
"""


def test_once_until_resolved_fires_once_per_ticket_until_it_is_solved():
    rules, state = load_text(ONCE), MemoryRuleState()
    at = T0
    _, out = run(rules, state, ctx(1, at, tags=("vip",)))
    assert out["vip-note"].fired
    _, out = run(rules, state, ctx(1, at + timedelta(minutes=1), event="ticket.updated",
                                   tags=("vip",)))
    assert not out["vip-note"].fired and "once_until_resolved" in out["vip-note"].gate
    _, other = run(rules, state, ctx(2, at + timedelta(minutes=1), tags=("vip",)))
    assert other["vip-note"].fired  # per ticket
    run(rules, state, ctx(1, at + timedelta(minutes=2), event="ticket.updated", tags=("x",),
                          status="solved", changes={"status": Change("open", "solved")}))
    _, reopened = run(rules, state, ctx(1, at + timedelta(minutes=3), event="ticket.updated",
                                        tags=("vip",),
                                        changes={"status": Change("solved", "open")}))
    assert reopened["vip-note"].fired


AT_MOST = """\
rules:
  - id: capped
    on: [ticket.created]
    if: {field: ticket.tags, op: contains, value: outage}
    throttle: {at_most: {count: 2, per: 1h, by: ticket.organization_id}}
    then: [{zendesk.update: {note: "capped"}}]
"""


def test_at_most_caps_fires_per_period_for_each_value_of_by():
    rules, state = load_text(AT_MOST), MemoryRuleState()
    fired = [run(rules, state, ctx(n, T0 + timedelta(minutes=n)))[1]["capped"].fired
             for n in (1, 2, 3)]
    assert fired == [True, True, False]
    _, third = run(rules, state, ctx(4, T0 + timedelta(minutes=4)))
    assert "fired 2 time(s) in the last 1h for ticket.organization_id=70" in third["capped"].gate
    _, other_org = run(rules, state, ctx(5, T0 + timedelta(minutes=5), org=71))
    assert other_org["capped"].fired
    _, later = run(rules, state, ctx(6, T0 + timedelta(minutes=62)))  # the first fire expired
    assert later["capped"].fired


def test_a_held_back_match_is_still_a_match_and_plans_nothing():
    rules, state = load_text(AT_MOST), MemoryRuleState()
    for n in (1, 2):
        run(rules, state, ctx(n, T0))
    _, out = run(rules, state, ctx(3, T0))
    held = out["capped"]
    assert held.matched and not held.fired and held.intents == ()
    trace = held.trace()
    assert trace["matched"] is True and trace["fired"] is False and "throttled" in trace["gate"]


def test_shadow_rules_are_decided_and_planned_but_marked_shadow():
    rules = load_text(AT_MOST.replace("  - id: capped\n", "  - id: capped\n    mode: shadow\n"))
    _, out = run(rules, MemoryRuleState(), ctx(1, T0))
    assert out["capped"].fired and out["capped"].rule.mode == "shadow"


@pytest.mark.parametrize(("gate", "message"), [
    ("window: {count: 0, within: 15m}", "5: rules[0].window.count: count must be a whole number"),
    ("window: {count: 3, within: soon}", "5: rules[0].window.within: bad duration 'soon'"),
    ("window: {count: 3}", "5: rules[0].window: window needs 'within'"),
    ("window: {count: 3, within: 5m, group_by: ticket.fields.nope}",
     "5: rules[0].window.group_by: custom field 'nope' is not configured"),
    ("window: {count: 3, within: 5m, size: 3}", "5: rules[0].window.size: unknown key 'size'"),
    ("window: 3", "5: rules[0].window: 'window' must be a mapping"),
    ("throttle: {}", "5: rules[0].throttle: throttle sets no limit"),
    ("throttle: {once_until_resolved: yes please}",
     "5: rules[0].throttle.once_until_resolved: once_until_resolved must be true or false"),
    ("throttle: {at_most: {count: 2}}", "5: rules[0].throttle.at_most: at_most needs 'per'"),
    ("throttle: {at_most: {count: 2, per: 1h, by: ticket.priorty}}",
     "5: rules[0].throttle.at_most.by: unknown field 'ticket.priorty'"),
    ("throttle: {at_most: {count: two, per: 1h}}",
     "5: rules[0].throttle.at_most.count: count must be a whole number"),
    ("after_quiet: [{zendesk.update: {note: x}}]", "5: rules[0].after_quiet: 'after_quiet' needs "
     "a 'window'"),
])
def test_gate_mistakes_are_reported_with_file_line(gate: str, message: str) -> None:
    text = ("rules:\n  - id: r\n    on: [ticket.created]\n"
            "    if: {field: ticket.tags, op: contains, value: x}\n"
            f"    {gate}\n    then: [{{zendesk.update: {{note: hi}}}}]\n")
    with pytest.raises(ProblemsError) as info:
        load_text(text, custom_fields=CUSTOM_FIELDS)
    assert any(str(p).startswith(f"a.yaml:{message}") for p in info.value.problems), \
        [str(p) for p in info.value.problems]


def test_window_names_in_templates_are_checked_and_only_available_with_a_window() -> None:
    with pytest.raises(ProblemsError) as info:
        load_text("rules:\n  - id: r\n    on: [ticket.created]\n"
                  "    then: [{zendesk.update: {note: '{{ window.count }}'}}]\n")
    assert "unknown name 'window'" in str(info.value.problems[0])
    with pytest.raises(ProblemsError) as info:
        load_text(SPIKE.replace("{{ window.count }} tickets", "{{ window.cuont }} tickets"))
    assert "'window' has no 'cuont'" in str(info.value.problems[0])
