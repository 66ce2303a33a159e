"""The outbox: planned action intents, executed at least once until done or dead-lettered.

An intent is written in the same transaction as the decision that planned it, under a
deterministic idempotency key (a replayed event plans the same keys, which are then no-ops).
Workers claim intents with a lease (:func:`acquire`); an intent runs only when

- it is due (``available_at``), not leased by a live worker,
- no older unfinished intent shares its ``order_key`` (order per entity: per ticket, or per
  Jira bug dedupe key so that two tickets cannot both create "the" bug), and
- the intent it depends on (``depends_on``) is done — its result is rendered into this one's
  parameters at dispatch. If that dependency is dead, so is this intent, with the reason.

Status values: ``pending``, ``done``, ``dead`` (gave up, with ``last_error``), ``skipped``
(nothing to do, e.g. the ticket was deleted), ``shadow`` (planned by a shadow-mode rule; never run).
"""

from __future__ import annotations

__all__ = [
    "OutboxItem",
    "acquire",
    "add_intent",
    "counts",
    "finish",
    "set_progress",
]

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from sync.leases import claim, fenced_update
from sync.schema import outbox
from sync.store import Store, utcnow

TERMINAL_FAILURES = ("dead", "skipped")


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A claimed intent. ``dependency`` is the finished intent it depends on (action, result)."""

    id: int
    idem_key: str
    rule_id: str
    action: str
    ticket_id: int | None
    order_key: str
    params: Mapping[str, Any]
    context: Mapping[str, Any]
    attempts: int
    progress: Mapping[str, Any]
    dependency_action: str | None
    dependency_result: Mapping[str, Any] | None
    owner: str | None = None


def add_intent(conn: sa.Connection, **values: Any) -> bool:
    """Insert one intent in the caller's transaction; False when its key already exists."""
    exists = conn.execute(
        sa.select(outbox.c.id).where(outbox.c.idem_key == values["idem_key"])
    ).first()
    if exists is not None:
        return False
    now = utcnow()
    values.setdefault("status", "pending")
    conn.execute(sa.insert(outbox).values(attempts=0, available_at=now, created_at=now, **values))
    return True


def _cascade_dead_dependencies(conn: sa.Connection) -> None:
    dep = outbox.alias("dep")
    rows = conn.execute(
        sa.select(outbox.c.id, dep.c.idem_key, dep.c.status, dep.c.last_error)
        .join(dep, dep.c.idem_key == outbox.c.depends_on)
        .where(outbox.c.status == "pending", dep.c.status.in_(TERMINAL_FAILURES))
    ).all()
    now = utcnow()
    for row in rows:
        conn.execute(sa.update(outbox).where(outbox.c.id == row.id).values(
            status="dead", finished_at=now, lease_owner=None, lease_until=None,
            last_error=f"depends on {row.idem_key}, which is {row.status}: {row.last_error}"))


_ANY_DUE = sa.select(outbox.c.id).where(outbox.c.status == "pending",
                                         outbox.c.available_at <= sa.bindparam("now")).limit(1)


def acquire(store: Store, worker: str, limit: int, lease_seconds: float,
            actions: Collection[str] | None = None) -> list[OutboxItem]:
    """Claim up to ``limit`` runnable intents (see the module docstring for the rules).

    ``actions`` limits the claim to those actions (a worker pool per vendor, so that one
    vendor's rate limit does not hold up another's work).
    """
    now = utcnow()
    older = outbox.alias("older")
    dep = outbox.alias("dep")
    runnable = (
        sa.select(outbox.c.id)
        .where(
            outbox.c.status == "pending",
            outbox.c.available_at <= now,
            sa.or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now),
            ~sa.exists().where(older.c.order_key == outbox.c.order_key,
                               older.c.status == "pending", older.c.id < outbox.c.id),
            sa.or_(outbox.c.depends_on.is_(None),
                   sa.exists().where(dep.c.idem_key == outbox.c.depends_on,
                                     dep.c.status == "done")),
        )
        .order_by(outbox.c.id)
        .limit(limit)
    )
    if actions is not None:
        runnable = runnable.where(outbox.c.action.in_(list(actions)))
    with store.read() as conn:
        # Idle workers poll: look before taking the write lock the receiver needs.
        due = _ANY_DUE if actions is None \
            else _ANY_DUE.where(outbox.c.action.in_(list(actions)))
        if conn.execute(due, {"now": now}).first() is None:
            return []
    with store.write() as conn:
        _cascade_dead_dependencies(conn)
        ids = claim(conn, outbox, [r.id for r in conn.execute(runnable)], worker, now,
                    lease_seconds)
        if not ids:
            return []
        rows = conn.execute(
            sa.select(outbox, dep.c.action.label("dep_action"), dep.c.result.label("dep_result"))
            .outerjoin(dep, dep.c.idem_key == outbox.c.depends_on)
            .where(outbox.c.id.in_(ids)).order_by(outbox.c.id)
        ).all()
    return [
        OutboxItem(r.id, r.idem_key, r.rule_id, r.action, r.ticket_id, r.order_key, r.params,
                   r.context, r.attempts, r.progress or {}, r.dep_action, r.dep_result,
                   r.lease_owner)
        for r in rows
    ]


def set_progress(conn: sa.Connection, item_id: int, progress: Mapping[str, Any],
                 *, owner: str | None = None) -> None:
    """Record how far a multi-step action got, so a retry resumes instead of repeating.

    With ``owner``, only while that worker still holds the lease (else ``LeaseLost``).
    """
    fenced_update(conn, outbox, item_id, owner, progress=dict(progress))


def finish(conn: sa.Connection, item_id: int, status: str, *, result: Mapping[str, Any] | None
           = None, error: str | None = None, retry_in: float | None = None,
           owner: str | None = None) -> None:
    """Record an outcome in the caller's transaction: done/dead/skipped, or pending for a retry.

    With ``owner``, only while that worker still holds the lease (else ``LeaseLost``).
    """
    values: dict[str, Any] = {"lease_owner": None, "lease_until": None, "last_error": error}
    if retry_in is not None:
        values.update(status="pending", available_at=utcnow() + timedelta(seconds=retry_in))
    else:
        values.update(status=status, finished_at=utcnow())
        if result is not None:
            values["result"] = dict(result)
    fenced_update(conn, outbox, item_id, owner, **values)


def counts(store: Store) -> dict[str, int]:
    """Intents per status."""
    with store.read() as conn:
        return {r.status: r.n for r in conn.execute(
            sa.select(outbox.c.status, sa.func.count().label("n")).group_by(outbox.c.status))}
