"""HTTP hygiene for the connectors whose vendor client is built on httpx2 (``pagerduty`` >= 7).

:class:`HygieneTransport` is the httpx2 counterpart of :class:`connectors.http.HygieneAdapter`.
It wraps the transport that really sends (an :class:`EnvProxyTransport` with Switchboard's TLS
settings, which honours the environment's proxies as the vendor client would have, or a test's
``httpx2.MockTransport``) and, for every request:

- waits for the connector's :class:`~connectors.http.RateLimiter` (and pauses it on a 429 for
  the ``Retry-After`` the vendor asked for);
- reads the whole body, so that no transport failure can surface later, outside this class;
- logs one line on the ``switchboard.http`` logger: vendor, method, path, status, milliseconds
  (never a body, a query string or a header);
- raises :func:`connectors.errors.error_for_status` for every status >= 400, with ``Retry-After``
  and a short, redacted excerpt of the body as ``detail``;
- translates httpx2 exceptions into :class:`~connectors.errors.RetriableError`
  (:func:`translate_httpx_error`).

Why raise instead of returning the error response: the ``pagerduty`` client has its own retry
loops (429 re-sent without limit, 5xx re-sent up to 6 times, network errors 3 times, all ignoring
``Retry-After``). They only look at a returned status or at an ``httpx2.TransportError``; our
exceptions are neither, so they pass straight through the client and its loops never run. Only
Switchboard's dispatcher retries writes, after reconciling ambiguous failures (DESIGN.md,
invariant 2). Nothing here retries either: the Events API has no reads worth retrying.
"""

from __future__ import annotations

__all__ = ["EnvProxyTransport", "HygieneTransport", "excerpt", "ssl_verify",
           "translate_httpx_error"]

import ipaddress
import logging
import ssl
import threading
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

import httpx2

from connectors.errors import (
    ConfigurationError,
    ConnectorError,
    RateLimitedError,
    RetriableError,
    SwitchboardError,
    error_for_status,
)
from connectors.http import DETAIL_EXCERPT, RateLimiter
from connectors.settings import HttpSettings

log = logging.getLogger("switchboard.http")

#: httpx2 failures that happen before any byte of the request has left this process.
_NEVER_SENT: tuple[type[Exception], ...] = (
    httpx2.ConnectError,
    httpx2.ConnectTimeout,
    httpx2.PoolTimeout,
    httpx2.UnsupportedProtocol,
    httpx2.LocalProtocolError,
    httpx2.ProxyError,
    ConnectionRefusedError,
    ssl.SSLCertVerificationError,
)


def ssl_verify(verify_tls: bool | str) -> ssl.SSLContext | bool:
    """What to hand ``httpx2.HTTPTransport(verify=...)`` for ``HttpSettings.verify_tls``.

    ``True`` stays ``True`` (the system trust store); a CA bundle path becomes an
    ``ssl.SSLContext`` (httpx2 deprecates ``verify=<path>``). Raises :class:`ConfigurationError`
    when the bundle cannot be read, and for ``False`` (verification is never switched off).
    """
    if verify_tls is True:
        return True
    if verify_tls is False:
        raise ConfigurationError("http.verify_tls: TLS verification cannot be switched off")
    try:
        return ssl.create_default_context(cafile=verify_tls)
    except OSError as exc:  # includes ssl.SSLError
        raise ConfigurationError(
            f"http.verify_tls: cannot read CA bundle {verify_tls}: {type(exc).__name__}"
        ) from exc


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


class EnvProxyTransport(httpx2.BaseTransport):
    """Sends directly, or through the proxy the environment names for the request's URL.

    A vendor client handed a ``transport=`` no longer reads ``HTTP(S)_PROXY`` / ``NO_PROXY``
    itself (httpx only does for the transports it builds), so this does what it would have:
    ``urllib.request.getproxies()`` for the scheme (or ``ALL_PROXY``) unless
    ``urllib.request.proxy_bypass`` says the host is excluded. Loopback hosts (the sandbox) are
    always reached directly. One transport (connection pool) per proxy, built on first use.
    """

    def __init__(self, verify: ssl.SSLContext | bool) -> None:
        self._verify = verify
        self._direct = httpx2.HTTPTransport(verify=verify)
        self._proxied: dict[str, httpx2.HTTPTransport] = {}
        self._lock = threading.Lock()

    def proxy_for(self, url: httpx2.URL) -> str | None:
        """The proxy URL a request to ``url`` goes through, or None (direct)."""
        host = url.host
        if not host or _loopback(host):
            return None
        proxies = urllib.request.getproxies()
        proxy = proxies.get(url.scheme) or proxies.get("all")
        if not proxy or urllib.request.proxy_bypass(host):
            return None
        return proxy if "://" in proxy else f"http://{proxy}"

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        proxy = self.proxy_for(request.url)
        if proxy is None:
            return self._direct.handle_request(request)
        with self._lock:
            transport = self._proxied.get(proxy)
            if transport is None:
                transport = httpx2.HTTPTransport(verify=self._verify, proxy=proxy)
                self._proxied[proxy] = transport
        return transport.handle_request(request)

    def close(self) -> None:
        self._direct.close()
        with self._lock:
            for transport in self._proxied.values():
                transport.close()
            self._proxied.clear()


def translate_httpx_error(vendor: str, what: str, exc: Exception) -> ConnectorError:
    """The :mod:`connectors.errors` exception for an httpx2 failure (callers ``raise ... from``).

    Connection refused or unreachable, TLS handshake failures, connect and pool timeouts and
    malformed URLs/proxies: :class:`RetriableError` with ``ambiguous=False`` (nothing was sent).
    Read and write timeouts, resets, protocol errors from the server and anything else:
    ``ambiguous=True`` (the vendor may have applied the request). The message names the
    exception type only; ``detail`` is its text, which carries no header or body.
    """
    ambiguous = not isinstance(exc, _NEVER_SENT)
    return RetriableError(
        f"{vendor}: {what} failed: {type(exc).__name__}",
        ambiguous=ambiguous,
        vendor=vendor,
        detail=excerpt(str(exc), ()),
    )


def excerpt(text: str, secrets: Sequence[str], limit: int = DETAIL_EXCERPT) -> str:
    """``text`` with every secret replaced by ``***``, whitespace collapsed, cut to ``limit``."""
    # Redact before cutting, so a secret cut in half cannot survive.
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class HygieneTransport(httpx2.BaseTransport):
    """An httpx2 transport applying Switchboard's HTTP hygiene (see the module docstring).

    ``transport`` is the inner transport that sends (default: ``httpx2.HTTPTransport`` verifying
    TLS as ``http.verify_tls`` says). ``secrets`` are strings that must never appear in an
    exception (a routing key travels in the request body and a vendor may echo it back).

    :meth:`handle_request` returns only responses with a status below 400; it raises
    :class:`RateLimitedError` (429), :class:`RetriableError` (5xx, 408, transport failures),
    :class:`~connectors.errors.FatalError` subclasses (other 4xx) and
    :class:`ConfigurationError` (unreadable CA bundle, at construction).
    """

    def __init__(
        self,
        vendor: str,
        http: HttpSettings,
        *,
        limiter: RateLimiter | None = None,
        transport: httpx2.BaseTransport | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        self.vendor = vendor
        self.limiter = limiter
        self._secrets = tuple(s for s in secrets if s)
        self._inner = (
            transport
            if transport is not None
            else EnvProxyTransport(ssl_verify(http.verify_tls))
        )

    def __repr__(self) -> str:
        return f"HygieneTransport(vendor={self.vendor!r}, inner={type(self._inner).__name__})"

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send ``request`` through the inner transport; see the class docstring for errors."""
        method = request.method.upper()
        path = request.url.path
        what = f"{method} {path}"
        if self.limiter is not None:
            self.limiter.acquire()
        started = time.monotonic()
        try:
            response = self._inner.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except SwitchboardError:
            raise
        except httpx2.HTTPError as exc:
            error = translate_httpx_error(self.vendor, what, exc)
            self._log(method, path, None, started, failure=type(exc).__name__)
            raise error from exc
        except OSError as exc:  # an inner transport that lets socket/TLS errors through
            error = translate_httpx_error(self.vendor, what, exc)
            self._log(method, path, None, started, failure=type(exc).__name__)
            raise error from exc
        self._log(method, path, response.status_code, started)
        if response.status_code < 400:
            return response
        try:
            body = response.text
        except (UnicodeDecodeError, LookupError, httpx2.HTTPError):
            body = ""
        error = error_for_status(
            self.vendor,
            response.status_code,
            detail=excerpt(body, self._secrets),
            retry_after=response.headers.get("Retry-After"),
            what=what,
        )
        if isinstance(error, RateLimitedError) and self.limiter is not None:
            self.limiter.pause(error.retry_after)
        raise error

    def close(self) -> None:
        """Close the inner transport (its connection pool)."""
        self._inner.close()

    def _log(
        self,
        method: str,
        path: str,
        status: int | None,
        started: float,
        *,
        failure: str | None = None,
    ) -> None:
        elapsed_ms = round((time.monotonic() - started) * 1000)
        fields: dict[str, Any] = {
            "http_vendor": self.vendor,
            "http_method": method,
            "http_path": path,
            "http_status": status,
            "http_elapsed_ms": elapsed_ms,
        }
        outcome = str(status) if status is not None else f"error={failure}"
        level = logging.INFO if status is not None and status < 400 else logging.WARNING
        log.log(
            level,
            "vendor=%s method=%s path=%s status=%s elapsed_ms=%d",
            self.vendor, method, path, outcome, elapsed_ms,
            extra=fields,
        )  # fmt: skip
