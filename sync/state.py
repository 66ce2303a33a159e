"""Small durable state: ticket snapshots, poller cursors, and Switchboard's own writes.

All functions take an open connection so that callers can put them in the same transaction as
the events or intents they belong with (a cursor is saved with the events it produced; a snapshot
with the decision made from it).
"""

from __future__ import annotations

__all__ = [
    "get_cursor",
    "get_snapshot",
    "is_own_write",
    "put_snapshot",
    "record_write",
    "refresh_slas",
    "set_cursor",
]

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from connectors.models import Ticket, format_time
from sync.schema import cursors, snapshots, writes
from sync.store import utcnow

# Built once: the processor runs these for every event.
_SNAPSHOT = sa.select(snapshots.c.data, snapshots.c.updated_at) \
    .where(snapshots.c.ticket_id == sa.bindparam("b_id"))
_SNAPSHOT_INSERT = sa.insert(snapshots)
_SNAPSHOT_UPDATE = sa.update(snapshots).where(snapshots.c.ticket_id == sa.bindparam("b_id"))
_OWN_WRITE = sa.select(writes.c.id).where(
    writes.c.system == sa.bindparam("b_system"), writes.c.entity_id == sa.bindparam("b_entity"),
    writes.c.stamp == sa.bindparam("b_stamp"))


def get_snapshot(conn: sa.Connection, ticket_id: int) -> Ticket | None:
    row = conn.execute(_SNAPSHOT, {"b_id": ticket_id}).first()
    return Ticket.from_dict(row.data) if row else None


def put_snapshot(conn: sa.Connection, ticket: Ticket) -> bool:
    """Store ``ticket`` unless the stored snapshot is as new or newer; True when stored.

    Zendesk's SLA state (``Ticket.slas``) comes only with reads and export pages that ask for
    it, never with webhooks or update answers: a state without it keeps the stored one's (the
    next export page of the ticket refreshes it, see :func:`refresh_slas`); a state read with
    an empty SLA state (``slas: []``: no policy applies any more) clears it.
    """
    current = conn.execute(_SNAPSHOT, {"b_id": ticket.id}).first()
    data = ticket.to_dict()
    if "slas" not in data and current is not None and current.data.get("slas"):
        data["slas"] = current.data["slas"]
    values = {"updated_at": ticket.updated_at, "data": data, "saved_at": utcnow()}
    if current is None:
        conn.execute(_SNAPSHOT_INSERT, {"ticket_id": ticket.id, **values})
        return True
    if current.updated_at >= ticket.updated_at:
        return False
    conn.execute(_SNAPSHOT_UPDATE, {"b_id": ticket.id, **values})
    return True


def refresh_slas(conn: sa.Connection, ticket_id: int, updated_at: datetime,
                 slas: list[dict[str, Any]]) -> bool:
    """Give the snapshot stamped ``updated_at`` Zendesk's SLA state ``slas`` (``SlaMetric``
    dicts) from a later read of the same state — the export page of a change a webhook
    brought first. True when the stored state changed."""
    current = conn.execute(_SNAPSHOT, {"b_id": ticket_id}).first()
    if current is None or current.updated_at != updated_at or current.data.get("slas") == slas:
        return False
    conn.execute(_SNAPSHOT_UPDATE, {"b_id": ticket_id, "data": {**current.data, "slas": slas},
                                    "saved_at": utcnow()})
    return True


def get_cursor(conn: sa.Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(cursors.c.value).where(cursors.c.name == name)).first()
    return dict(row.value) if row else None


def set_cursor(conn: sa.Connection, name: str, value: dict[str, Any]) -> None:
    now = utcnow()
    updated = conn.execute(
        sa.update(cursors).where(cursors.c.name == name).values(value=value, updated_at=now)
    ).rowcount
    if not updated:
        conn.execute(sa.insert(cursors).values(name=name, value=value, updated_at=now))


def record_write(conn: sa.Connection, system: str, entity_id: str | int, ticket: Ticket,
                 outbox_id: int | None) -> None:
    """Remember that the state stamped ``ticket.updated_at`` was written by Switchboard."""
    stamp = format_time(ticket.updated_at)
    if not is_own_write(conn, system, entity_id, stamp):
        conn.execute(sa.insert(writes).values(system=system, entity_id=str(entity_id), stamp=stamp,
                                              outbox_id=outbox_id, created_at=utcnow()))


def is_own_write(conn: sa.Connection, system: str, entity_id: str | int, stamp: str) -> bool:
    return conn.execute(_OWN_WRITE, {"b_system": system, "b_entity": str(entity_id),
                                     "b_stamp": stamp}).first() is not None
