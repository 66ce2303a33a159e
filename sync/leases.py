"""Leases on inbox and outbox rows: claimed by one worker, renewed while it works, fenced.

A worker id is ``<hub id>/<thread name>``. While a hub runs, a heartbeat renews the leases of the
rows its workers are working on (:class:`Tracker`, :func:`renew`), so a slow action never loses
its lease to another worker; when a hub dies — or a worker fails to record an outcome — those
leases expire after ``lease_seconds`` and the rows are claimed again. A worker that finds
its lease gone when it records an outcome or progress gets :class:`LeaseLost` — the row belongs to
someone else now, and what this worker was about to write is rolled back (fencing).
"""

from __future__ import annotations

__all__ = ["LeaseLost", "Tracker", "claim", "fenced_update", "free_all", "renew"]

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from sync.store import Store, utcnow


class LeaseLost(RuntimeError):
    """This worker no longer holds the row's lease; another worker may be running it."""


def claim(conn: sa.Connection, table: sa.Table, ids: list[int], worker: str, now: datetime,
          lease_seconds: float) -> list[int]:
    """Lease the rows of ``ids`` that are still free; returns the ids actually claimed.

    The UPDATE re-checks status and lease, so two claimers racing on the same candidates (several
    replicas on PostgreSQL) can never both win a row.
    """
    if not ids:
        return []
    conn.execute(
        sa.update(table)
        .where(table.c.id.in_(ids), table.c.status == "pending",
               sa.or_(table.c.lease_until.is_(None), table.c.lease_until < now))
        .values(lease_owner=worker, lease_until=now + timedelta(seconds=lease_seconds),
                attempts=table.c.attempts + 1))
    return [r.id for r in conn.execute(
        sa.select(table.c.id).where(table.c.id.in_(ids), table.c.lease_owner == worker))]


_FENCED: dict[tuple[str, bool], sa.Update] = {}


def fenced_update(conn: sa.Connection, table: sa.Table, row_id: int, owner: str | None,
                  **values: Any) -> None:
    """Update one row only if ``owner`` still holds its lease; else :class:`LeaseLost`."""
    key = (table.name, owner is not None)
    query = _FENCED.get(key)
    if query is None:  # built once per table: outcomes are recorded for every event
        query = sa.update(table).where(table.c.id == sa.bindparam("b_id"))
        if owner is not None:
            query = query.where(table.c.lease_owner == sa.bindparam("b_owner"))
        _FENCED[key] = query
    params = {"b_id": row_id, "b_owner": owner, **values} if owner is not None \
        else {"b_id": row_id, **values}
    if conn.execute(query, params).rowcount == 0:
        raise LeaseLost(f"{table.name} row {row_id}: lease no longer held by {owner}")


class Tracker:
    """The rows this hub's workers are working on right now (claimed and not yet finished).

    Only these are renewed: a row whose outcome could not be recorded (its worker hit an
    unexpected error) drops out and its lease expires, so that it is claimed and tried again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, set[int]] = {}

    @contextmanager
    def holding(self, table: sa.Table, row_id: int) -> Iterator[None]:
        with self._lock:
            self._rows.setdefault(table.name, set()).add(row_id)
        try:
            yield
        finally:
            with self._lock:
                self._rows[table.name].discard(row_id)

    def rows(self, table: sa.Table) -> list[int]:
        with self._lock:
            return sorted(self._rows.get(table.name, ()))


def renew(store: Store, table: sa.Table, ids: list[int], owner_prefix: str,
          lease_seconds: float) -> int:
    """Extend the leases this hub's workers hold on ``ids``; returns how many were renewed."""
    if not ids:
        return 0
    with store.write() as conn:
        return conn.execute(
            sa.update(table).where(table.c.id.in_(ids),
                                   table.c.lease_owner.like(f"{owner_prefix}/%"))
            .values(lease_until=utcnow() + timedelta(seconds=lease_seconds))).rowcount


def free_all(store: Store, table: sa.Table) -> int:
    """Free every lease of ``table`` (start-up, when this process is the store's only user)."""
    with store.write() as conn:
        return conn.execute(
            sa.update(table).where(table.c.lease_owner.is_not(None))
            .values(lease_owner=None, lease_until=None)).rowcount
