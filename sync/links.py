"""The link store: which Jira issue each ticket is linked to, and the open bug per dedupe key.

Many tickets link to one bug. ``bugs`` maps (project, dedupe key) to the issue Switchboard created
for it, so a later ticket with the same key joins that issue instead of opening another.
"""

from __future__ import annotations

__all__ = ["BugRecord", "add_link", "find_bug", "linked_tickets", "links_for_ticket",
           "record_bug"]

from dataclasses import dataclass

import sqlalchemy as sa

from sync.schema import bugs, links
from sync.store import utcnow


@dataclass(frozen=True, slots=True)
class BugRecord:
    project: str
    dedupe_key: str
    jira_key: str
    jira_id: str
    url: str
    status: str | None


def find_bug(conn: sa.Connection, project: str, dedupe_key: str) -> BugRecord | None:
    """The bug recorded for this dedupe key, if any (whether it is still open is Jira's to say:
    see ``sync.actions``)."""
    row = conn.execute(
        sa.select(bugs).where(bugs.c.project == project, bugs.c.dedupe_key == dedupe_key)
    ).first()
    if row is None:
        return None
    return BugRecord(row.project, row.dedupe_key, row.jira_key, row.jira_id, row.url, row.status)


def record_bug(conn: sa.Connection, record: BugRecord) -> None:
    """Remember the bug for its dedupe key (replacing a closed one)."""
    conn.execute(sa.delete(bugs).where(bugs.c.project == record.project,
                                       bugs.c.dedupe_key == record.dedupe_key))
    conn.execute(sa.insert(bugs).values(
        project=record.project, dedupe_key=record.dedupe_key, jira_key=record.jira_key,
        jira_id=record.jira_id, url=record.url, status=record.status, created_at=utcnow()))


def add_link(conn: sa.Connection, ticket_id: int, system: str, ref: str, url: str | None) -> bool:
    """Link a ticket to an external object; True when the link is new."""
    exists = conn.execute(
        sa.select(links.c.id).where(links.c.ticket_id == ticket_id, links.c.system == system,
                                    links.c.ref == ref)
    ).first()
    if exists is not None:
        return False
    conn.execute(sa.insert(links).values(ticket_id=ticket_id, system=system, ref=ref, url=url,
                                         created_at=utcnow()))
    return True


_TICKET_LINKS = sa.select(links.c.system, links.c.ref) \
    .where(links.c.ticket_id == sa.bindparam("b_id")).order_by(links.c.id)


def links_for_ticket(conn: sa.Connection, ticket_id: int) -> dict[str, tuple[str, ...]]:
    """{"jira": ("SUP-1", ...)} for one ticket."""
    out: dict[str, list[str]] = {}
    for row in conn.execute(_TICKET_LINKS, {"b_id": ticket_id}):
        out.setdefault(row.system, []).append(row.ref)
    return {k: tuple(v) for k, v in out.items()}


def linked_tickets(conn: sa.Connection, system: str, ref: str) -> list[int]:
    """The tickets linked to one external object (a Jira issue key), by id."""
    rows = conn.execute(sa.select(links.c.ticket_id).where(
        links.c.system == system, links.c.ref == ref).order_by(links.c.ticket_id))
    return [int(r.ticket_id) for r in rows]
