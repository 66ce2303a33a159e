"""PagerDuty incident events (webhooks v3): keep the escalation's state, then let rules act.

For an inbox event stored by the receiver (``payload.style == "pagerduty"``) the processor

1. finds the escalation the incident belongs to — by its dedup key (``incident_key``), else by
   the incident id learnt from an earlier event; an incident Switchboard did not open is done
   with, with that reason;
2. records what PagerDuty says (status, who acknowledged, the incident's id and link) on the
   escalation, so the Slack root shows it the next time it is rendered;
3. stops there for ``incident.triggered`` (it only maps the incident) and for the *echo* of a
   status Switchboard set itself (an acknowledge or resolve sent by a rule: invariant 5);
4. otherwise evaluates the rules listening to ``pagerduty.incident.<what>`` against the incident
   and the ticket the escalation was opened for (its stored state), and commits decisions,
   intents and the escalation's new state with the inbox outcome in ONE transaction.

A redelivered webhook (same ``X-Webhook-Id`` or event id) never gets here twice: the inbox keeps
one row per delivery and per event.
"""

from __future__ import annotations

__all__ = ["process_incident"]

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from sync import escalations as esc_store
from sync import inbox as inbox_mod
from sync.escalations import Escalation
from sync.planning import decide_in, matched_summary
from sync.schema import escalations
from sync.state import get_snapshot

if TYPE_CHECKING:
    from sync.processor import EventProcessor

log = logging.getLogger("switchboard.processor")

#: The status an incident has after each event type (``annotated`` changes none).
STATUS_AFTER = {"incident.triggered": "triggered", "incident.acknowledged": "acknowledged",
                "incident.resolved": "resolved"}


def _find(conn: sa.Connection, event: dict[str, Any]) -> Escalation | None:
    if event.get("incident_key"):
        found = esc_store.by_dedup_key(conn, str(event["incident_key"]))
        if found is not None:
            return found
    row = conn.execute(sa.select(escalations.c.key).where(
        escalations.c.pd_incident_id == event.get("incident_id"))).first()
    return None if row is None else esc_store.get(conn, row.key)


def _relink(conn: sa.Connection, key: str) -> None:
    """The members' page links learn the incident's URL (PagerDuty may tell it after the page
    was recorded)."""
    updated = esc_store.get(conn, key)
    if updated is not None:
        esc_store.link_members(conn, updated)


def _state(escalation: Escalation, event: dict[str, Any]) -> dict[str, Any]:
    """The escalation columns this event sets."""
    values: dict[str, Any] = {"pd_incident_id": event.get("incident_id")}
    if event.get("html_url"):
        values["pd_url"] = event["html_url"]
    status = STATUS_AFTER.get(event["event_type"])
    if status is not None:
        values["pd_status"] = status
        values["status"] = "resolved" if status == "resolved" else "open"
        if status in ("acknowledged", "resolved"):
            values["pd_agent"] = event.get("agent_name") or escalation.pd_agent
    return values


def _incident(escalation: Escalation, event: dict[str, Any]) -> dict[str, Any]:
    """What rules read as ``incident.*`` (plus the escalation's key, for the actions)."""
    return {"id": event.get("incident_id"), "number": event.get("incident_number"),
            "key": escalation.dedup_key,
            "status": STATUS_AFTER.get(event["event_type"], escalation.pd_status),
            "title": event.get("title"), "url": event.get("html_url") or escalation.pd_url,
            "urgency": event.get("urgency"),
            "service": event.get("service_name") or escalation.pd_service,
            "agent": event.get("agent_name"), "note": event.get("note"),
            "escalation": escalation.key}


def process_incident(processor: EventProcessor, item: inbox_mod.InboxItem) -> str:
    """Handle one stored PagerDuty incident event end to end; returns its outcome."""
    event: dict[str, Any] = dict(item.payload["event"])
    kind = str(event["event_type"])
    with processor.store.read() as conn:
        escalation = _find(conn, event)
        snapshot = get_snapshot(conn, escalation.ticket_id) \
            if escalation is not None and escalation.ticket_id is not None else None
    if escalation is None:
        return processor._finish(item, "done", f"{kind}: incident {event.get('incident_id')} "
                                 "was not opened by Switchboard; nothing to do")
    values = _state(escalation, event)
    status = STATUS_AFTER.get(kind)
    why = None
    if kind == "incident.triggered":
        why = "the incident Switchboard's page opened; recorded"
    elif status is not None and escalation.pd_own_status == status:
        why = f"echo of Switchboard's own {status[:-2] if status.endswith('ed') else status}"
    elif escalation.ticket_id is None:
        why = "the escalation has no ticket to evaluate rules against; state recorded"
    if why is not None:
        with processor.store.write() as conn:
            esc_store.update(conn, escalation.key, **values)
            _relink(conn, escalation.key)
            inbox_mod.release(conn, item.id, "done", f"{kind}: {why}", owner=item.owner)
        return f"{kind}: {why}"
    assert escalation.ticket_id is not None
    ticket = snapshot if snapshot is not None else processor.zendesk.get_ticket(
        escalation.ticket_id)
    event_type = f"pagerduty.{kind}"
    with processor.store.read() as conn:
        base = processor._context(conn, ticket, event_type, {}, item)
    ctx = dataclasses.replace(base, incident=_incident(escalation, event))
    namespace = ctx.namespace()
    with processor.store.write() as conn:
        planned, matched = decide_in(conn, processor.rules, ctx, namespace, item.id,
                                     item.change_key or f"inbox:{item.id}", ticket.id)
        esc_store.update(conn, escalation.key, **values)
        _relink(conn, escalation.key)
        summary = f"{event_type} ({escalation.key}); {matched_summary(matched, planned)}"
        inbox_mod.release(conn, item.id, "done", summary, owner=item.owner)
    log.info("event %s: %s", item.id, summary)
    return summary
