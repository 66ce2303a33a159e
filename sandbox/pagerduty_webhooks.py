"""PagerDuty v3 webhook delivery for the sandbox: payloads shaped after the developer docs,
``X-PagerDuty-Signature`` signing and the delivery record (see ``api-notes/pagerduty.md``).

A delivery is one POST with ``Content-Type: application/json``, ``X-PagerDuty-Signature`` (one
``v1=<hex HMAC-SHA256>`` per subscription secret, comma-separated), ``X-Webhook-Id`` (unique per
webhook, the same on every redelivery) and ``X-Webhook-Subscription``; the body is::

    {"event": {"id", "event_type", "resource_type": "incident", "occurred_at",
               "agent": {user_reference}, "client": null, "data": {...}}}

``data`` is the ``incident`` object, or for ``incident.annotated`` an ``incident_note`` that only
references the incident. ``agent`` is the responder (a ``user_reference``) for what a person did,
and the incident's service (a ``service_reference``) for ``incident.triggered`` opened by an
Events API trigger.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from connectors.pagerduty_webhooks import sign

__all__ = [
    "API_URL",
    "WEB_URL",
    "Delivery",
    "Subscription",
    "build_delivery",
    "incident_data",
    "iso_time",
    "note_data",
    "pd_id",
    "post",
    "user_ref",
]

WEB_URL = "https://sandbox.pagerduty.com"
API_URL = "https://api.pagerduty.com"
#: Keys of a sandbox incident record that PagerDuty's incident object does not have.
_PRIVATE = ("routing_key", "notes", "alert_counts", "acknowledged_by", "resolved_by")


@dataclass
class Subscription:
    """A v3 webhook subscription: where to deliver and the secrets to sign with."""

    id: str
    url: str
    secrets: list[str]


@dataclass
class Delivery:
    """One webhook and what its receiver answered.

    ``status``/``error`` describe the first attempt (``status`` None: the receiver could not be
    reached, ``error`` names why); ``attempts`` lists the status of every attempt, redeliveries
    included.
    """

    webhook_id: str
    subscription_id: str
    url: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    error: str | None = None
    attempts: list[int | None] = field(default_factory=list)

    def payload(self) -> Any:
        """The decoded body."""
        return json.loads(self.body)


def pd_id(prefix: str, seed: str) -> str:
    """A stable PagerDuty-looking id (``PABC123``) derived from ``seed``."""
    digest = hashlib.sha256(seed.encode()).hexdigest().upper()
    return prefix + digest[:6]


def iso_time(moment: datetime) -> str:
    """PagerDuty's event time format, ``2020-10-02T18:45:22.169Z`` (``moment`` in UTC)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def user_ref(name: str) -> dict[str, Any]:
    """A ``user_reference`` for the responder called ``name`` (stable id per name)."""
    user_id = pd_id("P", name)
    return {"html_url": f"{WEB_URL}/users/{user_id}", "id": user_id,
            "self": f"{API_URL}/users/{user_id}", "summary": name,
            "type": "user_reference"}  # fmt: skip


def incident_data(incident: dict[str, Any]) -> dict[str, Any]:
    """The v3 ``incident`` data object of a sandbox incident record."""
    data = {k: copy.deepcopy(v) for k, v in incident.items() if k not in _PRIVATE}
    policy = pd_id("P", "escalation-policy")
    data["escalation_policy"] = {
        "html_url": f"{WEB_URL}/escalation_policies/{policy}", "id": policy,
        "self": f"{API_URL}/escalation_policies/{policy}", "summary": "Default",
        "type": "escalation_policy_reference",
    }  # fmt: skip
    data.update({"teams": [], "priority": None, "conference_bridge": None,
                 "resolve_reason": None})  # fmt: skip
    return data


def note_data(incident: dict[str, Any], note_id: str, content: str) -> dict[str, Any]:
    """The v3 ``incident_note`` data object of ``incident.annotated``."""
    return {
        "incident": {
            "html_url": incident["html_url"],
            "id": incident["id"],
            "self": incident["self"],
            "summary": incident["title"],
            "type": "incident_reference",
        },
        "id": note_id,
        "content": content,
        "trimmed": False,
        "type": "incident_note",
    }


def build_delivery(
    subscription: Subscription,
    event_type: str,
    agent: dict[str, Any],
    data: dict[str, Any],
    occurred_at: str,
) -> Delivery:
    """A signed, not yet sent, webhook of ``event_type`` whose ``agent`` is a reference object
    (:func:`user_ref` for a responder, the incident's ``service`` for a trigger)."""
    payload = {"event": {
        "id": str(uuid.uuid4()),
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": occurred_at,
        "agent": copy.deepcopy(agent),
        "client": None,
        "data": data,
    }}  # fmt: skip
    body = json.dumps(payload).encode("utf-8")
    webhook_id = str(uuid.uuid4())
    signature = ",".join(sign(secret, body) for secret in subscription.secrets)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "PagerDuty-Webhook/V3.0",
        "X-PagerDuty-Signature": signature,
        "X-Webhook-Id": webhook_id,
        "X-Webhook-Subscription": subscription.id,
    }
    return Delivery(webhook_id, subscription.id, subscription.url, headers, body)


def post(delivery: Delivery, timeout: float, lock: threading.RLock) -> None:
    """Send ``delivery`` once and record the answer (under ``lock``). Never raises for an
    unreachable receiver: its status is recorded as None."""
    status: int | None
    try:
        with requests.Session() as session:
            answer = session.post(delivery.url, data=delivery.body, headers=delivery.headers,
                                  timeout=timeout)  # fmt: skip
        status, error = answer.status_code, None
    except requests.RequestException as exc:
        status, error = None, type(exc).__name__
    with lock:
        if not delivery.attempts:
            delivery.status, delivery.error = status, error
        delivery.attempts.append(status)
