"""PagerDuty's ``incident.triggered`` webhook end to end: the stand-in sends it when the hub's
page opens an incident, and the hub records which incident (id and link) its escalation opened,
without running any rule."""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa

from sandbox import Sandbox
from sandbox.demo import load_sample, seed_organizations, zendesk_ticket
from sync.schema import escalations, links
from tests.e2e.conftest import FIELD_IDS, config_with, inbox, outbox, rows

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "config.yaml").read_text(encoding="utf-8")
#: The shipped escalation rules (enterprise page, priority change, PagerDuty back, solve).
ESCALATION_RULES = (
    "  - id: enterprise-down-page"
    + SHIPPED.split("  - id: enterprise-down-page")[1].split("  - id: checkout-outage")[0]
)


def _page(sb: Sandbox) -> int:
    spec = {
        "subject": "Nothing loads",
        "description": "All users see errors.",
        "priority": "urgent",
        "type": "incident",
        "status": "open",
        "tags": ["outage"],
        "organization_id": 501,
        "fields": {"product_area": "checkout"},
    }
    ticket = int(sb.zendesk.create_ticket(zendesk_ticket(spec, FIELD_IDS))["id"])
    sb.zendesk.deliver(ticket, style="trigger", event_type="ticket.created")
    return ticket


def test_the_incident_a_page_opened_is_recorded_on_its_escalation(sb, make_hub, tmp_path):
    seed_organizations(sb, load_sample())
    hub = make_hub(config_with(tmp_path, ESCALATION_RULES))
    ticket = _page(sb)
    assert hub.wait_idle(30)

    [incident] = sb.pagerduty.incidents()
    assert incident["incident_key"] == f"switchboard/ticket:{ticket}"
    [delivery] = sb.pagerduty.deliveries()
    assert delivery.payload()["event"]["event_type"] == "incident.triggered"
    assert delivery.status == 202
    with hub.store.read() as conn:
        [escalation] = conn.execute(
            sa.select(escalations).where(escalations.c.dedup_key == incident["incident_key"])
        ).all()
    assert escalation.pd_incident_id == incident["id"]
    assert escalation.pd_url == incident["html_url"]
    assert (escalation.pd_status, escalation.status) == ("triggered", "open")
    # The ticket's page link carries the incident's URL, whichever of the trigger's answer and
    # this webhook was recorded first.
    [link] = rows(hub, links, links.c.ticket_id == ticket, links.c.system == "pagerduty")
    assert (link.ref, link.url) == (incident["incident_key"], incident["html_url"])
    [stored] = rows(hub, inbox, inbox.c.kind == "incident.triggered")
    assert stored.status == "done"
    assert "recorded" in stored.outcome
    # It only maps the incident: no rule ran, nothing more was sent.
    assert [e["event_action"] for e in sb.pagerduty.events()] == ["trigger"]
    [root] = sb.slack.messages("#support-escalations")
    assert len(sb.slack.thread("#support-escalations", root["ts"])) == 1
    assert not rows(hub, outbox, outbox.c.status.in_(["dead", "pending"]))


def test_a_triggered_webhook_after_the_page_was_recorded_gives_the_link_its_url(
        sb, make_hub, tmp_path):
    seed_organizations(sb, load_sample())
    hub = make_hub(config_with(tmp_path, ESCALATION_RULES))
    sb.pagerduty.triggered_delay = 1.0  # as PagerDuty does: some time after the 202
    ticket = _page(sb)
    assert hub.wait_idle(30)
    [link] = rows(hub, links, links.c.ticket_id == ticket, links.c.system == "pagerduty")
    assert link.url is None  # the page is recorded; PagerDuty has not said where it lives yet
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not sb.pagerduty.deliveries():
        time.sleep(0.05)
    assert hub.wait_idle(30)
    [incident] = sb.pagerduty.incidents()
    [link] = rows(hub, links, links.c.ticket_id == ticket, links.c.system == "pagerduty")
    assert link.url == incident["html_url"]


def test_a_redelivered_incident_triggered_is_stored_once(sb, make_hub, tmp_path):
    seed_organizations(sb, load_sample())
    hub = make_hub(config_with(tmp_path, ESCALATION_RULES))
    _page(sb)
    assert hub.wait_idle(30)
    [delivery] = sb.pagerduty.deliveries()

    assert sb.pagerduty.redeliver(delivery.webhook_id) == 202
    assert hub.wait_idle(30)

    assert len(rows(hub, inbox, inbox.c.kind == "incident.triggered")) == 1
