"""Zendesk ticket JSON without state: building a new ticket, applying an update body to one
(field, tag and custom-field rules, with the audit ``Change`` events it produces), validation,
and the export cursor format. ``sandbox.zendesk`` adds ids, timestamps, locking and storage.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from collections.abc import Callable
from typing import Any

from sandbox.zendesk_api import ZendeskError

__all__ = [
    "STATUSES",
    "UPDATABLE",
    "apply_changes",
    "decode_cursor",
    "encode_cursor",
    "int_id",
    "invalid",
    "new_ticket",
    "normalize_tags",
    "validate",
]

STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES = (None, "urgent", "high", "normal", "low")
TYPES = (None, "problem", "incident", "question", "task")
# Ticket keys an update may set directly (tags, custom fields and comments have their own rules).
UPDATABLE = (
    "subject", "status", "priority", "type", "assignee_id", "group_id", "organization_id",
    "requester_id", "external_id", "due_at", "problem_id", "brand_id", "ticket_form_id",
    "custom_status_id", "is_public",
)  # fmt: skip
_CURSOR = re.compile(r"^(\d+)\.0\|\|(-?\d+)\|$")

# (kind, field_name, value, previous_value) -> an audit event with a fresh id
EventMaker = Callable[[str, str, Any, Any], dict[str, Any]]


def invalid(field: str, description: str, error: str = "InvalidValue") -> ZendeskError:
    """A 422 ``RecordInvalid`` error naming one field, as Zendesk reports validation errors."""
    details = {field: [{"description": description, "error": error}]}
    return ZendeskError(
        422,
        {"error": "RecordInvalid", "description": "Record validation errors", "details": details},
    )


def int_id(value: Any) -> Any:
    """An id given as a digit string becomes an int (Zendesk accepts both); others pass."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def normalize_tags(value: Any) -> list[str]:
    """Zendesk's tag rules: split on whitespace, lower-case, drop duplicates, keep order."""
    if value is None:
        return []
    items = value.split() if isinstance(value, str) else [str(item) for item in value]
    tags: list[str] = []
    for item in items:
        for tag in item.lower().split():
            if tag not in tags:
                tags.append(tag)
    return tags


def validate(key: str, value: Any) -> None:
    """Raise a 422 ZendeskError if ``value`` is not a valid status / priority / type."""
    allowed = {"status": STATUSES, "priority": PRIORITIES, "type": TYPES}.get(key)
    if allowed is not None and value not in allowed:
        raise invalid(key, f"{key.capitalize()}: {value!r} is not valid")


def new_ticket(
    ticket_id: int,
    data: dict[str, Any],
    *,
    url: str,
    channel: str,
    requester_id: Any,
    submitter_id: Any,
    created_at: str,
) -> dict[str, Any]:
    """A new ticket's JSON with every key a real ticket has (``updated_at`` left to the caller).
    Raises ZendeskError(422) for an invalid status, priority or type."""
    comment = data.get("comment") or {}
    custom = [
        {"id": int_id(f["id"]), "value": f.get("value")} for f in data.get("custom_fields") or []
    ]
    ticket: dict[str, Any] = {
        "url": url,
        "id": ticket_id,
        "external_id": data.get("external_id"),
        "via": {"channel": channel, "source": {"from": {}, "to": {}, "rel": None}},
        "created_at": created_at,
        "updated_at": None,
        "generated_timestamp": 0,
        "type": data.get("type"),
        "subject": data.get("subject"),
        "raw_subject": data.get("subject"),
        "description": str(data.get("description") or comment.get("body") or ""),
        "priority": data.get("priority"),
        "status": data.get("status") or "new",
        "custom_status_id": data.get("custom_status_id"),
        "recipient": None,
        "requester_id": requester_id,
        "submitter_id": submitter_id,
        "assignee_id": int_id(data.get("assignee_id")),
        "organization_id": int_id(data.get("organization_id")),
        "group_id": int_id(data.get("group_id")),
        "collaborator_ids": [],
        "follower_ids": [],
        "email_cc_ids": [],
        "forum_topic_id": None,
        "problem_id": int_id(data.get("problem_id")),
        "has_incidents": False,
        "is_public": bool(comment.get("public", True)),
        "due_at": data.get("due_at"),
        "tags": normalize_tags(data.get("tags")),
        "custom_fields": custom,
        "satisfaction_rating": None,
        "sharing_agreement_ids": [],
        "fields": copy.deepcopy(custom),
        "followup_ids": [],
        "ticket_form_id": data.get("ticket_form_id"),
        "brand_id": data.get("brand_id", 360000001),
        "allow_channelback": False,
        "allow_attachments": True,
        "from_messaging_channel": False,
    }
    for key in ("status", "priority", "type"):
        validate(key, ticket[key])
    return ticket


def creation_events(ticket: dict[str, Any], make_event: EventMaker) -> list[dict[str, Any]]:
    """The ``Create`` audit events for a new ticket's set fields."""
    events = [
        make_event("Create", key, ticket[key], None)
        for key in ("subject", "status", "priority", "type", "tags", "requester_id",
                    "assignee_id", "group_id", "organization_id")  # fmt: skip
        if ticket[key] not in (None, [])
    ]
    events += [
        make_event("Create", str(f["id"]), f["value"], None) for f in ticket["custom_fields"]
    ]
    return events


def apply_changes(
    ticket: dict[str, Any], changes: dict[str, Any], make_event: EventMaker
) -> list[dict[str, Any]]:
    """Apply an update body's field, tag and custom-field changes to ``ticket`` in place and
    return one ``Change`` event per value that actually changed. ``tags`` replaces the list;
    ``additional_tags`` / ``remove_tags`` add and remove. Raises ZendeskError(422)."""
    events: list[dict[str, Any]] = []
    for key in UPDATABLE:
        if key not in changes:
            continue
        value = int_id(changes[key]) if key.endswith("_id") else changes[key]
        validate(key, value)
        if ticket.get(key) != value:
            events.append(make_event("Change", key, value, ticket.get(key)))
            ticket[key] = value
            if key == "subject":
                ticket["raw_subject"] = value
    tags = normalize_tags(changes["tags"]) if "tags" in changes else list(ticket["tags"])
    tags += [t for t in normalize_tags(changes.get("additional_tags")) if t not in tags]
    removed = normalize_tags(changes.get("remove_tags"))
    tags = [t for t in tags if t not in removed]
    if tags != ticket["tags"]:
        events.append(make_event("Change", "tags", tags, ticket["tags"]))
        ticket["tags"] = tags
    for field in changes.get("custom_fields") or []:
        field_id, value = int_id(field["id"]), field.get("value")
        current = next((f for f in ticket["custom_fields"] if f["id"] == field_id), None)
        if current is None:
            ticket["custom_fields"].append({"id": field_id, "value": value})
            events.append(make_event("Change", str(field_id), value, None))
        elif current["value"] != value:
            events.append(make_event("Change", str(field_id), value, current["value"]))
            current["value"] = value
    ticket["fields"] = copy.deepcopy(ticket["custom_fields"])
    return events


def encode_cursor(position: tuple[int, int]) -> str:
    """An opaque export cursor meaning "after (generated_timestamp, change sequence)"."""
    return base64.b64encode(f"{position[0]}.0||{position[1]}|".encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, int]:
    """Inverse of :func:`encode_cursor`; raises ValueError for a cursor it did not issue.
    A ``+`` that arrived unencoded (read as a space) is tolerated."""
    try:
        text = base64.b64decode(cursor.replace(" ", "+"), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc
    match = _CURSOR.match(text)
    if match is None:
        raise ValueError(f"invalid cursor {cursor!r}")
    return int(match.group(1)), int(match.group(2))
