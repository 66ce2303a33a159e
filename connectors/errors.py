"""The one exception tree every connector raises.

Vendor clients raise their own exceptions (zenpy ``APIException``, jira ``JIRAError``,
``requests`` errors); connectors translate them here, always with ``raise ... from exc``,
so that the dispatcher can decide what to do from the class alone::

    SwitchboardError
    ├── ConfigurationError          bad or missing settings; fix the config, do not retry
    └── ConnectorError              anything a vendor call did (carries vendor, status, detail)
        ├── RetriableError          try again later: 5xx, timeouts, connection failures
        │   └── RateLimitedError    429; ``retry_after`` seconds, always honoured
        ├── FatalError              4xx that a retry cannot fix
        │   ├── AuthError           401 / 403
        │   ├── NotFoundError       404 / 410
        │   ├── ConflictError       409 (Zendesk safe update: re-read and re-apply)
        │   └── InvalidRequestError 400 / 422 and other 4xx
        └── SkippableError          the target is gone for good (a deleted ticket): move on

``RetriableError.ambiguous`` is true when the request may have reached the vendor and been
applied (read timeout, connection reset after sending, 5xx): a write that failed that way must be
reconciled before it is repeated (see DESIGN.md, invariant 2).

The mapping from an HTTP status to a class lives in :func:`error_for_status` and nowhere else.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ConfigurationError",
    "ConflictError",
    "ConnectorError",
    "FatalError",
    "InvalidRequestError",
    "NotFoundError",
    "RateLimitedError",
    "RetriableError",
    "SkippableError",
    "SwitchboardError",
    "error_for_status",
    "parse_retry_after",
]

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

MAX_DETAIL = 500


class SwitchboardError(Exception):
    """Base of every error Switchboard raises on purpose."""


class ConfigurationError(SwitchboardError):
    """Settings are missing or wrong; retrying cannot help."""


class ConnectorError(SwitchboardError):
    """A vendor call failed. ``detail`` is a short, secret-free excerpt of the vendor's answer."""

    def __init__(
        self,
        message: str,
        *,
        vendor: str = "",
        status: int | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message)
        self.vendor = vendor
        self.status = status
        self.detail = detail[:MAX_DETAIL]

    def __str__(self) -> str:
        parts = [super().__str__()]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.detail:
            parts.append(self.detail)
        return " — ".join(parts)


class RetriableError(ConnectorError):
    """Transient failure; the dispatcher retries with backoff.

    ``ambiguous`` means the vendor may have applied the request (it was sent and no clean answer
    came back), so a write must be reconciled before it is sent again. ``retry_after``
    (seconds), when set, is the earliest a retry makes sense: the dispatcher waits at least that.
    """

    retry_after: float | None

    def __init__(self, message: str, *, ambiguous: bool = False,
                 retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.ambiguous = ambiguous
        self.retry_after = retry_after


class RateLimitedError(RetriableError):
    """The vendor answered 429. ``retry_after`` is in seconds and must be honoured."""

    retry_after: float

    def __init__(self, message: str, *, retry_after: float, **kwargs: object) -> None:
        super().__init__(message, ambiguous=False, retry_after=retry_after, **kwargs)


class FatalError(ConnectorError):
    """A 4xx a retry cannot fix."""


class AuthError(FatalError):
    """401 / 403: credentials are wrong or lack a permission."""


class NotFoundError(FatalError):
    """404 / 410: the resource or endpoint does not exist."""


class ConflictError(FatalError):
    """409: the resource changed under us (Zendesk safe update). Re-read and re-apply."""


class InvalidRequestError(FatalError):
    """400 / 422 and other 4xx: the request itself is wrong."""


class SkippableError(ConnectorError):
    """The target is gone for good (e.g. a deleted ticket); record and move on."""


DEFAULT_RETRY_AFTER = 60.0


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    A missing or unreadable header gives :data:`DEFAULT_RETRY_AFTER`; never negative.
    """
    if not value:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_for_status(
    vendor: str,
    status: int,
    *,
    detail: str = "",
    retry_after: str | None = None,
    what: str = "",
) -> ConnectorError:
    """Map an HTTP error status to the exception class the dispatcher acts on."""
    message = f"{vendor}: {what or 'request'} failed"
    kwargs: dict[str, object] = {"vendor": vendor, "status": status, "detail": detail}
    if status == 429:
        return RateLimitedError(message, retry_after=parse_retry_after(retry_after), **kwargs)
    if status >= 500:
        # The request reached the vendor; a 5xx does not say whether it was applied.
        return RetriableError(message, ambiguous=True, **kwargs)  # type: ignore[arg-type]
    if status in (401, 403):
        return AuthError(message, **kwargs)  # type: ignore[arg-type]
    if status in (404, 410):
        return NotFoundError(message, **kwargs)  # type: ignore[arg-type]
    if status == 409:
        return ConflictError(message, **kwargs)  # type: ignore[arg-type]
    if status == 408:
        return RetriableError(message, ambiguous=True, **kwargs)  # type: ignore[arg-type]
    return InvalidRequestError(message, **kwargs)  # type: ignore[arg-type]
