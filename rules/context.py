"""What a rule is evaluated against: one event, the ticket it is about, its changes and links,
and — when the event carries them and a rule reads them — the requester, the organization and the
comment the event added.

:class:`EvalContext` is built by the worker from typed models (``Ticket.to_dict()`` shape for the
ticket, ``User.to_dict()`` / ``Organization.to_dict()`` / ``Comment.to_dict()`` for the others);
rules never see vendor JSON. :meth:`EvalContext.namespace` is what templates see.
"""

from __future__ import annotations

__all__ = [
    "COMMENT_KEYS",
    "FEATURE_KEYS",
    "INCIDENT_KEYS",
    "LINK_KINDS",
    "ORGANIZATION_KEYS",
    "REQUESTER_KEYS",
    "SLA_KEYS",
    "Change",
    "EvalContext",
    "blank_person",
    "parse_instant",
]

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.models import Ticket

#: Kinds of links a ticket can have; each is always present in the template namespace.
LINK_KINDS: tuple[str, ...] = ("jira", "pagerduty", "slack", "productboard")
#: Keys of ``requester`` (``User.to_dict()``), ``organization`` and ``comment`` in a context.
REQUESTER_KEYS: tuple[str, ...] = ("id", "name", "email", "tags", "organization_id", "fields")
ORGANIZATION_KEYS: tuple[str, ...] = ("id", "name", "tags", "fields")
COMMENT_KEYS: tuple[str, ...] = ("id", "body", "public", "author_id", "created_at")
#: Keys of ``incident`` (a PagerDuty webhook event about an incident Switchboard opened).
INCIDENT_KEYS: tuple[str, ...] = ("id", "number", "key", "status", "title", "url", "urgency",
                                  "service", "agent", "note")
#: Keys of ``sla`` (an ``sla.warning`` / ``sla.breached`` event raised by the SLA watch).
SLA_KEYS: tuple[str, ...] = ("target", "due_at", "minutes_left", "minutes_over", "priority",
                             "plan", "source")
#: Keys of ``feature`` (a Productboard feature that tickets' notes are linked to changed).
FEATURE_KEYS: tuple[str, ...] = ("id", "name", "status", "previous_status", "url", "tickets")
#: Keys of ``issue`` (a Jira webhook event about an issue tickets are linked to).
ISSUE_KEYS: tuple[str, ...] = ("key", "id", "url", "status", "previous_status", "resolution",
                               "priority", "fix_versions", "released", "changed", "agent",
                               "tickets")


def blank_person(keys: tuple[str, ...], field_keys: Any = ()) -> dict[str, Any]:
    """A requester or organization nobody knows (none, deleted, or not read): every key
    ``None``, ``tags`` empty and each configured field key ``None`` — so that rules and
    templates see "unset", never a missing name."""
    person: dict[str, Any] = dict.fromkeys(keys)
    person["tags"] = []
    person["fields"] = dict.fromkeys(field_keys)
    return person


@dataclass(frozen=True, slots=True)
class Change:
    """One field's change in one event: its value before (``from_``) and after (``to``)."""

    from_: Any
    to: Any

    def to_json(self) -> dict[str, Any]:
        """``{"from": ..., "to": ...}`` — the shape templates and the decision log use."""
        return {"from": _plain(self.from_), "to": _plain(self.to)}


def _plain(value: Any) -> Any:
    """A deep, mutable, JSON-shaped copy (tuples become lists, mappings become dicts)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def parse_instant(value: Any) -> datetime | None:
    """An ISO-8601 text (``Z``/offset; no offset = UTC) or datetime as an aware UTC datetime.

    ``None`` for anything else (numbers included: they are not times here).
    """
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) < 10 or not text[:4].isdigit() or text[4] != "-":
        return None
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class EvalContext:
    """The input of one rule evaluation.

    ``ticket`` has the ``Ticket.to_dict()`` shape (custom fields under ``ticket["fields"][name]``);
    ``changes`` is keyed by the field path relative to the ticket (``"status"``, ``"tags"``,
    ``"fields.error_code"``); ``links`` maps a link kind to the linked keys
    (``{"jira": ("SUP-1",)}``). ``now`` is the event's time (what ``older_than`` / ``within``
    measure from, so that a backtest decides as live processing did); when it is ``None``,
    :attr:`event_time` falls back to the ticket's ``updated_at``. Never the wall clock.

    ``requester`` and ``organization`` (``User.to_dict()`` / ``Organization.to_dict()`` shape,
    see :func:`blank_person`) are ``None`` when nobody read them — fields under them then read
    as ``None``. ``comment`` (``Comment.to_dict()``) is set for ``ticket.comment_added`` only;
    ``incident`` (:data:`INCIDENT_KEYS`) for the ``pagerduty.incident.*`` events only, whose
    ``ticket`` is the one the escalation was opened for; ``issue`` (:data:`ISSUE_KEYS`) for the
    ``jira.*`` events only, which are about an issue, not one ticket (``ticket`` is empty;
    ``links.jira`` names the issue); ``jira_comment`` for ``jira.comment.added`` only;
    ``sla`` (:data:`SLA_KEYS`) for the ``sla.*`` events only, whose ``ticket`` is the ticket's
    stored state.
    """

    event_type: str
    event_source: str
    ticket: Mapping[str, Any]
    changes: Mapping[str, Change] = field(default_factory=dict)
    links: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    now: datetime | None = None
    requester: Mapping[str, Any] | None = None
    organization: Mapping[str, Any] | None = None
    comment: Mapping[str, Any] | None = None
    incident: Mapping[str, Any] | None = None
    issue: Mapping[str, Any] | None = None
    jira_comment: Mapping[str, Any] | None = None
    sla: Mapping[str, Any] | None = None
    feature: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ticket", _frozen(self.ticket))
        object.__setattr__(self, "changes", _frozen(self.changes))
        object.__setattr__(
            self, "links", MappingProxyType({k: tuple(v) for k, v in self.links.items()})
        )
        for name in ("requester", "organization", "comment", "incident", "issue",
                     "jira_comment", "sla", "feature"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _frozen(value))

    @classmethod
    def for_ticket(
        cls,
        ticket: Ticket,
        *,
        event_type: str,
        event_source: str,
        changes: Mapping[str, Change] | None = None,
        links: Mapping[str, tuple[str, ...]] | None = None,
        now: datetime | None = None,
        requester: Mapping[str, Any] | None = None,
        organization: Mapping[str, Any] | None = None,
        comment: Mapping[str, Any] | None = None,
    ) -> EvalContext:
        """Context for an event about ``ticket`` (``now``: the event's time, if known)."""
        return cls(event_type, event_source, ticket.to_dict(), changes or {}, links or {},
                   now=now, requester=requester, organization=organization, comment=comment)

    @property
    def event_time(self) -> datetime | None:
        """When the event happened: ``now`` if given, else the ticket's ``updated_at``.

        An aware UTC datetime, or ``None`` when neither is known (or ``updated_at`` is not a
        timestamp). A naive ``now`` is taken as UTC.
        """
        if self.now is not None:
            return self.now.astimezone(UTC) if self.now.tzinfo else self.now.replace(tzinfo=UTC)
        return parse_instant(self.ticket.get("updated_at"))

    def namespace(self) -> dict[str, Any]:
        """Fresh plain data for templates: ``ticket``, ``changes``, ``links``, ``event``,
        ``requester``, ``organization``, and ``comment`` when the context has one.

        ``changes`` looks like ``{"status": {"from": "new", "to": "open"}}``; every kind in
        :data:`LINK_KINDS` is present in ``links`` (empty when unlinked); a requester or
        organization nobody read is :func:`blank_person`. The result is a deep copy, so nothing
        a template does can reach back into this context.
        """
        out = {
            "ticket": _plain(self.ticket),
            "changes": {path: change.to_json() for path, change in self.changes.items()},
            "links": {kind: list(self.links.get(kind, ())) for kind in
                      dict.fromkeys([*LINK_KINDS, *self.links])},
            "event": {"type": self.event_type, "source": self.event_source},
            "requester": _plain(self.requester) if self.requester is not None
            else blank_person(REQUESTER_KEYS),
            "organization": _plain(self.organization) if self.organization is not None
            else blank_person(ORGANIZATION_KEYS),
        }
        if self.comment is not None:
            out["comment"] = _plain(self.comment)
        if self.incident is not None:
            out["incident"] = _plain(self.incident)
        if self.issue is not None:
            out["issue"] = _plain(self.issue)
        if self.jira_comment is not None:
            out["jira_comment"] = _plain(self.jira_comment)
        if self.sla is not None:
            out["sla"] = _plain(self.sla)
        if self.feature is not None:
            out["feature"] = _plain(self.feature)
        return out
