"""The reconciliation poller, with the real Zendesk connector over HTTP against the sandbox."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from connectors.errors import RateLimitedError, RetriableError
from connectors.settings import ZendeskSettings
from connectors.zendesk import ZendeskConnector
from sandbox import Sandbox
from sync.config import PollerSettings
from sync.poller import CURSOR, ZendeskPoller
from sync.schema import inbox, snapshots
from sync.state import get_cursor, set_cursor
from sync.store import Store

EXPORT = r"^/api/v2/incremental/tickets/cursor\.json$"
START = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)


class Clock:
    """A clock that moves only when told, shared by the sandbox and the poller: Zendesk stamps have
    second precision, so tests say when things happen rather than race the wall clock."""

    def __init__(self) -> None:
        self.now = START
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def sb(clock):
    with Sandbox() as sandbox:
        sandbox.zendesk.clock = clock
        yield sandbox


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'hub.db'}").open()
    yield s
    s.close()


def make_poller(sb, store, clock, **settings) -> ZendeskPoller:
    zendesk = ZendeskConnector(ZendeskSettings(
        subdomain="sandbox", email="a@example.com", api_token=SecretStr("t"),
        base_url=sb.zendesk_url, custom_fields={"error_code": 360001}))
    return ZendeskPoller(store, zendesk, PollerSettings(**{"page_size": 2, **settings}),
                         clock=clock)


@pytest.fixture
def poller(sb, store, clock):
    return make_poller(sb, store, clock)


def make(sb, n: int) -> list[int]:
    return [int(sb.zendesk.create_ticket({"subject": f"t{i}", "tags": ["x"]})["id"])
            for i in range(n)]


def events(store) -> list[sa.Row]:
    with store.read() as conn:
        return conn.execute(sa.select(inbox).order_by(inbox.c.id)).all()


def snapshot_ids(store) -> list[int]:
    with store.read() as conn:
        return sorted(r.ticket_id for r in conn.execute(sa.select(snapshots.c.ticket_id)))


def test_first_poll_is_a_backfill_of_snapshots_without_events(sb, store, poller):
    ids = make(sb, 5)
    result = poller.poll()
    # zenpy 2.0.57 sends per_page on the first (start_time) request only; cursor requests get
    # Zendesk's default page size, so 2 + 3.
    assert result.backfill and result.pages == 2 and result.tickets == 5
    assert snapshot_ids(store) == ids
    assert events(store) == []
    with store.read() as conn:
        assert get_cursor(conn, CURSOR)["backfill"] is False


def test_later_polls_turn_changes_into_events_once(sb, store, poller, clock):
    [old] = make(sb, 1)
    clock.advance(60)
    poller.poll()
    clock.advance(60)
    [new] = make(sb, 1)
    sb.zendesk.update_ticket(old, {"tags": ["x", "y"]})
    assert poller.poll().new_events == 2
    assert poller.poll().new_events == 0  # nothing new: the cursor moved past both
    rows = events(store)
    assert [(r.payload["fields"]["id"], r.payload["hint"]) for r in rows] == \
        [(new, "ticket.created"), (old, "ticket.updated")]
    assert all(r.payload["complete"] for r in rows)


def test_a_rate_limited_export_changes_nothing(sb, store, poller):
    poller.poll()
    make(sb, 3)
    with store.read() as conn:
        before = get_cursor(conn, CURSOR)
    sb.faults.add("zendesk", "GET", EXPORT, kind="status", status=429,
                  headers={"Retry-After": "30"})
    with pytest.raises(RateLimitedError) as caught:
        poller.poll()
    assert caught.value.retry_after == 30
    with store.read() as conn:
        assert get_cursor(conn, CURSOR) == before
    assert events(store) == []


def test_an_interrupted_backfill_keeps_its_committed_page_and_resumes_as_a_backfill(
        sb, store, poller):
    make(sb, 5)
    sb.faults.add("zendesk", "GET", EXPORT, kind="delay", delay=0.0, times=1)
    sb.faults.add("zendesk", "GET", EXPORT, kind="status", status=503, times=3)
    with pytest.raises(RetriableError):
        poller.poll()
    assert len(snapshot_ids(store)) == 2  # page 1 and its cursor were committed together
    assert poller.poll().backfill is True
    assert len(snapshot_ids(store)) == 5
    assert events(store) == []


def hints(store) -> dict[int, str]:
    return {r.payload["fields"]["id"]: r.payload["hint"] for r in events(store)}


def cursor_value(store) -> dict:
    with store.read() as conn:
        return get_cursor(conn, CURSOR)


def test_completed_backfill_records_when_the_account_was_connected(sb, store, poller, clock):
    make(sb, 1)
    clock.advance(60)
    first_reading = clock.now
    poller.poll()
    value = cursor_value(store)
    assert value["backfill"] is False
    assert value["connected_at"] == first_reading.strftime("%Y-%m-%dT%H:%M:%SZ")
    make(sb, 1)
    poller.poll()
    assert cursor_value(store)["connected_at"] == value["connected_at"]  # kept by later polls


def test_ticket_created_and_edited_between_polls_is_hinted_created(sb, store, poller, clock):
    [old] = make(sb, 1)
    clock.advance(60)
    poller.poll()  # backfill
    clock.advance(60)
    [new] = make(sb, 1)
    clock.advance(30)
    sb.zendesk.update_ticket(new, {"tags": ["x", "edited"]})  # the webhooks were missed
    clock.advance(30)
    sb.zendesk.update_ticket(old, {"tags": ["x", "edited"]})
    assert sb.zendesk.ticket(new)["created_at"] != sb.zendesk.ticket(new)["updated_at"]
    poller.poll()
    assert hints(store) == {new: "ticket.created", old: "ticket.updated"}


def test_ticket_older_than_the_backfill_window_is_hinted_updated_when_edited(sb, store, clock):
    [old] = make(sb, 1)  # created before backfill_start: the backfill never sees it
    clock.advance(60)
    poller = make_poller(sb, store, clock, backfill_start=int(clock.now.timestamp()))
    assert poller.poll().tickets == 0
    assert snapshot_ids(store) == []
    clock.advance(60)
    sb.zendesk.update_ticket(old, {"tags": ["x", "edited"]})
    poller.poll()
    assert hints(store) == {old: "ticket.updated"}


def test_cursor_stored_before_connected_at_existed_keeps_working(sb, store, poller, clock):
    poller.poll()
    value = cursor_value(store)
    with store.write() as conn:
        set_cursor(conn, CURSOR, {"cursor": value["cursor"], "backfill": False})
    clock.advance(60)
    [fresh, edited] = make(sb, 2)
    clock.advance(30)
    sb.zendesk.update_ticket(edited, {"tags": ["x", "edited"]})
    assert poller.poll().backfill is False
    # Without connected_at only an untouched new ticket can be told apart, as before.
    assert hints(store) == {fresh: "ticket.created", edited: "ticket.updated"}
    assert "connected_at" not in cursor_value(store)


def test_unreadable_connected_at_falls_back_to_created_equals_updated(sb, store, poller, clock):
    poller.poll()
    value = cursor_value(store)
    with store.write() as conn:
        set_cursor(conn, CURSOR, {**value, "connected_at": "not a time"})
    [fresh, edited] = make(sb, 2)
    clock.advance(30)
    sb.zendesk.update_ticket(edited, {"tags": ["x", "edited"]})
    poller.poll()
    assert hints(store) == {fresh: "ticket.created", edited: "ticket.updated"}


def test_connected_at_as_unix_seconds_is_understood(sb, store, poller, clock):
    [old] = make(sb, 1)
    clock.advance(60)
    poller.poll()
    value = cursor_value(store)
    with store.write() as conn:
        set_cursor(conn, CURSOR, {**value, "connected_at": int(clock.now.timestamp())})
    [new] = make(sb, 1)
    clock.advance(30)
    sb.zendesk.update_ticket(new, {"tags": ["x", "edited"]})
    sb.zendesk.update_ticket(old, {"tags": ["x", "edited"]})
    poller.poll()
    assert hints(store) == {new: "ticket.created", old: "ticket.updated"}


def test_resumed_backfill_keeps_the_connection_time_of_its_first_poll(sb, store, poller, clock):
    make(sb, 5)
    clock.advance(60)
    first_reading = clock.now
    sb.faults.add("zendesk", "GET", EXPORT, kind="delay", delay=0.0, times=1)
    sb.faults.add("zendesk", "GET", EXPORT, kind="status", status=503, times=3)
    with pytest.raises(RetriableError):
        poller.poll()
    clock.advance(3600)
    assert poller.poll().backfill is True
    assert cursor_value(store)["connected_at"] == first_reading.strftime("%Y-%m-%dT%H:%M:%SZ")
