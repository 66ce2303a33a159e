"""Zendesk's own SLA state, end to end over HTTP against the sandbox: with ``sla.zendesk_slas``
the connector asks for it (``include=slas``) on export pages and ticket reads, snapshots keep it
— also across webhook states, which never carry it — and the SLA watch prefers its breach time
over the configured targets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from connectors.models import SlaMetric, parse_time
from connectors.settings import ZendeskSettings
from connectors.zendesk import ZendeskConnector
from rules import load_rules
from sandbox import Sandbox
from sync import inbox
from sync.config import PollerSettings
from sync.poller import ZendeskPoller
from sync.processor import EventProcessor
from sync.retry import RetryPolicy
from sync.sla import SlaWatch
from sync.sla_config import SlaSettings
from sync.state import get_snapshot
from sync.store import Store

SETTINGS = SlaSettings.model_validate({
    "enabled": True, "zendesk_slas": True, "warn_before": "30m",
    "targets": [{"priority": "*", "first_reply": "8h", "resolution": "3d"}]})


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def connector(sb: Sandbox, *, include_slas: bool = True) -> ZendeskConnector:
    return ZendeskConnector(ZendeskSettings(
        subdomain="sandbox", email="agent@example.com", api_token="zd-token",
        base_url=sb.zendesk_url), include_slas=include_slas)


def metrics(breach_at: str) -> list[dict[str, Any]]:
    return [{"metric": "first_reply_time", "stage": "achieved", "breach_at": None, "days": -1},
            {"metric": "total_resolution_time", "stage": "active", "breach_at": breach_at,
             "hours": 2}]


def test_reads_and_export_pages_carry_zendesk_sla_state_only_when_asked(sb):
    ticket_id = int(sb.zendesk.create_ticket({"subject": "Slow", "priority": "high"})["id"])
    sb.zendesk.set_slas(ticket_id, metrics("2026-03-02T11:00:00Z"))
    expected = (SlaMetric("first_reply_time", "achieved", None),
                SlaMetric("total_resolution_time", "active",
                          parse_time("2026-03-02T11:00:00Z")))
    zendesk = connector(sb)
    assert zendesk.get_ticket(ticket_id).slas == expected
    assert zendesk.get_ticket_and_people(ticket_id)[0].slas == expected
    page = zendesk.export_page(start_time=0)
    assert [t.slas for t in page.tickets] == [expected]
    assert all(e.query.get("include", "").split(",")[-1] == "slas"
               for e in sb.requests.entries("zendesk", "GET"))
    plain = connector(sb, include_slas=False)
    assert plain.get_ticket(ticket_id).slas == ()
    assert plain.export_page(start_time=0).tickets[0].slas == ()


def test_the_watch_prefers_the_breach_time_zendesk_gave_the_polled_snapshot(sb, store: Store):
    zendesk = connector(sb)
    ticket_id = int(sb.zendesk.create_ticket({"subject": "Slow", "priority": "high",
                                              "status": "open"})["id"])
    created = parse_time(sb.zendesk.ticket(ticket_id)["created_at"])
    assert created is not None
    breach = created + timedelta(hours=2)
    sb.zendesk.set_slas(ticket_id, metrics(breach.strftime("%Y-%m-%dT%H:%M:%SZ")))
    ZendeskPoller(store, zendesk, PollerSettings()).poll()  # the backfill: snapshots only
    watch = SlaWatch(store, SETTINGS, zendesk)
    [warning] = watch.scan(breach - timedelta(minutes=30)).raised
    assert (warning.due.source, warning.due.due_at, warning.due.target) == (
        "zendesk", breach, "resolution")


def test_a_webhook_state_keeps_the_sla_state_and_the_poll_of_it_refreshes_it(sb, store):
    zendesk = connector(sb)
    proc = EventProcessor(store, load_rules([], custom_fields=()), zendesk,
                          retry=RetryPolicy(3))
    ticket_id = int(sb.zendesk.create_ticket({"subject": "Slow", "priority": "high",
                                              "status": "open"})["id"])
    sb.zendesk.set_slas(ticket_id, metrics("2026-03-02T11:00:00Z"))
    poller = ZendeskPoller(store, zendesk, PollerSettings())
    poller.poll()  # backfill
    sb.zendesk.update_ticket(ticket_id, {"status": "pending"})
    sb.zendesk.set_slas(ticket_id, metrics("2026-03-02T15:00:00Z"))  # Zendesk re-planned it

    # A webhook (no SLA state) brings the change first: the stored SLA state stays.
    fields = connector(sb, include_slas=False).get_ticket(ticket_id).to_dict()
    inbox.accept(store, source="zendesk", kind="trigger",
                 entity_key=f"zendesk:ticket:{ticket_id}",
                 change_key=f"zendesk:ticket:{ticket_id}:{fields['updated_at']}:webhook",
                 payload={"style": "trigger", "complete": True, "fields": fields})
    [item] = inbox.acquire(store, "t/w", 1, 60)
    proc.process(item)
    with store.read() as conn:
        snapshot = get_snapshot(conn, ticket_id)
    assert snapshot is not None and snapshot.status == "pending"
    assert [m.breach_at for m in snapshot.slas] == [None, parse_time("2026-03-02T11:00:00Z")]

    # The export page of the same change carries Zendesk's new SLA state: it is kept.
    poller.poll()
    [item] = inbox.acquire(store, "t/w", 1, 60)
    assert proc.process(item).endswith("; Zendesk's SLA state refreshed")
    with store.read() as conn:
        snapshot = get_snapshot(conn, ticket_id)
    assert snapshot is not None
    assert [m.breach_at for m in snapshot.slas] == [None, parse_time("2026-03-02T15:00:00Z")]


def test_an_export_page_with_no_sla_policy_left_clears_the_stored_sla_state(sb, store):
    """Zendesk answers ``slas: {policy_metrics: []}`` for a ticket no policy applies to any
    more (its priority was lowered out of the policy, say): the stored breach time is gone, and
    the watch falls back to the configured targets instead of warning on Zendesk's old one."""
    zendesk = connector(sb)
    proc = EventProcessor(store, load_rules([], custom_fields=()), zendesk,
                          retry=RetryPolicy(3))
    ticket_id = int(sb.zendesk.create_ticket({"subject": "Slow", "priority": "high",
                                              "status": "open"})["id"])
    created = parse_time(sb.zendesk.ticket(ticket_id)["created_at"])
    assert created is not None
    breach = created + timedelta(hours=2)
    sb.zendesk.set_slas(ticket_id, metrics(breach.strftime("%Y-%m-%dT%H:%M:%SZ")))
    poller = ZendeskPoller(store, zendesk, PollerSettings())
    poller.poll()  # backfill: Zendesk's breach time stored
    sb.zendesk.update_ticket(ticket_id, {"priority": "low"})
    sb.zendesk.set_slas(ticket_id, [])  # no policy applies any more
    poller.poll()
    for item in inbox.acquire(store, "t/w", 10, 60):
        proc.process(item)
    with store.read() as conn:
        snapshot = get_snapshot(conn, ticket_id)
    assert snapshot is not None and (snapshot.priority, snapshot.slas) == ("low", ())
    watch = SlaWatch(store, SETTINGS, zendesk)
    assert watch.scan(breach - timedelta(minutes=30)).raised == []
    [warning] = watch.scan(created + timedelta(days=3, minutes=-30)).raised
    assert (warning.due.source, warning.due.target) == ("config", "resolution")
