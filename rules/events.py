"""The event types rules can listen to (``on: [ticket.created]``), and the fields each carries.

Each :class:`EventType` declares the fields its evaluation context carries, as patterns over the
field paths of :class:`rules.fields.FieldRegistry` (``"ticket.*"``: every ticket field,
``"comment.*"``: the comment fields). The loader refuses a rule whose conditions or templates read
a field that one of its events does not carry (``comment.body`` on ``ticket.updated``), naming the
events that do; the reference in ``docs/rules.md`` lists, per event, what it carries. Later issues
add entries here (the ``pagerduty.incident.*`` events carry the ``incident`` and the escalated
ticket, but no ``changes``); nothing else needs to change.

One inbound change can be several event types at once: a ticket update whose status became
``solved`` and that added a comment is ``ticket.updated``, ``ticket.solved`` and
``ticket.comment_added``. Each rule listening to any of them fires at most once for it.
"""

from __future__ import annotations

__all__ = [
    "EVENT_TYPES",
    "FEATURE_EVENT_FIELDS",
    "INCIDENT_EVENT_FIELDS",
    "ISSUE_EVENT_FIELDS",
    "SLA_EVENT_FIELDS",
    "TICKET_FIELDS",
    "EventType",
    "carried_by",
]

from dataclasses import dataclass

#: What every Zendesk ticket event carries (see :meth:`rules.context.EvalContext.namespace`).
TICKET_FIELDS: tuple[str, ...] = (
    "ticket.*", "changes.*", "links.*", "event.*", "requester.*", "organization.*",
)


def _matches(pattern: str, path: str) -> bool:
    if pattern.endswith(".*"):
        return path.startswith(pattern[:-1])
    return path == pattern


@dataclass(frozen=True, slots=True)
class EventType:
    """One kind of inbound event: its name, when it happens, and the fields it carries.

    ``fields`` are patterns over field paths: ``"root.*"`` matches every field under ``root``,
    anything else matches that one path.
    """

    name: str
    description: str
    fields: tuple[str, ...]

    @property
    def roots(self) -> frozenset[str]:
        """The context roots the event has (``ticket``, ``comment``, ...)."""
        return frozenset(pattern.split(".", 1)[0] for pattern in self.fields)

    def carries(self, path: str) -> bool:
        """Whether a rule listening to this event may read field ``path``."""
        return any(_matches(pattern, path) for pattern in self.fields)


EVENT_TYPES: dict[str, EventType] = {
    event.name: event
    for event in (
        EventType(
            "ticket.created",
            "A ticket Switchboard has never seen, announced as created (webhook), or found by the "
            "poller and created after Switchboard connected to the account.",
            TICKET_FIELDS,
        ),
        EventType(
            "ticket.updated",
            "Any later change of a ticket's fields; `changes` holds what changed since the last "
            "state Switchboard stored. A comment alone (no field changed) is not an update.",
            TICKET_FIELDS,
        ),
        EventType(
            "ticket.solved",
            "The ticket's status changed to solved in this event (`changes.status.to` is "
            "`solved`); the same change is also a ticket.updated (or ticket.created).",
            TICKET_FIELDS,
        ),
        EventType(
            "ticket.comment_added",
            "A comment (public reply or internal note) was added to the ticket by someone other "
            "than Switchboard; `comment` is the newest one the change added.",
            (*TICKET_FIELDS, "comment.*"),
        ),
    )
}


#: What a PagerDuty webhook event about one of Switchboard's incidents carries: the incident,
#: and the ticket the escalation was opened for (its last stored state) with its links.
INCIDENT_EVENT_FIELDS: tuple[str, ...] = ("ticket.*", "links.*", "event.*", "incident.*")

for _name, _what in (
    ("pagerduty.incident.acknowledged", "a responder acknowledged"),
    ("pagerduty.incident.resolved", "PagerDuty resolved (a responder, or an auto-resolve)"),
    ("pagerduty.incident.annotated", "a responder added a note to"),
):
    EVENT_TYPES[_name] = EventType(
        _name,
        f"PagerDuty says {_what} an incident Switchboard opened (webhook v3). `incident` holds "
        "it (`incident.agent` is who acted, `incident.note` the note); `ticket` is the ticket the "
        "escalation was opened for. Switchboard's own acknowledges and resolves do not come "
        "back as events.",
        INCIDENT_EVENT_FIELDS,
    )


#: What a Jira webhook event about an issue tickets are linked to carries: the issue, and
#: ``links.jira`` naming it. No one ticket: actions reach the linked tickets in bulk.
ISSUE_EVENT_FIELDS: tuple[str, ...] = ("issue.*", "links.*", "event.*")

EVENT_TYPES["jira.issue.updated"] = EventType(
    "jira.issue.updated",
    "Jira says an issue tickets are linked to changed its status, resolution, priority or fix "
    "versions (webhook, or the reconciliation poll). `issue` holds it (`issue.changed` lists "
    "what changed, `issue.previous_status` the status before); there is no single `ticket`: "
    "`zendesk.update_linked` reaches every linked ticket. Changes Switchboard made itself do "
    "not come back as events.",
    ISSUE_EVENT_FIELDS,
)
EVENT_TYPES["jira.issue.deleted"] = EventType(
    "jira.issue.deleted",
    "An issue tickets are linked to was deleted in Jira. `issue` holds it as it was.",
    ISSUE_EVENT_FIELDS,
)


EVENT_TYPES["jira.comment.added"] = EventType(
    "jira.comment.added",
    "Someone other than Switchboard commented on an issue tickets are linked to. "
    "`jira_comment` holds the comment, `issue` the issue (as the webhook carries it: key, "
    "status, priority). Comments Switchboard wrote itself do not come back as events.",
    (*ISSUE_EVENT_FIELDS, "jira_comment.*"),
)


#: What an SLA watch event carries: the ticket as the store last saw it (no ``changes``: the
#: event is about time passing, not a change), its people, links, and the ``sla`` target.
SLA_EVENT_FIELDS: tuple[str, ...] = (
    "ticket.*", "links.*", "event.*", "requester.*", "organization.*", "sla.*",
)

EVENT_TYPES["sla.warning"] = EventType(
    "sla.warning",
    "The SLA watch found an open ticket whose SLA target (first reply or resolution) is due "
    "within `sla.warn_before`: once per ticket, target and due time. `sla` holds the target "
    "(`sla.minutes_left`); `ticket` is the ticket as Switchboard last stored it.",
    SLA_EVENT_FIELDS,
)
EVENT_TYPES["sla.breached"] = EventType(
    "sla.breached",
    "The SLA watch found an open ticket past the due time of an SLA target: once per ticket, "
    "target and due time. `sla` holds the target (`sla.minutes_over`).",
    SLA_EVENT_FIELDS,
)


#: What a Productboard feature event carries: the feature, and ``links.productboard`` naming it.
#: No one ticket: actions reach the tickets whose notes are linked to it, in bulk.
FEATURE_EVENT_FIELDS: tuple[str, ...] = ("feature.*", "links.*", "event.*")

EVENT_TYPES["productboard.feature.updated"] = EventType(
    "productboard.feature.updated",
    "A Productboard feature that tickets' feedback notes are linked to changed status (seen by "
    "the Productboard poll). `feature` holds it (`feature.previous_status` the status before); "
    "there is no single `ticket`: `zendesk.update_linked` with `feature:` reaches every ticket "
    "whose note is linked to it.",
    FEATURE_EVENT_FIELDS,
)


def carried_by(path: str) -> list[str]:
    """Names of the event types that carry field ``path``, in registry order."""
    return [event.name for event in EVENT_TYPES.values() if event.carries(path)]
