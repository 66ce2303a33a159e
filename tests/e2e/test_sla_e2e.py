"""SLA watch end to end: the real hub (scan, inbox, processor, dispatcher) and the real Zendesk,
Slack and PagerDuty connectors over HTTP(S) against the sandbox. The shipped ``sla:`` targets
(urgent: enterprise 4h to resolution, others 8h); scans run at chosen instants, as the scheduler
would run them at those minutes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sandbox import Sandbox
from sandbox.demo import load_sample, seed_organizations, zendesk_ticket
from sync.schema import decisions, sla_alerts
from tests.e2e.conftest import FIELD_IDS, config_with, inbox, internal_notes, outbox, rows

RULES = """\
  - id: sla-warn-team
    on: [sla.warning]
    then:
      - slack.post:
          channel: "#support-team"
          text: >-
            SLA warning: ticket #{{ ticket.id }} has {{ sla.minutes_left }} min left to its
            {{ sla.target }} target.
  - id: sla-page-enterprise
    on: [sla.breached]
    if: {field: organization.fields.plan_tier, op: equals, value: enterprise}
    then:
      - pagerduty.trigger:
          service: platform
          severity: error
          summary: >-
            SLA breached on ticket #{{ ticket.id }} ({{ organization.name }}):
            {{ sla.minutes_over }} min over
      - zendesk.update:
          note: >-
            SLA {{ sla.target }} target missed; the on-call was paged
            ({{ pagerduty.dedup_key }}).
          add_tags: [sla_breached]
"""


def _ticket(sb: Sandbox, org: int, subject: str) -> tuple[int, datetime]:
    spec = {"subject": subject, "description": "Exports time out.", "priority": "urgent",
            "type": "incident", "status": "open", "tags": ["exports"], "organization_id": org}
    created = sb.zendesk.create_ticket(zendesk_ticket(spec, FIELD_IDS))
    sb.zendesk.deliver(int(created["id"]), style="trigger", event_type="ticket.created")
    return int(created["id"]), datetime.fromisoformat(created["created_at"])


def test_a_warning_posts_to_slack_once_and_a_breach_pages_for_enterprise_only(
        sb, make_hub, tmp_path):
    seed_organizations(sb, load_sample())  # 501 Acme: enterprise, 502 Brightside: growth
    sb.slack.add_channel("support-team")
    hub = make_hub(config_with(tmp_path, RULES), sla={"scan_interval_seconds": 3600})
    acme, t0 = _ticket(sb, 501, "Exports fail for Acme")
    brightside, _ = _ticket(sb, 502, "Exports fail for Brightside")
    solved, _ = _ticket(sb, 503, "Exports fail for Cobalt")  # enterprise, solved in time
    assert hub.wait_idle(30)
    sb.zendesk.update_ticket(solved, {"status": "solved"})
    sb.zendesk.deliver(solved, style="trigger", event_type="ticket.updated")
    assert hub.wait_idle(30)
    # The first warning's answer is lost after Slack posted it: found by its key, not reposted.
    sb.faults.add("slack", "POST", r"/api/chat\.postMessage$", kind="reset_after_commit")

    def scan(offset: timedelta) -> list[tuple[int, str]]:
        result = hub.scan_sla_now(t0 + offset)
        assert hub.wait_idle(30)
        return sorted((a.ticket_id, a.kind) for a in result.raised)

    assert scan(timedelta(hours=3, minutes=29)) == []
    assert scan(timedelta(hours=3, minutes=30)) == [(acme, "sla.warning")]
    assert scan(timedelta(hours=3, minutes=30)) == []
    assert scan(timedelta(hours=3, minutes=45)) == []
    [warning] = sb.slack.messages("#support-team")
    assert warning["text"] == (f"SLA warning: ticket #{acme} has 30 min left to its resolution "
                               "target.")
    assert sb.requests.count("slack", "POST", r"chat\.postMessage") == 1

    assert scan(timedelta(hours=4)) == [(acme, "sla.breached")]
    [trigger] = [e for e in sb.pagerduty.events() if e.get("event_action") == "trigger"]
    assert trigger["dedup_key"] == f"switchboard/ticket:{acme}"
    assert trigger["payload"]["summary"] == (
        f"SLA breached on ticket #{acme} (Acme Logistics): 0 min over")
    assert any(n["body"] == "SLA resolution target missed; the on-call was paged "
               f"(switchboard/ticket:{acme})." for n in internal_notes(sb, acme))

    # Brightside (growth): warned in Slack, breached without a page.
    assert scan(timedelta(hours=7, minutes=31)) == [(brightside, "sla.warning")]
    assert scan(timedelta(hours=8, minutes=2)) == [(brightside, "sla.breached")]
    assert scan(timedelta(hours=9)) == []
    assert [m["text"].split(" has ")[0] for m in sb.slack.messages("#support-team")] == [
        f"SLA warning: ticket #{acme}", f"SLA warning: ticket #{brightside}"]
    assert len([e for e in sb.pagerduty.events() if e.get("event_action") == "trigger"]) == 1
    [page_decision] = rows(hub, decisions, decisions.c.ticket_id == brightside,
                           decisions.c.rule_id == "sla-page-enterprise")
    assert (page_decision.event_type, page_decision.matched) == ("sla.breached", False)

    # The solved ticket: no alert at all; each other alert once, each event explained.
    assert sorted((a.ticket_id, a.kind) for a in rows(hub, sla_alerts)) == sorted([
        (acme, "sla.warning"), (acme, "sla.breached"),
        (brightside, "sla.warning"), (brightside, "sla.breached")])
    events = rows(hub, inbox, inbox.c.source == "sla")
    assert [e.status for e in events] == ["done"] * 4
    assert all("intent(s) planned" in e.outcome for e in events)
    assert not rows(hub, outbox, outbox.c.status.in_(["dead", "pending"]))
