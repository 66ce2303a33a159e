"""Zendesk Support connector, built on zenpy.

zenpy gets our session (:func:`connectors.http.build_session`), so every request it makes is
rate-limited, logged, timed out and turned into :mod:`connectors.errors` exceptions before zenpy
sees the response: zenpy's own 429 loop (``BaseApi._call_api`` sleeps ``Retry-After`` and re-sends,
forever) and the retrying ``HTTPAdapter`` it mounts on sessions it creates itself never run.

Vendor JSON stops here: callers get :class:`~connectors.models.Ticket`,
:class:`~connectors.models.ExportPage`, :class:`~connectors.models.User`,
:class:`~connectors.models.Organization` and :class:`~connectors.models.Comment`
(the JSON is read in :mod:`connectors.zendesk_records`).

Requesters and organizations change rarely and Zendesk's rate limit is the ceiling, so
:meth:`ZendeskConnector.get_people` keeps them in a short-lived, bounded in-memory cache
(``people_cache_seconds``) and, on a miss, reads both with ONE ticket show that sideloads them
(``include=users,organizations``).
"""

from __future__ import annotations

__all__ = ["ZendeskConnector", "ticket_from_api"]

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from zenpy import Zenpy
from zenpy.lib.api_objects import Comment as ZenpyComment
from zenpy.lib.api_objects import Ticket as ZenpyTicket
from zenpy.lib.endpoint import Url

from connectors.cache import TtlCache
from connectors.errors import (
    ConfigurationError,
    FatalError,
    NotFoundError,
    SkippableError,
)
from connectors.http import RateLimiter, build_session, translate_transport_errors
from connectors.models import (
    Comment,
    ExportPage,
    NewTicket,
    Organization,
    Ticket,
    TicketPeople,
    TicketUpdate,
    User,
    format_time,
)
from connectors.settings import ZendeskSettings
from connectors.zendesk_bulk import BulkClient
from connectors.zendesk_records import (
    comment_from_api,
    organization_from_api,
    positive_id,
    ticket_from_api,
    user_from_api,
)

VENDOR = "zendesk"
#: Users and organizations kept in memory at most (each cache), least recently used dropped first.
PEOPLE_CACHE_SIZE = 5000
#: Newest comments read when looking for the ones an update added (one page, newest first).
RECENT_COMMENTS = 5
_PEOPLE_SIDELOADS = ("users", "organizations")

R = TypeVar("R")


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
        clock: Callable[[], float] = time.monotonic,
        include_slas: bool = False,
    ) -> None:
        """``session`` replaces the one built from ``settings`` (it should come from
        :func:`connectors.http.build_session`); ``clock`` (monotonic seconds) times the people
        cache; ``include_slas`` asks Zendesk for each ticket's SLA state (``include=slas``) on
        ticket reads and export pages (the SLA watch's ``sla.zendesk_slas``). Construction
        makes no network call."""
        self.settings = settings
        self.include_slas = include_slas
        self.limiter = limiter if limiter is not None else RateLimiter(settings.requests_per_minute)
        self._vendor_origin = f"https://{settings.subdomain}.zendesk.com"
        self._agent_base = settings.base_url or self._vendor_origin
        self._field_ids = dict(settings.custom_fields)
        self._user_keys = tuple(settings.user_fields)
        self._org_keys = tuple(settings.organization_fields)
        self._users: TtlCache[int, User | None] = TtlCache(
            settings.people_cache_seconds, PEOPLE_CACHE_SIZE, clock=clock)
        self._orgs: TtlCache[int, Organization | None] = TtlCache(
            settings.people_cache_seconds, PEOPLE_CACHE_SIZE, clock=clock)
        self._me: int | None = None
        self._me_lock = threading.Lock()
        if session is None:
            override = (self._vendor_origin, settings.base_url) if settings.base_url else None
            session = build_session(
                VENDOR, settings.http, limiter=self.limiter, base_url_override=override
            )
        self.session = session
        #: ``update_many``, job statuses and ``show_many`` (:mod:`connectors.zendesk_bulk`).
        self.bulk = BulkClient(session, self._vendor_origin,
                               (settings.http.connect_timeout, settings.http.read_timeout),
                               self._field_ids, self._ticket_from_json, self._user_keys)
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
        ticket_id = positive_id(ticket_id, "ticket id")
        what = f"get ticket {ticket_id}"
        if self.include_slas:
            url = self._client.tickets.endpoint(id=ticket_id, include=["slas"])
            with _ticket_call(ticket_id, what):
                data = self._get_json(url, what)
            return self._ticket_from_json(_with_slas(data), what)
        with _ticket_call(ticket_id, what):
            result = self._client.tickets(id=ticket_id)
        return self._to_ticket(result, what)

    def get_ticket_and_people(self, ticket_id: int) -> tuple[Ticket, TicketPeople]:
        """Read one ticket with its requester and organization in ONE call.

        ``GET /api/v2/tickets/{id}.json?include=users,organizations`` side-loads both; only a
        person the answer lacks (or carries without its custom fields) is read on its own. The
        people are cached as :meth:`get_people` does. Raises :class:`SkippableError` when the
        ticket does not exist, :class:`FatalError` for a malformed answer.
        """
        ticket_id = positive_id(ticket_id, "ticket id")
        what = f"get ticket {ticket_id} with its requester and organization"
        data = self._show_with_people(ticket_id, what)
        ticket = self._ticket_from_json(_with_slas(data), what)
        users, orgs = self._sideloaded(data, what)
        return ticket, self._resolve_people(ticket.requester_id, ticket.organization_id,
                                            users, orgs)

    def get_people(self, ticket_id: int, requester_id: int | None,
                   organization_id: int | None) -> TicketPeople:
        """The requester and organization of a ticket, as few calls as possible.

        Both cached (for ``people_cache_seconds``): no call. Neither: ONE ticket show that
        side-loads them (``include=users,organizations``). One of them: one
        ``GET /api/v2/users/{id}.json`` or ``/organizations/{id}.json``. A person Zendesk
        answers 404 for (deleted) is ``None``, and remembered as such for the same time.
        Raises :class:`SkippableError` if the ticket is gone, the :mod:`connectors.errors` tree
        otherwise (429, 5xx, malformed answers).
        """
        ticket_id = positive_id(ticket_id, "ticket id")
        need_user = requester_id is not None and not self._users.lookup(requester_id)[0]
        need_org = organization_id is not None and not self._orgs.lookup(organization_id)[0]
        users: dict[int, User] = {}
        orgs: dict[int, Organization] = {}
        if need_user and need_org:
            what = f"get the requester and organization of ticket {ticket_id}"
            users, orgs = self._sideloaded(self._show_with_people(ticket_id, what), what)
        return self._resolve_people(requester_id, organization_id, users, orgs)

    def own_user_id(self) -> int:
        """The id of the user the API token acts as (``GET /api/v2/users/me.json``): the author
        of every comment Switchboard writes. Read once per connector, then remembered."""
        with self._me_lock:
            if self._me is None:
                what = "get the API user"
                data = self._get_json(self._client.users.endpoint.me(), what)
                self._me = self._parse(user_from_api, data.get("user"), what, field_keys=()).id
            return self._me

    def get_user(self, user_id: int) -> User:
        """Read one user (``GET /api/v2/users/{id}.json``); :class:`NotFoundError` if deleted."""
        user_id = positive_id(user_id, "user id")
        what = f"get user {user_id}"
        data = self._get_json(self._client.users.endpoint(id=user_id), what)
        return self._parse(user_from_api, data.get("user"), what, field_keys=self._user_keys)

    def get_organization(self, organization_id: int) -> Organization:
        """Read one organization (``GET /api/v2/organizations/{id}.json``);
        :class:`NotFoundError` if deleted."""
        organization_id = positive_id(organization_id, "organization id")
        what = f"get organization {organization_id}"
        data = self._get_json(self._client.organizations.endpoint(id=organization_id), what)
        return self._parse(organization_from_api, data.get("organization"), what,
                           field_keys=self._org_keys)

    def recent_comments(self, ticket_id: int, *, limit: int = RECENT_COMMENTS
                        ) -> tuple[Comment, ...]:
        """The ticket's newest comments, newest first: ONE
        ``GET /api/v2/tickets/{id}/comments.json?sort=-created_at&page[size]={limit}``.

        Raises :class:`SkippableError` when the ticket does not exist, :class:`FatalError` for
        a malformed answer, ``ValueError`` for a ``limit`` outside 1..100.
        """
        ticket_id = positive_id(ticket_id, "ticket id")
        if not 0 < limit <= 100:
            raise ValueError("limit must be between 1 and 100")
        what = f"list the comments of ticket {ticket_id}"
        url = self._client.tickets.endpoint.comments(
            id=ticket_id, sort="-created_at", cursor_pagination=limit)
        with _ticket_call(ticket_id, what):
            data = self._get_json(url, what)
        items = data.get("comments")
        if not isinstance(items, list):
            raise FatalError(f"{VENDOR}: {what}: malformed answer", vendor=VENDOR,
                             detail="'comments' is not a list")
        comments = [self._parse(comment_from_api, item, what) for item in items]
        comments.sort(key=lambda c: (c.created_at, c.id), reverse=True)
        return tuple(comments[:limit])

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
            include = ["slas"] if self.include_slas else None
            if cursor is not None:
                # zenpy joins query parameters without URL-encoding them; a base64 cursor's
                # "+", "/" and "=" must be encoded here or Zendesk reads "+" as a space.
                page = self._client.tickets.incremental(
                    cursor=quote(cursor, safe=""), per_page=per_page, include=include
                )
            else:
                page = self._client.tickets.incremental(start_time=start_time, per_page=per_page,
                                                        include=include)
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
        ticket_id = positive_id(update.ticket_id, "ticket id")
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
        if update.type is not None:
            payload["type"] = update.type
        if update.problem_id is not None:
            payload["problem_id"] = positive_id(update.problem_id, "problem id")
        payload["safe_update"] = True
        payload["updated_stamp"] = format_time(update.updated_stamp)
        return payload

    def create_ticket(self, new: NewTicket) -> Ticket:
        """Open a ticket (exactly one ``POST /api/v2/tickets.json``), its first comment internal.

        Not idempotent: a creation whose answer was lost may have landed. Callers that must not
        open two set ``external_id`` and look for it with :meth:`find_tickets_by_external_id`
        before trying again.
        """
        zticket = ZenpyTicket(subject=new.subject,
                              comment=ZenpyComment(body=new.note, public=False))
        for key in ("type", "priority", "external_id"):
            value = getattr(new, key)
            if value is not None:
                setattr(zticket, key, value)
        if new.tags:
            zticket.tags = list(new.tags)
        what = f"create ticket {new.subject[:60]!r}"
        with translate_transport_errors(VENDOR, what):
            result = self._client.tickets.create(zticket)
        # The answer is {"ticket", "audit"}, which zenpy turns into a TicketAudit.
        return self._to_ticket(getattr(result, "ticket", result), what)

    def find_tickets_by_external_id(self, external_id: str) -> list[Ticket]:
        """The tickets with this external id (one ``GET /api/v2/tickets.json?external_id=``,
        first page: Switchboard's external ids name one ticket each)."""
        what = f"find tickets with external id {external_id!r}"
        data = self._get_json(self._client.tickets.endpoint(external_id=external_id), what)
        tickets = data.get("tickets")
        if not isinstance(tickets, list):
            raise FatalError(f"{VENDOR}: {what}: malformed answer", vendor=VENDOR,
                             detail="no 'tickets' list")
        return [self._ticket_from_json(t, what) for t in tickets]

    # -- people and raw reads ------------------------------------------------------------------

    def _show_with_people(self, ticket_id: int, what: str) -> Mapping[str, Any]:
        include = [*_PEOPLE_SIDELOADS, *(["slas"] if self.include_slas else [])]
        url = self._client.tickets.endpoint(id=ticket_id, include=include)
        with _ticket_call(ticket_id, what):
            return self._get_json(url, what)

    def _get_json(self, url: Url, what: str) -> Mapping[str, Any]:
        """One GET through zenpy's request path (its URL building, auth, our session), with
        the JSON read here: zenpy drops side-loaded records when its object cache is off (and
        it must stay off, see ``__init__``), and its comment listing follows pages on its own.
        Unparseable JSON is a :class:`RetriableError` (as for every transport-level failure);
        JSON that is not an object is a :class:`FatalError`."""
        api = self._client.tickets
        with translate_transport_errors(VENDOR, what):
            response = api._get(api._build_url(url), raw_response=True)
            data = response.json()
        if not isinstance(data, Mapping):
            raise FatalError(f"{VENDOR}: {what}: malformed answer", vendor=VENDOR,
                             detail=f"expected a JSON object, got {type(data).__name__}")
        return data

    def _parse(self, parse: Callable[..., R], data: object, what: str, **kwargs: Any) -> R:
        try:
            return parse(data, **kwargs)
        except (TypeError, ValueError) as exc:
            raise FatalError(f"{VENDOR}: {what}: malformed answer", vendor=VENDOR,
                             detail=str(exc)) from exc

    def _ticket_from_json(self, data: object, what: str) -> Ticket:
        if not isinstance(data, Mapping):
            raise FatalError(f"{VENDOR}: {what}: malformed answer", vendor=VENDOR,
                             detail="no 'ticket' object")
        return self._parse(ticket_from_api, data, what, field_ids=self._field_ids,
                           agent_url_base=self._agent_base)

    def _sideloaded(self, data: Mapping[str, Any], what: str
                    ) -> tuple[dict[int, User], dict[int, Organization]]:
        """The users and organizations side-loaded into ``data`` (each also cached).

        A record without its custom fields object, while some are configured, is left out (the
        side-loading docs call side-loaded users "partial"): it is then read on its own.
        """
        users: dict[int, User] = {}
        orgs: dict[int, Organization] = {}
        for key, fields_key, keys in (("users", "user_fields", self._user_keys),
                                      ("organizations", "organization_fields", self._org_keys)):
            items = data.get(key)
            if items is None:
                continue
            if not isinstance(items, list):
                raise FatalError(f"{VENDOR}: {what}: malformed answer", vendor=VENDOR,
                                 detail=f"'{key}' is not a list")
            for item in items:
                if keys and isinstance(item, Mapping) and fields_key not in item:
                    continue
                if key == "users":
                    user = self._parse(user_from_api, item, what, field_keys=keys)
                    users[user.id] = user
                    self._users.put(user.id, user)
                else:
                    org = self._parse(organization_from_api, item, what, field_keys=keys)
                    orgs[org.id] = org
                    self._orgs.put(org.id, org)
        return users, orgs

    def _resolve_people(self, requester_id: int | None, organization_id: int | None,
                        users: Mapping[int, User], orgs: Mapping[int, Organization]
                        ) -> TicketPeople:
        requester = None
        if requester_id is not None:
            requester = users.get(requester_id) or _cached(
                self._users, requester_id, self._user_or_none)
        organization = None
        if organization_id is not None:
            organization = orgs.get(organization_id) or _cached(
                self._orgs, organization_id, self._organization_or_none)
        return TicketPeople(requester, organization)

    def _user_or_none(self, user_id: int) -> User | None:
        try:
            return self.get_user(user_id)
        except NotFoundError:
            return None

    def _organization_or_none(self, organization_id: int) -> Organization | None:
        try:
            return self.get_organization(organization_id)
        except NotFoundError:
            return None

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


def _with_slas(data: Mapping[str, Any]) -> object:
    """The ``ticket`` of a show answer, with Zendesk's SLA state: inside the ticket, or side-
    loaded next to it (third-party reports differ on where ``include=slas`` puts it)."""
    ticket = data.get("ticket")
    slas = data.get("slas")
    if isinstance(ticket, Mapping) and "slas" not in ticket and isinstance(slas, Mapping):
        return {**ticket, "slas": slas}
    return ticket


def _cached(cache: TtlCache[int, R | None], key: int, read: Callable[[int], R | None]) -> R | None:
    hit, value = cache.lookup(key)
    if hit:
        return value
    value = read(key)
    cache.put(key, value)
    return value
