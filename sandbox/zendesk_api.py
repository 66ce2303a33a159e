"""HTTP routes of the Zendesk stand-in: everything under ``/api/v2/`` as zenpy calls it.

Auth is Basic ``{email}/token:{token}``. Errors use Zendesk's ``{"error", "description"}`` shape.
The state lives in ``sandbox.zendesk.ZendeskState``; this module only translates HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sandbox.base import Request, Response, basic_auth

if TYPE_CHECKING:
    from sandbox.zendesk import ZendeskState

__all__ = ["ZendeskError", "error_body", "handle"]

MAX_PER_PAGE = 1000
MAX_BULK = 100
_ERRORS: dict[int, dict[str, str]] = {
    400: {"error": "InvalidValue", "description": "Invalid request"},
    401: {"error": "Couldn't authenticate you"},
    403: {"error": "Forbidden", "description": "You do not have access to this page."},
    404: {"error": "RecordNotFound", "description": "Not found"},
    409: {
        "error": "UpdateConflict",
        "description": "Safe Update prevented the update due to outdated ticket data. "
        "Please fetch the latest ticket data and try again.",
    },
    422: {"error": "RecordInvalid", "description": "Record validation errors"},
    429: {
        "error": "APIRateLimitExceeded",
        "description": "Number of allowed API requests per minute exceeded",
    },
    500: {"error": "InternalServerError", "description": "Internal server error"},
    503: {"error": "ServiceUnavailable", "description": "Service temporarily unavailable"},
}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """A Zendesk-shaped error body for ``status`` (``message`` replaces the description)."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = dict(_ERRORS.get(status, {"error": phrase.replace(" ", ""), "description": phrase}))
    if message is not None:
        body["description"] = message
    return body


class ZendeskError(ValueError):
    """A request Zendesk would refuse: ``status`` and the Zendesk-shaped error ``body``."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


Handler = Callable[["ZendeskState", Request, re.Match[str]], Response]


def _ticket_body(request: Request) -> dict[str, Any]:
    if request.json_error:
        raise ZendeskError(400, {"error": "Unprocessable Entity",
                                 "description": "Server could not parse JSON"})  # fmt: skip
    if not isinstance(request.json, dict) or not isinstance(request.json.get("ticket"), dict):
        message = 'Expected a "ticket" object in the body'
        raise ZendeskError(400, {"error": "InvalidEndpoint", "description": message})
    return dict(request.json["ticket"])


def _show(state: ZendeskState, request: Request, match: re.Match[str]) -> Response:
    """A ticket; ``?include=users,organizations`` side-loads its people, ``slas`` puts its SLA
    state in the ticket (other names are ignored)."""
    ticket = state.ticket(int(match.group(1)))
    include = _include(request)
    return Response(200, {"ticket": state.with_slas(ticket, include),
                          **state.sideloads(ticket, include)})


def _include(request: Request) -> list[str]:
    return [name.strip() for name in (request.param("include") or "").split(",")
            if name.strip()]


def _user(state: ZendeskState, request: Request, match: re.Match[str]) -> Response:
    return Response(200, {"user": state.user(int(match.group(1)))})


def _me(state: ZendeskState, request: Request, match: re.Match[str]) -> Response:
    """The user the credentials act as: the API user, author of what the hub writes."""
    return Response(200, {"user": state.user(state.api_author_id)})


def _organization(state: ZendeskState, request: Request, match: re.Match[str]) -> Response:
    return Response(200, {"organization": state.organization(int(match.group(1)))})


def _update(state: ZendeskState, request: Request, match: re.Match[str]) -> Response:
    changes = _ticket_body(request)
    ticket, audit = state.apply_update(
        int(match.group(1)), changes, author_id=state.api_author_id, channel="api"
    )
    return Response(200, {"ticket": ticket, "audit": audit})


def _delete(state: ZendeskState, request: Request, match: re.Match[str]) -> Response:
    state.delete_ticket(int(match.group(1)))
    return Response(204)


def _create(state: ZendeskState, request: Request, match: re.Match[str]) -> Response:
    data = _ticket_body(request)
    comment = data.get("comment") or {}
    if not (data.get("description") or comment.get("body") or comment.get("html_body")):
        raise ZendeskError(422, {
            "error": "RecordInvalid", "description": "Record validation errors",
            "details": {"description": [{"description": "Description: cannot be blank",
                                         "error": "BlankValue"}]},
        })  # fmt: skip
    data.pop("id", None)
    ticket, audit = state.create_ticket_with_audit(
        data, channel="api", author_id=state.api_author_id
    )
    return Response(201, {"ticket": ticket, "audit": audit}, {"Location": ticket["url"]})


def _list_of(state: ZendeskState, key: str, items: list[dict[str, Any]]) -> Response:
    return Response(
        200, {key: items, "next_page": None, "previous_page": None, "count": len(items)}
    )


def _comments(state: ZendeskState, request: Request, match: re.Match[str]) -> Response:
    """Sorted (``sort`` / ``sort_order``) and paginated (``page[size]``, ``page[after]``) as
    ``sandbox.zendesk_people.comment_page`` describes."""
    from sandbox.zendesk_people import comment_page  # it builds on this module's errors

    ticket_id = int(match.group(1))
    params = {name: request.param(name)
              for name in ("sort", "sort_order", "page[size]", "page[after]")}
    return Response(200, comment_page(
        state.comments(ticket_id), params,
        f"{state.base_url}/api/v2/tickets/{ticket_id}/comments.json"))


def _audits(state: ZendeskState, request: Request, match: re.Match[str]) -> Response:
    return _list_of(state, "audits", state.audits(int(match.group(1))))


def _list(state: ZendeskState, request: Request, match: re.Match[str]) -> Response:
    """``GET /tickets.json``: only the ``external_id`` filter Switchboard uses is served (one
    page); without it, every live ticket (no pagination: the stand-in holds few)."""
    external_id = request.param("external_id")
    tickets = state.tickets() if external_id is None \
        else state.tickets_by_external_id(external_id)
    return _list_of(state, "tickets", tickets)


def _ids_param(request: Request) -> list[int]:
    raw = request.param("ids") or ""
    try:
        ids = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError as exc:
        raise ZendeskError(400, error_body(400, f"Invalid ids: {raw!r}")) from exc
    if len(ids) > MAX_BULK:
        message = f"Too many values in ids (max {MAX_BULK})"
        raise ZendeskError(400, {"error": "TooManyValues", "description": message})
    return ids


def _users_show_many(state: ZendeskState, request: Request, match: re.Match[str]) -> Response:
    users = []
    for user_id in _ids_param(request):
        try:
            users.append(state.user(user_id))
        except ZendeskError:
            continue
    return _list_of(state, "users", users)


def _show_many(state: ZendeskState, request: Request, match: re.Match[str]) -> Response:
    tickets = []
    for ticket_id in _ids_param(request):
        try:
            tickets.append(state.ticket(ticket_id))
        except ZendeskError:
            continue
    return _list_of(state, "tickets", tickets)


def _update_many(state: ZendeskState, request: Request, match: re.Match[str]) -> Response:
    """``PUT /tickets/update_many.json``: ``{"tickets": [{id, ...}]}`` or ``?ids=`` with one
    ``{"ticket": {...}}`` for all. Applied at once; answered with a queued JobStatus."""
    if request.json_error or not isinstance(request.json, dict):
        raise ZendeskError(400, error_body(400, "Expected a JSON object"))
    if "tickets" in request.json:
        updates = [dict(item) for item in request.json["tickets"] or []]
    else:
        common = _ticket_body(request)
        updates = [{**common, "id": ticket_id} for ticket_id in _ids_param(request)]
    if len(updates) > MAX_BULK:
        raise ZendeskError(400, {"error": "TooManyValues",
                                 "description": f"Too many tickets (max {MAX_BULK})"})  # fmt: skip
    results = []
    for update in updates:
        ticket_id = int(update.pop("id"))
        try:
            state.apply_update(ticket_id, update, author_id=state.api_author_id, channel="api")
            results.append({"id": ticket_id, "action": "update", "status": "Updated",
                            "success": True})  # fmt: skip
        except ZendeskError as exc:
            results.append({"id": ticket_id, "action": "update", "status": "Failed",
                            "success": False, "error": exc.body.get("error"),
                            "details": exc.body.get("description")})  # fmt: skip
    return Response(200, {"job_status": state.add_job(results)})


def _job_status(state: ZendeskState, request: Request, match: re.Match[str]) -> Response:
    job = state.job(match.group(1))
    if job is None:
        return Response(404, error_body(404))
    return Response(200, {"job_status": job})


def _export(state: ZendeskState, request: Request, match: re.Match[str]) -> Response:
    """Cursor-based incremental ticket export (``start_time=`` first, then ``cursor=``)."""
    per_page_raw = request.param("per_page")
    try:
        per_page = min(int(per_page_raw), MAX_PER_PAGE) if per_page_raw else MAX_PER_PAGE
        if per_page < 1:
            raise ValueError(per_page_raw)
    except ValueError as exc:
        raise ZendeskError(400, {"error": "InvalidPaginationParameter",
                                 "description": f"Invalid per_page: {per_page_raw!r}"}) from exc
    cursor, start_time = request.param("cursor"), request.param("start_time")
    if cursor:
        try:
            after = state.decode_cursor(cursor)
        except ValueError as exc:
            raise ZendeskError(400, {"error": "InvalidPaginationParameter",
                                     "description": "Invalid cursor"}) from exc
    elif start_time:
        try:
            after = (int(start_time), -1)
        except ValueError as exc:
            raise ZendeskError(400, {"error": "InvalidValue",
                                     "description": "start_time must be a unix timestamp"}) from exc
        if state.export_exclude_recent_seconds > 0:
            horizon = state.clock().timestamp() - state.export_exclude_recent_seconds
            if after[0] > horizon:
                raise ZendeskError(400, {
                    "error": "InvalidValue",
                    "description": "Too recent start_time. Use a start_time at least "
                    f"{int(state.export_exclude_recent_seconds)} seconds prior to the current "
                    "time.",
                })  # fmt: skip
    else:
        raise ZendeskError(400, {"error": "InvalidPaginationParameter",
                                 "description": "start_time or cursor is required"})  # fmt: skip
    tickets, position, end = state.export(after, per_page)
    include = _include(request)
    tickets = [state.with_slas(ticket, include) for ticket in tickets]
    after_cursor = state.encode_cursor(position)
    after_url = (
        f"{state.base_url}/api/v2/incremental/tickets/cursor.json"
        f"?cursor={quote(after_cursor, safe='')}"
    )
    if per_page_raw:
        after_url += f"&per_page={per_page}"
    return Response(200, {
        "tickets": tickets,
        "after_cursor": after_cursor,
        "after_url": after_url,
        "before_cursor": None,
        "before_url": None,
        "end_of_stream": end,
    })  # fmt: skip


_TICKET = r"^/api/v2/tickets/(\d+)(?:\.json)?$"
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    ("GET", re.compile(r"^/api/v2/tickets/show_many(?:\.json)?$"), _show_many),
    ("PUT", re.compile(r"^/api/v2/tickets/update_many(?:\.json)?$"), _update_many),
    ("GET", re.compile(_TICKET), _show),
    ("PUT", re.compile(_TICKET), _update),
    ("DELETE", re.compile(_TICKET), _delete),
    ("POST", re.compile(r"^/api/v2/tickets(?:\.json)?$"), _create),
    ("GET", re.compile(r"^/api/v2/tickets(?:\.json)?$"), _list),
    ("GET", re.compile(r"^/api/v2/tickets/(\d+)/comments(?:\.json)?$"), _comments),
    ("GET", re.compile(r"^/api/v2/tickets/(\d+)/audits(?:\.json)?$"), _audits),
    ("GET", re.compile(r"^/api/v2/job_statuses/([^/]+?)(?:\.json)?$"), _job_status),
    ("GET", re.compile(r"^/api/v2/users/me(?:\.json)?$"), _me),
    ("GET", re.compile(r"^/api/v2/users/show_many(?:\.json)?$"), _users_show_many),
    ("GET", re.compile(r"^/api/v2/users/(\d+)(?:\.json)?$"), _user),
    ("GET", re.compile(r"^/api/v2/organizations/(\d+)(?:\.json)?$"), _organization),
    ("GET", re.compile(r"^/api/v2/incremental/tickets/cursor(?:\.json)?$"), _export),
]


def handle(state: ZendeskState, request: Request) -> Response:
    """Authenticate, rate-limit and route one request."""
    credentials = basic_auth(request)
    if credentials is None or not state.credentials_ok(*credentials):
        return Response(401, error_body(401), {"WWW-Authenticate": 'Basic realm="Web Password"'})
    headers, retry_after = state.rate_limit_check()
    if retry_after is not None:
        return Response(429, error_body(429), {**headers, "Retry-After": str(retry_after)})
    for method, pattern, handler in ROUTES:
        match = pattern.match(request.path)
        if match is not None and method == request.method:
            try:
                response = handler(state, request, match)
            except ZendeskError as exc:
                response = Response(exc.status, exc.body)
            response.headers.update(headers)
            return response
    return Response(404, {"error": "InvalidEndpoint", "description": "Not found"}, headers)
