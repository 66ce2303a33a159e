"""Pieces of the Productboard stand-in (``sandbox.productboard``): its error type and error body,
the per-token rate limit, page cursors and small readers of request bodies.

Error bodies follow the v2 shape ``{"errors": [{"code", "title", "detail"}]}``
(docs/productboard.md); pages are cursor-based: ``links.next`` is a full URL carrying an opaque
``pageCursor`` that encodes the listing and its position, so the next page needs nothing else.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from typing import Any

from sandbox.base import Request

__all__ = [
    "PBError",
    "PerSecondLimit",
    "data_of",
    "decode_cursor",
    "encode_cursor",
    "error_body",
    "normal",
    "only",
    "text",
]

_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           409: "Conflict", 413: "Payload Too Large", 422: "Unprocessable Entity",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable"}  # fmt: skip
_CODES = {400: "request.invalid", 401: "authentication.failed", 403: "authorization.failed",
          404: "resource.notFound", 409: "resource.conflict", 413: "request.tooLarge",
          422: "validation.failed", 429: "rateLimit.exceeded", 500: "internal.error",
          502: "internal.error", 503: "service.unavailable"}  # fmt: skip


class PBError(Exception):
    """A request the stand-in refuses: HTTP ``status``, error ``code`` and ``detail``."""

    def __init__(self, status: int, detail: str, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or _CODES.get(status, "error")
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The error body in Productboard's shape."""
        return error_body(self.status, self.detail, self.code)


def error_body(status: int, detail: str | None = None, code: str | None = None
               ) -> dict[str, Any]:
    """``{"errors": [{"code", "title", "detail"}]}`` for ``status``."""
    title = _TITLES.get(status, "Error")
    return {"errors": [{"code": code or _CODES.get(status, "error"), "title": title,
                        "detail": detail or title}]}


class PerSecondLimit:
    """At most ``per_second`` requests in any rolling second, per token (not thread-safe)."""

    def __init__(self, per_second: int | None, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.per_second = per_second
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}

    def check(self, token: str) -> tuple[dict[str, str], PBError | None]:
        """Count one request of ``token``: the ``X-RateLimit-*`` headers, and the 429 to answer
        when it is over the limit (not counted then). No limit: no headers, never refused."""
        if self.per_second is None:
            return {}, None
        now = self.clock()
        window = self._seen.setdefault(token, deque())
        while window and now - window[0] >= 1.0:
            window.popleft()
        limit = str(self.per_second)
        if len(window) >= self.per_second:
            wait = max(1, int(1.0 - (now - window[0])) + 1)
            headers = {"X-RateLimit-Limit": limit, "X-RateLimit-Remaining": "0"}
            return headers, PBError(429, "Rate limit exceeded: too many requests per second",
                                    headers={**headers, "Retry-After": str(wait)})
        window.append(now)
        return {"X-RateLimit-Limit": limit,
                "X-RateLimit-Remaining": str(self.per_second - len(window))}, None


def encode_cursor(state: dict[str, Any]) -> str:
    """An opaque page cursor holding ``state`` (the listing and the next offset)."""
    raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """The state in a cursor; :class:`PBError` 400 for one this stand-in did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        state = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise PBError(400, "The pagination cursor format is invalid",
                      "pagination.invalidCursor") from None
    if not isinstance(state, dict) or not isinstance(state.get("o"), int) or state["o"] < 0:
        raise PBError(400, "The pagination cursor format is invalid",
                      "pagination.invalidCursor")
    return state


def normal(name: str) -> str:
    """A tag or feature name compared as Productboard does: case- and diacritic-insensitively."""
    decomposed = unicodedata.normalize("NFKD", name.strip())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def text(obj: dict[str, Any], key: str, where: str, *, required: bool = False,
         status: int = 400) -> str | None:
    """``obj[key]`` as a string (None if absent and not ``required``); 400 otherwise."""
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        problem = "is required" if value is None else "must be a non-empty string"
        raise PBError(status, f"{where}.{key} {problem}", "validation.failed")
    return value


def data_of(request: Request) -> dict[str, Any]:
    """The ``data`` object of a JSON request body; 400 otherwise."""
    if request.json_error:
        raise PBError(400, "The request body is not valid JSON", "request.invalidJson")
    data = request.json.get("data") if isinstance(request.json, dict) else None
    if not isinstance(data, dict):
        raise PBError(400, "The request body must be an object with a data object")
    return data


def only(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    """400 when ``obj`` has keys outside ``allowed`` (the API validates its request schema)."""
    unexpected = sorted(set(obj) - allowed)
    if unexpected:
        raise PBError(400, f"{where}: unexpected properties {', '.join(unexpected)}")
