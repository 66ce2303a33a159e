"""Inbox and outbox claims: order per entity, leases, dependencies, dead-letter cascade."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from sync import inbox, leases, outbox
from sync.leases import LeaseLost
from sync.schema import inbox as inbox_table
from sync.schema import outbox as outbox_table
from sync.store import Store, utcnow


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'hub.db'}").open()
    yield s
    s.close()


def event(store: Store, ticket: int, stamp: str, **kw):
    return inbox.accept(store, source="zendesk", kind="poll", entity_key=f"t:{ticket}",
                        change_key=f"t:{ticket}:{stamp}", payload={"n": stamp}, **kw)


def test_duplicate_change_or_delivery_is_not_inserted(store):
    first = event(store, 1, "a", delivery_id="d1")
    assert first.accepted
    assert event(store, 1, "a").duplicate_by == "change"
    assert event(store, 1, "b", delivery_id="d1").duplicate_by == "delivery"
    assert inbox.counts(store) == {"pending": 1}


def test_inbox_claims_one_event_per_ticket_oldest_first(store):
    event(store, 1, "a")
    event(store, 1, "b")
    event(store, 2, "a")
    claimed = inbox.acquire(store, "w1", 10, lease_seconds=60)
    assert [(i.entity_key, i.payload["n"]) for i in claimed] == [("t:1", "a"), ("t:2", "a")]
    # The newer event of ticket 1 waits until the older one is released.
    assert inbox.acquire(store, "w2", 10, lease_seconds=60) == []
    with store.write() as conn:
        inbox.release(conn, claimed[0].id, "done", "ok")
    [next_one] = inbox.acquire(store, "w2", 10, lease_seconds=60)
    assert next_one.payload["n"] == "b"


def test_an_expired_lease_is_claimed_again_with_the_attempt_counted(store):
    event(store, 1, "a")
    [first] = inbox.acquire(store, "w1", 1, lease_seconds=60)
    with store.write() as conn:
        conn.execute(sa.update(inbox_table).values(lease_until=utcnow() - timedelta(seconds=1)))
    [again] = inbox.acquire(store, "w2", 1, lease_seconds=60)
    assert again.id == first.id and again.attempts == 2


def test_a_retry_waits_until_it_is_due(store):
    event(store, 1, "a")
    [item] = inbox.acquire(store, "w1", 1, lease_seconds=60)
    with store.write() as conn:
        inbox.release(conn, item.id, "pending", "retrying", retry_in=60)
    assert inbox.acquire(store, "w1", 1, lease_seconds=60) == []


def intent(conn, key: str, order: str, depends_on: str | None = None) -> bool:
    return outbox.add_intent(conn, idem_key=key, rule_id="r", action="zendesk.update",
                             ticket_id=1, order_key=order, depends_on=depends_on,
                             params={}, context={})


def test_an_intent_key_is_planned_once(store):
    with store.write() as conn:
        assert intent(conn, "k1", "t:1") is True
        assert intent(conn, "k1", "t:1") is False
    assert outbox.counts(store) == {"pending": 1}


def test_outbox_runs_in_order_per_order_key_and_after_dependencies(store):
    with store.write() as conn:
        intent(conn, "create", "bug:E1")
        intent(conn, "note", "t:1", depends_on="create")
        intent(conn, "create2", "bug:E1")
    claimed = outbox.acquire(store, "w", 10, lease_seconds=60)
    assert [i.idem_key for i in claimed] == ["create"]  # note waits for create; create2 for create
    with store.write() as conn:
        outbox.finish(conn, claimed[0].id, "done", result={"key": "SUP-1"})
    claimed = outbox.acquire(store, "w", 10, lease_seconds=60)
    assert [i.idem_key for i in claimed] == ["note", "create2"]
    note = claimed[0]
    assert note.dependency_action == "zendesk.update" and note.dependency_result == {"key": "SUP-1"}


def test_a_dead_dependency_kills_its_dependants_with_the_reason(store):
    with store.write() as conn:
        intent(conn, "create", "bug:E1")
        intent(conn, "note", "t:1", depends_on="create")
    [create] = outbox.acquire(store, "w", 10, lease_seconds=60)
    with store.write() as conn:
        outbox.finish(conn, create.id, "dead", error="HTTP 400 project")
    assert outbox.acquire(store, "w", 10, lease_seconds=60) == []
    with store.read() as conn:
        note = conn.execute(sa.select(outbox_table).where(outbox_table.c.idem_key == "note")).one()
    assert note.status == "dead" and "depends on create, which is dead: HTTP 400" in note.last_error


def test_startup_frees_leases_left_by_a_killed_process(store):
    event(store, 1, "a")
    with store.write() as conn:
        intent(conn, "k", "t:1")
    inbox.acquire(store, "dead-worker", 1, lease_seconds=600)
    outbox.acquire(store, "dead-worker", 1, lease_seconds=600)
    assert leases.free_all(store, inbox_table) == 1
    assert leases.free_all(store, outbox_table) == 1
    assert len(inbox.acquire(store, "w", 1, lease_seconds=60)) == 1
    assert len(outbox.acquire(store, "w", 1, lease_seconds=60)) == 1


def test_a_worker_whose_lease_was_taken_over_cannot_commit(store):
    with store.write() as conn:
        intent(conn, "k", "t:1")
    [mine] = outbox.acquire(store, "hubA/w1", 1, lease_seconds=60)
    with store.write() as conn:  # hubA stalls; its lease runs out and hubB takes the intent
        conn.execute(sa.update(outbox_table).values(lease_until=utcnow() - timedelta(seconds=1)))
    [theirs] = outbox.acquire(store, "hubB/w1", 1, lease_seconds=60)
    assert theirs.id == mine.id
    with pytest.raises(LeaseLost), store.write() as conn:
        outbox.set_progress(conn, mine.id, {"create_sent": True}, owner=mine.owner)
    with pytest.raises(LeaseLost), store.write() as conn:
        outbox.finish(conn, mine.id, "done", result={}, owner=mine.owner)
    with store.write() as conn:
        outbox.finish(conn, theirs.id, "done", result={"key": "SUP-1"}, owner=theirs.owner)
    assert outbox.counts(store) == {"done": 1}


def test_the_heartbeat_renews_only_rows_this_hub_is_working_on(store):
    event(store, 1, "a")
    event(store, 2, "a")
    event(store, 3, "a")
    [working] = inbox.acquire(store, "hubA/w1", 1, lease_seconds=1)
    [abandoned] = inbox.acquire(store, "hubA/w1", 1, lease_seconds=1)  # its outcome failed
    [other_hubs] = inbox.acquire(store, "hubB/w1", 1, lease_seconds=1)
    tracker = leases.Tracker()
    with tracker.holding(inbox_table, working.id):
        ids = tracker.rows(inbox_table)
        assert leases.renew(store, inbox_table, ids + [other_hubs.id], "hubA", 600) == 1
    assert tracker.rows(inbox_table) == []
    with store.read() as conn:
        until = dict(conn.execute(sa.select(inbox_table.c.id, inbox_table.c.lease_until)).all())
    assert until[working.id] > utcnow() + timedelta(seconds=500)
    assert until[abandoned.id] < utcnow() + timedelta(seconds=2)  # expires: claimed again
    assert until[other_hubs.id] < utcnow() + timedelta(seconds=2)
