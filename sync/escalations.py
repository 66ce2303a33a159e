"""The escalation store: one PagerDuty incident and one Slack thread per escalation.

An *escalation* is what an engineer sees as one incident: one PagerDuty incident (named by its
dedup key, kept with the service it was paged on) and one Slack thread (channel and ``ts`` of the
root message), plus the tickets that belong to it. Its key says what it is about:

- ``window:<rule>:<group>:<opened_at>`` — a windowed rule's episode (an outage): every match
  that fired or joined the episode, and its ``after_quiet`` follow-up, share it;
- ``ticket:<id>`` — one ticket's escalation (the default for a rule without a window);
- the incident of a ``pagerduty.incident.*`` event — the escalation that incident belongs to;
- or the rendered ``incident:`` parameter of the action, when a rule names it.

Members (``escalation_members``) are written by the processor in the transaction that plans an
escalation's intents, so a Slack root rendered at dispatch already counts every ticket that
joined before it: a burst of joins ends in one or two ``chat.update`` calls, not one per ticket.
The escalation row itself is created by the first action that runs for it. An escalation may
also have one Zendesk problem ticket (``zendesk.problem``), to which its members are attached as
incidents; each member row says which problem ticket it is attached to.
"""

from __future__ import annotations

__all__ = [
    "Escalation",
    "Member",
    "add_members",
    "by_dedup_key",
    "dedup_key_for",
    "ensure",
    "escalation_key",
    "get",
    "link_members",
    "members",
    "set_problem",
    "unattached",
    "update",
]

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from sync.schema import escalation_members, escalations, links
from sync.store import utcnow

MAX_KEY = 255
DEDUP_PREFIX = "switchboard/"


@dataclass(frozen=True, slots=True)
class Escalation:
    """One escalation as the store holds it (see the module docstring)."""

    key: str
    rule_id: str
    title: str
    ticket_id: int | None
    status: str
    dedup_key: str
    pd_service: str | None
    pd_status: str | None
    pd_own_status: str | None
    pd_agent: str | None
    pd_incident_id: str | None
    pd_url: str | None
    slack_channel: str | None
    slack_ts: str | None
    slack_root_digest: str | None
    created_at: datetime
    updated_at: datetime
    zd_problem_id: int | None = None

    @property
    def paged(self) -> bool:
        """True while the PagerDuty incident is open (triggered or acknowledged)."""
        return self.pd_status in ("triggered", "acknowledged")


@dataclass(frozen=True, slots=True)
class Member:
    """A ticket of an escalation, with its organization when known."""

    ticket_id: int
    organization_id: int | None
    organization_name: str | None


def escalation_key(rule_id: str, incident: Any, namespace: Mapping[str, Any]) -> str:
    """The key of the escalation an action belongs to (see the module docstring).

    ``incident`` is the action's rendered ``incident`` parameter (``None`` when absent);
    ``namespace`` the template namespace of the event that planned it.
    """
    if isinstance(incident, str) and incident.strip():
        return incident.strip()[:MAX_KEY]
    window = namespace.get("window")
    if isinstance(window, Mapping) and window.get("opened_at"):
        group = window.get("group") or "*"
        return f"window:{rule_id}:{group}:{window['opened_at']}"[:MAX_KEY]
    event_incident = namespace.get("incident")
    if isinstance(event_incident, Mapping) and event_incident.get("escalation"):
        return str(event_incident["escalation"])
    ticket = namespace.get("ticket")
    ticket_id = ticket.get("id") if isinstance(ticket, Mapping) else None
    return f"ticket:{ticket_id}"


def dedup_key_for(key: str) -> str:
    """The PagerDuty dedup key of an escalation: readable when short, else hashed (<= 255)."""
    readable = DEDUP_PREFIX + key
    if len(readable) <= MAX_KEY and readable.isprintable():
        return readable
    return DEDUP_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def _row(row: Any) -> Escalation:
    return Escalation(row.key, row.rule_id, row.title, row.ticket_id, row.status, row.dedup_key,
                      row.pd_service, row.pd_status, row.pd_own_status, row.pd_agent,
                      row.pd_incident_id, row.pd_url, row.slack_channel, row.slack_ts,
                      row.slack_root_digest, row.created_at, row.updated_at, row.zd_problem_id)


def get(conn: sa.Connection, key: str) -> Escalation | None:
    """The escalation with this key, if any action has run for it."""
    row = conn.execute(sa.select(escalations).where(escalations.c.key == key)).first()
    return None if row is None else _row(row)


def by_dedup_key(conn: sa.Connection, dedup_key: str) -> Escalation | None:
    """The escalation a PagerDuty incident belongs to (its dedup key), if it is ours."""
    row = conn.execute(
        sa.select(escalations).where(escalations.c.dedup_key == dedup_key)).first()
    return None if row is None else _row(row)


def ensure(conn: sa.Connection, key: str, *, rule_id: str, title: str,
           ticket_id: int | None) -> Escalation:
    """The escalation with this key, created (status ``open``) if it does not exist yet."""
    found = get(conn, key)
    if found is not None:
        return found
    now = utcnow()
    conn.execute(sa.insert(escalations).values(
        key=key, rule_id=rule_id, title=title[:1000], ticket_id=ticket_id, status="open",
        dedup_key=dedup_key_for(key), created_at=now, updated_at=now))
    created = get(conn, key)
    assert created is not None
    return created


def update(conn: sa.Connection, key: str, **values: Any) -> None:
    """Set columns of one escalation (``updated_at`` too)."""
    conn.execute(sa.update(escalations).where(escalations.c.key == key)
                 .values(updated_at=utcnow(), **values))


def add_members(conn: sa.Connection, key: str, tickets: Iterable[Member]) -> int:
    """Add tickets to an escalation (known ones get their organization filled in); returns how
    many were new."""
    added = 0
    for member in tickets:
        where = (escalation_members.c.escalation_key == key,
                 escalation_members.c.ticket_id == member.ticket_id)
        row = conn.execute(sa.select(escalation_members).where(*where)).first()
        if row is None:
            conn.execute(sa.insert(escalation_members).values(
                escalation_key=key, ticket_id=member.ticket_id,
                organization_id=member.organization_id,
                organization_name=member.organization_name, added_at=utcnow()))
            added += 1
            continue
        fill: dict[str, Any] = {}
        if row.organization_id is None and member.organization_id is not None:
            fill["organization_id"] = member.organization_id
        if row.organization_name is None and member.organization_name:
            fill["organization_name"] = member.organization_name
        if fill:
            conn.execute(sa.update(escalation_members).where(*where).values(**fill))
    return added


def members(conn: sa.Connection, key: str) -> list[Member]:
    """The escalation's tickets, in the order they joined."""
    rows = conn.execute(
        sa.select(escalation_members).where(escalation_members.c.escalation_key == key)
        .order_by(escalation_members.c.added_at, escalation_members.c.ticket_id))
    return [Member(r.ticket_id, r.organization_id, r.organization_name) for r in rows]


def unattached(conn: sa.Connection, key: str, problem_id: int) -> list[int]:
    """The member tickets not attached to the problem ticket yet (the problem itself excluded),
    in the order they joined."""
    rows = conn.execute(
        sa.select(escalation_members.c.ticket_id).where(
            escalation_members.c.escalation_key == key,
            escalation_members.c.ticket_id != problem_id,
            sa.or_(escalation_members.c.problem_id.is_(None),
                   escalation_members.c.problem_id != problem_id))
        .order_by(escalation_members.c.added_at, escalation_members.c.ticket_id))
    return [int(r.ticket_id) for r in rows]


def set_problem(conn: sa.Connection, key: str, ticket_ids: Iterable[int],
                problem_id: int) -> None:
    """Record that these member tickets are attached to the problem ticket."""
    ids = list(ticket_ids)
    if ids:
        conn.execute(sa.update(escalation_members).where(
            escalation_members.c.escalation_key == key,
            escalation_members.c.ticket_id.in_(ids)).values(problem_id=problem_id))


def link_members(conn: sa.Connection, escalation: Escalation) -> None:
    """Link every member ticket to the escalation's page and thread (``links.pagerduty``,
    ``links.slack``), so rules about those tickets can see them; a page link learns its URL
    once PagerDuty has told it. A few statements whatever the number of members (a burst's
    joins each call this)."""
    tickets = [m.ticket_id for m in members(conn, escalation.key)]
    if escalation.pd_status is not None:
        _link_all(conn, tickets, "pagerduty", escalation.dedup_key, escalation.pd_url)
    if escalation.slack_ts is not None and escalation.slack_channel is not None:
        _link_all(conn, tickets, "slack", f"{escalation.slack_channel}/{escalation.slack_ts}",
                  None)


def _link_all(conn: sa.Connection, tickets: list[int], system: str, ref: str,
              url: str | None) -> None:
    where = (links.c.system == system, links.c.ref == ref)
    existing = {int(r.ticket_id): r.url for r in conn.execute(
        sa.select(links.c.ticket_id, links.c.url).where(*where))}
    now = utcnow()
    new = [{"ticket_id": t, "system": system, "ref": ref, "url": url, "created_at": now}
           for t in dict.fromkeys(tickets) if t not in existing]
    if new:
        conn.execute(sa.insert(links), new)
    if url is not None and any(u is None for u in existing.values()):
        conn.execute(sa.update(links).where(*where, links.c.url.is_(None)).values(url=url))
