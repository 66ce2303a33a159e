"""The fields conditions can test, and how to read each one from an :class:`EvalContext`.

A :class:`FieldRegistry` is built from the configured Zendesk custom field names; it validates
``field:`` values at load time (with close-match hints), documents every field, and tells the
worker which ticket fields rules need (:meth:`FieldRegistry.expand`). :func:`resolve` reads a value.
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
from .events import EVENT_TYPES


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
    ``"fields.error_code"``), or ``None`` for fields that do not change per event.
    """

    path: str
    kind: FieldKind
    description: str
    values: tuple[str, ...] = ()
    change_key: str | None = None

    @property
    def root(self) -> str:
        return self.path.split(".", 1)[0]


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
    FieldSpec("event.type", FieldKind.ENUM, "The event type (ticket.created, ...).",
              tuple(EVENT_TYPES)),
    FieldSpec("event.source", FieldKind.TEXT, "Where the event came from (webhook, poller, ...)."),
)

CUSTOM_PREFIX = "ticket.fields."

#: Method names that read a mapping as a whole when a template calls them (``ticket.fields.items``).
MAPPING_METHODS = frozenset({"get", "items", "keys", "values"})


class FieldRegistry:
    """Every field a rule may name, for one configuration of custom fields."""

    def __init__(self, custom_fields: Collection[str] = ()) -> None:
        self.custom_fields = frozenset(custom_fields)
        specs = [*CORE_TICKET_FIELDS]
        specs += [
            FieldSpec(
                f"{CUSTOM_PREFIX}{name}",
                FieldKind.TEXT,
                f"Zendesk custom field '{name}'.",
                change_key=f"fields.{name}",
            )
            for name in sorted(self.custom_fields)
        ]
        specs += OTHER_FIELDS
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

    def unknown(self, path: str) -> tuple[str, str]:
        """``(message, hint)`` for a field path that is not in the registry."""
        if path.startswith(CUSTOM_PREFIX):
            name = path[len(CUSTOM_PREFIX):]
            close = difflib.get_close_matches(name, sorted(self.custom_fields), n=3)
            configured = ", ".join(sorted(self.custom_fields)) or "none"
            hint = (
                f"did you mean {', '.join(CUSTOM_PREFIX + c for c in close)}?"
                if close
                else f"configured custom fields: {configured}"
            )
            return f"custom field '{name}' is not configured", hint
        close = difflib.get_close_matches(path, list(self._specs), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see rules.fields for the list"
        return f"unknown field '{path}'", hint

    def expand(self, path: str) -> frozenset[str]:
        """The ticket field paths a template/condition reference ``path`` may read.

        ``ticket.subject.upper`` -> ``{ticket.subject}``; ``ticket.fields`` or ``ticket`` used as a
        whole -> all of them (conservative); anything that is not under ``ticket`` -> empty.
        """
        parts = path.split(".")
        for n, part in enumerate(parts[1:], 1):
            if part in MAPPING_METHODS:
                parts = parts[:n]
                break
        if parts[0] != "ticket":
            return frozenset()
        for n in range(len(parts), 1, -1):
            candidate = ".".join(parts[:n])
            if candidate in self._specs:
                return frozenset({candidate})
        if len(parts) >= 2 and parts[1] == "fields":
            if len(parts) == 2:
                return frozenset(p for p in self.ticket_paths if p.startswith(CUSTOM_PREFIX))
            return frozenset()  # a custom field that is not configured is never in a payload
        if len(parts) == 1:
            return self.ticket_paths
        return frozenset()


def _walk(value: Any, keys: list[str]) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


_ROOTS: dict[str, Callable[[EvalContext], Any]] = {
    "ticket": lambda ctx: ctx.ticket,
    "links": lambda ctx: ctx.links,
    "event": lambda ctx: {"type": ctx.event_type, "source": ctx.event_source},
}


def resolve(path: str, ctx: EvalContext) -> Any:
    """The value of field ``path`` in ``ctx``; ``None`` when the ticket lacks it.

    Raises ``KeyError`` for a root the context does not have (the loader prevents this).
    """
    root, *rest = path.split(".")
    return _walk(_ROOTS[root](ctx), rest)


def change_key(path: str) -> str | None:
    """Key of field ``path`` in :attr:`EvalContext.changes` (``ticket.status`` -> ``status``)."""
    return path.removeprefix("ticket.") if path.startswith("ticket.") else None


def change_of(path: str, ctx: EvalContext) -> Change | None:
    """The change of field ``path`` in this event, or ``None`` if it did not change."""
    key = change_key(path)
    return None if key is None else ctx.changes.get(key)
