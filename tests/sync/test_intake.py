"""The receiver's group-commit writer: answers only after the commit, and never dies."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from sync.intake import InboxWriter
from sync.schema import inbox
from sync.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'hub.db'}").open()
    yield s
    s.close()


def event(n: int) -> dict:
    return {"source": "zendesk", "kind": "poll", "entity_key": f"t:{n}",
            "change_key": f"t:{n}:a", "payload": {"n": n}}


def stored(store: Store) -> list[str]:
    with store.read() as conn:
        return [r.change_key for r in conn.execute(sa.select(inbox).order_by(inbox.c.id))]


def test_events_queued_behind_a_busy_store_are_all_committed_and_each_answered(store, tmp_path):
    writer = InboxWriter(store)
    blocker = sqlite3.connect(tmp_path / "hub.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the writer's next commit waits for this one
    futures = [writer.submit(**event(n)) for n in range(5)]
    blocker.execute("COMMIT")
    blocker.close()
    results = [f.result(timeout=10) for f in futures]
    assert [r.accepted for r in results] == [True] * 5
    assert stored(store) == [f"t:{n}:a" for n in range(5)]
    writer.close()


def test_a_waiter_that_gave_up_does_not_kill_the_writer(store, tmp_path):
    writer = InboxWriter(store)
    blocker = sqlite3.connect(tmp_path / "hub.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    gave_up = writer.submit(**event(1))
    assert gave_up.cancel()  # the request timed out while the commit waited
    waiting = writer.submit(**event(2))
    blocker.execute("COMMIT")
    blocker.close()
    assert waiting.result(timeout=10).accepted
    assert writer.submit(**event(3)).result(timeout=10).accepted  # still alive
    assert writer.alive
    # The abandoned event was stored anyway; Zendesk's redelivery of it is a duplicate.
    assert stored(store) == ["t:1:a", "t:2:a", "t:3:a"]
    writer.close()


def test_a_failing_batch_fails_its_waiters_and_the_writer_carries_on(store):
    writer = InboxWriter(store)
    bad = writer.submit(source="zendesk", bogus="field")
    with pytest.raises(TypeError):
        bad.result(timeout=10)
    assert writer.submit(**event(1)).result(timeout=10).accepted
    assert stored(store) == ["t:1:a"]
    writer.close()
    assert not writer.alive
