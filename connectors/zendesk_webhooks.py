"""Inbound Zendesk webhooks: signature check and payload -> typed event.

Two payload shapes reach ``POST /webhooks/zendesk``:

- **Event subscriptions** (``{"type": "zen:event-type:ticket.created", "detail": {...}, ...}``):
  ``detail`` carries the core ticket fields (ids as strings, statuses possibly upper-case) but no
  custom fields, so such an event is *partial*. A ``zen:event-type:ticket.comment_added`` event
  also carries the comment in ``event.comment`` (``id``, ``body``, ``is_public``,
  ``author.id``); it becomes :attr:`ZendeskWebhookEvent.comment`. When that object is absent or
  lacks the body or the visibility, the comment is left to the processor to read.
- **Trigger webhooks** with Switchboard's documented JSON body template
  (``{"switchboard": "zendesk-trigger/1", "event": ..., "ticket": {...}}``, every value a string as
  Zendesk renders placeholders): core fields plus the custom fields the template lists, so it is
  *complete* when every configured custom field is present.

A correctly signed payload of a type Switchboard does not handle becomes :class:`IgnoredWebhook`
(the receiver answers 2xx: Zendesk counts 4xx answers against the webhook's circuit breaker) — an
event subscription for something other than a ticket, or a trigger body whose ``event`` is
neither ``ticket.created`` nor ``ticket.updated``. A payload of a handled type that is malformed
raises :class:`WebhookPayloadError`: ids must be positive integers below 2**63; timestamps must
carry ``Z`` or a UTC offset; ``updated_at`` may not lie further in the future than the tolerance
(the snapshot never moves back, so such a stamp would hide every later change of the ticket).
"""

from __future__ import annotations

__all__ = [
    "CORE_FIELDS",
    "IgnoredWebhook",
    "TRIGGER_SCHEMA",
    "WebhookPayloadError",
    "ZendeskWebhookEvent",
    "parse_zendesk_webhook",
    "sign_zendesk_webhook",
    "verify_zendesk_signature",
]

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.models import format_time, parse_time

TRIGGER_SCHEMA = "zendesk-trigger/1"
EVENT_PREFIX = "zen:event-type:"

#: Ticket fields (Ticket.to_dict() keys) a payload may carry, besides custom fields.
CORE_FIELDS = (
    "id", "updated_at", "created_at", "subject", "description", "status", "priority", "type",
    "tags", "requester_id", "organization_id", "assignee_id", "group_id",
)
_ID_FIELDS = ("requester_id", "organization_id", "assignee_id", "group_id")
_LOWER_FIELDS = ("status", "priority", "type")
_HANDLED_TRIGGER_EVENTS = ("ticket.created", "ticket.updated")
#: Ids are stored in signed 64-bit columns.
_MAX_ID = 2**63 - 1
#: Default for how far ``updated_at`` may lie in the future (the receiver passes its own).
DEFAULT_FUTURE_TOLERANCE_SECONDS = 300.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class WebhookPayloadError(ValueError):
    """A signed payload of a handled type is malformed; the receiver answers 400."""


@dataclass(frozen=True, slots=True)
class ZendeskWebhookEvent:
    """One ticket change announced by a webhook.

    ``fields`` is a partial ``Ticket.to_dict()`` (custom fields by name under ``"fields"``);
    ``complete`` says whether it holds every core field and every configured custom field.
    ``comment`` is the comment the change added (``Comment.to_dict()`` shape), when the payload
    carries it.
    """

    style: str
    kind: str
    hint: str
    ticket_id: int
    updated_at: datetime
    fields: Mapping[str, Any] = field(default_factory=dict)
    complete: bool = False
    comment: Mapping[str, Any] | None = None

    @property
    def change_key(self) -> str:
        """Identity of the change (not the delivery): ticket id + ``updated_at``."""
        return f"zendesk:ticket:{self.ticket_id}:{format_time(self.updated_at)}"


@dataclass(frozen=True, slots=True)
class IgnoredWebhook:
    """A well-formed, signed payload Switchboard has no use for."""

    kind: str
    reason: str


def sign_zendesk_webhook(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """Zendesk's signature: base64(HMAC-SHA256(secret, timestamp + body))."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_zendesk_signature(
    secrets: Iterable[str | bytes], timestamp: str, body: bytes, signature: str
) -> bool:
    """True when ``signature`` matches any of ``secrets``; every comparison is constant-time."""
    given = signature.strip().encode()
    ok = False
    for secret in secrets:
        expected = sign_zendesk_webhook(secret, timestamp, body).encode()
        ok |= hmac.compare_digest(expected, given)
    return ok


def _id_or_none(value: Any, name: str) -> int | None:
    """A Zendesk id (a JSON integer or a string of digits), or None for null / ``""``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise WebhookPayloadError(f"{name} must be an id, got {type(value).__name__}")
    text = value.strip() if isinstance(value, str) else None
    if text is not None and not (text.isascii() and text.isdigit()):
        raise WebhookPayloadError(f"{name} must be an id, got {value!r}")
    number = int(text) if text is not None else int(value)
    if not 0 < number <= _MAX_ID:
        raise WebhookPayloadError(f"{name} must be a positive integer below 2**63, got {value!r}")
    return number


def _time(value: Any, name: str, *, required: bool = False) -> datetime | None:
    """An ISO-8601 stamp with ``Z`` or an offset -> aware UTC; a naive one is refused (which zone
    it meant is a guess, and a wrong guess shifts ``updated_at`` by hours)."""
    if value is None or value == "":
        if required:
            raise WebhookPayloadError(f"{name} is missing")
        return None
    if not isinstance(value, str):
        raise WebhookPayloadError(f"{name} must be an ISO-8601 timestamp string, "
                                  f"got {type(value).__name__}")
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise WebhookPayloadError(f"{name} is not an ISO-8601 timestamp: {value!r}") from exc
    if parsed.tzinfo is None:
        raise WebhookPayloadError(f"{name} has no UTC offset or 'Z': {value!r}")
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # e.g. 9999-12-31T23:00:00-05:00 is past datetime.max in UTC
        raise WebhookPayloadError(f"{name} is out of range: {value!r}") from exc


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise WebhookPayloadError(f"{name} must be text, got {type(value).__name__}")
    return str(value)


def _tags(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return list(value)
    raise WebhookPayloadError("tags must be a list of strings or a space-separated string")


def _normalise(raw: Mapping[str, Any], latest: datetime) -> dict[str, Any]:
    """Vendor ticket fields (strings, capitalised enums) -> Ticket.to_dict() fragments.

    ``latest`` is the newest ``updated_at`` believed (now + tolerance).
    """
    out: dict[str, Any] = {}
    ticket_id = _id_or_none(raw.get("id"), "ticket id")
    if ticket_id is None:
        raise WebhookPayloadError("ticket id is missing")
    out["id"] = ticket_id
    updated = _time(raw.get("updated_at"), "updated_at", required=True)
    assert updated is not None
    if updated > latest:
        raise WebhookPayloadError(f"updated_at {format_time(updated)} is in the future "
                                  f"(later than {format_time(latest)})")
    out["updated_at"] = format_time(updated)
    if "created_at" in raw:
        created = _time(raw.get("created_at"), "created_at")
        out["created_at"] = format_time(created) if created else None
    for name in ("subject", "description"):
        if name in raw:
            out[name] = _text(raw.get(name), name) or ""
    for name in _LOWER_FIELDS:
        if name in raw:
            value = _text(raw.get(name), name)
            out[name] = value.lower() if value else None
    if "tags" in raw:
        out["tags"] = _tags(raw.get("tags"))
    for name in _ID_FIELDS:
        if name in raw:
            out[name] = _id_or_none(raw.get(name), name)
    return out


def _parse_event(body: Mapping[str, Any], kind: str,
                 latest: datetime) -> ZendeskWebhookEvent | IgnoredWebhook:
    name = kind[len(EVENT_PREFIX):]
    if not name.startswith("ticket."):
        return IgnoredWebhook(kind, "not a ticket event")
    detail = body.get("detail")
    if not isinstance(detail, Mapping):
        raise WebhookPayloadError("event has no 'detail' object")
    fields = _normalise(detail, latest)
    comment = _event_comment(body.get("event"), fields["updated_at"]) \
        if name == "ticket.comment_added" else None
    return ZendeskWebhookEvent(
        style="event",
        kind=kind,
        hint="ticket.created" if name == "ticket.created" else "ticket.updated",
        ticket_id=fields["id"],
        updated_at=parse_time(fields["updated_at"]),  # type: ignore[arg-type]
        fields=fields,
        complete=False,  # event subscriptions never carry custom fields
        comment=comment,
    )


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise WebhookPayloadError(f"{name} must be true or false, got {value!r}")


def _event_comment(event: Any, updated_at: str) -> dict[str, Any] | None:
    """``event.comment`` of a comment_added event -> ``Comment.to_dict()``, or ``None`` when
    the payload does not carry a usable one (the processor then reads it from Zendesk).

    Raises :class:`WebhookPayloadError` for a comment of the wrong shape: a comment that is not
    an object, an id that is not an id, a body that is not text, a visibility that is not a
    boolean.
    """
    if event is None:
        return None
    if not isinstance(event, Mapping):
        raise WebhookPayloadError("event must be an object")
    raw = event.get("comment")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise WebhookPayloadError(f"event.comment must be an object, got {type(raw).__name__}")
    comment_id = _id_or_none(raw.get("id"), "comment id")
    body = raw.get("body")
    if body is not None and not isinstance(body, str):
        raise WebhookPayloadError(f"comment body must be text, got {type(body).__name__}")
    public = raw.get("is_public", raw.get("public"))
    author = raw.get("author")
    if author is not None and not isinstance(author, Mapping):
        raise WebhookPayloadError(f"comment author must be an object, got "
                                  f"{type(author).__name__}")
    author_id = _id_or_none((author or {}).get("id", raw.get("author_id")), "comment author id")
    if comment_id is None or body is None or public is None:
        return None
    return {"id": comment_id, "body": body, "public": _flag(public, "comment is_public"),
            "author_id": author_id, "created_at": updated_at}


def _parse_trigger(body: Mapping[str, Any], field_ids: Mapping[str, int],
                   latest: datetime) -> ZendeskWebhookEvent | IgnoredWebhook:
    hint = body.get("event") or "ticket.updated"
    if not isinstance(hint, str):
        raise WebhookPayloadError(f"event must be text, got {type(hint).__name__}")
    if hint not in _HANDLED_TRIGGER_EVENTS:
        return IgnoredWebhook(f"trigger:{hint}", "trigger event is neither ticket.created nor "
                                                 "ticket.updated")
    ticket = body.get("ticket")
    if not isinstance(ticket, Mapping):
        raise WebhookPayloadError("trigger body has no 'ticket' object")
    fields = _normalise(ticket, latest)
    raw_custom = ticket.get("custom_fields") or {}
    if not isinstance(raw_custom, Mapping):
        raise WebhookPayloadError("custom_fields must be an object of field id -> value")
    names = {str(fid): name for name, fid in field_ids.items()}
    custom = {names[str(k)]: (None if v == "" else v) for k, v in raw_custom.items()
              if str(k) in names}
    fields["fields"] = custom
    complete = all(f in fields for f in CORE_FIELDS) and set(custom) >= set(field_ids)
    return ZendeskWebhookEvent(
        style="trigger",
        kind=f"trigger:{hint}",
        hint=hint,
        ticket_id=fields["id"],
        updated_at=parse_time(fields["updated_at"]),  # type: ignore[arg-type]
        fields=fields,
        complete=complete,
    )


def parse_zendesk_webhook(
    body: Any,
    field_ids: Mapping[str, int],
    *,
    clock: Callable[[], datetime] = _utcnow,
    future_tolerance_seconds: float = DEFAULT_FUTURE_TOLERANCE_SECONDS,
) -> ZendeskWebhookEvent | IgnoredWebhook:
    """Turn a verified, JSON-decoded webhook body into an event, or say why it is ignored.

    ``field_ids`` maps configured custom-field names to Zendesk ids; an ``updated_at`` later than
    ``clock()`` + ``future_tolerance_seconds`` is refused. Raises :class:`WebhookPayloadError`
    for a malformed payload of a handled type.
    """
    if not isinstance(body, Mapping):
        raise WebhookPayloadError("the body must be a JSON object")
    latest = clock() + timedelta(seconds=future_tolerance_seconds)
    kind = body.get("type")
    if isinstance(kind, str) and kind.startswith(EVENT_PREFIX):
        return _parse_event(body, kind, latest)
    if body.get("switchboard") == TRIGGER_SCHEMA:
        return _parse_trigger(body, field_ids, latest)
    if isinstance(body.get("switchboard"), str):
        return IgnoredWebhook(str(body["switchboard"]), "unknown trigger template version")
    return IgnoredWebhook(str(kind) if kind else "unknown", "not a payload Switchboard handles")
