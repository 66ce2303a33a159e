"""``while_open:``: actions run for each match that joins a window's open episode (rules.engine)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from textwrap import dedent

import pytest

from connectors.models import Ticket
from rules import EvalContext, ProblemsError, RuleSet, load_rules, load_yaml
from rules.engine import MemoryRuleState, decide

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
CUSTOM_FIELDS = ("error_code",)

OUTAGE = """\
rules:
  - id: outage
    on: [ticket.created]
    if: {field: ticket.tags, op: contains, value: outage}
    window: {count: 3, within: 15m, group_by: ticket.fields.error_code, quiet_for: 30m}
    then:
      - zendesk.update:
          note: "outage: {{ window.count }} tickets with {{ window.group }}"
    while_open:
      - zendesk.update:
          note: "joined: now {{ window.count }} tickets"
      - zendesk.update:
          add_tags: [outage_joined]
    after_quiet:
      - zendesk.update:
          note: "quiet after {{ window.count }} tickets"
"""

NO_WHILE_OPEN = """\
rules:
  - id: outage
    on: [ticket.created]
    if: {field: ticket.tags, op: contains, value: outage}
    window: {count: 3, within: 15m, group_by: ticket.fields.error_code, quiet_for: 30m}
    then:
      - zendesk.update:
          note: "outage: {{ window.count }} tickets"
"""


def load(text: str) -> RuleSet:
    return load_rules([load_yaml(dedent(text), "r.yaml")], custom_fields=CUSTOM_FIELDS)


def load_problems(text: str) -> list[str]:
    with pytest.raises(ProblemsError) as info:
        load(text)
    return [str(p) for p in info.value.problems]


def ctx(ticket_id: int, at: datetime, *, code: str = "E1") -> EvalContext:
    ticket = Ticket(
        id=ticket_id, updated_at=at, created_at=at, subject="Checkout fails",
        description="Clicking pay shows error.", status="open", priority="high",
        type="incident", tags=("outage",), requester_id=7, organization_id=70,
        custom_fields={"error_code": code},
        url=f"https://acme.zendesk.com/agent/tickets/{ticket_id}")
    return EvalContext.for_ticket(ticket, event_type="ticket.created", event_source="webhook",
                                  now=at)


def run(rules: RuleSet, state: MemoryRuleState, context: EvalContext):
    key = f"zendesk:ticket:{context.ticket['id']}:{context.event_time.isoformat()}"
    follow_ups, outcomes = decide(rules, context, state, key)
    [outcome] = outcomes
    return follow_ups, outcome


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


# --- loading -------------------------------------------------------------------------------------


def test_while_open_without_a_window_is_a_load_error_naming_its_line():
    problems = load_problems("""\
        rules:
          - id: r
            on: [ticket.created]
            then: [{zendesk.update: {note: hi}}]
            while_open:
              - zendesk.update: {note: again}
        """)
    assert any(p.startswith("r.yaml:5: rules[0].while_open: 'while_open' needs a 'window'")
               for p in problems), problems


def test_an_empty_while_open_list_is_a_load_error():
    problems = load_problems(OUTAGE.replace(
        "    while_open:\n      - zendesk.update:\n          note: \"joined: now "
        "{{ window.count }} tickets\"\n      - zendesk.update:\n"
        "          add_tags: [outage_joined]\n",
        "    while_open: []\n"))
    assert any("r.yaml:9: rules[0].while_open: 'while_open' must be a non-empty list" in p
               for p in problems), problems


def test_while_open_that_is_not_a_list_is_a_load_error():
    problems = load_problems(NO_WHILE_OPEN + "    while_open: {zendesk.update: {note: x}}\n")
    assert any("rules[0].while_open: 'while_open' must be a non-empty list" in p
               for p in problems), problems


def test_while_open_is_kept_on_the_rule_in_order():
    [rule] = load(OUTAGE)
    assert [c.name for c in rule.while_open] == ["zendesk.update", "zendesk.update"]
    assert rule.while_open[0].params["note"] == "joined: now {{ window.count }} tickets"
    assert rule.while_open[1].params["add_tags"] == ("outage_joined",)


def test_while_open_templates_may_use_every_window_name():
    names = ("count", "group", "tickets", "within", "quiet_for", "opened_at", "last_match_at")
    note = " ".join(f"{{{{ window.{n} }}}}" for n in names)
    [rule] = load(NO_WHILE_OPEN + f"    while_open:\n      - zendesk.update: {{note: '{note}'}}\n")
    assert rule.while_open[0].params["note"] == note


@pytest.mark.parametrize(("template", "message"), [
    ("{{ nothing.here }}", "unknown name 'nothing'"),
    ("{{ window.cuont }}", "'window' has no 'cuont'"),
])
def test_a_while_open_template_naming_an_unknown_name_fails_to_load(template, message):
    problems = load_problems(
        NO_WHILE_OPEN + f"    while_open:\n      - zendesk.update: {{note: '{template}'}}\n")
    assert any("rules[0].while_open" in p and message in p for p in problems), problems


def test_a_while_open_step_with_an_unknown_action_fails_to_load():
    problems = load_problems(NO_WHILE_OPEN + "    while_open:\n      - zendesk.upd8: {note: x}\n")
    assert any("rules[0].while_open" in p for p in problems), problems


# --- deciding ------------------------------------------------------------------------------------


def test_matches_below_the_count_plan_nothing_and_the_third_fires_the_then_actions():
    rules, state = load(OUTAGE), MemoryRuleState()
    for n in (1, 2):
        _, out = run(rules, state, ctx(n, minutes(n)))
        assert out.matched and not out.fired
        assert out.intents == ()
        assert f"{n} of 3" in out.gate
    _, third = run(rules, state, ctx(3, minutes(3)))
    assert third.fired
    assert [i.action for i in third.intents] == ["zendesk.update"]
    assert third.intents[0].params["note"] == "outage: {{ window.count }} tickets with " \
        "{{ window.group }}"
    assert third.namespace["window"]["count"] == 3


def test_later_matches_join_the_episode_and_plan_the_while_open_actions():
    rules, state = load(OUTAGE), MemoryRuleState()
    for n in (1, 2, 3):
        _, fired = run(rules, state, ctx(n, minutes(n)))
    assert fired.fired
    fired_keys = {i.idempotency_key for i in fired.intents}

    joins = [run(rules, state, ctx(n, minutes(n)))[1] for n in (4, 5)]
    keys: list[str] = []
    for count, join in zip((4, 5), joins, strict=True):
        assert join.matched and not join.fired
        assert "while_open" in join.gate
        assert "already fired" in join.gate
        assert [(i.action, i.index) for i in join.intents] == [("zendesk.update", 0),
                                                               ("zendesk.update", 1)]
        assert join.intents[0].params["note"] == "joined: now {{ window.count }} tickets"
        assert join.intents[1].params["add_tags"] == ("outage_joined",)
        assert join.namespace["window"]["count"] == count
        assert join.window["count"] == count
        assert join.namespace["window"]["group"] == "E1"
        assert join.namespace["window"]["tickets"] == list(range(1, count + 1))
        assert join.error is None
        keys += [i.idempotency_key for i in join.intents]
    assert len(set(keys)) == 4  # distinct per event and per step
    assert fired_keys.isdisjoint(keys)


def test_a_join_replayed_with_the_same_event_key_plans_the_same_keys():
    """Idempotency: the keys are a function of the event, not of when it was decided."""
    rules_a, rules_b = load(OUTAGE), load(OUTAGE)
    keys = []
    for rules in (rules_a, rules_b):
        state = MemoryRuleState()
        for n in (1, 2, 3):
            run(rules, state, ctx(n, minutes(n)))
        _, join = run(rules, state, ctx(4, minutes(4)))
        assert len(join.intents) == 2
        keys.append([i.idempotency_key for i in join.intents])
    assert keys[0] == keys[1]


def test_a_rule_without_while_open_plans_nothing_for_a_join():
    rules, state = load(NO_WHILE_OPEN), MemoryRuleState()
    for n in (1, 2, 3):
        _, out = run(rules, state, ctx(n, minutes(n)))
    assert out.fired
    for n in (4, 5):
        _, join = run(rules, state, ctx(n, minutes(n)))
        assert join.matched and not join.fired
        assert join.intents == ()
        assert "already fired" in join.gate
        assert "while_open" not in join.gate


def test_a_match_in_another_group_does_not_join_the_open_episode():
    rules, state = load(OUTAGE), MemoryRuleState()
    for n in (1, 2, 3):
        run(rules, state, ctx(n, minutes(n)))
    _, other = run(rules, state, ctx(4, minutes(4), code="E2"))
    assert not other.fired and other.intents == ()
    assert "1 of 3" in other.gate


def test_after_the_quiet_period_after_quiet_runs_once_and_counting_starts_again():
    rules, state = load(OUTAGE), MemoryRuleState()
    for n in (1, 2, 3, 4):
        run(rules, state, ctx(n, minutes(n)))  # fires at 3, 4 joins: last match at +4m
    # 30m of quiet after +4m: the next event, at +40m, first ends the episode.
    follow_ups, out = run(rules, state, ctx(10, minutes(40)))
    [follow] = follow_ups
    assert follow.rule.id == "outage"
    assert [i.action for i in follow.intents] == ["zendesk.update"]
    assert follow.intents[0].params["note"] == "quiet after {{ window.count }} tickets"
    assert follow.namespace["window"]["count"] == 4
    # The match that came after the quiet period is counted afresh: no join, nothing planned.
    assert not out.fired and out.intents == ()
    assert "1 of 3" in out.gate
    assert "while_open" not in out.gate
    # after_quiet ran once: later events bring no further follow-up.
    follow_ups, out = run(rules, state, ctx(11, minutes(41)))
    assert follow_ups == []
    assert "2 of 3" in out.gate and out.intents == ()
    # The next burst fires again, then joins again.
    _, again = run(rules, state, ctx(12, minutes(42)))
    assert again.fired and [i.action for i in again.intents] == ["zendesk.update"]
    assert again.namespace["window"]["count"] == 3
    _, join = run(rules, state, ctx(13, minutes(43)))
    assert not join.fired and len(join.intents) == 2
    assert join.namespace["window"]["count"] == 4
    assert join.namespace["window"]["tickets"] == [10, 11, 12, 13]
