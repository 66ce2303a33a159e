"""The inbox: every accepted inbound event, durable before it is acknowledged.

- :func:`accept` dedupes by change (``change_key``: ticket id + ``updated_at``) and by delivery
  (``delivery_id``: the vendor's invocation id) and commits; only then may a webhook answer 2xx.
- :func:`acquire` claims pending events with a lease, oldest first, and never two events of one
  entity at once, nor a newer one before an older one (order per entity, invariant 3).
- :func:`release` records the outcome: ``done`` / ``ignored`` / ``failed``, or back to ``pending``
  with a delay for a retry.

Status values: ``pending`` (waiting or leased), ``done``, ``ignored``, ``failed``.
"""

from __future__ import annotations

__all__ = [
    "AcceptResult",
    "InboxItem",
    "accept",
    "accept_in",
    "acquire",
    "counts",
    "release",
]

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from sync.leases import claim, fenced_update
from sync.schema import inbox
from sync.store import Store, utcnow


@dataclass(frozen=True, slots=True)
class AcceptResult:
    """``accepted`` is False for a duplicate; ``inbox_id`` is then the earlier row's id."""

    accepted: bool
    inbox_id: int
    duplicate_by: str | None = None


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: int
    source: str
    kind: str
    entity_key: str
    change_key: str | None
    payload: Mapping[str, Any]
    attempts: int
    received_at: datetime
    owner: str | None = None


_FIND = {
    "change": sa.select(inbox.c.id).where(inbox.c.change_key == sa.bindparam("value")).limit(1),
    "delivery": sa.select(inbox.c.id).where(inbox.c.delivery_id == sa.bindparam("value"))
    .limit(1),
}
_INSERT = sa.insert(inbox)


def accept_in(
    conn: sa.Connection,
    *,
    source: str,
    kind: str,
    entity_key: str,
    payload: Mapping[str, Any],
    change_key: str | None = None,
    delivery_id: str | None = None,
    status: str = "pending",
    outcome: str | None = None,
) -> AcceptResult:
    """Insert one event inside an open write transaction, unless it is a duplicate."""
    # Statements are built once (module level): this is the receiver's hot path.
    for column, value in (("delivery", delivery_id), ("change", change_key)):
        if value is not None:
            row = conn.execute(_FIND[column], {"value": value}).first()
            if row is not None:
                return AcceptResult(False, row.id, column)
    now = utcnow()
    result = conn.execute(_INSERT, {
        "source": source, "kind": kind, "entity_key": entity_key, "change_key": change_key,
        "delivery_id": delivery_id, "payload": dict(payload), "status": status, "attempts": 0,
        "available_at": now, "received_at": now,
        "processed_at": now if status != "pending" else None, "outcome": outcome,
    })
    assert result.inserted_primary_key is not None
    return AcceptResult(True, int(result.inserted_primary_key[0]))


def accept(store: Store, **kwargs: Any) -> AcceptResult:
    """Insert and commit one event (see :func:`accept_in`); returns once it is durable."""
    with store.write() as conn:
        return accept_in(conn, **kwargs)


_ANY_DUE = sa.select(inbox.c.id).where(inbox.c.status == "pending",
                                         inbox.c.available_at <= sa.bindparam("now")).limit(1)


def acquire(store: Store, worker: str, limit: int, lease_seconds: float) -> list[InboxItem]:
    """Claim up to ``limit`` events: the oldest pending one of each entity, if free to run."""
    now = utcnow()
    older = inbox.alias("older")
    claimable = (
        sa.select(inbox.c.id)
        .where(
            inbox.c.status == "pending",
            inbox.c.available_at <= now,
            sa.or_(inbox.c.lease_until.is_(None), inbox.c.lease_until < now),
            ~sa.exists().where(
                older.c.entity_key == inbox.c.entity_key,
                older.c.status == "pending",
                older.c.id < inbox.c.id,
            ),
        )
        .order_by(inbox.c.id)
        .limit(limit)
    )
    with store.read() as conn:
        # Idle workers poll: look before taking the write lock the receiver needs.
        if conn.execute(_ANY_DUE, {"now": now}).first() is None:
            return []
    with store.write() as conn:
        ids = claim(conn, inbox, [r.id for r in conn.execute(claimable)], worker, now,
                    lease_seconds)
        if not ids:
            return []
        rows = conn.execute(sa.select(inbox).where(inbox.c.id.in_(ids)).order_by(inbox.c.id))
        return [
            InboxItem(r.id, r.source, r.kind, r.entity_key, r.change_key, r.payload, r.attempts,
                      r.received_at, r.lease_owner)
            for r in rows
        ]


def release(conn: sa.Connection, item_id: int, status: str, outcome: str,
            *, retry_in: float | None = None, owner: str | None = None) -> None:
    """Record an event's outcome (inside the caller's transaction), or schedule a retry.

    With ``owner``, only while that worker still holds the lease (else ``LeaseLost``).
    """
    now = utcnow()
    values: dict[str, Any] = {"lease_owner": None, "lease_until": None, "outcome": outcome}
    if retry_in is not None:
        values.update(status="pending", available_at=now + timedelta(seconds=retry_in))
    else:
        values.update(status=status, processed_at=now)
    fenced_update(conn, inbox, item_id, owner, **values)


def counts(store: Store) -> dict[str, int]:
    """Events per status."""
    with store.read() as conn:
        return {r.status: r.n for r in conn.execute(
            sa.select(inbox.c.status, sa.func.count().label("n")).group_by(inbox.c.status))}
