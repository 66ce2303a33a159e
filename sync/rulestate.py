"""Rule gate state (windows, throttles) in the store: :class:`rules.engine.RuleState` over SQL.

It works on the caller's connection, inside the transaction that records the decision it gates,
so a crash keeps either the decision and its state change or neither. The semantics are in
:mod:`rules.engine`; this module only stores and fetches.
"""

from __future__ import annotations

__all__ = ["StoreRuleState", "due_episodes", "enqueue_quiet_ticks"]

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from rules.engine import Episode
from rules.model import Rule
from sync import inbox
from sync.schema import rule_episodes, rule_fires, rule_window_matches
from sync.store import Store

_MATCHES = sa.select(rule_window_matches.c.ticket_id, rule_window_matches.c.at).where(
    rule_window_matches.c.rule_id == sa.bindparam("r"),
    rule_window_matches.c.group_key == sa.bindparam("g"),
    rule_window_matches.c.at > sa.bindparam("since"))


def _episode(row: Any) -> Episode:
    return Episode(row.rule_id, row.group_key, row.opened_at, row.last_match_at, row.count,
                   tuple(int(t) for t in row.tickets), row.context or {})


class StoreRuleState:
    """Rule gate state on one open connection (use within ``store.write()``)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def window_matches(self, rule_id: str, group: str,
                       since: datetime) -> list[tuple[int, datetime]]:
        rows = self.conn.execute(_MATCHES, {"r": rule_id, "g": group, "since": since})
        return [(int(r.ticket_id), r.at) for r in rows]

    def add_window_match(self, rule_id: str, group: str, ticket_id: int, at: datetime) -> None:
        self.conn.execute(sa.insert(rule_window_matches).values(
            rule_id=rule_id, group_key=group, ticket_id=ticket_id, at=at))

    def forget_window_matches(self, rule_id: str, before: datetime) -> None:
        self.conn.execute(sa.delete(rule_window_matches).where(
            rule_window_matches.c.rule_id == rule_id, rule_window_matches.c.at <= before))

    def episode(self, rule_id: str, group: str) -> Episode | None:
        row = self.conn.execute(sa.select(rule_episodes).where(
            rule_episodes.c.rule_id == rule_id, rule_episodes.c.group_key == group)).first()
        return _episode(row) if row is not None else None

    def save_episode(self, episode: Episode) -> None:
        values = {"opened_at": episode.opened_at, "last_match_at": episode.last_match_at,
                  "count": episode.count, "tickets": list(episode.tickets),
                  "context": dict(episode.context)}
        updated = self.conn.execute(sa.update(rule_episodes).where(
            rule_episodes.c.rule_id == episode.rule_id,
            rule_episodes.c.group_key == episode.group).values(**values))
        if updated.rowcount == 0:
            self.conn.execute(sa.insert(rule_episodes).values(
                rule_id=episode.rule_id, group_key=episode.group, **values))

    def end_episode(self, rule_id: str, group: str) -> None:
        self.conn.execute(sa.delete(rule_episodes).where(
            rule_episodes.c.rule_id == rule_id, rule_episodes.c.group_key == group))

    def open_episodes(self) -> list[Episode]:
        return [_episode(r) for r in self.conn.execute(sa.select(rule_episodes))]

    def fire_count(self, rule_id: str, scope: str, since: datetime | None) -> int:
        query = sa.select(sa.func.count()).select_from(rule_fires).where(
            rule_fires.c.rule_id == rule_id, rule_fires.c.scope == scope)
        if since is not None:
            query = query.where(rule_fires.c.at > since)
        return int(self.conn.execute(query).scalar_one())

    def add_fire(self, rule_id: str, scope: str, at: datetime) -> None:
        self.conn.execute(sa.insert(rule_fires).values(rule_id=rule_id, scope=scope, at=at))

    def forget_fires(self, rule_id: str, scope: str, before: datetime | None) -> None:
        query = sa.delete(rule_fires).where(rule_fires.c.rule_id == rule_id,
                                            rule_fires.c.scope == scope)
        if before is not None:
            query = query.where(rule_fires.c.at <= before)
        self.conn.execute(query)

    def forget_scope(self, scope: str) -> None:
        self.conn.execute(sa.delete(rule_fires).where(rule_fires.c.scope == scope))


def due_episodes(conn: sa.Connection, quiet_for: dict[str, timedelta],
                 now: datetime) -> list[Episode]:
    """Open episodes whose quiet period (per rule id in ``quiet_for``) has run out by ``now``."""
    return [e for e in StoreRuleState(conn).open_episodes()
            if e.rule_id in quiet_for and e.last_match_at + quiet_for[e.rule_id] <= now]


def enqueue_quiet_ticks(store: Store, rules: Iterable[Rule], now: datetime) -> int:
    """Put one ``tick`` event in the inbox per window episode whose quiet period has run out.

    The processor handles the tick (ending the episode and planning ``after_quiet`` actions in
    one transaction), so the follow-up is decided, logged and executed like any other event.
    Ticks are deduplicated by episode, so calling this often is harmless. Returns how many were
    queued.
    """
    quiet = {r.id: r.window.quiet for r in rules if r.window is not None}
    if not quiet:
        return 0
    with store.read() as conn:
        due = due_episodes(conn, quiet, now)
    if not due:
        return 0
    queued = 0
    with store.write() as conn:
        for episode in due:
            result = inbox.accept_in(
                conn, source="schedule", kind="window.quiet",
                entity_key=f"window:{episode.rule_id}", payload={"style": "tick"},
                change_key=(f"window-quiet:{episode.rule_id}:{episode.group}:"
                            f"{episode.last_match_at.isoformat()}")[:192])
            queued += result.accepted
    return queued
