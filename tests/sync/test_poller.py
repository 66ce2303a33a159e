"""The reconciliation poller, with the real Zendesk connector over HTTP against the sandbox."""

from __future__ import annotations

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
from sync.state import get_cursor
from sync.store import Store

EXPORT = r"^/api/v2/incremental/tickets/cursor\.json$"


@pytest.fixture
def sb():
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'hub.db'}").open()
    yield s
    s.close()


@pytest.fixture
def poller(sb, store):
    zendesk = ZendeskConnector(ZendeskSettings(
        subdomain="sandbox", email="a@example.com", api_token=SecretStr("t"),
        base_url=sb.zendesk_url, custom_fields={"error_code": 360001}))
    return ZendeskPoller(store, zendesk, PollerSettings(page_size=2))


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


def test_later_polls_turn_changes_into_events_once(sb, store, poller):
    [old] = make(sb, 1)
    poller.poll()
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
