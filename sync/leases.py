"""Leases on inbox and outbox rows: claimed by one worker, renewed while it works, fenced.

A worker id is ``<hub id>/<thread name>``. While a hub runs, a heartbeat renews every lease its
workers hold (:func:`renew`), so a slow action never loses its lease to another worker; when a hub
dies, its leases expire after ``lease_seconds`` and the rows are claimed again. A worker that finds
its lease gone when it records an outcome or progress gets :class:`LeaseLost` — the row belongs to
someone else now, and what this worker was about to write is rolled back (fencing).
"""

from __future__ import annotations

__all__ = ["LeaseLost", "claim", "fenced_update", "free_all", "renew"]

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


def renew(store: Store, tables: tuple[sa.Table, ...], owner_prefix: str,
          lease_seconds: float) -> int:
    """Extend every lease held by this hub's workers; returns how many rows were renewed."""
    until = utcnow() + timedelta(seconds=lease_seconds)
    renewed = 0
    with store.write() as conn:
        for table in tables:
            renewed += conn.execute(
                sa.update(table).where(table.c.lease_owner.like(f"{owner_prefix}/%"))
                .values(lease_until=until)).rowcount
    return renewed


def free_all(store: Store, table: sa.Table) -> int:
    """Free every lease of ``table`` (start-up, when this process is the store's only user)."""
    with store.write() as conn:
        return conn.execute(
            sa.update(table).where(table.c.lease_owner.is_not(None))
            .values(lease_owner=None, lease_until=None)).rowcount
