"""The webhook receiver: an ASGI app (Starlette) served by uvicorn.

``POST /webhooks/zendesk`` answers 2xx only once the event is committed to the inbox (invariant 1)
and refuses bad input with a 4xx that leaves no row behind (invariant 8):

======================================================  ======  ===============================
request                                                 status  stored
======================================================  ======  ===============================
body over ``max_body_bytes``                            413     nothing
signature or timestamp header missing, bad signature,   401     nothing
no signing secret configured, timestamp unreadable or
further than ``timestamp_tolerance_seconds`` from now
body not JSON / a ticket payload that is malformed      400     nothing
(bad id, naive timestamp, ``updated_at`` further in the
future than ``timestamp_tolerance_seconds``)
signed payload of a type Switchboard does not handle    200     one ``ignored`` row (no rules)
(a non-ticket event, a trigger ``event`` other than
``ticket.created`` / ``ticket.updated``)
redelivery (same invocation id, or same ticket change)  200     nothing new
a new ticket change                                     200     one ``pending`` inbox row
the commit failed                                       503     nothing (``Retry-After`` set)
======================================================  ======  ===============================

Unhandled-but-signed payloads get a 2xx on purpose: Zendesk counts 4xx answers against the
webhook's circuit breaker, and a tripped breaker would cut off the events that matter.

``POST /webhooks/pagerduty`` (webhooks v3) is checked the same way, with PagerDuty's rules: the
body must carry a ``v1=`` signature (``X-PagerDuty-Signature``) made with one of
``pagerduty_signing_secrets`` (401 otherwise: PagerDuty retries nothing but 5xx/429, so nothing is
lost that a configured hub would want); redeliveries share an ``X-Webhook-Id`` and are stored
once; a correctly signed event of a type Switchboard does not act on (``service.updated``,
``incident.priority_updated``...) gets a 202 and one ``ignored`` row — PagerDuty disables a
subscription after three 4xx in a row. ``incident.triggered`` is stored (it tells which incident
a dedup key opened) but fires no rule.

``POST /webhooks/jira`` (admin webhooks) follows the PagerDuty route: ``X-Hub-Signature:
sha256=<hex>`` made with one of ``jira_signing_secrets`` (401 otherwise, and when none is
configured); ``jira:issue_updated``, ``jira:issue_deleted``, ``comment_created`` and
``comment_updated`` are stored (202) with ``payload.style == "jira"`` under the issue's entity
key, so one issue's events are processed in order; other signed event types get a 202 and one
``ignored`` row; a malformed payload of a handled type gets a 400. Redeliveries are stored once:
by ``X-Atlassian-Webhook-Identifier``, and by the event's identity (issue id + ``timestamp`` +
changelog id for an update, comment id + ``updated`` for a comment, the issue id for a deletion).

``GET /healthz`` answers 200 when the store answers.
"""

from __future__ import annotations

__all__ = ["create_app"]

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.jira_webhooks import UnsupportedEventError as JiraUnsupportedEventError
from connectors.jira_webhooks import WebhookPayloadError as JiraPayloadError
from connectors.jira_webhooks import parse_webhook as parse_jira_webhook
from connectors.jira_webhooks import verify_signature as verify_jira_signature
from connectors.models import parse_time
from connectors.pagerduty_webhooks import (
    HANDLED_EVENT_TYPES,
    UnsupportedEventError,
    parse_webhook,
    verify_signature,
)
from connectors.pagerduty_webhooks import WebhookPayloadError as PagerDutyPayloadError
from connectors.zendesk_webhooks import (
    IgnoredWebhook,
    WebhookPayloadError,
    parse_zendesk_webhook,
    verify_zendesk_signature,
)
from sync.config import ReceiverSettings
from sync.inbox import AcceptResult
from sync.intake import InboxWriter
from sync.store import Store

log = logging.getLogger("switchboard.webhooks")

SIGNATURE = "x-zendesk-webhook-signature"
TIMESTAMP = "x-zendesk-webhook-signature-timestamp"
INVOCATION = "x-zendesk-webhook-invocation-id"
PD_SIGNATURE = "x-pagerduty-signature"
PD_WEBHOOK_ID = "x-webhook-id"
#: PagerDuty incident events stored for processing: the handled ones, and the trigger that says
#: which incident a dedup key opened.
PD_STORED = HANDLED_EVENT_TYPES | {"incident.triggered"}
JIRA_SIGNATURE = "x-hub-signature"
JIRA_WEBHOOK_ID = "x-atlassian-webhook-identifier"


class _TooLarge(Exception):
    pass


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _TooLarge
        except ValueError:
            pass
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _delivery_id(request: Request, header: str, source: str) -> str | None:
    """The vendor's delivery id, namespaced by source (``pagerduty:<id>``), or ``None``."""
    value = (request.headers.get(header) or "").strip()[:160]
    return f"{source}:{value}" if value else None


COMMIT_TIMEOUT = 8.0  # Zendesk gives up on a webhook after about 10 s


async def _stored(commit: Awaitable[AcceptResult]) -> AcceptResult:
    return await asyncio.wait_for(commit, COMMIT_TIMEOUT)


def create_app(store: Store, settings: ReceiverSettings, *, field_ids: Mapping[str, int],
               on_accept: Callable[[], None] = lambda: None,
               clock: Callable[[], datetime] = lambda: datetime.now(UTC),
               writer: InboxWriter | None = None) -> Starlette:
    """Build the receiver app for one store and receiver configuration.

    Events are committed through ``writer`` (group commit); by default the app makes its own,
    reachable as ``app.state.writer`` so that its owner can close it.
    """
    secrets = [s.get_secret_value().encode() for s in settings.zendesk_signing_secrets]
    pd_secrets = [s.get_secret_value() for s in settings.pagerduty_signing_secrets]
    jira_secrets = [s.get_secret_value() for s in settings.jira_signing_secrets]
    writer = writer or InboxWriter(store)

    async def _commit(**event: object) -> AcceptResult | JSONResponse:
        try:
            return await _stored(writer.accept(**event))
        except Exception:
            log.exception("inbox commit failed; answering 503")
            return _error(503, "could not store the event; retry later",
                          **{"Retry-After": str(settings.retry_after_seconds)})

    async def _signed_body(request: Request, header: str, vendor: str, secrets: list[str],
                           verify: Callable[[bytes, str], bool]) -> bytes | JSONResponse:
        """The raw body once its ``header`` signature checks out, else the 4xx to answer."""
        try:
            body = await _read_capped(request, settings.max_body_bytes)
        except _TooLarge:
            return _error(413, f"body larger than {settings.max_body_bytes} bytes")
        except ClientDisconnect:
            return _error(400, "client disconnected")
        signature = request.headers.get(header)
        if not signature:
            return _error(401, f"missing {header} header")
        if not secrets:
            return _error(401, f"no {vendor} signing secret is configured; refusing unsigned "
                               "input")
        if not verify(body, signature):
            return _error(401, "signature does not match")
        return body

    async def _stored_event(**event: object) -> JSONResponse:
        """Commit a pending event; 202 accepted or duplicate (503 when the commit failed)."""
        result = await _commit(**event)
        if isinstance(result, JSONResponse):
            return result
        if not result.accepted:
            return JSONResponse({"status": "duplicate", "by": result.duplicate_by,
                                 "id": result.inbox_id}, status_code=202)
        on_accept()
        return JSONResponse({"status": "accepted", "id": result.inbox_id}, status_code=202)

    async def pagerduty(request: Request) -> JSONResponse:
        body = await _signed_body(request, PD_SIGNATURE, "PagerDuty", pd_secrets,
                                  lambda raw, header: verify_signature(raw, header, pd_secrets))
        if isinstance(body, JSONResponse):
            return body
        delivery = _delivery_id(request, PD_WEBHOOK_ID, "pagerduty")
        try:
            event = parse_webhook(body)
        except UnsupportedEventError as exc:
            return await _ignored("pagerduty", delivery, "not an incident", str(exc))
        except PagerDutyPayloadError as exc:
            return _error(400, f"malformed payload: {exc}")
        if event.event_type not in PD_STORED:
            return await _ignored("pagerduty", delivery, event.event_type,
                                  f"{event.event_type} is not an event Switchboard acts on")
        fields = {name: getattr(event, name) for name in event.__dataclass_fields__}
        fields["occurred_at"] = fields["occurred_at"].isoformat()
        return await _stored_event(
            source="pagerduty", kind=event.event_type[:96],
            entity_key=f"pagerduty:incident:{event.incident_id}"[:128],
            change_key=f"pagerduty:{event.event_id}"[:192], delivery_id=delivery,
            payload={"style": "pagerduty", "event": fields})

    async def jira(request: Request) -> JSONResponse:
        body = await _signed_body(
            request, JIRA_SIGNATURE, "Jira", jira_secrets,
            lambda raw, header: verify_jira_signature(jira_secrets, raw, header))
        if isinstance(body, JSONResponse):
            return body
        delivery = _delivery_id(request, JIRA_WEBHOOK_ID, "jira")
        try:
            event = parse_jira_webhook(body)
        except JiraUnsupportedEventError as exc:
            return await _ignored("jira", delivery, exc.event_type, str(exc))
        except JiraPayloadError as exc:
            return _error(400, f"malformed payload: {exc}")
        # Ids are bounded numbers, so these keys are never cut short.
        return await _stored_event(
            source="jira", kind=event.event_type[:96], entity_key=event.entity_key,
            change_key=event.change_key, delivery_id=delivery,
            payload={"style": "jira", "event": event.to_payload()})

    async def _ignored(source: str, delivery: str | None, kind: str,
                       reason: str) -> JSONResponse:
        result = await _commit(source=source, kind=kind[:96], entity_key=f"{source}:ignored",
                               payload={"reason": reason}, delivery_id=delivery,
                               status="ignored", outcome=f"ignored: {reason}")
        if isinstance(result, JSONResponse):
            return result
        return JSONResponse({"status": "ignored", "reason": reason, "id": result.inbox_id},
                            status_code=202)

    async def zendesk(request: Request) -> JSONResponse:
        try:
            body = await _read_capped(request, settings.max_body_bytes)
        except _TooLarge:
            return _error(413, f"body larger than {settings.max_body_bytes} bytes")
        except ClientDisconnect:
            return _error(400, "client disconnected")
        signature = request.headers.get(SIGNATURE)
        timestamp = request.headers.get(TIMESTAMP)
        if not signature or not timestamp:
            return _error(401, f"missing {SIGNATURE if not signature else TIMESTAMP} header")
        if not secrets:
            return _error(401, "no Zendesk signing secret is configured; refusing unsigned input")
        if not verify_zendesk_signature(secrets, timestamp, body, signature):
            return _error(401, "signature does not match")
        try:
            sent_at = parse_time(timestamp)
        except (ValueError, OverflowError):  # overflow: e.g. 9999-12-31T23:00:00-05:00
            sent_at = None
        if sent_at is None:
            return _error(401, "signature timestamp is not an ISO-8601 time")
        skew = abs((clock() - sent_at).total_seconds())
        if skew > settings.timestamp_tolerance_seconds:
            return _error(401, f"signature timestamp is {int(skew)}s away from now "
                               f"(tolerance {settings.timestamp_tolerance_seconds}s)")
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            return _error(400, f"body is not JSON: {exc}")
        try:
            event = parse_zendesk_webhook(
                payload, field_ids, clock=clock,
                future_tolerance_seconds=settings.timestamp_tolerance_seconds)
        except WebhookPayloadError as exc:
            return _error(400, f"malformed payload: {exc}")
        delivery = request.headers.get(INVOCATION) or None
        try:
            if isinstance(event, IgnoredWebhook):
                result = await _stored(writer.accept(
                    source="zendesk", kind=event.kind[:96],
                    entity_key="zendesk:ignored", payload={"reason": event.reason},
                    delivery_id=f"zendesk:{delivery}" if delivery else None,
                    status="ignored", outcome=f"ignored: {event.reason}"))
                return JSONResponse({"status": "ignored", "reason": event.reason,
                                     "id": result.inbox_id})
            result = await _stored(writer.accept(
                source="zendesk", kind=event.kind,
                entity_key=f"zendesk:ticket:{event.ticket_id}", change_key=event.change_key,
                delivery_id=f"zendesk:{delivery}" if delivery else None,
                payload={"style": event.style, "hint": event.hint, "complete": event.complete,
                         "fields": dict(event.fields),
                         **({"comment": dict(event.comment)} if event.comment else {})}))
        except Exception:
            # Not stored (the commit failed, or took longer than Zendesk waits): 503, and
            # Zendesk delivers again; a redelivery of an event that did land is a duplicate.
            log.exception("inbox commit failed; answering 503")
            return _error(503, "could not store the event; retry later",
                          **{"Retry-After": str(settings.retry_after_seconds)})
        if not result.accepted:
            return JSONResponse({"status": "duplicate", "by": result.duplicate_by,
                                 "id": result.inbox_id})
        on_accept()
        return JSONResponse({"status": "accepted", "id": result.inbox_id})

    async def healthz(_request: Request) -> JSONResponse:
        if not writer.alive:
            return JSONResponse({"status": "inbox writer stopped"}, status_code=503)

        def ping() -> None:
            with store.read() as conn:
                conn.execute(sa.text("SELECT 1"))
        try:
            await run_in_threadpool(ping)
        except SQLAlchemyError:
            return JSONResponse({"status": "store unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[
        Route("/webhooks/zendesk", zendesk, methods=["POST"]),
        Route("/webhooks/pagerduty", pagerduty, methods=["POST"]),
        Route("/webhooks/jira", jira, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ])
    app.state.writer = writer
    return app
