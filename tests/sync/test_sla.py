"""The SLA watch's scan, with a controllable clock: each target warns once, at the minute its
``warn_before`` starts, and breaches once, at its due time — from what the store holds, reading
Zendesk only for a plan tier that matters (over HTTP, against the sandbox)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.models import SlaMetric, Ticket
from connectors.settings import ZendeskSettings
from connectors.zendesk import ZendeskConnector
from sandbox import Sandbox
from sync.schema import inbox, sla_alerts
from sync.sla import SlaWatch, dues_of
from sync.sla_config import SlaSettings
from sync.state import put_snapshot
from sync.store import Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TARGETS = [
    {"priority": "urgent", "plan": "enterprise", "first_reply": "30m", "resolution": "4h"},
    {"priority": "urgent", "first_reply": "1h", "resolution": "8h"},
    {"priority": "*", "plan": "enterprise", "resolution": "6h"},
    {"priority": "*", "first_reply": "8h", "resolution": "3d"},
]


def settings(**overrides: Any) -> SlaSettings:
    return SlaSettings.model_validate(
        {"enabled": True, "warn_before": "30m", "targets": TARGETS, **overrides})


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        for org_id, name, tier in ((501, "Acme", "Enterprise"), (502, "Brightside", "growth")):
            sandbox.zendesk.create_organization(
                {"id": org_id, "name": name, "organization_fields": {"plan_tier": tier}})
        yield sandbox


@pytest.fixture
def zendesk(sb: Sandbox) -> ZendeskConnector:
    return ZendeskConnector(ZendeskSettings(
        subdomain="sandbox", email="agent@example.com", api_token="zd-token",
        base_url=sb.zendesk_url, organization_fields=("plan_tier",)))


def watch(store: Store, zendesk: Any, **overrides: Any) -> SlaWatch:
    return SlaWatch(store, settings(**overrides), zendesk)


def ticket(store: Store, ticket_id: int = 1, *, priority: str | None = "high",
           status: str = "open", org: int | None = 502, created: datetime = T0,
           updated: datetime | None = None, slas: tuple[SlaMetric, ...] = ()) -> Ticket:
    stored = Ticket(id=ticket_id, updated_at=updated or created + timedelta(minutes=1),
                    created_at=created, subject="Exports fail", status=status,
                    priority=priority, organization_id=org, slas=slas)
    with store.write() as conn:
        put_snapshot(conn, stored)
    return stored


def events(store: Store) -> list[sa.Row]:
    with store.read() as conn:
        return conn.execute(sa.select(inbox).order_by(inbox.c.id)).all()


def alerts(store: Store) -> list[sa.Row]:
    with store.read() as conn:
        return conn.execute(sa.select(sla_alerts).order_by(sla_alerts.c.id)).all()


def test_a_warning_fires_once_at_the_right_minute_and_the_breach_once_at_the_due_time(
        store, zendesk):
    # "*": resolution 3d (its plan, growth, is read: an enterprise entry covers every
    # priority); status open: no first-reply target.
    ticket(store, priority="high")
    due = T0 + timedelta(days=3)
    sla = watch(store, zendesk)
    assert sla.scan(due - timedelta(minutes=31)).raised == []
    [warning] = sla.scan(due - timedelta(minutes=30)).raised
    assert (warning.kind, warning.due.target, warning.due.due_at) == (
        "sla.warning", "resolution", due)
    assert sla.scan(due - timedelta(minutes=30)).raised == []
    assert sla.scan(due - timedelta(minutes=1)).raised == []
    [breach] = sla.scan(due).raised
    assert breach.kind == "sla.breached"
    assert sla.scan(due + timedelta(minutes=5)).raised == []

    [first, second] = events(store)
    assert (first.kind, first.source, first.entity_key, first.status) == (
        "sla.warning", "sla", "zendesk:ticket:1", "pending")
    assert first.change_key == "sla:1:resolution:warning:2026-03-05T09:00:00Z"
    assert first.payload == {
        "style": "sla", "kind": "sla.warning", "ticket_id": 1, "target": "resolution",
        "due_at": "2026-03-05T09:00:00Z", "fired_at": "2026-03-05T08:30:00Z",
        "priority": "high", "plan": "growth", "source": "config", "minutes_left": 30,
        "minutes_over": None}
    assert (second.kind, second.payload["minutes_over"]) == ("sla.breached", 0)
    assert [(a.kind, a.target, a.due_at, a.source, a.inbox_id) for a in alerts(store)] == [
        ("sla.warning", "resolution", due, "config", first.id),
        ("sla.breached", "resolution", due, "config", second.id)]


def test_a_ticket_solved_before_its_due_time_gets_nothing(store, zendesk):
    ticket(store, priority="high", status="solved")
    ticket(store, 2, priority="high", status="closed")
    sla = watch(store, zendesk)
    for offset in (timedelta(minutes=-30), timedelta(0), timedelta(hours=1)):
        assert sla.scan(T0 + timedelta(days=3) + offset).raised == []
    assert events(store) == [] and alerts(store) == []


def test_the_first_reply_is_watched_only_while_the_ticket_is_new(store, zendesk):
    ticket(store, 1, priority="normal", status="new")
    ticket(store, 2, priority="normal", status="pending")
    [warning] = watch(store, zendesk).scan(T0 + timedelta(hours=7, minutes=30)).raised
    assert (warning.ticket_id, warning.due.target) == (1, "first_reply")


def test_the_most_specific_target_wins_a_priority_before_a_plan(store, zendesk):
    sla = settings()
    cases = {("urgent", "enterprise"): ("30m", "4h"), ("urgent", "growth"): ("1h", "8h"),
             ("normal", "enterprise"): ("8h", "6h"), ("normal", None): ("8h", "3d"),
             (None, "enterprise"): ("8h", "6h"), (None, None): ("8h", "3d")}
    hours = {"30m": 0.5, "1h": 1, "4h": 4, "8h": 8, "6h": 6, "3d": 72}
    for (priority, plan), (first_reply, resolution) in cases.items():
        new = Ticket(id=1, updated_at=T0, created_at=T0, status="new", priority=priority)
        dues = {d.target: d.due_at - T0 for d in dues_of(new, plan, sla)}
        assert dues == {"first_reply": timedelta(hours=hours[first_reply]),
                        "resolution": timedelta(hours=hours[resolution])}, (priority, plan)


def test_the_plan_tier_is_read_only_when_it_matters_and_then_reused(store, zendesk, sb):
    ticket(store, 1, priority="urgent", org=501)   # Enterprise: resolution 4h
    ticket(store, 2, priority="urgent", org=502)   # growth: resolution 8h
    ticket(store, 3, priority="low", org=501)      # enterprise, any priority: resolution 6h
    sla = watch(store, zendesk)
    sb.requests.clear()
    assert sla.scan(T0 + timedelta(hours=2)).raised == []  # nothing could fire: no read
    assert sb.requests.count("zendesk", "GET", r"/organizations/") == 0
    # At 3h30 an enterprise urgent ticket (due 4h) would warn: tickets 1 and 2 need their
    # tier (ticket 3, due 6h if enterprise, could not fire yet).
    raised = sla.scan(T0 + timedelta(hours=3, minutes=30)).raised
    assert [(a.ticket_id, a.kind, a.due.plan) for a in raised] == [(1, "sla.warning",
                                                                     "Enterprise")]
    assert sb.requests.count("zendesk", "GET", r"/organizations/") == 2
    raised = sla.scan(T0 + timedelta(hours=7, minutes=30)).raised
    assert sorted((a.ticket_id, a.kind, a.due.due_at - T0) for a in raised) == [
        (1, "sla.breached", timedelta(hours=4)), (2, "sla.warning", timedelta(hours=8)),
        (3, "sla.breached", timedelta(hours=6))]
    # Every tier came from the watch's cache: no more reads.
    assert sb.requests.count("zendesk", "GET", r"/organizations/") == 2


def test_an_unreadable_plan_tier_skips_the_ticket_until_the_next_scan(store, zendesk, sb):
    ticket(store, 1, priority="urgent", org=501)
    sla = watch(store, zendesk)
    sb.faults.add("zendesk", "GET", r"/organizations/501", kind="status", status=503,
                  times=None)
    result = sla.scan(T0 + timedelta(hours=3, minutes=30))
    assert (result.raised, result.skipped) == ([], [1])
    sb.faults.clear()
    [warning] = sla.scan(T0 + timedelta(hours=3, minutes=31)).raised
    assert warning.due.due_at == T0 + timedelta(hours=4)


def test_a_priority_change_is_a_new_target_instance_warned_on_its_own_time(store, zendesk):
    ticket(store, priority="urgent", org=None)             # resolution 8h
    sla = watch(store, zendesk)
    [first] = sla.scan(T0 + timedelta(hours=7, minutes=30)).raised
    assert first.due.due_at == T0 + timedelta(hours=8)
    ticket(store, priority="normal", org=None, updated=T0 + timedelta(hours=7, minutes=40))
    assert sla.scan(T0 + timedelta(hours=8)).raised == []  # the 8h instance is gone
    [second] = sla.scan(T0 + timedelta(days=3, minutes=-30)).raised  # normal: 3d
    assert (second.kind, second.due.due_at, second.due.priority) == (
        "sla.warning", T0 + timedelta(days=3), "normal")
    assert [e.change_key for e in events(store)] == [
        "sla:1:resolution:warning:2026-03-02T17:00:00Z",
        "sla:1:resolution:warning:2026-03-05T09:00:00Z"]


def test_a_breach_found_long_after_its_due_time_is_recorded_without_an_event(store, zendesk):
    ticket(store, priority="high", org=None)
    result = watch(store, zendesk).scan(T0 + timedelta(days=4))  # 1 day overdue > 6h
    [silent] = result.silent
    assert result.raised == [] and silent.kind == "sla.breached"
    assert events(store) == []
    [row] = alerts(store)
    assert (row.kind, row.inbox_id) == ("sla.breached", None)
    assert watch(store, zendesk).scan(T0 + timedelta(days=5)).silent == []


def test_zendesk_sla_data_is_preferred_when_the_snapshot_carries_it(store, zendesk):
    breach = T0 + timedelta(hours=2)
    ticket(store, 1, priority="high", org=None, slas=(
        SlaMetric("first_reply_time", "achieved", None),
        SlaMetric("total_resolution_time", "active", breach)))
    ticket(store, 2, priority="high", org=None, status="new", slas=(
        SlaMetric("first_reply_time", "paused", None),))  # paused: no first reply due now
    ticket(store, 3, priority="high", org=None, slas=(
        SlaMetric("next_reply_time", "active", breach),))  # no metric of ours: the config
    sla = watch(store, zendesk, zendesk_slas=True)
    [warning] = sla.scan(breach - timedelta(minutes=30)).raised
    assert (warning.ticket_id, warning.due.target, warning.due.source, warning.due.due_at) == (
        1, "resolution", "zendesk", breach)
    assert [(a.ticket_id, a.due.source) for a in sla.scan(breach).raised] == [(1, "zendesk")]
    later = sla.scan(T0 + timedelta(days=3, minutes=-30)).raised
    assert [(a.ticket_id, a.due.target, a.due.source) for a in later] == [
        (2, "resolution", "config"), (3, "resolution", "config")]
    # Without zendesk_slas the same snapshots are judged by the targets alone.
    assert [a.due.source for a in watch(store, zendesk).scan(breach).raised] == []


def test_two_scans_at_once_raise_each_alert_once(store, zendesk):
    for n in range(1, 41):
        ticket(store, n, priority="high", org=None)
    at = T0 + timedelta(days=3, minutes=-30)
    watches = [watch(store, zendesk) for _ in range(4)]  # four hubs on one store
    barrier = threading.Barrier(len(watches))
    raised: list[int] = []

    def run(sla: SlaWatch) -> None:
        barrier.wait()
        raised.append(len(sla.scan(at).raised))

    threads = [threading.Thread(target=run, args=(w,)) for w in watches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(raised) == 40
    assert len(events(store)) == 40 and len(alerts(store)) == 40


def test_an_event_stored_without_its_alert_row_is_not_raised_again(store, zendesk):
    """The inbox event and the alert row are one transaction; should only the event exist (a
    store restored from a backup between them, say), the scan records the row, not a second
    event."""
    ticket(store, priority="high", org=None)
    at = T0 + timedelta(days=3, minutes=-30)
    [warning] = watch(store, zendesk).scan(at).raised
    with store.write() as conn:
        conn.execute(sa.delete(sla_alerts))
    [again] = watch(store, zendesk).scan(at).raised
    assert again.change_key == warning.change_key
    [event] = events(store)
    [row] = alerts(store)
    assert row.inbox_id == event.id
