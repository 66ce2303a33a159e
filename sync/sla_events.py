"""SLA watch events (``sla.warning``, ``sla.breached``), processed against the rules.

For an inbox event the SLA watch stored (``payload.style == "sla"``, see ``sync.sla``) the
processor

1. re-checks it against the ticket's stored state *now* — events wait in the inbox behind the
   ticket's earlier events, which may have solved it: a ticket that is solved or closed, or
   gone from the store, gets no alert; neither does a target the ticket has moved past since
   the scan (its priority changed and with it the due time; Zendesk's metric is no longer active at
   that time; a config first-reply target on a ticket that is no longer ``new``). The reason is
   the event's outcome;
2. otherwise evaluates the rules listening to the event with the ticket as stored, its links,
   its requester and organization (read, from the people cache when it can be, only when a rule
   that listens reads them) and ``sla.*``, and commits decisions, intents and the outcome in ONE
   transaction, as for ticket events. The event carries a ticket, so ticket actions
   (``zendesk.update``, escalation actions) apply.
"""

from __future__ import annotations

__all__ = ["process_sla", "sla_fields", "stale_reason"]

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from connectors.models import Ticket, TicketPeople, parse_time
from rules.model import Mode, condition_fields
from sync import inbox as inbox_mod
from sync.planning import decide_in, matched_summary
from sync.sla import dues_of, plan_tier
from sync.sla_config import SlaSettings
from sync.state import get_snapshot

if TYPE_CHECKING:
    from sync.processor import EventProcessor

log = logging.getLogger("switchboard.processor")

#: The fields of ``sla`` the payload carries as they are.
_SLA_KEYS = ("target", "due_at", "minutes_left", "minutes_over", "priority", "plan", "source")
_CLOSED = ("solved", "closed")


def sla_fields(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What rules read as ``sla.*``."""
    return {key: payload.get(key) for key in _SLA_KEYS}


def stale_reason(payload: Mapping[str, Any], ticket: Ticket | None,
                 settings: SlaSettings | None = None,
                 plan: Callable[[], str | None] = lambda: None) -> str | None:
    """Why the alert no longer applies to the ticket as stored now, or ``None``.

    A priority change supersedes a config target's alert only when it moves the due time
    (``settings``, with the plan tier ``plan`` gives): when it does not, the scan sees the
    same target instance, already raised, and would never raise it again.
    """
    if ticket is None:
        return f"ticket #{payload.get('ticket_id')} is not in the store"
    if ticket.status in _CLOSED:
        return f"the ticket is {ticket.status}"
    due = parse_time(payload.get("due_at"))
    if ticket.priority != payload.get("priority") and not (
            settings is not None and payload.get("source") == "config"
            and any(d.target == payload.get("target") and d.due_at == due
                    and d.source == "config" for d in dues_of(ticket, plan(), settings))):
        return (f"superseded: the priority is now {ticket.priority or 'none'} (it was "
                f"{payload.get('priority') or 'none'} when the scan raised it)")
    if payload.get("source") == "zendesk":
        same = [m for m in ticket.slas if m.breach_at == due and m.stage == "active"]
        if not same:
            return "superseded: Zendesk's SLA state no longer has that due time"
    elif payload.get("target") == "first_reply" and ticket.status != "new":
        return f"the first reply is done (the ticket is {ticket.status}, no longer new)"
    return None


def _plan_now(processor: EventProcessor, ticket: Ticket, payload: Mapping[str, Any],
              settings: SlaSettings) -> str | None:
    """The plan tier that chooses the ticket's targets at its priority now: the one the scan
    read, else (the scan did not need it) read as the scan reads it, when the targets of the
    priority now depend on it."""
    if payload.get("plan") is not None or ticket.organization_id is None:
        return payload.get("plan")
    if not settings.plans_for(ticket.priority) or settings.plans_for(payload.get("priority")):
        return None  # the tier does not matter now, or the scan read it: none
    people = processor.zendesk.get_people(ticket.id, None, ticket.organization_id)
    return plan_tier(people.organization, settings)


def _people(processor: EventProcessor, ticket: Ticket, event_type: str
            ) -> tuple[TicketPeople | None, str | None]:
    """The requester and organization, read only if a rule that listens reads them."""
    used: set[str] = set()
    for rule in processor.rules:
        if rule.mode is not Mode.OFF and event_type in rule.on:
            used |= {f for f in condition_fields(rule.condition) | rule.fields_used
                     if f.startswith(("requester.", "organization."))}
    requester = any(f.startswith("requester.") for f in used)
    organization = any(f.startswith("organization.") for f in used)
    if not (requester or organization):
        return None, None
    people = processor.zendesk.get_people(
        ticket.id, ticket.requester_id if requester else None,
        ticket.organization_id if organization else None)
    return people, f"read {', '.join(sorted(used))}"


def process_sla(processor: EventProcessor, item: inbox_mod.InboxItem) -> str:
    """Handle one stored SLA watch event end to end; returns its outcome."""
    payload = item.payload
    event_type = str(payload["kind"])
    ticket_id = int(payload["ticket_id"])
    what = f"{event_type} {payload.get('target')} (due {payload.get('due_at')})"
    with processor.store.read() as conn:
        ticket = get_snapshot(conn, ticket_id)
    settings = processor.sla
    why = stale_reason(payload, ticket, settings, lambda: (
        _plan_now(processor, ticket, payload, settings)
        if ticket is not None and settings is not None else None))
    if why is not None:
        return processor._finish(item, "done", f"{what}: {why}; no alert")
    assert ticket is not None
    people, read = _people(processor, ticket, event_type)
    with processor.store.read() as conn:
        base = processor._context(conn, ticket, event_type, {}, item, people)
    ctx = dataclasses.replace(base, sla=sla_fields(payload))
    with processor.store.write() as conn:
        planned, matched = decide_in(conn, processor.rules, ctx, ctx.namespace(), item.id,
                                     item.change_key or f"inbox:{item.id}", ticket_id)
        summary = "; ".join(p for p in (what, read, matched_summary(matched, planned)) if p)
        inbox_mod.release(conn, item.id, "done", summary, owner=item.owner)
    log.info("event %s ticket %s: %s", item.id, ticket_id, summary)
    return summary
