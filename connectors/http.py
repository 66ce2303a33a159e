"""HTTP hygiene shared by every requests-based connector, in one place.

Vendor clients (zenpy, jira) send their requests through a :class:`requests.Session`; this module
gives them one whose transport adapter (:class:`HygieneAdapter`) does, for every request:

- wait for the connector's :class:`RateLimiter`;
- apply the default ``(connect, read)`` timeout when the caller passes none, and verify TLS;
- send to the sandbox instead of the vendor when ``base_url_override`` says so;
- log one structured line per response on the ``switchboard.http`` logger;
- raise the :mod:`connectors.errors` exception for every status >= 400 and every transport
  failure, *before* the vendor library sees the response, so that the libraries' own retry loops
  (zenpy sleeps on 429 forever; jira's ``ResilientSession`` re-sends 429/503 and connection errors)
  never run;
- retry reads (GET/HEAD) a bounded number of times with jittered exponential backoff that honours
  ``Retry-After``. Writes are never retried here: only the dispatcher retries writes, after
  reconciling ambiguous failures (DESIGN.md, invariant 2).

The work happens in the adapter rather than in ``Session.request`` so that it also applies to a
session a library builds itself (jira's ``ResilientSession``): :func:`install_hygiene` mounts it.
"""

from __future__ import annotations

__all__ = [
    "MAX_RETRY_WAIT",
    "USER_AGENT",
    "HygieneAdapter",
    "RateLimiter",
    "SwitchboardSession",
    "build_session",
    "install_hygiene",
    "translate_transport_errors",
]

import base64
import binascii
import http.client
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
import requests.exceptions
import requests.utils
import urllib3.exceptions
from jira.exceptions import JIRAError
from zenpy.lib.exception import APIException, ZenpyException

from connectors.errors import (
    ConfigurationError,
    ConnectorError,
    FatalError,
    RateLimitedError,
    RetriableError,
    SwitchboardError,
    error_for_status,
)
from connectors.settings import HttpSettings

log = logging.getLogger("switchboard.http")

try:
    _VERSION = metadata.version("switchboard")
except metadata.PackageNotFoundError:  # running from a checkout that was never installed
    _VERSION = "0+unknown"

USER_AGENT = f"switchboard/{_VERSION}"

#: Burst size of a :class:`RateLimiter`, in seconds' worth of its rate.
BURST_SECONDS = 3.0
#: Longest a read retry may sleep; a longer ``Retry-After`` is raised to the caller instead.
MAX_RETRY_WAIT = 10.0
#: First backoff step of a read retry, doubled per attempt and jittered by U(0.5, 1.0).
BACKOFF_BASE = 0.25
#: Characters of a vendor's error body kept in ``ConnectorError.detail``.
DETAIL_EXCERPT = 200

_READ_METHODS = frozenset({"GET", "HEAD"})
_RATE_LIMIT_REMAINING = ("X-Rate-Limit-Remaining", "X-RateLimit-Remaining")


class RateLimiter:
    """A thread-safe token bucket: at most ``per_minute`` calls a minute, bursts of
    ``burst_seconds`` (a few seconds by default).

    :meth:`acquire` blocks (sleeps) until a token is free, so it must only be called from worker
    threads. :meth:`pause` stops everyone until a moment in the future (a 429's ``Retry-After``);
    after a pause the bucket restarts with a single token, so a backlog does not storm the vendor.
    ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        burst_seconds: float = BURST_SECONDS,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        if burst_seconds <= 0:
            raise ValueError("burst_seconds must be positive")
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        # A vendor that counts per second (Productboard) needs far shorter bursts than this.
        self.capacity = max(1.0, float(int(self._rate * burst_seconds)))
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.capacity
        self._last = clock()
        self._paused_until = float("-inf")

    def acquire(self) -> None:
        """Take one token, sleeping until one is available and any pause has ended."""
        while True:
            with self._lock:
                now = self._clock()
                if now < self._paused_until:
                    wait = self._paused_until - now
                else:
                    self._tokens = min(
                        self.capacity, self._tokens + (now - self._last) * self._rate
                    )
                    self._last = now
                    # The epsilon absorbs float rounding; without it a wait too small to move
                    # the clock could repeat forever.
                    if self._tokens >= 1.0 - 1e-9:
                        self._tokens = max(0.0, self._tokens - 1.0)
                        return
                    wait = (1.0 - self._tokens) / self._rate
            self._sleep(wait)

    def pause(self, seconds: float) -> None:
        """Make every :meth:`acquire` wait until ``seconds`` from now (never shortens a pause)."""
        if seconds <= 0:
            return
        with self._lock:
            until = self._clock() + seconds
            if until > self._paused_until:
                self._paused_until = until
                # Restart from one token when the pause ends instead of a full bucket.
                self._last = until
                self._tokens = min(self._tokens, 1.0)

    @property
    def paused_until(self) -> float:
        """Clock value before which :meth:`acquire` blocks (``-inf`` if never paused)."""
        with self._lock:
            return self._paused_until


@contextmanager
def translate_transport_errors(vendor: str, what: str) -> Iterator[None]:
    """Turn ``requests``/urllib3 failures and vendor-library exceptions into the error tree.

    - ``ConnectTimeout``, refused or unresolvable connections, TLS handshake failures:
      :class:`RetriableError` with ``ambiguous=False`` (nothing reached the vendor);
    - ``ReadTimeout``, reset/aborted connections, ``ChunkedEncodingError``, ``RemoteDisconnected``,
      unreadable bodies and any connection failure we cannot place: ``ambiguous=True``;
    - an invalid URL: :class:`ConfigurationError`;
    - zenpy ``APIException`` / jira ``JIRAError`` carrying a status: :func:`error_for_status`;
      other zenpy/jira exceptions: :class:`FatalError`;
    - our own :class:`SwitchboardError` passes through unchanged.

    Always ``raise ... from exc``. Messages carry the exception type and a URL-level excerpt;
    request headers (credentials) are never part of them.
    """
    try:
        yield
    except SwitchboardError:
        raise
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
    ) as exc:
        raise ConfigurationError(f"{vendor}: {what}: invalid URL ({type(exc).__name__})") from exc
    except requests.exceptions.ConnectTimeout as exc:
        raise _transport_error(vendor, what, exc, ambiguous=False) from exc
    except requests.exceptions.SSLError as exc:
        raise _transport_error(vendor, what, exc, ambiguous=False) from exc
    except requests.exceptions.ConnectionError as exc:
        raise _transport_error(vendor, what, exc, ambiguous=not _never_sent(exc)) from exc
    except requests.exceptions.RequestException as exc:
        # ReadTimeout, ChunkedEncodingError, ContentDecodingError, JSONDecodeError, ...:
        # the request was sent and no clean answer came back.
        raise _transport_error(vendor, what, exc, ambiguous=True) from exc
    except (http.client.HTTPException, ConnectionResetError, ConnectionAbortedError) as exc:
        raise _transport_error(vendor, what, exc, ambiguous=True) from exc
    except (APIException, JIRAError) as exc:
        raise _library_error(vendor, what, exc) from exc
    except ZenpyException as exc:
        raise FatalError(
            f"{vendor}: {what} failed", vendor=vendor, detail=_short(str(exc))
        ) from exc


def _transport_error(
    vendor: str, what: str, exc: BaseException, *, ambiguous: bool
) -> RetriableError:
    return RetriableError(
        f"{vendor}: {what} failed: {type(exc).__name__}",
        ambiguous=ambiguous,
        vendor=vendor,
        detail=_short(str(exc)),
    )


def _library_error(vendor: str, what: str, exc: Exception) -> ConnectorError:
    response = getattr(exc, "response", None)
    status = getattr(exc, "status_code", None)
    if status is None and isinstance(response, requests.Response):
        status = response.status_code
    detail = _short(getattr(exc, "text", None) or str(exc))
    if isinstance(status, int) and status >= 400:
        retry_after = None
        if isinstance(response, requests.Response):
            retry_after = response.headers.get("Retry-After")
        return error_for_status(vendor, status, detail=detail, retry_after=retry_after, what=what)
    return FatalError(f"{vendor}: {what} failed", vendor=vendor, status=status, detail=detail)


_NEVER_SENT = (
    urllib3.exceptions.NewConnectionError,  # refused, unreachable (includes NameResolutionError)
    urllib3.exceptions.ConnectTimeoutError,
    ConnectionRefusedError,
)
_NEVER_SENT_TEXT = (
    "connection refused",
    "failed to establish a new connection",
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "failed to resolve",
)


def _never_sent(exc: BaseException) -> bool:
    """True when a ConnectionError happened before any byte of the request left us."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, _NEVER_SENT):
            return True
        if isinstance(current, urllib3.exceptions.ProtocolError | ConnectionResetError):
            return False
        for nested in (
            getattr(current, "reason", None),
            current.__cause__,
            current.__context__,
            *current.args,
        ):
            if isinstance(nested, BaseException):
                stack.append(nested)
    text = str(exc).lower()
    return any(marker in text for marker in _NEVER_SENT_TEXT)


def _short(text: str, limit: int = DETAIL_EXCERPT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _secrets_of(request: requests.PreparedRequest) -> list[str]:
    """Strings that must never leave this process: the Authorization header and its parts."""
    header = request.headers.get("Authorization")
    if not header:
        return []
    secrets = [header]
    scheme, _, value = header.partition(" ")
    if value:
        secrets.append(value)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                decoded = ""
            _, _, password = decoded.partition(":")
            if password:
                secrets.append(password)
    return [s for s in secrets if len(s) >= 4]


def _redact(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class HygieneAdapter(requests.adapters.HTTPAdapter):
    """Transport adapter that applies Switchboard's HTTP hygiene to every request it sends.

    Raises the :mod:`connectors.errors` tree: :func:`error_for_status` for statuses >= 400,
    :func:`translate_transport_errors` for transport failures.
    """

    def __init__(
        self,
        vendor: str,
        http: HttpSettings,
        *,
        limiter: RateLimiter | None = None,
        base_url_override: tuple[str, str] | None = None,
        read_retries: int = 2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        if read_retries < 0:
            raise ValueError("read_retries must be >= 0")
        self.vendor = vendor
        self.timeout = (http.connect_timeout, http.read_timeout)
        self.verify_tls = http.verify_tls
        self.limiter = limiter
        self.read_retries = read_retries
        self._sleep = sleep
        self._override: tuple[str, str] | None = None
        if base_url_override is not None:
            self._override = (
                _origin(base_url_override[0]),
                base_url_override[1].rstrip("/"),
            )

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: None | float | tuple[float, float] | tuple[float, None] = None,
        verify: bool | str = True,
        cert: None | bytes | str | tuple[bytes | str, bytes | str] = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send ``request`` with limiter, timeout, TLS, logging, raise-on-error and read retries."""
        method = (request.method or "GET").upper()
        logical_url = request.url or ""
        wire = request
        if self._override is not None and _origin(logical_url) == self._override[0]:
            wire = request.copy()
            wire.url = self._override[1] + logical_url[len(self._override[0]) :]
            if proxies and requests.utils.should_bypass_proxies(wire.url, no_proxy=None):
                proxies = {}
        if timeout is None:
            timeout = self.timeout
        if verify is False or self.verify_tls is not True:
            verify = self.verify_tls
        path = urlsplit(logical_url).path
        what = f"{method} {path}"
        attempts = 1 + (self.read_retries if method in _READ_METHODS else 0)

        for attempt in range(attempts):
            if self.limiter is not None:
                self.limiter.acquire()
            started = time.monotonic()
            try:
                with translate_transport_errors(self.vendor, what):
                    response = super().send(
                        wire,
                        stream=stream,
                        timeout=timeout,
                        verify=verify,
                        cert=cert,
                        proxies=proxies,
                    )
            except RetriableError as exc:
                self._log(method, path, None, started, None, failure=type(exc.__cause__).__name__)
                if attempt + 1 < attempts:
                    self._sleep(self._backoff(attempt))
                    continue
                raise
            # Report the URL the library asked for: zenpy routes responses by
            # ``api.base_url in response.request.url`` and would reject the sandbox's URL.
            response.request = request
            response.url = logical_url
            self._log(method, path, response.status_code, started, response)
            if response.status_code < 400:
                return response

            error = self._error(response, request, what)
            if isinstance(error, RateLimitedError) and self.limiter is not None:
                self.limiter.pause(error.retry_after)
            if not isinstance(error, RetriableError) or attempt + 1 >= attempts:
                raise error
            wait = self._backoff(attempt)
            if isinstance(error, RateLimitedError):
                if error.retry_after > MAX_RETRY_WAIT:
                    raise error
                wait = max(wait, error.retry_after)
            self._sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        return min(MAX_RETRY_WAIT, BACKOFF_BASE * 2.0**attempt) * random.uniform(0.5, 1.0)

    def _error(
        self, response: requests.Response, request: requests.PreparedRequest, what: str
    ) -> ConnectorError:
        try:
            body = response.text
        except (requests.exceptions.RequestException, http.client.HTTPException):
            body = ""
        finally:
            response.close()
        detail = _short(_redact(body, _secrets_of(request)))  # redact first: never cut a secret
        return error_for_status(
            self.vendor,
            response.status_code,
            detail=detail,
            retry_after=response.headers.get("Retry-After"),
            what=what,
        )

    def _log(
        self,
        method: str,
        path: str,
        status: int | None,
        started: float,
        response: requests.Response | None,
        *,
        failure: str | None = None,
    ) -> None:
        elapsed_ms = round((time.monotonic() - started) * 1000)
        remaining = None
        if response is not None:
            for name in _RATE_LIMIT_REMAINING:
                remaining = response.headers.get(name)
                if remaining is not None:
                    break
        fields: dict[str, Any] = {
            "http_vendor": self.vendor,
            "http_method": method,
            "http_path": path,
            "http_status": status,
            "http_elapsed_ms": elapsed_ms,
            "http_rate_limit_remaining": remaining,
        }
        outcome = str(status) if status is not None else f"error={failure}"
        message = "vendor=%s method=%s path=%s status=%s elapsed_ms=%d"
        args: list[Any] = [self.vendor, method, path, outcome, elapsed_ms]
        if remaining is not None:
            message += " rate_limit_remaining=%s"
            args.append(remaining)
        level = logging.INFO if status is not None and status < 400 else logging.WARNING
        log.log(level, message, *args, extra=fields)


class SwitchboardSession(requests.Session):
    """A :class:`requests.Session` with :class:`HygieneAdapter` mounted for http and https."""

    def __init__(self, adapter: HygieneAdapter) -> None:
        super().__init__()
        self.vendor = adapter.vendor
        _mount(self, adapter)


def _mount(session: requests.Session, adapter: HygieneAdapter) -> None:
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.verify = adapter.verify_tls


def build_session(
    vendor: str,
    http: HttpSettings,
    *,
    limiter: RateLimiter | None = None,
    base_url_override: tuple[str, str] | None = None,
    read_retries: int = 2,
    sleep: Callable[[float], None] = time.sleep,
) -> SwitchboardSession:
    """A session for ``vendor`` that applies the hygiene described in this module's docstring.

    ``base_url_override=(vendor_origin, replacement)`` sends requests for ``vendor_origin``
    (e.g. ``https://acme.zendesk.com``) to ``replacement`` (the sandbox) without any process-wide
    environment variable. ``sleep`` is used between read retries (injectable for tests).
    """
    return SwitchboardSession(
        HygieneAdapter(
            vendor,
            http,
            limiter=limiter,
            base_url_override=base_url_override,
            read_retries=read_retries,
            sleep=sleep,
        )
    )


def install_hygiene(
    session: requests.Session,
    vendor: str,
    http: HttpSettings,
    *,
    limiter: RateLimiter | None = None,
    read_retries: int = 2,
    sleep: Callable[[float], None] = time.sleep,
) -> HygieneAdapter:
    """Mount the hygiene adapter on a session a vendor library built itself (jira).

    Also sets the User-Agent and TLS verification. Returns the mounted adapter.
    """
    adapter = HygieneAdapter(vendor, http, limiter=limiter, read_retries=read_retries, sleep=sleep)
    _mount(session, adapter)
    return adapter
