"""Typed models that cross the connector boundary.

Vendor JSON stops inside ``connectors/``: rules, sync and the store only ever see these frozen
models. Datetimes are timezone-aware UTC. Zendesk custom fields are keyed by the *name* the config
gives them (``error_code``), never by their numeric id.
"""

from __future__ import annotations

__all__ = [
    "Alert",
    "BugDraft",
    "BulkUpdate",
    "Comment",
    "ExportPage",
    "IssueRef",
    "IssueState",
    "JobResult",
    "JobStatus",
    "NewTicket",
    "Organization",
    "RemoteLink",
    "SlackFile",
    "SlackMessage",
    "SlackPosted",
    "SlaMetric",
    "Ticket",
    "TicketPeople",
    "TicketUpdate",
    "Transition",
    "User",
    "parse_time",
    "format_time",
]

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

#: Zendesk's own form of a time (``2026-11-27T10:00:00Z``): read and written without detours.
_ZENDESK_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
#: Zendesk-form texts of recently parsed or formatted instants. A ticket's times are read once
#: and written several times (snapshots, rule contexts, event keys): this saves formatting
#: them again. Bounded: emptied when full.
_TEXTS: dict[datetime, str] = {}
_TEXTS_MAX = 4096


def _remember(at: datetime, text: str) -> None:
    if len(_TEXTS) >= _TEXTS_MAX:
        _TEXTS.clear()
    _TEXTS[at] = text


def parse_time(value: str | int | float | datetime | None) -> datetime | None:
    """Parse an ISO-8601 string (``Z`` or offset) or unix seconds into an aware UTC datetime.

    Raises ``ValueError`` for text that is not a timestamp; ``None`` stays ``None``.
    """
    if type(value) is str and len(value) == 20 and _ZENDESK_TIME.fullmatch(value):
        try:
            parsed = datetime.fromisoformat(value)  # reads the Z as UTC
        except ValueError:
            pass  # month 13 and the like: the general path below says what is wrong
        else:
            if value[0] != "0":  # format_time does not pad years below 1000
                _remember(parsed, value)
            return parsed
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_time(value: datetime) -> str:
    """Format an aware datetime the way Zendesk does: ``2026-11-27T10:00:00Z``."""
    if type(value) is datetime and value.tzinfo is not None:
        text = _TEXTS.get(value)
        if text is not None:
            return text
        if value.tzinfo is UTC and value.year >= 1000:
            # The text strftime gives below, at a third of its cost; below year 1000, %Y does
            # not pad.
            text = value.isoformat(timespec="seconds")[:19] + "Z"
            _remember(value, text)
            return text
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class SlaMetric:
    """One metric of the SLA policy Zendesk applies to a ticket (its ``slas.policy_metrics``,
    present only when the ticket was read with ``include=slas``): the metric
    (``first_reply_time``...), its stage (``active``, ``paused``, ``achieved``...) and when it
    breaches (``None`` while paused, or once achieved)."""

    metric: str
    stage: str | None = None
    breach_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "stage": self.stage,
                "breach_at": format_time(self.breach_at) if self.breach_at else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SlaMetric:
        """Inverse of :meth:`to_dict` (also reads Zendesk's own ``policy_metrics`` items).
        Raises ``ValueError`` for an item with no metric or a bad ``breach_at``."""
        metric = data.get("metric")
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"SLA metric without a name: {data!r}")
        stage = data.get("stage")
        return cls(metric=metric, stage=str(stage) if stage is not None else None,
                   breach_at=parse_time(data.get("breach_at")))


@dataclass(frozen=True, slots=True)
class Ticket:
    """A Zendesk ticket as Switchboard sees it.

    ``slas`` is Zendesk's SLA state of the ticket when it was read with ``include=slas`` (empty
    otherwise); it is kept in snapshots (``to_dict`` has the key only when there is some, or
    when ``slas_read``: Zendesk's answer carried the state, and it holds none — no policy
    applies) but is not a ticket field rules diff.
    """


    id: int
    updated_at: datetime
    created_at: datetime | None = None
    subject: str = ""
    description: str = ""
    status: str | None = None
    priority: str | None = None
    type: str | None = None
    tags: tuple[str, ...] = ()
    requester_id: int | None = None
    organization_id: int | None = None
    assignee_id: int | None = None
    group_id: int | None = None
    custom_fields: Mapping[str, Any] = field(default_factory=dict)
    url: str | None = None
    slas: tuple[SlaMetric, ...] = ()
    slas_read: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "custom_fields", _frozen(self.custom_fields))
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "slas", tuple(self.slas))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, used for snapshots and the rules' field lookups."""
        data = {
            "id": self.id,
            "updated_at": format_time(self.updated_at),
            "created_at": format_time(self.created_at) if self.created_at else None,
            "subject": self.subject,
            "description": self.description,
            "status": self.status,
            "priority": self.priority,
            "type": self.type,
            "tags": list(self.tags),
            "requester_id": self.requester_id,
            "organization_id": self.organization_id,
            "assignee_id": self.assignee_id,
            "group_id": self.group_id,
            "fields": dict(self.custom_fields),
            "url": self.url,
        }
        if self.slas or self.slas_read:
            data["slas"] = [metric.to_dict() for metric in self.slas]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ticket:
        """Inverse of :meth:`to_dict`. Raises ``KeyError``/``ValueError`` on a malformed dict."""
        updated = parse_time(data["updated_at"])
        if updated is None:
            raise ValueError("ticket has no updated_at")
        return cls(
            id=int(data["id"]),
            updated_at=updated,
            created_at=parse_time(data.get("created_at")),
            subject=data.get("subject") or "",
            description=data.get("description") or "",
            status=data.get("status"),
            priority=data.get("priority"),
            type=data.get("type"),
            tags=tuple(data.get("tags") or ()),
            requester_id=data.get("requester_id"),
            organization_id=data.get("organization_id"),
            assignee_id=data.get("assignee_id"),
            group_id=data.get("group_id"),
            custom_fields=data.get("fields") or {},
            url=data.get("url"),
            slas=tuple(SlaMetric.from_dict(m) for m in data.get("slas") or ()),
            slas_read=data.get("slas") is not None,
        )


@dataclass(frozen=True, slots=True)
class User:
    """A Zendesk user (a ticket's requester), with the user fields the config names.

    ``fields`` holds the configured user fields by key (``connectors.zendesk.user_fields``); a
    configured key the user has no value for is ``None``.
    """

    id: int
    name: str | None = None
    email: str | None = None
    tags: tuple[str, ...] = ()
    organization_id: int | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", _frozen(self.fields))
        object.__setattr__(self, "tags", tuple(self.tags))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form: what rules see as ``requester``."""
        return {"id": self.id, "name": self.name, "email": self.email, "tags": list(self.tags),
                "organization_id": self.organization_id, "fields": dict(self.fields)}


@dataclass(frozen=True, slots=True)
class Organization:
    """A Zendesk organization, with the organization fields the config names (``plan_tier``)."""

    id: int
    name: str | None = None
    tags: tuple[str, ...] = ()
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", _frozen(self.fields))
        object.__setattr__(self, "tags", tuple(self.tags))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form: what rules see as ``organization``."""
        return {"id": self.id, "name": self.name, "tags": list(self.tags),
                "fields": dict(self.fields)}


@dataclass(frozen=True, slots=True)
class TicketPeople:
    """A ticket's requester and organization as Zendesk knows them now.

    ``None`` when the ticket has none, or when Zendesk no longer has it (deleted: 404).
    """

    requester: User | None = None
    organization: Organization | None = None


@dataclass(frozen=True, slots=True)
class Comment:
    """One ticket comment: a public reply or an internal note (``public`` false)."""

    id: int
    body: str
    public: bool
    author_id: int | None = None
    created_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form: what rules see as ``comment`` (``created_at`` ISO-8601 UTC)."""
        return {"id": self.id, "body": self.body, "public": self.public,
                "author_id": self.author_id,
                "created_at": format_time(self.created_at) if self.created_at else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comment:
        """Inverse of :meth:`to_dict`. Raises ``KeyError``/``ValueError``/``TypeError`` on a
        malformed dict."""
        public = data["public"]
        if not isinstance(public, bool):
            raise TypeError(f"comment public must be true or false, not {public!r}")
        author = data.get("author_id")
        return cls(id=int(data["id"]), body=str(data.get("body") or ""), public=public,
                   author_id=int(author) if author is not None else None,
                   created_at=parse_time(data.get("created_at")))


@dataclass(frozen=True, slots=True)
class ExportPage:
    """One page of the Zendesk cursor-based incremental ticket export."""

    tickets: tuple[Ticket, ...]
    after_cursor: str | None
    end_of_stream: bool


@dataclass(frozen=True, slots=True)
class TicketUpdate:
    """One safe ticket update: an internal note, the full tag list and custom fields, together.

    ``updated_stamp`` is the ticket's ``updated_at`` this update was computed against; Zendesk
    answers 409 if the ticket changed since (``safe_update``). ``tags`` is the complete new tag
    list (a plain ``tags`` update replaces the list). ``custom_fields`` is keyed by field name.
    """

    ticket_id: int
    updated_stamp: datetime
    note: str | None = None
    public: bool = False
    tags: tuple[str, ...] | None = None
    custom_fields: Mapping[str, Any] = field(default_factory=dict)
    status: str | None = None
    #: ``incident`` with ``problem_id`` attaches the ticket to a problem ticket.
    type: str | None = None
    problem_id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "custom_fields", _frozen(self.custom_fields))


@dataclass(frozen=True, slots=True)
class BulkUpdate:
    """One ticket's part of an ``update_many`` job: a note, tags added and removed (never the
    whole list, so no read is needed first), custom fields by name, a status.

    Bulk updates carry no ``safe_update``: they add and remove, they do not replace.
    """

    ticket_id: int
    note: str | None = None
    public: bool = False
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    custom_fields: Mapping[str, Any] = field(default_factory=dict)
    status: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "custom_fields", _frozen(self.custom_fields))
        object.__setattr__(self, "add_tags", tuple(self.add_tags))
        object.__setattr__(self, "remove_tags", tuple(self.remove_tags))


@dataclass(frozen=True, slots=True)
class JobResult:
    """What a bulk job did to one ticket (``success`` False: ``error`` / ``details`` say why)."""

    ticket_id: int | None
    success: bool
    status: str | None = None
    error: str | None = None
    details: str | None = None


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A Zendesk background job (``update_many``): queued, working, then completed (or failed,
    killed); ``results`` once it is done."""

    id: str
    status: str
    total: int | None = None
    progress: int | None = None
    message: str | None = None
    results: tuple[JobResult, ...] = ()

    @property
    def done(self) -> bool:
        return self.status in ("completed", "failed", "killed")


@dataclass(frozen=True, slots=True)
class NewTicket:
    """A ticket Switchboard opens itself (an outage's problem ticket).

    ``note`` is its first comment, internal. ``external_id`` names it so that a creation whose
    answer was lost can be found again (``GET /api/v2/tickets.json?external_id=``).
    """

    subject: str
    note: str
    type: str | None = None
    priority: str | None = None
    tags: tuple[str, ...] = ()
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class BugDraft:
    """What Switchboard asks Jira to create."""

    project: str
    summary: str
    description: str
    issue_type: str = "Bug"
    labels: tuple[str, ...] = ()
    priority: str | None = None


@dataclass(frozen=True, slots=True)
class IssueState:
    """What Switchboard follows of a Jira issue, as a search returns it: names of its status,
    resolution and priority, its fix versions as (name, released) and when it last changed."""

    id: str
    key: str
    updated: datetime
    status: str | None = None
    resolution: str | None = None
    priority: str | None = None
    fix_versions: tuple[tuple[str, bool | None], ...] = ()


@dataclass(frozen=True, slots=True)
class IssueRef:
    """A Jira issue Switchboard created or found."""

    id: str
    key: str
    url: str
    status: str | None = None
    status_category: str | None = None

    @property
    def is_done(self) -> bool:
        """True when Jira puts the status in the Done category (resolved, closed, ...)."""
        return (self.status_category or "").lower() == "done"


@dataclass(frozen=True, slots=True)
class RemoteLink:
    """A remote link on a Jira issue; Jira upserts it by ``global_id``."""

    global_id: str
    url: str
    title: str
    summary: str = ""
    application_name: str = "Zendesk"
    application_type: str = "com.zendesk"
    relationship: str = "Zendesk ticket"


#: PagerDuty Events API v2 severities (``payload.severity``).
SEVERITIES = ("critical", "error", "warning", "info")


@dataclass(frozen=True, slots=True)
class Transition:
    """A workflow transition Jira offers on an issue from its current status: its id (what a
    transition request names), its name, and the status it leads to with that status's
    category (``new`` / ``indeterminate`` / ``done``)."""

    id: str
    name: str
    to_status: str
    to_category: str | None = None

    def describe(self) -> str:
        """``'Reopen' (id 41) -> Reopened``, for error messages."""
        return f"{self.name!r} (id {self.id}) -> {self.to_status}"


@dataclass(frozen=True, slots=True)
class Alert:
    """A PagerDuty Events API v2 trigger: the alert behind one incident, named by ``dedup_key``.

    Later triggers, acknowledges and resolves with the same ``dedup_key`` (through the same
    routing key) apply to the same open alert; ``links`` are ``(href, text)`` pairs.
    """

    dedup_key: str
    summary: str
    source: str
    severity: str = "critical"
    component: str | None = None
    group: str | None = None
    class_: str | None = None
    custom_details: Mapping[str, Any] = field(default_factory=dict)
    links: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "custom_details", _frozen(self.custom_details))


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """What a Slack message says: ``text`` (always sent: the notification fallback) and
    optional Block Kit ``blocks``."""

    text: str
    blocks: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class SlackPosted:
    """A message Slack has: its channel id and ``ts`` (and the thread's root ``ts`` for a reply)."""

    channel: str
    ts: str
    thread_ts: str | None = None


@dataclass(frozen=True, slots=True)
class SlackFile:
    """A file Switchboard shared in a channel (files upload v2): its id, the channel's id, its
    file name and title."""

    id: str
    channel: str
    name: str
    title: str
