"""Slack Web API transport: ``slack_sdk.WebClient`` with Switchboard's HTTP hygiene.

:class:`SlackClient` owns the ``WebClient`` (urllib, not requests) and runs every call through
:meth:`SlackClient.call`, which waits on a :class:`~connectors.http.RateLimiter`, logs one line
on ``switchboard.http`` and translates every failure into the :mod:`connectors.errors` tree.

- No client-side retries (``retry_handlers=[]``): slack_sdk's default
  ``ConnectionErrorRetryHandler`` would re-send a post whose answer was lost; only the dispatcher
  retries writes, after reconciling.
- Requests to a loopback ``base_url`` (the sandbox) never go through a proxy: slack_sdk reads
  ``HTTP(S)_PROXY`` from the environment, and urllib bypasses it only when ``NO_PROXY`` names
  the host.
- TLS is verified, with the system's CAs or the CA bundle of ``http.verify_tls``.
- The bot token never appears in a log line, an exception message or a repr.
- A file's bytes go to the upload URL Slack hands out (files upload v2) through
  :meth:`SlackClient.upload`, with the same proxy rule, TLS context, limiter, log line and error
  translation; the URL itself (it carries an upload ticket) is never logged.
"""

from __future__ import annotations

__all__ = ["SlackClient"]

import http.client
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import HTTPSHandler, OpenerDirector, ProxyHandler, Request, build_opener

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError, SlackRequestError
from slack_sdk.web.slack_response import SlackResponse

from connectors.errors import (
    AuthError,
    ConfigurationError,
    ConnectorError,
    FatalError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    RetriableError,
    error_for_status,
    parse_retry_after,
)
from connectors.http import USER_AGENT, RateLimiter
from connectors.settings import SlackSettings

VENDOR = "slack"
#: How the upload to an ``upload_url`` (not a Web API method) is named in log lines.
UPLOAD_STEP = "upload_url"
log = logging.getLogger("switchboard.http")

#: ``ok: false`` codes (HTTP 200) by class; any other code is an InvalidRequestError.
_RATE_LIMITED = frozenset({"ratelimited", "rate_limited"})
_AUTH = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
    "missing_scope", "no_permission", "not_allowed_token_type", "team_access_not_granted",
})  # fmt: skip
_NOT_FOUND = frozenset({"channel_not_found", "message_not_found", "thread_not_found"})
#: Slack documents these as "it's possible some aspect of the operation succeeded".
_AMBIGUOUS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "update_failed"}
)
#: slack_sdk's stand-in ``error`` for an answer that is not JSON.
_NON_JSON = "Received a response in a non-JSON format"
#: ``URLError`` reasons: urllib wraps only failures while connecting and writing the request
#: (refused, DNS, TLS handshake, connect timeout), so such a request never reached Slack whole.
_NEVER_SENT = (ConnectionRefusedError, socket.gaierror, ssl.SSLError, ssl.CertificateError,
               TimeoutError)  # fmt: skip


class _WebClient(WebClient):
    """slack_sdk's client, except that requests to a loopback host never use a proxy.

    slack_sdk offers no per-client "no proxy": with ``proxy=None`` it takes ``HTTP(S)_PROXY``
    from the environment, and otherwise calls ``urlopen``, whose default handlers read the same
    variables. This override of its one transport method opens loopback requests with an opener
    that has no proxy handler; every other host keeps slack_sdk's behaviour.
    """

    def __init__(self, *, direct: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._direct: OpenerDirector | None = None
        if direct:
            self.proxy = None
            self._direct = build_opener(ProxyHandler({}), HTTPSHandler(context=self.ssl))

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        if self._direct is None:
            return super()._perform_urllib_http_request_internal(url, req)
        with self._direct.open(req, timeout=self.timeout) as resp:
            charset = resp.headers.get_content_charset() or "utf-8"
            body = resp.read().decode(charset)
            return {"status": resp.status, "headers": resp.headers, "body": body}


class SlackClient:
    """The Web API client of one workspace; construction makes no network call.

    ``web`` is the slack_sdk client; send every request through :meth:`call`.
    Raises :class:`ConfigurationError` when the CA bundle of ``http.verify_tls`` cannot be read.
    """

    def __init__(self, settings: SlackSettings) -> None:
        self._token = settings.bot_token.get_secret_value()
        http = settings.http
        self.web: WebClient = _WebClient(
            direct=_is_loopback(urlsplit(settings.base_url).hostname or ""),
            token=self._token,
            base_url=settings.base_url,
            # urllib takes float seconds, one timeout for connecting and for each read.
            timeout=http.read_timeout,
            ssl=_ssl_context(http.verify_tls),
            user_agent_prefix=USER_AGENT,
            retry_handlers=[],
        )

    def __repr__(self) -> str:
        return f"SlackClient(base_url={self.web.base_url!r})"

    def call(
        self,
        method: str,
        channel: str | None,
        limiter: RateLimiter,
        send: Callable[[], SlackResponse],
    ) -> dict[str, Any]:
        """Wait for ``limiter``, run ``send`` (one Web API request), log one line, and return
        the answer's JSON object.

        Raises, always ``from`` the original exception: HTTP 429 or an ``ok: false`` rate-limit
        code -> :class:`RateLimitedError` (``limiter`` is paused for ``retry_after``);
        HTTP 5xx -> ambiguous :class:`RetriableError`; other ``ok: false`` codes through the
        tables above (unknown codes -> :class:`InvalidRequestError`); urllib's ``URLError``
        (connection refused, DNS, TLS handshake) -> not ambiguous; a failure while reading the
        answer (``TimeoutError``, ``ConnectionResetError``, ``RemoteDisconnected``, an unreadable
        body) -> ambiguous; slack_sdk's ``SlackRequestError`` -> :class:`ConfigurationError`.
        """
        limiter.acquire()
        started = time.monotonic()
        where = f"{method} in {channel}" if channel else method
        try:
            response = send()
        except SlackApiError as exc:
            error = self._api_error(where, exc.response)
            self._log(method, channel, started, status=exc.response.status_code,
                      error=error.detail or type(error).__name__)  # fmt: skip
            if isinstance(error, RateLimitedError):
                limiter.pause(error.retry_after)
            raise error from exc
        except SlackRequestError as exc:
            self._log(method, channel, started, error=type(exc).__name__)
            raise ConfigurationError(f"{VENDOR}: {where}: {self._redact(str(exc))}") from exc
        except SlackClientError as exc:
            self._log(method, channel, started, error=type(exc).__name__)
            raise FatalError(f"{VENDOR}: {where} failed", vendor=VENDOR,
                             detail=self._redact(str(exc))) from exc  # fmt: skip
        except URLError as exc:
            reason = exc.reason if isinstance(exc.reason, BaseException) else exc
            self._log(method, channel, started, error=type(reason).__name__)
            sent = not isinstance(reason, _NEVER_SENT)
            raise self._transport(where, exc, reason, ambiguous=sent) from exc
        except (OSError, http.client.HTTPException, ValueError, LookupError) as exc:
            self._log(method, channel, started, error=type(exc).__name__)
            raise self._transport(where, exc, exc, ambiguous=True) from exc
        data = response.data
        if not isinstance(data, dict):
            self._log(method, channel, started, status=response.status_code, error="not JSON")
            raise FatalError(f"{VENDOR}: {where}: answer is not a JSON object", vendor=VENDOR,
                             status=response.status_code)  # fmt: skip
        self._log(method, channel, started, status=response.status_code)
        return data

    def upload(self, url: str, content: bytes, limiter: RateLimiter) -> None:
        """POST ``content`` as raw bytes to an ``upload_url`` of ``files.getUploadURLExternal``
        (step 2 of files upload v2; Slack answers HTTP 200 when the bytes arrived).

        slack_sdk's own step (``files_upload_v2``) opens the URL with the environment's proxy
        whatever the host and turns any status but 200 into ``SlackRequestError``; this one keeps
        loopback hosts off the proxy and raises the error tree like :meth:`call`: HTTP 429 ->
        :class:`RateLimitedError`, 5xx or an answer lost after sending -> ambiguous
        :class:`RetriableError`, other 4xx through ``error_for_status``, a URL that is not
        https (http only on loopback) -> :class:`FatalError`.
        """
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(host)):
            raise FatalError(f"{VENDOR}: upload URL is not https", vendor=VENDOR)
        method = UPLOAD_STEP
        limiter.acquire()
        started = time.monotonic()
        request = Request(url, data=content, method="POST", headers={
            "Content-Type": "application/octet-stream", "User-Agent": USER_AGENT})
        handlers: list[Any] = [HTTPSHandler(context=self.web.ssl)]
        if _is_loopback(host):
            handlers.insert(0, ProxyHandler({}))
        elif self.web.proxy:
            handlers.insert(0, ProxyHandler({"http": self.web.proxy, "https": self.web.proxy}))
        try:
            with build_opener(*handlers).open(request, timeout=self.web.timeout) as resp:
                resp.read()
                status = int(resp.status)
        except HTTPError as exc:
            body = exc.read().decode("utf-8", "replace") if exc.fp is not None else ""
            self._log(method, None, started, status=exc.code, error=f"HTTP {exc.code}")
            error = error_for_status(VENDOR, exc.code, detail=self._redact(body)[:200],
                                     retry_after=exc.headers.get("Retry-After"),
                                     what="file upload")  # fmt: skip
            if isinstance(error, RateLimitedError):
                limiter.pause(error.retry_after)
            raise error from exc
        except URLError as exc:
            reason = exc.reason if isinstance(exc.reason, BaseException) else exc
            self._log(method, None, started, error=type(reason).__name__)
            sent = not isinstance(reason, _NEVER_SENT)
            raise self._transport("file upload", exc, reason, ambiguous=sent) from exc
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self._log(method, None, started, error=type(exc).__name__)
            raise self._transport("file upload", exc, exc, ambiguous=True) from exc
        if status != 200:
            self._log(method, None, started, status=status, error=f"HTTP {status}")
            raise FatalError(f"{VENDOR}: file upload answered HTTP {status}, not 200",
                             vendor=VENDOR, status=status)  # fmt: skip
        self._log(method, None, started, status=status)

    def _api_error(self, where: str, response: SlackResponse) -> ConnectorError:
        status = response.status_code
        data = response.data if isinstance(response.data, dict) else {}
        code = self._redact(str(data.get("error") or ""))[:200]
        retry_after = _header(response.headers, "Retry-After")
        if status == 429 or status >= 500:
            return error_for_status(VENDOR, status, detail=code, retry_after=retry_after,
                                    what=where)  # fmt: skip
        message = f"{VENDOR}: {where} failed: {code or 'no error code'}"
        kwargs: dict[str, Any] = {"vendor": VENDOR, "status": status, "detail": code}
        if code in _RATE_LIMITED:
            return RateLimitedError(message, retry_after=parse_retry_after(retry_after), **kwargs)
        if code in _AUTH:
            return AuthError(message, **kwargs)
        if code in _NOT_FOUND:
            return NotFoundError(message, **kwargs)
        if code in _AMBIGUOUS or code.startswith(_NON_JSON):
            return RetriableError(message, ambiguous=True, **kwargs)
        if status != 200:
            return error_for_status(VENDOR, status, detail=code, retry_after=retry_after,
                                    what=where)  # fmt: skip
        return InvalidRequestError(message, **kwargs)

    def _transport(
        self, where: str, exc: BaseException, reason: BaseException, *, ambiguous: bool
    ) -> RetriableError:
        return RetriableError(f"{VENDOR}: {where} failed: {type(reason).__name__}",
                              ambiguous=ambiguous, vendor=VENDOR,
                              detail=self._redact(str(exc))[:200])  # fmt: skip

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _log(
        self,
        method: str,
        channel: str | None,
        started: float,
        *,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        elapsed_ms = round((time.monotonic() - started) * 1000)
        ok = error is None
        path = "(upload_url)" if method == UPLOAD_STEP else f"/api/{method}"
        fields = {
            "http_vendor": VENDOR, "http_method": "POST", "http_path": path,
            "http_status": status, "http_elapsed_ms": elapsed_ms, "slack_method": method,
            "slack_channel": channel, "slack_ok": ok, "slack_error": error,
        }  # fmt: skip
        message = "vendor=%s method=%s channel=%s status=%s ok=%s elapsed_ms=%d"
        args: list[Any] = [VENDOR, method, channel or "-", status if status is not None else "-",
                           "true" if ok else "false", elapsed_ms]  # fmt: skip
        if error is not None:
            message += " error=%s"
            args.append(error)
        log.log(logging.INFO if ok else logging.WARNING, message, *args, extra=fields)


def _header(headers: Any, name: str) -> str | None:
    """A header's value from slack_sdk's headers (a dict, or values in lists), any case."""
    if not isinstance(headers, Mapping):
        return None
    for key, value in headers.items():
        if str(key).lower() == name.lower():
            if isinstance(value, list | tuple):
                value = value[0] if value else None
            return None if value is None else str(value)
    return None


def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    """A verifying TLS context: the system's CAs (``True``) or a CA bundle path."""
    if verify is True:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(verify))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"connectors.slack.http.verify_tls: CA bundle {verify!r} cannot be read "
            f"({type(exc).__name__})"
        ) from exc


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
