"""The fields rules can read, and how to read each one from an :class:`EvalContext`.

A :class:`FieldRegistry` is built from the configured Zendesk custom field names and the
configured user and organization field keys; it is the single source of field specs. It validates
``field:`` values at load time (with close-match hints), documents every field (``docs/rules.md``
is checked against it), gives templates their schema, and tells the worker what rules read
(:meth:`FieldRegistry.expand`). Which event carries which field is declared in
:mod:`rules.events`. :func:`resolve` reads a value.

Roots: ``ticket`` (core and custom fields), ``changes`` (``changes.<field>.from`` / ``.to`` for
every ticket field that can change), ``links``, ``event``, ``requester``, ``organization`` and
``comment`` (``ticket.comment_added`` only), and the roots of other events' own data
(``incident``, ``issue``, ``jira_comment``, ``sla``, ``feature``).
"""

from __future__ import annotations

__all__ = [
    "CORE_TICKET_FIELDS",
    "FieldKind",
    "FieldRegistry",
    "FieldSpec",
    "MAPPING_METHODS",
    "change_key",
    "change_of",
    "resolve",
]

import difflib
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .context import Change, EvalContext
from .events import EVENT_TYPES, carried_by


class FieldKind(StrEnum):
    """What a field holds; operators declare which kinds they apply to."""

    TEXT = "text"
    ENUM = "enum"
    TAGS = "tags"
    ID = "id"
    TIME = "time"
    LIST = "list"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field: its dotted path, kind, meaning, allowed values (enums) and change-set key.

    ``change_key`` is the key of this field in :attr:`EvalContext.changes` (``"status"``,
    ``"fields.error_code"``), or ``None`` for fields that do not change per event. ``doc`` is
    the documented form of a field that comes from configuration (``ticket.fields.<name>``);
    ``ticket_field`` is the ticket field a ``changes.*`` field is computed from.
    """

    path: str
    kind: FieldKind
    description: str
    values: tuple[str, ...] = ()
    change_key: str | None = None
    doc: str | None = None
    ticket_field: str | None = None

    @property
    def root(self) -> str:
        return self.path.split(".", 1)[0]

    @property
    def doc_path(self) -> str:
        """How ``docs/rules.md`` names this field (``ticket.fields.<name>`` for custom ones)."""
        return self.doc or self.path


def _ticket(name: str, kind: FieldKind, description: str,
            values: tuple[str, ...] = ()) -> FieldSpec:
    return FieldSpec(f"ticket.{name}", kind, description, values, change_key=name)


STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_TYPES = ("problem", "incident", "question", "task")

CORE_TICKET_FIELDS: tuple[FieldSpec, ...] = (
    _ticket("id", FieldKind.ID, "Zendesk ticket id."),
    _ticket("subject", FieldKind.TEXT, "Ticket subject line."),
    _ticket("description", FieldKind.TEXT, "First comment of the ticket."),
    _ticket("status", FieldKind.ENUM, "Ticket status.", STATUSES),
    _ticket("priority", FieldKind.ENUM, "Ticket priority (may be empty).", PRIORITIES),
    _ticket("type", FieldKind.ENUM, "Ticket type (may be empty).", TICKET_TYPES),
    _ticket("tags", FieldKind.TAGS, "Ticket tags."),
    _ticket("requester_id", FieldKind.ID, "Zendesk user id of the requester."),
    _ticket("organization_id", FieldKind.ID, "Zendesk organization id of the requester."),
    _ticket("assignee_id", FieldKind.ID, "Zendesk user id of the assignee."),
    _ticket("group_id", FieldKind.ID, "Zendesk group id."),
    _ticket("created_at", FieldKind.TIME, "When the ticket was created (ISO-8601 UTC)."),
    _ticket("updated_at", FieldKind.TIME, "When the ticket last changed (ISO-8601 UTC)."),
    _ticket("url", FieldKind.TEXT, "Link to the ticket."),
)

OTHER_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("links.jira", FieldKind.LIST, "Keys of the Jira issues linked to the ticket."),
    FieldSpec("links.pagerduty", FieldKind.LIST,
              "Dedup keys of the PagerDuty incidents Switchboard opened for the ticket (its "
              "own page, or an outage it joined)."),
    FieldSpec("links.slack", FieldKind.LIST,
              "Slack threads of the ticket's escalations, as channel/ts."),
    FieldSpec("links.productboard", FieldKind.LIST,
              "Ids of the Productboard features the ticket's feedback note is linked to."),
    FieldSpec("event.type", FieldKind.ENUM, "The event type (ticket.created, ...).",
              tuple(EVENT_TYPES)),
    FieldSpec("event.source", FieldKind.TEXT, "Where the event came from (webhook, poller, ...)."),
)

REQUESTER_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("requester.id", FieldKind.ID, "Zendesk user id of the requester."),
    FieldSpec("requester.name", FieldKind.TEXT, "The requester's name."),
    FieldSpec("requester.email", FieldKind.TEXT, "The requester's primary email address."),
    FieldSpec("requester.tags", FieldKind.TAGS, "The requester's user tags."),
)

ORGANIZATION_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("organization.id", FieldKind.ID, "Zendesk id of the ticket's organization."),
    FieldSpec("organization.name", FieldKind.TEXT, "The organization's name."),
    FieldSpec("organization.tags", FieldKind.TAGS, "The organization's tags."),
)

COMMENT_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("comment.id", FieldKind.ID, "Zendesk id of the comment."),
    FieldSpec("comment.body", FieldKind.TEXT, "The comment's text."),
    FieldSpec("comment.public", FieldKind.ENUM,
              "true for a public reply, false for an internal note.", ("true", "false")),
    FieldSpec("comment.author_id", FieldKind.ID, "Zendesk user id of the comment's author."),
    FieldSpec("comment.from_requester", FieldKind.ENUM,
              "true when the ticket's requester wrote the comment (the customer's own words).",
              ("true", "false")),
    FieldSpec("comment.created_at", FieldKind.TIME, "When the comment was added (ISO-8601 UTC)."),
)

INCIDENT_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("incident.id", FieldKind.ID, "PagerDuty id of the incident."),
    FieldSpec("incident.number", FieldKind.ID, "The incident's number in PagerDuty."),
    FieldSpec("incident.key", FieldKind.TEXT, "The dedup key Switchboard paged with."),
    FieldSpec("incident.status", FieldKind.ENUM, "The incident's status after the event.",
              ("triggered", "acknowledged", "resolved")),
    FieldSpec("incident.title", FieldKind.TEXT, "The incident's title."),
    FieldSpec("incident.url", FieldKind.TEXT, "Link to the incident in PagerDuty."),
    FieldSpec("incident.urgency", FieldKind.ENUM, "The incident's urgency.", ("high", "low")),
    FieldSpec("incident.service", FieldKind.TEXT, "Name of the PagerDuty service."),
    FieldSpec("incident.agent", FieldKind.TEXT,
              "Who acted (the responder's name), when PagerDuty says."),
    FieldSpec("incident.note", FieldKind.TEXT,
              "The note's text (pagerduty.incident.annotated only)."),
)

ISSUE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("issue.key", FieldKind.TEXT, "The Jira issue's key (SUP-77)."),
    FieldSpec("issue.id", FieldKind.TEXT, "The Jira issue's id."),
    FieldSpec("issue.url", FieldKind.TEXT, "Link to the issue in Jira."),
    FieldSpec("issue.status", FieldKind.TEXT, "The issue's status after the event (its name)."),
    FieldSpec("issue.previous_status", FieldKind.TEXT,
              "The status before, when this event changed it; else null."),
    FieldSpec("issue.resolution", FieldKind.TEXT, "The issue's resolution (null: unresolved)."),
    FieldSpec("issue.priority", FieldKind.TEXT, "The issue's priority (its name)."),
    FieldSpec("issue.fix_versions", FieldKind.LIST, "Names of the issue's fix versions."),
    FieldSpec("issue.released", FieldKind.ENUM,
              "true when one of its fix versions is released (null: Jira did not say).",
              ("true", "false")),
    FieldSpec("issue.changed", FieldKind.LIST,
              "What this event changed, of status, resolution, priority, fixVersions."),
    FieldSpec("issue.agent", FieldKind.TEXT, "Who made the change in Jira (display name)."),
    FieldSpec("issue.tickets", FieldKind.ID, "How many tickets are linked to the issue."),
)

JIRA_COMMENT_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("jira_comment.id", FieldKind.TEXT, "The Jira comment's id."),
    FieldSpec("jira_comment.body", FieldKind.TEXT, "The comment's text (rich text flattened)."),
    FieldSpec("jira_comment.author", FieldKind.TEXT, "Who wrote it (display name)."),
    FieldSpec("jira_comment.visibility", FieldKind.TEXT,
              "The role or group it is restricted to (null: visible to all)."),
    FieldSpec("jira_comment.public", FieldKind.ENUM,
              "Jira Service Management: true when customers see it (null: Jira did not say).",
              ("true", "false")),
)

SLA_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("sla.target", FieldKind.ENUM, "Which SLA target: first reply or resolution.",
              ("first_reply", "resolution")),
    FieldSpec("sla.due_at", FieldKind.TIME, "When the target is due (ISO-8601 UTC)."),
    FieldSpec("sla.minutes_left", FieldKind.ID,
              "Whole minutes left to the due time when the scan raised it (sla.warning; null "
              "on sla.breached)."),
    FieldSpec("sla.minutes_over", FieldKind.ID,
              "Whole minutes past the due time when the scan raised it (sla.breached; null on "
              "sla.warning)."),
    FieldSpec("sla.priority", FieldKind.ENUM, "The ticket's priority the target is for.",
              PRIORITIES),
    FieldSpec("sla.plan", FieldKind.TEXT,
              "The organization's plan tier the target is for (null: none or not read)."),
    FieldSpec("sla.source", FieldKind.ENUM,
              "Where the due time comes from: config (sla.targets) or zendesk (its SLA policy).",
              ("config", "zendesk")),
)

FEATURE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("feature.id", FieldKind.TEXT, "The Productboard feature's id."),
    FieldSpec("feature.name", FieldKind.TEXT, "The feature's name."),
    FieldSpec("feature.status", FieldKind.TEXT,
              "The feature's status after the change (its name, e.g. Released)."),
    FieldSpec("feature.previous_status", FieldKind.TEXT,
              "The status Switchboard saw before (null: first seen)."),
    FieldSpec("feature.url", FieldKind.TEXT, "Link to the feature in Productboard."),
    FieldSpec("feature.tickets", FieldKind.ID,
              "How many tickets' notes are linked to the feature."),
)

CUSTOM_PREFIX = "ticket.fields."
CHANGES_PREFIX = "changes."
#: Prefixes of configured fields (custom, user, organization) -> (what they are, config setting).
CONFIGURED: dict[str, tuple[str, str]] = {
    CUSTOM_PREFIX: ("custom field", "connectors.zendesk.custom_fields"),
    "requester.fields.": ("user field", "connectors.zendesk.user_fields"),
    "organization.fields.": ("organization field", "connectors.zendesk.organization_fields"),
}
#: Ticket fields whose ``changes.*`` are never set (they change with every event, or never).
_NO_CHANGES = frozenset({"id", "updated_at", "url"})
#: Roots :meth:`FieldRegistry.expand` resolves to field paths (the others are not per-ticket data).
EXPANDED_ROOTS = frozenset({"ticket", "requester", "organization", "comment", "incident",
                            "issue", "jira_comment", "sla", "feature"})

#: Method names that read a mapping as a whole when a template calls them (``ticket.fields.items``).
MAPPING_METHODS = frozenset({"get", "items", "keys", "values"})

#: What may follow each template root; ``None`` = anything (not checked).
Schema = Mapping[str, "Schema | None"]


def _changes(spec: FieldSpec) -> tuple[FieldSpec, FieldSpec]:
    key = spec.change_key
    assert key is not None
    doc = "changes.<field>"
    if key.startswith("fields."):
        doc = "changes.fields.<name>"
    return (
        FieldSpec(f"{CHANGES_PREFIX}{key}.from", spec.kind,
                  f"{spec.path} before this event; null when it did not change.", spec.values,
                  doc=f"{doc}.from", ticket_field=spec.path),
        FieldSpec(f"{CHANGES_PREFIX}{key}.to", spec.kind,
                  f"{spec.path} after this event; null when it did not change.", spec.values,
                  doc=f"{doc}.to", ticket_field=spec.path),
    )


class FieldRegistry:
    """Every field a rule may name, for one configuration of custom, user and organization
    fields."""

    def __init__(self, custom_fields: Collection[str] = (), *,
                 user_fields: Collection[str] = (),
                 organization_fields: Collection[str] = ()) -> None:
        self.custom_fields = frozenset(custom_fields)
        self.user_fields = frozenset(user_fields)
        self.organization_fields = frozenset(organization_fields)
        ticket = [*CORE_TICKET_FIELDS]
        ticket += [
            FieldSpec(f"{CUSTOM_PREFIX}{name}", FieldKind.TEXT,
                      f"Zendesk custom field '{name}'.", change_key=f"fields.{name}",
                      doc="ticket.fields.<name>")
            for name in sorted(self.custom_fields)
        ]
        specs = [*ticket]
        specs += [change for spec in ticket
                  if spec.change_key is not None and spec.change_key not in _NO_CHANGES
                  for change in _changes(spec)]
        specs += OTHER_FIELDS
        specs += REQUESTER_FIELDS
        specs += [FieldSpec(f"requester.fields.{key}", FieldKind.TEXT,
                            f"The requester's user field '{key}'.", doc="requester.fields.<key>")
                  for key in sorted(self.user_fields)]
        specs += ORGANIZATION_FIELDS
        specs += [FieldSpec(f"organization.fields.{key}", FieldKind.TEXT,
                            f"The organization's field '{key}'.",
                            doc="organization.fields.<key>")
                  for key in sorted(self.organization_fields)]
        specs += COMMENT_FIELDS
        specs += INCIDENT_FIELDS
        specs += ISSUE_FIELDS
        specs += JIRA_COMMENT_FIELDS
        specs += SLA_FIELDS
        specs += FEATURE_FIELDS
        self._specs: dict[str, FieldSpec] = {spec.path: spec for spec in specs}

    def __iter__(self) -> Iterator[FieldSpec]:
        return iter(self._specs.values())

    def __contains__(self, path: object) -> bool:
        return path in self._specs

    def get(self, path: str) -> FieldSpec | None:
        return self._specs.get(path)

    @property
    def ticket_paths(self) -> frozenset[str]:
        """Every ``ticket.*`` field path (core and configured custom fields)."""
        return frozenset(p for p in self._specs if p.startswith("ticket."))

    def for_event(self, event_type: str) -> list[FieldSpec]:
        """The fields a rule listening to ``event_type`` may read, in registry order."""
        event = EVENT_TYPES[event_type]
        return [spec for spec in self if event.carries(spec.path)]

    def configured(self, prefix: str) -> frozenset[str]:
        """The configured names under a :data:`CONFIGURED` prefix (``ticket.fields.``...)."""
        if prefix == CUSTOM_PREFIX:
            return self.custom_fields
        return self.user_fields if prefix.startswith("requester.") else self.organization_fields

    def unknown(self, path: str) -> tuple[str, str]:
        """``(message, hint)`` for a field path that is not in the registry."""
        for prefix, (what, setting) in CONFIGURED.items():
            if path.startswith(prefix) and path.count(".") == prefix.count("."):
                name = path[len(prefix):]
                known = sorted(self.configured(prefix))
                close = difflib.get_close_matches(name, known, n=3)
                hint = (f"did you mean {', '.join(prefix + c for c in close)}?" if close
                        else f"configured in {setting}: {', '.join(known) or 'none'}")
                return f"{what} '{name}' is not configured", hint
        if path.startswith(CHANGES_PREFIX) and not path.endswith((".from", ".to")):
            return (f"unknown field '{path}'",
                    "a change is read as changes.<field>.from or changes.<field>.to "
                    "(e.g. changes.status.from)")
        close = difflib.get_close_matches(path, list(self._specs), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see docs/rules.md for the list"
        return f"unknown field '{path}'", hint

    def not_carried(self, path: str, events: Collection[str]) -> tuple[str, str]:
        """``(message, hint)`` for a known field that some of ``events`` do not carry."""
        missing = [e for e in events if not EVENT_TYPES[e].carries(path)]
        carriers = carried_by(path)
        hint = (f"only {', '.join(carriers)} carries it; a rule reads only fields that every "
                f"event in its 'on' carries" if carriers else "no event type carries it")
        return f"'{path}' is not carried by {', '.join(missing)}", hint

    def template_schema(self, events: Collection[str] | None = None) -> dict[str, Schema | None]:
        """What templates may name, per root, for a rule listening to ``events`` (all events
        when ``None``): nested mappings of known names; ``None`` where anything goes
        (``changes``)."""
        roots: dict[str, Any] = {}
        for spec in self:
            if events is not None and not all(EVENT_TYPES[e].carries(spec.path)
                                              for e in events):
                continue
            if spec.root == "changes":
                roots["changes"] = None
                continue
            node = roots
            parts = spec.path.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = None
        for root, names in (("ticket", self.custom_fields),
                            ("requester", self.user_fields),
                            ("organization", self.organization_fields)):
            if root in roots and isinstance(roots[root], dict):
                roots[root].setdefault("fields", {name: None for name in names})
        return roots

    def expand(self, path: str) -> frozenset[str]:
        """The field paths a template/condition reference ``path`` may read.

        ``ticket.subject.upper`` -> ``{ticket.subject}``; ``ticket.fields`` or ``ticket`` used as
        a whole -> all of them (conservative); the same for ``requester``, ``organization`` and
        ``comment``; a ``changes.<field>.from`` -> the ticket field it is computed from
        (``ticket.fields.error_code``); anything else -> empty.
        """
        spec = self._specs.get(path)
        if spec is not None and spec.ticket_field is not None:
            return frozenset({spec.ticket_field})
        parts = path.split(".")
        for n, part in enumerate(parts[1:], 1):
            if part in MAPPING_METHODS:
                parts = parts[:n]
                break
        root = parts[0]
        if root not in EXPANDED_ROOTS:
            return frozenset()
        under = frozenset(p for p in self._specs if p.startswith(f"{root}."))
        for n in range(len(parts), 1, -1):
            candidate = ".".join(parts[:n])
            if candidate in self._specs:
                return frozenset({candidate})
        if len(parts) >= 2 and parts[1] == "fields":
            if len(parts) == 2:
                return frozenset(p for p in under if p.startswith(f"{root}.fields."))
            return frozenset()  # a field that is not configured is never in a payload
        if len(parts) == 1:
            return under
        return frozenset()


def _walk(value: Any, keys: list[str]) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _change_side(ctx: EvalContext, keys: list[str]) -> Any:
    """``changes.<key>.from`` / ``.to``: the key may itself hold dots (``fields.error_code``)."""
    if len(keys) < 2 or keys[-1] not in ("from", "to"):
        return None
    change = ctx.changes.get(".".join(keys[:-1]))
    if change is None:
        return None
    return change.from_ if keys[-1] == "from" else change.to


_ROOTS: dict[str, Callable[[EvalContext], Any]] = {
    "ticket": lambda ctx: ctx.ticket,
    "links": lambda ctx: ctx.links,
    "event": lambda ctx: {"type": ctx.event_type, "source": ctx.event_source},
    "requester": lambda ctx: ctx.requester,
    "organization": lambda ctx: ctx.organization,
    "comment": lambda ctx: ctx.comment,
    "incident": lambda ctx: ctx.incident,
    "issue": lambda ctx: ctx.issue,
    "jira_comment": lambda ctx: ctx.jira_comment,
    "sla": lambda ctx: ctx.sla,
    "feature": lambda ctx: ctx.feature,
}


def resolve(path: str, ctx: EvalContext) -> Any:
    """The value of field ``path`` in ``ctx``; ``None`` when the context lacks it (a ticket
    field unset, a field that did not change, a requester nobody read).

    Raises ``KeyError`` for a root no context has (the loader prevents this).
    """
    root, *rest = path.split(".")
    if root == "changes":
        return _change_side(ctx, rest)
    return _walk(_ROOTS[root](ctx), rest)


def change_key(path: str) -> str | None:
    """Key of field ``path`` in :attr:`EvalContext.changes` (``ticket.status`` -> ``status``)."""
    return path.removeprefix("ticket.") if path.startswith("ticket.") else None


def change_of(path: str, ctx: EvalContext) -> Change | None:
    """The change of field ``path`` in this event, or ``None`` if it did not change."""
    key = change_key(path)
    return None if key is None else ctx.changes.get(key)
