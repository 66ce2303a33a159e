"""Pieces every sandbox vendor shares: the request/response values handed between the HTTP
plumbing and a vendor's state, Basic-auth parsing, and the timestamp formats the vendors use.

A vendor state implements :class:`VendorApp`: ``handle(request) -> Response`` applies the request
to its state and says what to answer; the plumbing (``sandbox.server``) owns sockets, faults and
the request log, so a fault can run a request's write and still withhold its answer.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import Any, Protocol

__all__ = [
    "RateLimiter",
    "Request",
    "Response",
    "VendorApp",
    "basic_auth",
    "jira_timestamp",
    "parse_timestamp",
    "utc_now",
    "zendesk_timestamp",
]


@dataclass
class Request:
    """One HTTP request as a vendor state sees it.

    ``query`` maps each parameter to all its values in order
    (``?a=1&a=2`` -> ``{"a": ["1", "2"]}``).
    ``json`` is the decoded body, or None when there is no body; ``json_error`` is True when a body
    was sent but is not valid JSON.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    json: Any = None
    json_error: bool = False

    def param(self, name: str, default: str | None = None) -> str | None:
        """The last value of query parameter ``name`` (or ``default``)."""
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass
class Response:
    """What to answer: a status, extra headers and a JSON-serialisable body (None: empty body;
    ``bytes``: sent as they are, as ``text/plain``)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        """The body as UTF-8 JSON bytes (empty for None; bytes as they are)."""
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode()

    @property
    def content_type(self) -> str:
        """The Content-Type of a non-empty body."""
        if isinstance(self.body, bytes):
            return "text/plain; charset=utf-8"
        return "application/json; charset=utf-8"


class VendorApp(Protocol):
    """A vendor's state, as the HTTP plumbing drives it."""

    vendor: str

    def handle(self, request: Request) -> Response:
        """Apply ``request`` to the state and return the answer."""
        ...

    def error_body(self, status: int, message: str | None = None) -> Any:
        """A vendor-shaped error body for ``status`` (used by injected faults)."""
        ...

    def set_base_url(self, url: str) -> None:
        """Tell the state the URL it is served at (for ``url`` / ``self`` fields)."""
        ...


class RateLimiter:
    """A rolling one-minute request limit with Zendesk-style headers (not thread-safe itself)."""

    def __init__(self, per_minute: int | None) -> None:
        self.per_minute = per_minute
        self._window: deque[float] = deque()

    def check(self) -> tuple[dict[str, str], int | None]:
        """Count one request: (``X-Rate-Limit*`` headers, Retry-After seconds if over the limit).
        With no limit set: no headers and never limited."""
        if self.per_minute is None:
            return {}, None
        now = time.monotonic()
        while self._window and now - self._window[0] >= 60:
            self._window.popleft()
        if len(self._window) >= self.per_minute:
            retry_after = max(1, int(60 - (now - self._window[0])) + 1)
            return self._headers(0), retry_after
        self._window.append(now)
        return self._headers(self.per_minute - len(self._window)), None

    def _headers(self, remaining: int) -> dict[str, str]:
        return {"X-Rate-Limit": str(self.per_minute), "X-Rate-Limit-Remaining": str(remaining)}


def basic_auth(request: Request) -> tuple[str, str] | None:
    """The (user, password) of a Basic ``Authorization`` header; None if absent or malformed."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return user, password


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def zendesk_timestamp(moment: datetime) -> str:
    """Zendesk's timestamp format: ISO-8601 UTC with ``Z``, second resolution."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def jira_timestamp(moment: datetime) -> str:
    """Jira's timestamp format, e.g. ``2026-11-27T10:00:00.000+0000``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


_OFFSET_WITHOUT_COLON = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO-8601 timestamp (``Z``, ``+00:00`` or ``+0000``) into an aware UTC datetime.

    Raises ValueError when ``text`` is not such a timestamp or carries no timezone.
    """
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    cleaned = _OFFSET_WITHOUT_COLON.sub(r"\1:\2", cleaned)
    moment = datetime.fromisoformat(cleaned)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a timezone: {text!r}")
    return moment.astimezone(UTC)
