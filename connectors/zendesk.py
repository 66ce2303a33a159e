"""Zendesk Support connector, built on zenpy.

zenpy gets our session (:func:`connectors.http.build_session`), so every request it makes is
rate-limited, logged, timed out and turned into :mod:`connectors.errors` exceptions before zenpy
sees the response: zenpy's own 429 loop (``BaseApi._call_api`` sleeps ``Retry-After`` and re-sends,
forever) and the retrying ``HTTPAdapter`` it mounts on sessions it creates itself never run.

Vendor JSON stops here: callers get :class:`~connectors.models.Ticket` and
:class:`~connectors.models.ExportPage`.
"""

from __future__ import annotations

__all__ = ["ZendeskConnector", "ticket_from_api"]

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import requests
from zenpy import Zenpy
from zenpy.lib.api_objects import Comment as ZenpyComment
from zenpy.lib.api_objects import Ticket as ZenpyTicket

from connectors.errors import (
    ConfigurationError,
    FatalError,
    NotFoundError,
    SkippableError,
)
from connectors.http import RateLimiter, build_session, translate_transport_errors
from connectors.models import ExportPage, Ticket, TicketUpdate, format_time, parse_time
from connectors.settings import ZendeskSettings

VENDOR = "zendesk"


@contextmanager
def _ticket_call(ticket_id: int, what: str) -> Iterator[None]:
    """Translate transport errors; a 404 on a ticket means it is gone: :class:`SkippableError`."""
    try:
        with translate_transport_errors(VENDOR, what):
            yield
    except NotFoundError as exc:
        raise SkippableError(
            f"{VENDOR}: ticket {ticket_id} not found (deleted?)",
            vendor=VENDOR,
            status=exc.status,
            detail=exc.detail,
        ) from exc


class ZendeskConnector:
    """Reads and safely updates Zendesk tickets.

    Every method raises the :mod:`connectors.errors` tree: :class:`RetriableError` (5xx,
    timeouts, connection failures; ``RateLimitedError`` for 429), :class:`AuthError`,
    :class:`ConflictError` (409 on a safe update), :class:`InvalidRequestError`,
    :class:`SkippableError` (the ticket was deleted) and :class:`ConfigurationError`.
    """

    name = VENDOR

    def __init__(
        self,
        settings: ZendeskSettings,
        *,
        limiter: RateLimiter | None = None,
        session: requests.Session | None = None,
    ) -> None:
        """``session`` replaces the one built from ``settings`` (it should come from
        :func:`connectors.http.build_session`). Construction makes no network call."""
        self.settings = settings
        self.limiter = limiter if limiter is not None else RateLimiter(settings.requests_per_minute)
        self._vendor_origin = f"https://{settings.subdomain}.zendesk.com"
        self._agent_base = settings.base_url or self._vendor_origin
        self._field_ids = dict(settings.custom_fields)
        if session is None:
            override = (self._vendor_origin, settings.base_url) if settings.base_url else None
            session = build_session(
                VENDOR, settings.http, limiter=self.limiter, base_url_override=override
            )
        self.session = session
        # disable_cache: zenpy keeps tickets in a 30 s TTL cache and answers ``tickets(id=...)``
        # from it, which would hand the safe-update logic a stale ``updated_at``.
        # timeout: zenpy replaces a missing timeout with its own 60 s and passes it on every call.
        self._client = Zenpy(
            subdomain=settings.subdomain,
            email=settings.email,
            token=settings.api_token.get_secret_value(),
            session=session,
            timeout=(settings.http.connect_timeout, settings.http.read_timeout),
            disable_cache=True,
        )

    def ticket_url(self, ticket_id: int) -> str:
        """The agent UI URL of a ticket."""
        return f"{self._agent_base}/agent/tickets/{int(ticket_id)}"

    def get_ticket(self, ticket_id: int) -> Ticket:
        """Read one ticket (one ``GET /api/v2/tickets/{id}.json``).

        Raises :class:`SkippableError` when the ticket does not exist (deleted).
        """
        ticket_id = _positive_id(ticket_id)
        what = f"get ticket {ticket_id}"
        with _ticket_call(ticket_id, what):
            result = self._client.tickets(id=ticket_id)
        return self._to_ticket(result, what)

    def export_page(
        self,
        *,
        cursor: str | None = None,
        start_time: int | None = None,
        per_page: int | None = None,
    ) -> ExportPage:
        """Fetch exactly one page of the cursor-based incremental ticket export.

        Give ``start_time`` (unix seconds) on the first call and ``cursor`` (the previous page's
        ``after_cursor``) afterwards, never both. Raises ``ValueError`` for a bad combination.
        """
        if (cursor is None) == (start_time is None):
            raise ValueError("give exactly one of cursor and start_time")
        if per_page is not None and not 0 < per_page <= 1000:
            raise ValueError("per_page must be between 1 and 1000")
        what = "incremental ticket export"
        with translate_transport_errors(VENDOR, what):
            # zenpy's incremental() sends one request and returns a generator that holds that
            # page; it only fetches more when iterated past the page (following ``after_url``
            # verbatim, which would bypass our base URL logic), so we read the page and stop.
            if cursor is not None:
                # zenpy joins query parameters without URL-encoding them; a base64 cursor's
                # "+", "/" and "=" must be encoded here or Zendesk reads "+" as a space.
                page = self._client.tickets.incremental(
                    cursor=quote(cursor, safe=""), per_page=per_page
                )
            else:
                page = self._client.tickets.incremental(start_time=start_time, per_page=per_page)
        tickets = tuple(self._to_ticket(item, what) for item in (page.values or ()))
        after_cursor = getattr(page, "after_cursor", None)
        return ExportPage(
            tickets=tickets,
            after_cursor=str(after_cursor) if after_cursor else None,
            end_of_stream=bool(getattr(page, "end_of_stream", False)),
        )

    def update_ticket(self, update: TicketUpdate) -> Ticket:
        """Apply one safe update (exactly one ``PUT /api/v2/tickets/{id}.json``).

        The note, the full tag list, custom fields and status travel together, with
        ``safe_update``/``updated_stamp`` so that Zendesk refuses (409, :class:`ConflictError`)
        if the ticket changed since ``update.updated_stamp``. Returns the ticket from the
        response. Raises :class:`ConfigurationError` for a custom field name the settings do
        not map (before any request) and :class:`SkippableError` if the ticket was deleted.
        """
        ticket_id = _positive_id(update.ticket_id)
        payload = self._update_payload(update)
        # zenpy has no safe-update support, but it serialises every attribute set on a Ticket,
        # so the two extra keys ride along in the same ``{"ticket": {...}}`` body.
        zticket = ZenpyTicket(id=ticket_id)
        for key, value in payload.items():
            setattr(zticket, key, value)
        what = f"update ticket {ticket_id}"
        with _ticket_call(ticket_id, what):
            result = self._client.tickets.update(zticket)
        # The answer is {"ticket", "audit"}, which zenpy turns into a TicketAudit.
        return self._to_ticket(getattr(result, "ticket", result), what)

    def _update_payload(self, update: TicketUpdate) -> dict[str, Any]:
        unknown = sorted(set(update.custom_fields) - set(self._field_ids))
        if unknown:
            raise ConfigurationError(
                f"connectors.zendesk.custom_fields: no field id configured for {', '.join(unknown)}"
            )
        payload: dict[str, Any] = {}
        if update.note:
            payload["comment"] = ZenpyComment(body=update.note, public=bool(update.public))
        if update.tags:
            payload["tags"] = list(update.tags)
        if update.custom_fields:
            payload["custom_fields"] = [
                {"id": self._field_ids[name], "value": value}
                for name, value in update.custom_fields.items()
            ]
        if update.status is not None:
            payload["status"] = update.status
        payload["safe_update"] = True
        payload["updated_stamp"] = format_time(update.updated_stamp)
        return payload

    def _to_ticket(self, zticket: object, what: str) -> Ticket:
        if not isinstance(zticket, ZenpyTicket):
            raise FatalError(
                f"{VENDOR}: {what}: unexpected response",
                vendor=VENDOR,
                detail=type(zticket).__name__,
            )
        try:
            return ticket_from_api(
                zticket.to_dict(), field_ids=self._field_ids, agent_url_base=self._agent_base
            )
        except ValueError as exc:
            raise FatalError(
                f"{VENDOR}: {what}: malformed ticket", vendor=VENDOR, detail=str(exc)
            ) from exc


def ticket_from_api(
    data: Mapping[str, Any], *, field_ids: Mapping[str, int], agent_url_base: str
) -> Ticket:
    """Build a :class:`Ticket` from Zendesk ticket JSON (API, export page or webhook detail).

    Custom fields are keyed by the configured *name* (reverse of ``field_ids``); fields with an
    unconfigured id are dropped. ``url`` is the agent UI URL under ``agent_url_base``. Ids given
    as strings (webhooks) are accepted; status, priority and type are lower-cased. Raises
    ``ValueError`` when ``id`` or ``updated_at`` is missing or malformed.
    """
    ticket_id = _positive_id(data.get("id"))
    updated_at = parse_time(data.get("updated_at"))
    if updated_at is None:
        raise ValueError(f"ticket {ticket_id} has no updated_at")
    names = {int(field_id): name for name, field_id in field_ids.items()}
    custom: dict[str, Any] = {}
    raw_fields = data.get("custom_fields")
    if raw_fields is None:
        raw_fields = data.get("fields")
    for item in raw_fields or ():
        if not isinstance(item, Mapping):
            continue
        try:
            name = names.get(int(item["id"]))
        except (KeyError, TypeError, ValueError):
            continue
        if name is not None:
            custom[name] = item.get("value")
    return Ticket(
        id=ticket_id,
        updated_at=updated_at,
        created_at=parse_time(data.get("created_at")),
        subject=str(data.get("subject") or data.get("raw_subject") or ""),
        description=str(data.get("description") or ""),
        status=_lower(data.get("status")),
        priority=_lower(data.get("priority")),
        type=_lower(data.get("type")),
        tags=_tags(data.get("tags")),
        requester_id=_optional_id(data.get("requester_id")),
        organization_id=_optional_id(data.get("organization_id")),
        assignee_id=_optional_id(data.get("assignee_id")),
        group_id=_optional_id(data.get("group_id")),
        custom_fields=custom,
        url=f"{agent_url_base.rstrip('/')}/agent/tickets/{ticket_id}",
    )


def _positive_id(value: object) -> int:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a ticket id: {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise ValueError(f"not a ticket id: {value!r}")
    if number <= 0:
        raise ValueError(f"not a ticket id: {value!r}")
    return number


def _optional_id(value: object) -> int | None:
    """Lenient: a related id Zendesk leaves empty or odd must not make the ticket unreadable."""
    try:
        return _positive_id(value)
    except ValueError:
        return None


def _lower(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value).lower()


def _tags(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, Iterable):
        return tuple(str(tag) for tag in value)
    raise ValueError(f"tags must be a list, not {type(value).__name__}")
