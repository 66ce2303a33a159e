"""PagerDuty connector: Events API v2 triggers, acknowledges and resolves, built on ``pagerduty``.

One :class:`pagerduty.EventsApiV2Client` per service (routing key), created on first use and
once (thread-safe); construction of the connector makes no network call. Each client sends
through :class:`connectors.httpx_hygiene.HygieneTransport`, which waits for the service's own
:class:`~connectors.http.RateLimiter` (PagerDuty limits per routing key), logs one line per
response and raises our exceptions for every status >= 400 and every transport failure. The
client's own retry loops therefore never run (429 would be re-sent without limit, 5xx up to six
times, network errors three times, all ignoring ``Retry-After``); only the dispatcher retries.

As a second guard the client is configured not to retry what it can be told not to:
``retry = {}`` (it returns 5xx responses instead of re-sending them) and
``max_network_attempts = 0`` (a transport error that reached it is final at once). 429 has no
such setting (absent or ``0`` means "the default": retry without limit), so there the
transport is the only guard; ``tests/connectors/test_pagerduty.py`` checks that a 429 makes
exactly one request.

The routing key travels in the request body only; it never appears in a log line, an
exception or a ``repr``. ``dedup_key`` is Switchboard's idempotency key: re-sending a trigger
with the same key while the alert is open de-duplicates into the same incident.
"""

from __future__ import annotations

__all__ = ["MAX_DEDUP_KEY", "MAX_SUMMARY", "PagerDutyConnector"]

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pagerduty

from connectors.errors import (
    ConfigurationError,
    FatalError,
    InvalidRequestError,
    SwitchboardError,
)
from connectors.http import USER_AGENT, RateLimiter
from connectors.httpx_hygiene import HygieneTransport, excerpt, translate_httpx_error
from connectors.models import SEVERITIES, Alert
from connectors.settings import PagerDutySettings

VENDOR = "pagerduty"

#: Longest ``dedup_key`` the Events API accepts.
MAX_DEDUP_KEY = 255
#: Longest ``payload.summary`` the Events API accepts; longer summaries are cut with "…".
MAX_SUMMARY = 1024


class _EventsClient(pagerduty.EventsApiV2Client):
    """The library's Events API client, announcing Switchboard in its User-Agent."""

    @property
    def user_agent(self) -> str:
        return f"{USER_AGENT} {super().user_agent}"


class PagerDutyConnector:
    """Pages PagerDuty services through the Events API v2.

    ``transport`` replaces the transport that really sends (tests pass ``httpx2.MockTransport``);
    the hygiene transport always wraps it. Every method raises the :mod:`connectors.errors`
    tree: :class:`ConfigurationError` (unknown service, no default service, unreadable CA
    bundle), :class:`InvalidRequestError` (an event we refuse to send, or PagerDuty's 400),
    :class:`~connectors.errors.RateLimitedError` (429, with ``retry_after``),
    :class:`~connectors.errors.RetriableError` (5xx and transport failures; ``ambiguous`` when
    the event may have been accepted) and :class:`FatalError` (a 2xx without ``dedup_key``).
    """

    name = VENDOR

    def __init__(
        self,
        settings: PagerDutySettings,
        *,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._inner = transport
        self._limiters = {
            service: RateLimiter(settings.events_per_minute) for service in settings.routing_keys
        }
        self._clients: dict[str, pagerduty.EventsApiV2Client] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"PagerDutyConnector(services={self.services()!r}, "
            f"events_url={self.settings.events_url!r})"
        )

    def services(self) -> tuple[str, ...]:
        """The configured service names, sorted."""
        return tuple(sorted(self.settings.routing_keys))

    def limiter(self, service: str | None) -> RateLimiter:
        """The rate limiter of ``service`` (``None``: the default service)."""
        return self._limiters[self._service(service)]

    def trigger(self, service: str | None, alert: Alert) -> str:
        """Open (or de-duplicate into) the alert ``alert.dedup_key`` on ``service``: one
        ``POST /v2/enqueue``. Returns the ``dedup_key`` PagerDuty echoes."""
        name = self._service(service)
        dedup_key = _dedup_key(alert.dedup_key)
        if alert.severity not in SEVERITIES:
            raise InvalidRequestError(
                f"{VENDOR}: severity {alert.severity!r} is not one of {', '.join(SEVERITIES)}",
                vendor=VENDOR,
            )
        summary = alert.summary.strip()
        if not summary:
            raise InvalidRequestError(f"{VENDOR}: an alert needs a summary", vendor=VENDOR)
        if len(summary) > MAX_SUMMARY:
            summary = summary[: MAX_SUMMARY - 1] + "…"
        source = alert.source.strip() or self.settings.source
        payload: dict[str, Any] = {}
        for key, value in (("component", alert.component), ("group", alert.group),
                           ("class", alert.class_)):  # fmt: skip
            if value:
                payload[key] = value
        custom_details = _json_object(alert.custom_details)
        links = [_link(href, text) for href, text in alert.links]
        client = self._client(name)
        with self._translated("trigger", name):
            echoed = client.trigger(
                summary,
                source,
                dedup_key=dedup_key,
                severity=alert.severity,
                payload=payload or None,
                custom_details=custom_details or None,
                links=links or None,
            )
        return self._echoed(echoed, "trigger", name)

    def acknowledge(self, service: str | None, dedup_key: str) -> str:
        """Acknowledge the open alert ``dedup_key`` on ``service`` (PagerDuty drops the event
        if none is open). Returns the echoed ``dedup_key``."""
        name = self._service(service)
        key = _dedup_key(dedup_key)
        client = self._client(name)
        with self._translated("acknowledge", name):
            echoed = client.acknowledge(key)
        return self._echoed(echoed, "acknowledge", name)

    def resolve(self, service: str | None, dedup_key: str) -> str:
        """Resolve the open alert ``dedup_key`` on ``service`` (dropped if none is open).
        Returns the echoed ``dedup_key``."""
        name = self._service(service)
        key = _dedup_key(dedup_key)
        client = self._client(name)
        with self._translated("resolve", name):
            echoed = client.resolve(key)
        return self._echoed(echoed, "resolve", name)

    def close(self) -> None:
        """Close every client created so far (their connection pools)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    # -- internals ---------------------------------------------------------------------------

    def _service(self, service: str | None) -> str:
        name = service if service is not None else self.settings.default_service
        configured = ", ".join(self.services())
        if name is None:
            raise ConfigurationError(
                f"connectors.pagerduty: no service named and no default_service "
                f"(configured services: {configured})"
            )
        if name not in self.settings.routing_keys:
            raise ConfigurationError(
                f"connectors.pagerduty: unknown service {name!r} "
                f"(configured services: {configured})"
            )
        return name

    def _client(self, service: str) -> pagerduty.EventsApiV2Client:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                client = self._build(service)
                self._clients[service] = client
            return client

    def _build(self, service: str) -> pagerduty.EventsApiV2Client:
        http = self.settings.http
        key = self.settings.routing_keys[service].get_secret_value()
        transport = HygieneTransport(
            VENDOR, http, limiter=self._limiters[service], transport=self._inner, secrets=(key,)
        )
        try:
            client = _EventsClient(key, base_url=self.settings.events_url, transport=transport)
        except pagerduty.UrlError as exc:
            transport.close()
            raise ConfigurationError(f"connectors.pagerduty.events_url: {exc}") from exc
        # The library passes its own class attribute ``timeout`` (60 s) with every request,
        # whatever the constructor was given: set it on the instance.
        # (The attribute is declared as an int there; httpx2 takes any Timeout value.)
        client.timeout = httpx2.Timeout(  # type: ignore[assignment]
            http.read_timeout, connect=http.connect_timeout
        )
        # Second guard (see the module docstring): no 5xx re-sends, no network re-attempts.
        client.retry = {}
        client.max_network_attempts = 0
        return client

    @contextmanager
    def _translated(self, what: str, service: str) -> Iterator[None]:
        """Turn what the library raises into our tree; ours passes through unchanged."""
        secrets = (self.settings.routing_keys[service].get_secret_value(),)
        doing = f"{what} on service {service}"
        try:
            yield
        except SwitchboardError:
            raise
        except httpx2.HTTPError as exc:  # only if something bypassed the hygiene transport
            raise translate_httpx_error(VENDOR, doing, exc) from exc
        except pagerduty.Error as exc:
            cause = exc.__cause__
            if isinstance(cause, httpx2.HTTPError):  # max_network_attempts gave up at once
                raise translate_httpx_error(VENDOR, doing, cause) from exc
            response = exc.response
            raise FatalError(
                f"{VENDOR}: {doing}: unexpected answer",
                vendor=VENDOR,
                status=response.status_code if response is not None else None,
                detail=excerpt(str(exc), secrets),
            ) from exc
        except (ValueError, TypeError) as exc:  # the library's own argument checks
            raise InvalidRequestError(
                f"{VENDOR}: {doing}: refused by the client", vendor=VENDOR,
                detail=excerpt(str(exc), secrets),
            ) from exc

    def _echoed(self, echoed: object, what: str, service: str) -> str:
        if not isinstance(echoed, str) or not echoed:
            raise FatalError(
                f"{VENDOR}: {what} on service {service}: the answer has no dedup_key",
                vendor=VENDOR,
            )
        return echoed


def _dedup_key(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_DEDUP_KEY:
        shown = value if not isinstance(value, str) else f"{len(value)} characters"
        raise InvalidRequestError(
            f"{VENDOR}: dedup_key must be 1-{MAX_DEDUP_KEY} characters (got {shown!r})",
            vendor=VENDOR,
        )
    return value


def _link(href: str, text: str) -> dict[str, str]:
    try:
        parts = urlsplit(href)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise InvalidRequestError(
            f"{VENDOR}: link href must be an http(s) URL: {href!r}", vendor=VENDOR
        )
    return {"href": href, "text": text} if text else {"href": href}


def _json_object(details: Any) -> dict[str, Any]:
    """A plain-dict copy of ``custom_details``; refuses what JSON cannot carry."""
    try:
        text = json.dumps(dict(details), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(
            f"{VENDOR}: custom_details is not JSON-serialisable: {exc}", vendor=VENDOR
        ) from exc
    result = json.loads(text)
    if not isinstance(result, dict):  # pragma: no cover - dict() above guarantees an object
        raise InvalidRequestError(f"{VENDOR}: custom_details must be an object", vendor=VENDOR)
    return result
