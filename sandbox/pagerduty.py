"""The PagerDuty stand-in's state: the Events API v2 and the v3 webhooks a responder's actions
send (see ``api-notes/pagerduty.md``).

Over HTTP(S) it serves ``POST /v2/enqueue``: 202 ``{"status": "success", "message": "Event
processed", "dedup_key": ...}``, 400 ``{"status": "invalid", "message": "Event object is
invalid", "errors": [...]}`` for an event PagerDuty would refuse, 413 above 512 KB. Alerts are
kept by (routing key, dedup key): a trigger opens an incident, or is de-duplicated into the open
one (its alert counter goes up); acknowledge and resolve apply to the open incident and are
dropped (still 202) when there is none; after a resolve, a trigger opens a new incident.

A trigger that opens an incident delivers a signed ``incident.triggered`` v3 webhook (its agent
is the incident's service) to every subscription; a de-duplicated trigger delivers nothing.
PagerDuty sends it asynchronously; the stand-in sends it before answering the 202, so a caller
that has its answer also finds the delivery (:meth:`~PagerDutyState.deliveries`). Acknowledge and
resolve sent through the Events API deliver nothing here (PagerDuty would send
``incident.acknowledged`` / ``incident.resolved``; not modelled yet).

Tests and the demo play the responder with :meth:`PagerDutyState.acknowledge_incident`,
:meth:`~PagerDutyState.resolve_incident` and :meth:`~PagerDutyState.annotate_incident`: each
changes the incident as the PagerDuty UI would and delivers a signed v3 webhook to every
subscription (:meth:`~PagerDutyState.subscribe`); :meth:`~PagerDutyState.redeliver` sends an
earlier delivery again, unchanged (same ``X-Webhook-Id``), as PagerDuty's retries do. Payloads
and signing live in ``sandbox.pagerduty_webhooks``.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from http import HTTPStatus
from typing import Any

from sandbox.base import Request, Response, utc_now
from sandbox.pagerduty_webhooks import (
    API_URL,
    WEB_URL,
    Delivery,
    Subscription,
    build_delivery,
    incident_data,
    iso_time,
    note_data,
    pd_id,
    post,
    user_ref,
)

__all__ = ["Delivery", "PagerDutyState"]

MAX_BODY = 512 * 1024
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
ROUTING_KEY_LENGTH = 32
ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")


class PagerDutyState:
    """Incidents, the accepted-event log and webhook subscriptions, behind one lock.

    Attributes tests may set: ``clock`` (returns the current aware UTC datetime),
    ``delivery_timeout`` (seconds), ``triggered_delay`` (seconds: when above 0, the
    ``incident.triggered`` webhook is sent that long *after* the trigger is answered, from
    another thread, as PagerDuty does; by default it is sent before the answer).
    """

    vendor = "pagerduty"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.base_url = "https://events.pagerduty.com"
        self.clock: Callable[[], datetime] = utc_now
        self.delivery_timeout = 10.0
        self.triggered_delay = 0.0
        self._routing_keys: dict[str, str] | None = None
        self._incidents: dict[str, dict[str, Any]] = {}
        self._open: dict[tuple[str, str], str] = {}
        self._events: list[dict[str, Any]] = []
        self._subscriptions: list[Subscription] = []
        self._deliveries: dict[str, Delivery] = {}
        self._number = 0

    # -- configuration -----------------------------------------------------------------------

    def set_base_url(self, url: str) -> None:
        """Set the URL the Events API is served at."""
        with self.lock:
            self.base_url = url.rstrip("/")

    def require_routing_keys(self, keys: Iterable[str] | Mapping[str, str]) -> None:
        """Accept only these routing keys (by default any 32-character key is accepted).

        Given a mapping, its values name the service each key routes to (the ``service.summary``
        of its incidents).
        """
        with self.lock:
            if isinstance(keys, Mapping):
                self._routing_keys = dict(keys)
            else:
                self._routing_keys = {key: "" for key in keys}

    def subscribe(self, url: str, secrets: list[str]) -> str:
        """Deliver v3 webhooks to ``url``, signed with each of ``secrets`` (one ``v1=`` value
        per secret, as during a rotation). Returns the subscription id."""
        if not secrets:
            raise ValueError("a subscription needs at least one signing secret")
        with self.lock:
            subscription = Subscription(pd_id("P", url + str(len(self._subscriptions))),
                                        url, list(secrets))  # fmt: skip
            self._subscriptions.append(subscription)
            return subscription.id

    # -- VendorApp ---------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Serve one Events API request."""
        if request.path != "/v2/enqueue":
            return Response(404, self.error_body(404))
        if request.method != "POST":
            return Response(405, self.error_body(405))
        if len(request.body) > MAX_BODY:
            return Response(413, self.error_body(413, "Request Entity Too Large"))
        if request.json_error or not isinstance(request.json, dict):
            return self._invalid(["Event object is not a JSON object"])
        event = request.json
        problems = self._problems(event)
        if problems:
            return self._invalid(problems)
        return Response(202, {"status": "success", "message": "Event processed",
                              "dedup_key": self._apply(event)})  # fmt: skip

    def error_body(self, status: int, message: str | None = None) -> dict[str, Any]:
        """An Events-API-shaped error body for ``status`` (the wording of non-400 bodies is
        not documented by PagerDuty)."""
        if message is None:
            message = "Request Limit Exceeded" if status == 429 else _phrase(status)
        kind = {400: "invalid", 429: "throttle event"}.get(status, "error")
        return {"status": kind, "message": message, "errors": [message]}

    # -- inspection --------------------------------------------------------------------------

    def incidents(self) -> list[dict[str, Any]]:
        """Copies of every incident, oldest first (``routing_key`` included, for assertions)."""
        with self.lock:
            return [copy.deepcopy(i) for i in sorted(self._incidents.values(),
                                                     key=lambda i: i["number"])]  # fmt: skip

    def incident(self, dedup_key: str, routing_key: str | None = None) -> dict[str, Any]:
        """A copy of the latest incident with ``incident_key == dedup_key``. Raises KeyError."""
        with self.lock:
            return copy.deepcopy(self._latest(dedup_key, routing_key))

    def events(self) -> list[dict[str, Any]]:
        """Copies of every accepted event, in arrival order, with the outcome applied
        (``opened``, ``deduplicated``, ``acknowledged``, ``resolved``, ``dropped``)."""
        with self.lock:
            return copy.deepcopy(self._events)

    def deliveries(self) -> list[Delivery]:
        """Every webhook delivered so far (first attempts), oldest first."""
        with self.lock:
            return list(self._deliveries.values())

    # -- the responder -----------------------------------------------------------------------

    def acknowledge_incident(
        self, dedup_key: str, by: str = "Alex Doe", *, routing_key: str | None = None
    ) -> int | None:
        """Acknowledge the open incident ``dedup_key`` as ``by`` would in the UI, and deliver
        ``incident.acknowledged``. Returns the receivers' worst HTTP status (None: no
        subscription, or none reachable). Raises KeyError if no such incident is open."""
        with self.lock:
            incident = self._open_incident(dedup_key, routing_key)
            incident["status"] = "acknowledged"
            incident["assignees"] = [user_ref(by)]
            incident["acknowledged_by"] = by
            data = incident_data(incident)
        return self._deliver("incident.acknowledged", user_ref(by), data)

    def resolve_incident(
        self, dedup_key: str, by: str = "Alex Doe", *, routing_key: str | None = None
    ) -> int | None:
        """Resolve the open incident ``dedup_key`` as ``by``, and deliver ``incident.resolved``
        (see :meth:`acknowledge_incident` for the result). Raises KeyError if none is open."""
        with self.lock:
            incident = self._open_incident(dedup_key, routing_key)
            incident["status"] = "resolved"
            incident["resolved_by"] = by
            del self._open[(incident["routing_key"], dedup_key)]
            data = incident_data(incident)
        return self._deliver("incident.resolved", user_ref(by), data)

    def annotate_incident(
        self, dedup_key: str, note: str, by: str = "Alex Doe", *,
        routing_key: str | None = None,
    ) -> int | None:  # fmt: skip
        """Add a note to the latest incident ``dedup_key`` as ``by``, and deliver
        ``incident.annotated`` (its data is an ``incident_note`` referencing the incident).
        Raises KeyError if there is no such incident."""
        with self.lock:
            incident = self._latest(dedup_key, routing_key)
            note_id = pd_id("P", f"{incident['id']}-note-{len(incident['notes'])}")
            incident["notes"].append({"id": note_id, "content": note, "user": by})
            data = note_data(incident, note_id, note)
        return self._deliver("incident.annotated", user_ref(by), data)

    def redeliver(self, webhook_id: str) -> int | None:
        """Send an earlier delivery again, byte for byte (same ``X-Webhook-Id``). Returns the
        receiver's status (None if unreachable). Raises KeyError for an unknown id."""
        with self.lock:
            delivery = self._deliveries[webhook_id]
        post(delivery, self.delivery_timeout, self.lock)
        return delivery.attempts[-1]

    # -- internals ---------------------------------------------------------------------------

    def _invalid(self, errors: list[str]) -> Response:
        return Response(400, {"status": "invalid", "message": "Event object is invalid",
                              "errors": errors})  # fmt: skip

    def _problems(self, event: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        key = event.get("routing_key")
        if not isinstance(key, str) or len(key) != ROUTING_KEY_LENGTH:
            problems.append("Length of 'routing_key' is incorrect (should be 32 characters)")
        elif self._routing_keys is not None and key not in self._routing_keys:
            problems.append("Invalid routing key")
        action = event.get("event_action")
        if action not in ACTIONS:
            problems.append("'event_action' must be one of trigger, acknowledge or resolve")
        dedup_key = event.get("dedup_key")
        if dedup_key is not None and (not isinstance(dedup_key, str) or not dedup_key
                                      or len(dedup_key) > MAX_DEDUP_KEY):  # fmt: skip
            problems.append("'dedup_key' must be a string of at most 255 characters")
        if action in ("acknowledge", "resolve") and dedup_key is None:
            problems.append(f"'dedup_key' is required for event_action {action}")
        if action == "trigger":
            problems.extend(_payload_problems(event.get("payload")))
            for name in ("links", "images"):
                value = event.get(name)
                if value is not None and (not isinstance(value, list) or not all(
                        isinstance(item, dict) for item in value)):  # fmt: skip
                    problems.append(f"'{name}' must be an array of objects")
        return problems

    def _apply(self, event: dict[str, Any]) -> str:
        """Apply an accepted event; a trigger that opens an incident delivers
        ``incident.triggered`` (after the lock is released) before this returns."""
        key: str = event["routing_key"]
        action: str = event["event_action"]
        dedup_key: str = event.get("dedup_key") or uuid.uuid4().hex
        triggered: tuple[dict[str, Any], dict[str, Any]] | None = None
        with self.lock:
            incident_id = self._open.get((key, dedup_key))
            incident = self._incidents.get(incident_id) if incident_id else None
            if action == "trigger" and incident is not None:
                incident["alert_counts"]["all"] += 1
                outcome = "deduplicated"
            elif action == "trigger":
                incident = self._open_new(key, dedup_key, event["payload"])
                outcome = "opened"
                triggered = (copy.deepcopy(incident["service"]), incident_data(incident))
            elif incident is None:
                outcome = "dropped"
            elif action == "acknowledge":
                incident["status"] = "acknowledged"
                outcome = "acknowledged"
            else:
                incident["status"] = "resolved"
                del self._open[(key, dedup_key)]
                outcome = "resolved"
            self._events.append({**copy.deepcopy(event), "dedup_key": dedup_key,
                                 "outcome": outcome,
                                 "incident_id": incident["id"] if incident else None,
                                 "received_at": self.clock().isoformat()})  # fmt: skip
        if triggered is not None:
            agent, data = triggered
            if self.triggered_delay > 0:
                timer = threading.Timer(self.triggered_delay, self._deliver,
                                        ("incident.triggered", agent, data))
                timer.daemon = True
                timer.start()
            else:
                self._deliver("incident.triggered", agent, data)
        return dedup_key

    def _open_new(self, key: str, dedup_key: str, payload: dict[str, Any]) -> dict[str, Any]:
        self._number += 1
        incident_id = "Q1" + uuid.uuid4().hex[:12].upper()
        while incident_id in self._incidents:
            incident_id = "Q1" + uuid.uuid4().hex[:12].upper()
        service_id = pd_id("P", key)
        names = self._routing_keys or {}
        incident = {
            "id": incident_id,
            "type": "incident",
            "self": f"{API_URL}/incidents/{incident_id}",
            "html_url": f"{WEB_URL}/incidents/{incident_id}",
            "number": self._number,
            "status": "triggered",
            "incident_key": dedup_key,
            "created_at": self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "title": payload["summary"],
            "urgency": "high" if payload["severity"] in ("critical", "error") else "low",
            "service": {
                "html_url": f"{WEB_URL}/services/{service_id}",
                "id": service_id,
                "self": f"{API_URL}/services/{service_id}",
                "summary": names.get(key) or f"Sandbox service {service_id}",
                "type": "service_reference",
            },
            "assignees": [],
            "alert_counts": {"all": 1},
            "routing_key": key,
            "notes": [],
        }
        self._incidents[incident_id] = incident
        self._open[(key, dedup_key)] = incident_id
        return incident

    def _open_incident(self, dedup_key: str, routing_key: str | None) -> dict[str, Any]:
        found = [self._incidents[i] for (k, d), i in self._open.items()
                 if d == dedup_key and routing_key in (None, k)]  # fmt: skip
        if not found:
            raise KeyError(f"no open incident with dedup_key {dedup_key!r}")
        if len(found) > 1:
            raise KeyError(f"several open incidents with dedup_key {dedup_key!r}; "
                           "name the routing_key")  # fmt: skip
        return found[0]

    def _latest(self, dedup_key: str, routing_key: str | None) -> dict[str, Any]:
        found = [i for i in self._incidents.values() if i["incident_key"] == dedup_key
                 and routing_key in (None, i["routing_key"])]  # fmt: skip
        if not found:
            raise KeyError(f"no incident with dedup_key {dedup_key!r}")
        return max(found, key=lambda i: i["number"])

    def _deliver(self, event_type: str, agent: dict[str, Any], data: dict[str, Any]) -> int | None:
        with self.lock:
            subscriptions = list(self._subscriptions)
            occurred_at = iso_time(self.clock())
        worst: int | None = None
        for subscription in subscriptions:
            delivery = build_delivery(subscription, event_type, agent, data, occurred_at)
            with self.lock:
                self._deliveries[delivery.webhook_id] = delivery
            post(delivery, self.delivery_timeout, self.lock)
            if delivery.status is not None and (worst is None or delivery.status > worst):
                worst = delivery.status
        return worst


def _payload_problems(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is required for event_action trigger"]
    problems = []
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary:
        problems.append("'payload.summary' is missing or blank")
    elif len(summary) > MAX_SUMMARY:
        problems.append("'payload.summary' is longer than 1024 characters")
    source = payload.get("source")
    if not isinstance(source, str) or not source:
        problems.append("'payload.source' is missing or blank")
    if payload.get("severity") not in SEVERITIES:
        problems.append("'payload.severity' must be one of critical, error, warning or info")
    return problems


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
