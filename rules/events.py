"""The event types rules can listen to (``on: [ticket.created]``).

Each :class:`EventType` names the context roots its evaluation context carries, so that the loader
can refuse a rule whose conditions or templates use a root the event does not have (a future
``pagerduty.incident.resolved`` carries no ``ticket``). Later issues add entries here; nothing else
needs to change.
"""

from __future__ import annotations

__all__ = ["EVENT_TYPES", "TICKET_ROOTS", "EventType"]

from dataclasses import dataclass

#: Roots of every ticket event's context (see :meth:`rules.context.EvalContext.namespace`).
TICKET_ROOTS = frozenset({"ticket", "changes", "links", "event"})


@dataclass(frozen=True, slots=True)
class EventType:
    """One kind of inbound event: its name, what it means, and the context roots it carries."""

    name: str
    description: str
    roots: frozenset[str]


EVENT_TYPES: dict[str, EventType] = {
    event.name: event
    for event in (
        EventType(
            "ticket.created",
            "A Zendesk ticket was created (webhook or incremental export).",
            TICKET_ROOTS,
        ),
        EventType(
            "ticket.updated",
            "A Zendesk ticket changed; `changes` holds what changed in this event.",
            TICKET_ROOTS,
        ),
    )
}
