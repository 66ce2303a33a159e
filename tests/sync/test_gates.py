"""Window and throttle state in the store: it survives restarts, and quiet episodes end by tick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from rules import load_rules
from rules.source import load_yaml
from sync import inbox
from sync.processor import EventProcessor
from sync.retry import RetryPolicy
from sync.rulestate import enqueue_quiet_ticks
from sync.schema import decisions, outbox, rule_episodes
from sync.store import Store

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
RULES = """\
rules:
  - id: spike
    on: [ticket.created]
    if: {field: ticket.tags, op: contains, value: outage}
    window: {count: 3, within: 15m, group_by: ticket.fields.error_code, quiet_for: 30m}
    then: [{zendesk.update: {note: "{{ window.count }} tickets with {{ window.group }}"}}]
    after_quiet: [{zendesk.update: {note: "quiet after {{ window.count }}"}}]
  - id: vip
    on: [ticket.created, ticket.updated]
    if: {field: ticket.tags, op: contains, value: vip}
    throttle: once_until_resolved
    then: [{zendesk.update: {note: "VIP"}}]
"""


class Zendesk:
    def ticket_url(self, ticket_id: int) -> str:
        return f"https://sandbox.zendesk.com/agent/tickets/{ticket_id}"


def processor(path: Path) -> tuple[Store, EventProcessor]:
    rules = load_rules([load_yaml(RULES, "rules.yaml")], custom_fields=("error_code",))
    store = Store(f"sqlite:///{path}").open()
    return store, EventProcessor(store, rules, Zendesk(), retry=RetryPolicy(3),
                                 custom_fields=("error_code",))


def feed(store: Store, proc: EventProcessor, ticket_id: int, at: datetime, *,
         tags: list[str], status: str = "open", code: str = "E1", created: bool = True) -> str:
    fields: dict[str, Any] = {
        "id": ticket_id, "updated_at": at.isoformat(), "created_at": T0.isoformat(),
        "tags": tags, "status": status, "fields": {"error_code": code}}
    result = inbox.accept(store, source="zendesk", kind="poll",
                          entity_key=f"zendesk:ticket:{ticket_id}",
                          change_key=f"{ticket_id}:{at.isoformat()}",
                          payload={"style": "poll", "complete": True, "fields": fields,
                                   "hint": "ticket.created" if created else "ticket.updated"})
    with store.write() as conn:  # the event "arrived" at its own time
        conn.execute(sa.update(inbox.inbox).where(inbox.inbox.c.id == result.inbox_id)
                     .values(received_at=at))
    [item] = inbox.acquire(store, "t/w", 1, 60)
    return proc.process(item)


def intents(store: Store, rule_id: str) -> list[sa.Row]:
    with store.read() as conn:
        return conn.execute(sa.select(outbox).where(outbox.c.rule_id == rule_id)
                            .order_by(outbox.c.id)).all()


def test_a_window_keeps_counting_across_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    store, proc = processor(db)
    feed(store, proc, 1, T0, tags=["outage"])
    feed(store, proc, 2, T0 + timedelta(minutes=3), tags=["outage"])
    store.close()
    store, proc = processor(db)  # restart: a new store and processor on the same file
    try:
        outcome = feed(store, proc, 3, T0 + timedelta(minutes=6), tags=["outage"])
        assert "matched: spike" in outcome and "1 intent(s) planned" in outcome
        [intent] = intents(store, "spike")
        assert intent.ticket_id == 3 and intent.context["window"]["count"] == 3
        assert intent.context["window"]["tickets"] == [1, 2, 3]
        outcome = feed(store, proc, 4, T0 + timedelta(minutes=7), tags=["outage"])
        assert "already fired" in outcome and len(intents(store, "spike")) == 1
    finally:
        store.close()


def test_a_quiet_episode_is_ended_by_a_tick_once_with_its_follow_up(tmp_path: Path) -> None:
    store, proc = processor(tmp_path / "hub.db")
    try:
        for n in (1, 2, 3):
            feed(store, proc, n, T0 + timedelta(minutes=n), tags=["outage"])
        assert enqueue_quiet_ticks(store, proc.rules, T0 + timedelta(minutes=32)) == 0
        now = T0 + timedelta(minutes=34)
        assert enqueue_quiet_ticks(store, proc.rules, now) == 1
        assert enqueue_quiet_ticks(store, proc.rules, now) == 0  # deduplicated
        [item] = inbox.acquire(store, "t/w", 1, 60)
        assert "1 episode(s) ended (spike); 1 intent(s) planned" in proc.process(item)
        spike = intents(store, "spike")
        assert len(spike) == 2 and spike[1].ticket_id == 3
        assert spike[1].params["note"] == "quiet after {{ window.count }}"
        assert spike[1].context["window"]["count"] == 3
        with store.read() as conn:
            assert conn.execute(sa.select(rule_episodes)).all() == []
            [logged] = conn.execute(sa.select(decisions).where(
                decisions.c.event_type == "window.quiet")).all()
        assert logged.rule_id == "spike" and logged.ticket_id == 3
        assert "quiet for 30m" in logged.trace["gate"]
    finally:
        store.close()


def test_once_until_resolved_survives_a_restart_and_resets_when_solved(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    store, proc = processor(db)
    feed(store, proc, 7, T0, tags=["vip"])
    store.close()
    store, proc = processor(db)
    try:
        held = feed(store, proc, 7, T0 + timedelta(minutes=1), tags=["vip", "x"], created=False)
        assert "vip (held: throttled: already fired for ticket 7" in held
        feed(store, proc, 7, T0 + timedelta(minutes=2), tags=["vip"], status="solved",
             created=False)
        assert len(intents(store, "vip")) == 1  # the solving event itself is still held
        again = feed(store, proc, 7, T0 + timedelta(minutes=3), tags=["vip", "y"],
                     status="open", created=False)
        assert "matched: vip;" in again
        assert len(intents(store, "vip")) == 2
    finally:
        store.close()


def test_explain_shows_held_matches_with_their_reason_and_the_episode_end(tmp_path: Path) -> None:
    from sync.explain import read_history, render_history

    store, proc = processor(tmp_path / "hub.db")
    try:
        for n in (1, 2, 3):
            feed(store, proc, n, T0 + timedelta(minutes=n), tags=["outage"])
        enqueue_quiet_ticks(store, proc.rules, T0 + timedelta(hours=1))
        [item] = inbox.acquire(store, "t/w", 1, 60)
        proc.process(item)
        with store.read() as conn:
            first, third = (render_history(t, read_history(conn, t)) for t in (1, 3))
    finally:
        store.close()
    assert ("⏸ spike: matched, held back: window group 'E1': 1 of 3 tickets within 15m; "
            "not fired yet") in first
    assert "✓ spike: matched (window group 'E1': 3 tickets within 15m (threshold 3); fired)" \
        in third
    assert "window.quiet  (from schedule: window.quiet)" in third
    assert "◷ spike: window group E1 quiet for 30m since" in third
