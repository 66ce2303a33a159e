"""Escalations end to end: the real hub, the real PagerDuty and Slack connectors, over HTTP(S)
against the sandbox's stand-ins — one page and one thread per incident, kept in step."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sandbox import Sandbox
from sandbox.demo import load_sample, seed_organizations, zendesk_ticket
from tests.e2e.conftest import FIELD_IDS, config_with, internal_notes, outbox, rows

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "config.yaml").read_text(encoding="utf-8")
#: The shipped escalation rules (enterprise page, priority change, PagerDuty back, solve).
ESCALATION_RULES = "  - id: enterprise-down-page" + SHIPPED.split(
    "  - id: enterprise-down-page")[1].split("  - id: checkout-outage")[0]
OUTAGE_RULE = "  - id: checkout-outage" + SHIPPED.split("  - id: checkout-outage")[1]


def _ticket(sb: Sandbox, *, tags: list[str], priority: str = "urgent", org: int = 501,
            area: str = "checkout", subject: str = "Nothing loads") -> int:
    spec = {"subject": subject, "description": "All users see errors.", "priority": priority,
            "type": "incident", "status": "open", "tags": tags, "organization_id": org,
            "fields": {"product_area": area}}
    return int(sb.zendesk.create_ticket(zendesk_ticket(spec, FIELD_IDS))["id"])


def _deliver(sb: Sandbox, ticket_id: int, *, created: bool = True) -> None:
    sb.zendesk.deliver(ticket_id, style="trigger",
                       event_type="ticket.created" if created else "ticket.updated")


def _pd_events(sb: Sandbox, action: str) -> list[dict]:
    return [e for e in sb.pagerduty.events() if e.get("event_action") == action]


@pytest.fixture
def escalation_hub(sb, make_hub, tmp_path):
    seed_organizations(sb, load_sample())
    return make_hub(config_with(tmp_path, ESCALATION_RULES))


def test_an_escalation_pages_once_threads_once_and_follows_the_incident(sb, escalation_hub):
    hub = escalation_hub
    ticket = _ticket(sb, tags=["outage"])
    _deliver(sb, ticket)
    assert hub.wait_idle(30)

    triggers = _pd_events(sb, "trigger")
    assert len(triggers) == 1
    dedup_key = triggers[0]["dedup_key"]
    assert dedup_key == f"switchboard/ticket:{ticket}"
    assert triggers[0]["payload"]["summary"].startswith("Acme Logistics is down: Nothing loads")
    roots = sb.slack.messages("#support-escalations")
    assert len(roots) == 1
    root = roots[0]
    assert "Acme Logistics is down" in root["text"] and "1 ticket(s)" in root["text"]
    replies = sb.slack.thread("#support-escalations", root["ts"])
    assert [r["text"] for r in replies] == [
        f"Paged the platform on-call for ticket #{ticket} (urgent, Acme Logistics)."]
    notes = [n["body"] for n in internal_notes(sb, ticket)]
    assert any(dedup_key in n for n in notes)

    # A later change engineers must hear about: a reply in the thread, no new page or thread.
    sb.zendesk.update_ticket(ticket, {"priority": "high"})
    _deliver(sb, ticket, created=False)
    assert hub.wait_idle(30)
    assert len(_pd_events(sb, "trigger")) == 1
    assert len(sb.slack.messages("#support-escalations")) == 1
    assert sb.slack.thread("#support-escalations", root["ts"])[-1]["text"] == \
        f"Ticket #{ticket}: priority urgent → high."

    # The responder acknowledges in PagerDuty; the webhook is delivered twice.
    sb.pagerduty.acknowledge_incident(dedup_key, by="Alex Doe")
    delivery = sb.pagerduty.deliveries()[-1]
    sb.pagerduty.redeliver(delivery.webhook_id)
    assert hub.wait_idle(30)
    replies = [r["text"] for r in sb.slack.thread("#support-escalations", root["ts"])]
    assert replies.count("Acknowledged by Alex Doe.") == 1
    root = sb.slack.message("#support-escalations", root["ts"])
    assert "Acknowledged by Alex Doe" in root["text"]
    acknowledged = [n["body"] for n in internal_notes(sb, ticket)
                    if n["body"].startswith("Engineering acknowledged the page")]
    assert len(acknowledged) == 1 and "Alex Doe" in acknowledged[0]

    # An agent's internal note marked for engineering goes to the thread; a public reply that
    # starts the same way does not (customers' words stay in Zendesk).
    sb.zendesk.update_ticket(ticket, {"comment": {
        "body": "#eng Only Android users are affected.", "public": False}})
    _deliver(sb, ticket, created=False)
    assert hub.wait_idle(30)
    sb.zendesk.update_ticket(ticket, {"comment": {"body": "#eng hello", "public": True}})
    _deliver(sb, ticket, created=False)
    assert hub.wait_idle(30)
    replies = [r["text"] for r in sb.slack.thread("#support-escalations", root["ts"])]
    assert replies[-1] == f"Note from support on ticket #{ticket}: Only Android users are affected."
    assert not any("hello" in r for r in replies)

    # Solving the ticket resolves the page, once.
    sb.zendesk.update_ticket(ticket, {"status": "solved"})
    _deliver(sb, ticket, created=False)
    assert hub.wait_idle(30)
    assert [e["dedup_key"] for e in _pd_events(sb, "resolve")] == [dedup_key]
    assert sb.pagerduty.incidents()[-1]["status"] == "resolved"
    root = sb.slack.message("#support-escalations", root["ts"])
    assert "Resolved" in root["text"]
    assert sb.slack.thread("#support-escalations", root["ts"])[-1]["text"] == \
        f"Ticket #{ticket} was solved; the page is resolved."
    assert not rows(hub, outbox, outbox.c.status.in_(["dead", "pending"]))


def test_a_slack_post_whose_answer_is_lost_is_found_not_repeated(sb, escalation_hub):
    sb.faults.add("slack", "POST", r"/api/chat\.postMessage$", kind="reset_after_commit")
    ticket = _ticket(sb, tags=["service_down"])
    _deliver(sb, ticket)
    assert escalation_hub.wait_idle(30)
    roots = sb.slack.messages("#support-escalations")
    assert len(roots) == 1  # the root landed once; the retry found it by its key
    assert len(sb.slack.thread("#support-escalations", roots[0]["ts"])) == 1
    # Two posts: the root (once; the retry found it by its key) and the reply.
    assert sb.requests.count("slack", method="POST", path_regex=r"chat\.postMessage") == 2
    assert not rows(escalation_hub, outbox, outbox.c.status.in_(["dead", "pending"]))


def test_a_burst_of_100_tickets_opens_one_incident_and_one_thread_with_the_right_count(
        sb, make_hub, tmp_path):
    seed_organizations(sb, load_sample())
    hub = make_hub(config_with(tmp_path, OUTAGE_RULE))
    orgs = [501, 502, 503, 504, 505]
    tickets = [_ticket(sb, tags=["error_500"], priority="high", org=orgs[n % 5],
                       subject=f"Checkout fails ({n})") for n in range(100)]
    threads = [threading.Thread(target=_deliver, args=(sb, t)) for t in tickets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert hub.wait_idle(120)

    assert len(_pd_events(sb, "trigger")) == 1
    roots = sb.slack.messages("#support-outages")
    assert len(roots) == 1
    root = roots[0]
    assert "Possible outage: checkout" in root["text"]
    assert "100 ticket(s)" in root["text"]
    for name in ("Acme Logistics", "Brightside Dental", "Cobalt Freight", "Dunmore Schools",
                 "Evergreen Realty"):
        assert name in root["text"]
    assert sb.slack.thread("#support-outages", root["ts"]) == []
    updates = sb.requests.count("slack", method="POST", path_regex=r"chat\.update")
    assert 1 <= updates < 20  # joins coalesce: the root changes when a render finds news
    problems = [t for t in sb.zendesk.tickets() if t["type"] == "problem"]
    assert len(problems) == 1
    assert sb.zendesk.incidents(problems[0]["id"]) == sorted(tickets)
    # One creation, one attaching update per ticket: each join attaches what joined since.
    assert sb.requests.count("zendesk", method="POST", path_regex=r"^/api/v2/tickets") == 1
    assert sb.requests.count("zendesk", method="PUT", path_regex=r"^/api/v2/tickets/\d+") \
        == 100
    assert not rows(hub, outbox, outbox.c.status.in_(["dead", "pending"]))
