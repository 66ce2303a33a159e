"""SLA watch events through the processor, over the real Zendesk connector talking HTTP to the
sandbox: evaluated against the ticket as stored with ``sla.*``, explained in the decision log,
re-checked at processing time (a ticket solved meanwhile gets no alert)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from textwrap import dedent
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.models import parse_time
from connectors.settings import ZendeskSettings
from connectors.zendesk import ZendeskConnector
from rules import load_rules, load_yaml
from rules.source import ProblemsError
from rules.tester import EventFileError, parse_event, run_test
from sandbox import Sandbox
from sync import inbox
from sync.processor import EventProcessor
from sync.retry import RetryPolicy
from sync.schema import decisions, outbox
from sync.schema import inbox as inbox_table
from sync.sla import SlaWatch
from sync.sla_config import SlaSettings
from sync.state import put_snapshot
from sync.store import Store

ORG_FIELDS = ("plan_tier",)
RULES = """\
    rules:
      - id: warn-enterprise
        on: [sla.warning]
        if: {field: organization.fields.plan_tier, op: equals, value: enterprise}
        then:
          - zendesk.update:
              note: >-
                {{ sla.target }} due {{ sla.due_at }}: {{ sla.minutes_left }} min left
                ({{ sla.source }}, {{ sla.plan }}, {{ event.type }})
              add_tags: [sla_warned]
      - id: breached
        on: [sla.breached]
        then: [{zendesk.update: {note: "{{ sla.minutes_over }} min over", add_tags: [sla_late]}}]
"""


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        sandbox.zendesk.create_organization(
            {"id": 501, "name": "Globex", "organization_fields": {"plan_tier": "enterprise"}})
        yield sandbox


class Hub:
    """A processor and an SLA watch over the real connector (the hub's two halves)."""

    def __init__(self, sb: Sandbox, store: Store, rules_text: str = RULES,
                 targets: list[dict[str, str]] | None = None) -> None:
        self.sb, self.store = sb, store
        self.zendesk = ZendeskConnector(ZendeskSettings(
            subdomain="sandbox", email="agent@example.com", api_token="zd-token",
            base_url=sb.zendesk_url, organization_fields=ORG_FIELDS))
        rules = load_rules([load_yaml(dedent(rules_text), "rules.yaml")], custom_fields=(),
                           organization_fields=ORG_FIELDS)
        settings = SlaSettings.model_validate({
            "enabled": True, "warn_before": "30m",
            "targets": targets or [{"priority": "urgent", "first_reply": "1h",
                                    "resolution": "4h"}]})
        self.proc = EventProcessor(store, rules, self.zendesk, retry=RetryPolicy(3),
                                   organization_fields=ORG_FIELDS, sla=settings)
        self.watch = SlaWatch(store, settings, self.zendesk)

    def ticket(self, **data: Any) -> int:
        """A ticket in the sandbox, stored as the poller would have stored it."""
        data = {"subject": "Exports fail", "priority": "urgent", "status": "open",
                "organization_id": 501, **data}
        ticket_id = int(self.sb.zendesk.create_ticket(data)["id"])
        self.store_state(ticket_id)
        return ticket_id

    def store_state(self, ticket_id: int) -> None:
        with self.store.write() as conn:
            put_snapshot(conn, self.zendesk.get_ticket(ticket_id))

    def created(self, ticket_id: int) -> Any:
        return parse_time(self.sb.zendesk.ticket(ticket_id)["created_at"])

    def process(self) -> list[str]:
        """Process every pending event; the sandbox's request log is cleared first."""
        self.sb.requests.clear()
        return [self.proc.process(item) for item in inbox.acquire(self.store, "t/w", 50, 60)]

    def rows(self, table: sa.Table) -> list[sa.Row]:
        with self.store.read() as conn:
            return conn.execute(sa.select(table).order_by(table.c.id)).all()


def test_a_warning_is_decided_with_the_ticket_its_organization_and_the_target(sb, store):
    hub = Hub(sb, store)
    ticket_id = hub.ticket()
    at = hub.created(ticket_id) + timedelta(hours=3, minutes=30)
    assert len(hub.watch.scan(at).raised) == 1
    [outcome] = hub.process()
    assert outcome.startswith("sla.warning resolution (due ")
    assert "read organization.fields.plan_tier" in outcome
    assert outcome.endswith("matched: warn-enterprise; 1 intent(s) planned")
    assert [r.path for r in sb.requests.entries("zendesk")] == [
        "/api/v2/organizations/501.json"]  # the rule reads the tier; the ticket is stored
    [decision] = hub.rows(decisions)
    assert (decision.rule_id, decision.event_type, decision.matched, decision.ticket_id) == (
        "warn-enterprise", "sla.warning", True, ticket_id)
    [intent] = hub.rows(outbox)
    assert (intent.action, intent.ticket_id, intent.status) == (
        "zendesk.update", ticket_id, "pending")
    assert intent.context["sla"] == {
        "target": "resolution", "due_at": intent.context["sla"]["due_at"], "minutes_left": 30,
        "minutes_over": None, "priority": "urgent", "plan": None, "source": "config"}
    assert intent.context["event"] == {"type": "sla.warning", "source": "sla"}


def test_a_ticket_solved_before_the_event_is_processed_gets_no_alert(sb, store):
    hub = Hub(sb, store)
    ticket_id = hub.ticket()
    hub.watch.scan(hub.created(ticket_id) + timedelta(hours=4))
    sb.zendesk.update_ticket(ticket_id, {"status": "solved"})
    hub.store_state(ticket_id)  # the solve was processed first (order per ticket)
    [outcome] = hub.process()
    assert outcome.endswith("the ticket is solved; no alert")
    assert hub.rows(decisions) == [] and hub.rows(outbox) == []
    assert [r.status for r in hub.rows(inbox_table)] == ["done"]


def test_an_alert_whose_target_moved_since_the_scan_is_superseded(sb, store):
    hub = Hub(sb, store)
    ticket_id = hub.ticket(status="new")
    hub.watch.scan(hub.created(ticket_id) + timedelta(minutes=30))  # first reply: 1h
    sb.zendesk.update_ticket(ticket_id, {"status": "pending",
                                         "comment": {"body": "On it", "public": True}})
    hub.store_state(ticket_id)
    assert hub.process() == [
        f"sla.warning first_reply (due {hub.rows(inbox_table)[0].payload['due_at']}): the "
        "first reply is done (the ticket is pending, no longer new); no alert"]
    hub.watch.scan(hub.created(ticket_id) + timedelta(hours=3, minutes=30))
    sb.zendesk.update_ticket(ticket_id, {"priority": "high"})
    hub.store_state(ticket_id)
    [outcome] = hub.process()
    assert outcome.endswith("superseded: the priority is now high (it was urgent when the "
                            "scan raised it); no alert")
    assert hub.rows(decisions) == []


def test_a_priority_change_that_keeps_the_due_time_keeps_the_alert(sb, store):
    """Low and normal share the "*" target: the change does not move the due time, so the
    warning the scan raised is still that target's one warning. Dropped as superseded, it was
    lost: the next scan finds the same target instance already raised."""
    hub = Hub(sb, store, targets=[{"priority": "urgent", "resolution": "4h"},
                                  {"priority": "*", "resolution": "8h"}])
    ticket_id = hub.ticket(priority="low")
    at = hub.created(ticket_id) + timedelta(hours=7, minutes=30)
    assert len(hub.watch.scan(at).raised) == 1
    sb.zendesk.update_ticket(ticket_id, {"priority": "normal"})
    hub.store_state(ticket_id)  # the change was processed first (order per ticket)
    [outcome] = hub.process()
    assert outcome.endswith("matched: warn-enterprise; 1 intent(s) planned")
    assert hub.watch.scan(at + timedelta(minutes=1)).raised == []
    [intent] = hub.rows(outbox)
    assert intent.context["sla"]["due_at"] == hub.rows(inbox_table)[0].payload["due_at"]


def test_a_priority_change_whose_plan_tier_moves_the_due_time_supersedes_the_alert(sb, store):
    """Low has no plan-dependent target (the scan did not read the tier); urgent has one for
    enterprise, which Globex is: the due time moved from 8h to 4h, a new target instance."""
    hub = Hub(sb, store, targets=[
        {"priority": "urgent", "plan": "enterprise", "resolution": "4h"},
        {"priority": "*", "resolution": "8h"}])
    ticket_id = hub.ticket(priority="low")
    at = hub.created(ticket_id) + timedelta(hours=7, minutes=30)
    [warning] = hub.watch.scan(at).raised
    assert warning.due.plan is None
    sb.zendesk.update_ticket(ticket_id, {"priority": "urgent"})
    hub.store_state(ticket_id)
    [outcome] = hub.process()
    assert outcome.endswith("superseded: the priority is now urgent (it was low when the scan "
                            "raised it); no alert")
    assert [(a.kind, a.due.due_at - hub.created(ticket_id), a.due.plan)
            for a in hub.watch.scan(at + timedelta(minutes=1)).raised] == [
        ("sla.breached", timedelta(hours=4), "enterprise")]


def test_a_breach_needs_no_read_when_no_rule_reads_the_people(sb, store):
    hub = Hub(sb, store)
    ticket_id = hub.ticket()
    hub.watch.scan(hub.created(ticket_id) + timedelta(hours=4, minutes=7))
    [outcome] = hub.process()
    assert outcome.endswith("matched: breached; 1 intent(s) planned")
    assert sb.requests.entries("zendesk") == []
    [intent] = hub.rows(outbox)
    assert intent.context["sla"]["minutes_over"] == 7


def test_sla_rules_load_with_ticket_actions_and_refuse_fields_sla_events_do_not_carry():
    load_rules([load_yaml(dedent("""\
        rules:
          - id: post
            on: [sla.warning, sla.breached]
            if: {field: sla.minutes_left, op: lt, value: 20}
            then: [{slack.post: {channel: "#support-team", text: "{{ sla.target }}"}}]
          - id: anywhere
            on: [jira.issue.updated]
            then: [{slack.post: {channel: "#eng", text: "{{ issue.key }}"}}]
        """), "ok.yaml")], custom_fields=())
    with pytest.raises(ProblemsError) as caught:
        load_rules([load_yaml(dedent("""\
            rules:
              - id: bad
                on: [sla.warning]
                if: {field: changes.priority.from, op: exists}
                then: [{zendesk.update: {note: "{{ sla.nope }}"}}]
            """), "bad.yaml")], custom_fields=())
    rendered = caught.value.render()
    assert "bad.yaml:4" in rendered and "'changes.priority.from' is not carried by sla.warning" \
        in rendered
    assert "template: 'sla' has no 'nope' (hint: it has: due_at, minutes_left, minutes_over, " \
        "plan, priority, source, target)" in rendered


def test_switchboard_test_decides_an_sla_event_file_like_the_hub():
    rules = load_rules([load_yaml(dedent(RULES), "rules.yaml")], custom_fields=(),
                       organization_fields=ORG_FIELDS)
    ctx = parse_event({
        "type": "sla.warning", "ticket": {"id": 4012, "priority": "urgent", "status": "open"},
        "organization": {"name": "Globex", "fields": {"plan_tier": "enterprise"}},
        "sla": {"target": "resolution", "due_at": "2026-03-02T13:00:00Z", "minutes_left": 30,
                "priority": "urgent", "source": "config"}},
        organization_fields=ORG_FIELDS)
    [outcome] = run_test(rules, ctx).outcomes
    assert outcome.matched
    [action] = outcome.actions
    assert action.params["note"] == (
        "resolution due 2026-03-02T13:00:00Z: 30 min left (config, None, sla.warning)")
    with pytest.raises(EventFileError) as caught:
        parse_event({"type": "ticket.updated", "ticket": {"id": 1}, "sla": {"nope": 1}})
    assert caught.value.problems == ["sla: only sla.warning and sla.breached events carry one"]
