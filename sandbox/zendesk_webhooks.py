"""Zendesk webhook delivery: the payloads Zendesk sends and how it signs them.

Two payload styles (``api-notes/zendesk.md`` "Webhook payloads"):

- ``"trigger"``: a trigger's ``notification_webhook`` action rendering Switchboard's documented
  JSON template. Zendesk renders placeholders as text, so every value is a string ("" for null),
  tags are space-separated and custom fields are keyed by field id::

    {"switchboard": "zendesk-trigger/1", "event": "ticket.created",
     "ticket": {"id": "1001", "created_at": "...Z", "updated_at": "...Z", "subject": "...",
                "description": "...", "status": "open", "priority": "high", "type": "incident",
                "tags": "a b", "requester_id": "800001", "organization_id": "", "assignee_id": "",
                "group_id": "", "custom_fields": {"360001": "value", "360002": ""}}}

- ``"event"``: an event-subscription webhook (``zen:event-type:ticket.*``): the common envelope,
  a ``detail`` with string ids and upper-case status/priority/type and no custom fields, and an
  ``event`` object specific to the event type.

Signature: ``base64(HMAC-SHA256(secret, timestamp + raw_body))`` in ``X-Zendesk-Webhook-Signature``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from sandbox.base import zendesk_timestamp

if TYPE_CHECKING:
    from sandbox.zendesk import ZendeskState

__all__ = [
    "TRIGGER_SCHEMA",
    "WebhookConfig",
    "event_payload",
    "sign_zendesk",
    "trigger_payload",
]

TRIGGER_SCHEMA = "zendesk-trigger/1"
EVENT_VERSION = "2022-11-06"  # what Zendesk's ticket-event examples carry
_CHANGE_EVENTS = {
    "ticket.status_changed": "status",
    "ticket.priority_changed": "priority",
    "ticket.type_changed": "type",
    "ticket.subject_changed": "subject",
    "ticket.agent_assignment_changed": "assignee_id",
    "ticket.group_assignment_changed": "group_id",
    "ticket.organization_changed": "organization_id",
    "ticket.requester_changed": "requester_id",
    "ticket.description_changed": "description",
}


@dataclass(frozen=True)
class WebhookConfig:
    """Where the sandbox delivers webhooks and the signing secret it uses."""

    url: str
    secret: str
    webhook_id: str


def sign_zendesk(secret: str, timestamp: str, body: bytes) -> str:
    """Zendesk's webhook signature: base64 of HMAC-SHA256 over ``timestamp + body``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(_text(item) for item in value)
    return str(value)


def trigger_payload(ticket: dict[str, Any], event_type: str = "ticket.created") -> dict[str, Any]:
    """The body Switchboard's trigger template renders for ``ticket`` (all values strings)."""
    keys = (
        "id", "created_at", "updated_at", "subject", "description", "status", "priority", "type",
        "tags", "requester_id", "organization_id", "assignee_id", "group_id",
    )  # fmt: skip
    rendered: dict[str, Any] = {key: _text(ticket.get(key)) for key in keys}
    rendered["custom_fields"] = {
        str(field["id"]): _text(field.get("value")) for field in ticket.get("custom_fields", [])
    }
    return {"switchboard": TRIGGER_SCHEMA, "event": event_type, "ticket": rendered}


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


def _upper(value: Any) -> str | None:
    return None if value is None else str(value).upper()


def _event_value(field: str, value: Any) -> Any:
    if field in ("status", "priority", "type"):
        return _upper(value)
    if field.endswith("_id"):
        return _id(value)
    return value


def event_payload(
    state: ZendeskState,
    ticket: dict[str, Any],
    event_type: str,
    *,
    event: dict[str, Any] | None = None,
    actor_id: int | None = None,
    time: str | None = None,
) -> dict[str, Any]:
    """An event-subscription body (``zen:event-type:<event_type>``) for ``ticket``.

    ``event`` replaces the event-specific object; by default it is derived from the ticket and
    its state before the latest change (``current`` / ``previous``, tag diffs, latest comment).
    """
    previous = state.previous(ticket["id"]) or {}
    if event is None:
        event = _default_event(state, ticket, previous, event_type)
    event = {**event, "meta": {"sequence": {"id": uuid.uuid4().hex.upper(), "position": 1,
                                            "total": 1}}}  # fmt: skip
    detail = {
        "actor_id": _id(actor_id if actor_id is not None else ticket.get("submitter_id")),
        "assignee_id": _id(ticket.get("assignee_id")),
        "brand_id": _id(ticket.get("brand_id")),
        "created_at": ticket.get("created_at"),
        "custom_status": _id(ticket.get("custom_status_id")),
        "description": ticket.get("description"),
        "external_id": _id(ticket.get("external_id")),
        "form_id": _id(ticket.get("ticket_form_id")),
        "group_id": _id(ticket.get("group_id")),
        "id": str(ticket["id"]),
        "is_public": ticket.get("is_public", True),
        "organization_id": _id(ticket.get("organization_id")),
        "priority": _upper(ticket.get("priority")),
        "requester_id": _id(ticket.get("requester_id")),
        "status": _upper(ticket.get("status")),
        "subject": ticket.get("subject"),
        "submitter_id": _id(ticket.get("submitter_id")),
        "tags": list(ticket.get("tags", [])),
        "type": _upper(ticket.get("type")),
        "updated_at": ticket.get("updated_at"),
        "via": {"channel": ticket.get("via", {}).get("channel", "web")},
    }
    return {
        "type": f"zen:event-type:{event_type}",
        "account_id": state.account_id,
        "id": str(uuid.uuid4()),
        "time": time or ticket.get("updated_at"),
        "zendesk_event_version": EVENT_VERSION,
        "subject": f"zen:ticket:{ticket['id']}",
        "detail": detail,
        "event": event,
    }


def _default_event(
    state: ZendeskState, ticket: dict[str, Any], previous: dict[str, Any], event_type: str
) -> dict[str, Any]:
    if event_type in _CHANGE_EVENTS:
        field = _CHANGE_EVENTS[event_type]
        return {
            "current": _event_value(field, ticket.get(field)),
            "previous": _event_value(field, previous.get(field)),
        }
    if event_type == "ticket.tags_changed":
        before, after = previous.get("tags", []), ticket.get("tags", [])
        return {
            "added": {"tags": [tag for tag in after if tag not in before]},
            "removed": {"tags": [tag for tag in before if tag not in after]},
        }
    if event_type == "ticket.comment_added":
        comments = state.comments(ticket["id"])
        if not comments:
            return {}
        latest = comments[-1]
        return {
            "comment": {
                "id": str(latest["id"]),
                "body": latest["body"],
                "is_public": latest["public"],
                "author": {"id": str(latest["author_id"]), "is_staff": True, "name": ""},
            }
        }
    return {}


def deliver(
    state: ZendeskState,
    ticket_id: int,
    *,
    style: str = "trigger",
    event_type: str = "ticket.created",
    timestamp: str | None = None,
    secret: str | None = None,
    body_override: bytes | None = None,
    invocation_id: str | None = None,
    event: dict[str, Any] | None = None,
    timeout: float = 10.0,
) -> requests.Response:
    """Build, sign and POST one webhook for ``ticket_id`` to the configured URL.

    ``secret`` signs with another secret (to test rejection); ``body_override`` sends other bytes
    (signed as sent); ``timestamp`` sets the signature timestamp (default now). Raises
    RuntimeError if no webhook is configured, ValueError for an unknown ``style``.
    """
    config = state.webhook
    if config is None:
        raise RuntimeError("no webhook configured; call configure_webhook(url, secret) first")
    if body_override is not None:
        body = body_override
    else:
        ticket = state.ticket(ticket_id)
        if style == "trigger":
            payload = trigger_payload(ticket, event_type)
        elif style == "event":
            payload = event_payload(state, ticket, event_type, event=event)
        else:
            raise ValueError(f"unknown webhook style {style!r}; expected 'trigger' or 'event'")
        body = json.dumps(payload).encode()
    stamp = timestamp or zendesk_timestamp(state.clock())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Zendesk Webhook",
        "X-Zendesk-Webhook-Id": config.webhook_id,
        "X-Zendesk-Webhook-Invocation-Id": invocation_id or str(uuid.uuid4().int)[:19],
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        "X-Zendesk-Webhook-Signature": sign_zendesk(secret or config.secret, stamp, body),
    }
    with requests.Session() as session:
        return session.post(config.url, data=body, headers=headers, timeout=timeout)
