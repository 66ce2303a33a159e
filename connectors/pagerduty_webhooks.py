"""PagerDuty v3 webhooks: signature verification and the typed event Switchboard acts on.

A v3 webhook carries one event (``api-notes/pagerduty.md``, "Webhooks v3")::

    {"event": {"id": "...", "event_type": "incident.acknowledged", "resource_type": "incident",
               "occurred_at": "2020-10-02T18:45:22.169Z",
               "agent": {"id": "PLH1HKV", "summary": "Tenex Engineer", "type": "user_reference"},
               "client": null, "data": {...}}}

``event.data`` depends on the event type: an ``incident`` object for most incident events
(``incident.acknowledged``, ``incident.resolved``, ...), but an ``incident_note`` for
``incident.annotated`` (``{"incident": {incident_reference}, "id", "content", "trimmed",
"type": "incident_note"}``) and similar wrappers for status updates and responders. Those carry
only a reference to the incident: no ``incident_key``, status, number, urgency or service, so the
event's fields for them are ``None`` and a consumer must find the incident by ``incident_id``.

Signature: ``X-PagerDuty-Signature`` holds one ``v1=<hex HMAC-SHA256(secret, raw body)>`` per
signing secret, comma-separated (several during a secret rotation). Deliveries are at least
once: de-duplicate on the ``X-Webhook-Id`` header, which repeats on every retry.

Vendor JSON stops here: callers get :class:`IncidentEvent`.
"""

from __future__ import annotations

__all__ = [
    "HANDLED_EVENT_TYPES",
    "SIGNATURE_HEADER",
    "WEBHOOK_ID_HEADER",
    "IncidentEvent",
    "UnsupportedEventError",
    "WebhookPayloadError",
    "parse_webhook",
    "sign",
    "verify_signature",
]

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.json_fields import FieldReader
from connectors.models import parse_time

SIGNATURE_HEADER = "X-PagerDuty-Signature"
WEBHOOK_ID_HEADER = "X-Webhook-Id"
SIGNATURE_VERSION = "v1"

#: The event types Switchboard acts on; :func:`parse_webhook` reads every ``incident.*`` type.
HANDLED_EVENT_TYPES = frozenset(
    {"incident.acknowledged", "incident.resolved", "incident.annotated"}
)

_HEX_DIGEST = 64


class WebhookPayloadError(ValueError):
    """A webhook body that is not a PagerDuty v3 incident event; the message says what is wrong."""


class UnsupportedEventError(WebhookPayloadError):
    """A well-formed v3 event about something other than an incident (``service.updated``).

    Answer it with a 2xx and ignore it: PagerDuty drops a webhook answered with a 4xx and
    disables the subscription after three consecutive drops.
    """


_read = FieldReader(WebhookPayloadError)
_required_str, _optional_str, _optional_object = (
    _read.required_str, _read.optional_str, _read.optional_object)


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """One v3 incident event, as Switchboard sees it.

    ``incident_key`` is the Events API ``dedup_key`` of the alert that opened the incident (how
    Switchboard finds its own escalation); it, ``incident_number``, ``status``, ``urgency`` and
    the service are ``None`` for events whose data only references the incident
    (``incident.annotated``). ``note`` is the annotation text of ``incident.annotated``, else
    ``None``. ``agent_name`` is the agent's ``summary`` (the responder's name).
    """

    event_id: str
    event_type: str
    occurred_at: datetime
    incident_id: str
    incident_number: int | None = None
    incident_key: str | None = None
    status: str | None = None
    title: str | None = None
    html_url: str | None = None
    urgency: str | None = None
    service_id: str | None = None
    service_name: str | None = None
    agent_id: str | None = None
    agent_name: str | None = None
    note: str | None = None

    @property
    def handled(self) -> bool:
        """True for the event types in :data:`HANDLED_EVENT_TYPES`."""
        return self.event_type in HANDLED_EVENT_TYPES


def sign(secret: str, body: bytes) -> str:
    """The ``X-PagerDuty-Signature`` value PagerDuty sends for ``body`` signed with ``secret``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify_signature(body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """Whether any ``v1`` signature in ``header`` matches ``body`` under any of ``secrets``.

    ``body`` must be the raw request body, unaltered. A missing, blank or malformed header, or no
    secret, gives ``False``; signatures of other versions (``v2=...``) are ignored. Comparisons
    are constant-time. Never raises.
    """
    if not header or not header.strip() or not secrets:
        return False
    offered: list[str] = []
    for part in header.split(","):
        version, sep, value = part.strip().partition("=")
        value = value.strip().lower()
        if sep and version.strip() == SIGNATURE_VERSION and len(value) == _HEX_DIGEST:
            offered.append(value)
    if not offered:
        return False
    expected = [
        hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
        for secret in secrets
        if secret
    ]
    matched = False
    # No early exit: the work done does not depend on which signature matched.
    for value in offered:
        for digest in expected:
            matched |= hmac.compare_digest(value.encode("ascii", "replace"), digest.encode())
    return matched


def parse_webhook(body: bytes) -> IncidentEvent:
    """Read a v3 webhook body into an :class:`IncidentEvent`.

    Reads every ``incident.*`` event type; the caller decides which to act on
    (:attr:`IncidentEvent.handled`). Raises :class:`UnsupportedEventError` for a valid event of
    another resource (``service.*``) and :class:`WebhookPayloadError` for a body that is not
    JSON, not an object, has no ``event`` object, or lacks (or mistypes) ``event.id``,
    ``event_type``, ``occurred_at``, ``data`` or the incident's id.
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise WebhookPayloadError(f"webhook body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise WebhookPayloadError(
            f"webhook body is a JSON {type(document).__name__}, not an object"
        )
    event = document.get("event")
    if not isinstance(event, dict):
        raise WebhookPayloadError("webhook body has no 'event' object")
    event_id = _required_str(event, "id", "event")
    event_type = _required_str(event, "event_type", "event")
    occurred_text = _required_str(event, "occurred_at", "event")
    try:
        occurred_at = parse_time(occurred_text)
    except ValueError as exc:
        raise WebhookPayloadError(
            f"event.occurred_at is not an ISO-8601 time: {occurred_text!r}"
        ) from exc
    if occurred_at is None:  # parse_time maps only None and "" to None; kept for the type
        raise WebhookPayloadError("event.occurred_at is missing")
    data = event.get("data")
    if not isinstance(data, dict):
        raise WebhookPayloadError("event.data is missing or not an object")
    if not event_type.startswith("incident."):
        raise UnsupportedEventError(f"event_type {event_type!r} is not an incident event")

    agent = _optional_object(event, "agent", "event")
    values: dict[str, Any] = {
        "event_id": event_id,
        "event_type": event_type,
        "occurred_at": occurred_at,
        "agent_id": _optional_str(agent, "id", "event.agent"),
        "agent_name": _optional_str(agent, "summary", "event.agent"),
    }
    if data.get("type", "incident") == "incident":
        values.update(_incident_fields(data))
    else:
        # incident_note, incident_status_update, incident_responder: a reference only.
        reference = _optional_object(data, "incident", "event.data")
        if reference is None:
            raise WebhookPayloadError(
                f"event.data of type {data.get('type')!r} has no 'incident' reference"
            )
        values["incident_id"] = _required_str(reference, "id", "event.data.incident")
        values["title"] = _optional_str(reference, "summary", "event.data.incident")
        values["html_url"] = _optional_str(reference, "html_url", "event.data.incident")
        if event_type == "incident.annotated":
            values["note"] = _optional_str(data, "content", "event.data")
    return IncidentEvent(**values)


def _incident_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    number = data.get("number")
    if number is not None and (not isinstance(number, int) or isinstance(number, bool)):
        raise WebhookPayloadError(f"event.data.number must be an integer, not {number!r}")
    service = _optional_object(data, "service", "event.data")
    return {
        "incident_id": _required_str(data, "id", "event.data"),
        "incident_number": number,
        "incident_key": _optional_str(data, "incident_key", "event.data"),
        "status": _optional_str(data, "status", "event.data"),
        "title": _optional_str(data, "title", "event.data"),
        "html_url": _optional_str(data, "html_url", "event.data"),
        "urgency": _optional_str(data, "urgency", "event.data"),
        "service_id": _optional_str(service, "id", "event.data.service"),
        "service_name": _optional_str(service, "summary", "event.data.service"),
    }
