"""HTTP routes of the Jira Cloud stand-in: REST v2 paths as the ``jira`` 3.10 client calls them.

Auth is Basic (email, API token); errors use Jira's ``{"errorMessages": [...], "errors": {...}}``.
The removed ``/rest/api/{2,3,latest}/search`` answers 410 with Atlassian's exact body.
The state lives in ``sandbox.jira.JiraState``; this module only translates HTTP.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from sandbox.base import Request, Response, basic_auth, jira_timestamp

if TYPE_CHECKING:
    from sandbox.jira import JiraState

__all__ = ["REMOVED_SEARCH_BODY", "JiraError", "error_body", "errors", "handle"]

DEFAULT_MAX_RESULTS = 50
MAX_RESULTS = 100
REMOVED_SEARCH_BODY = {
    "errorMessages": [
        "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
        "A full migration guideline is available at "
        "https://developer.atlassian.com/changelog/#CHANGE-2046"
    ],
    "errors": {},
}


class JiraError(ValueError):
    """A request Jira would refuse: ``status`` and the Jira-shaped error ``body``."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


def errors(*messages: str) -> dict[str, Any]:
    """A Jira error body carrying ``messages`` in ``errorMessages``."""
    return {"errorMessages": list(messages), "errors": {}}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """A Jira-shaped error body for ``status``."""
    if message is None:
        message = {
            401: "You are not authenticated. Authentication required to perform this operation.",
            404: "Issue does not exist or you do not have permission to see it.",
            429: "Rate limit exceeded.",
        }.get(status)
    if message is None:
        try:
            message = HTTPStatus(status).phrase
        except ValueError:
            message = "Error"
    return errors(message)


def _fields_list() -> list[dict[str, Any]]:
    def field(ident: str, name: str, schema: dict[str, Any], *, orderable: bool = True,
              navigable: bool = True, searchable: bool = True) -> dict[str, Any]:  # fmt: skip
        return {"id": ident, "key": ident, "name": name, "custom": False, "orderable": orderable,
                "navigable": navigable, "searchable": searchable,
                "clauseNames": [ident], "schema": {**schema, "system": ident}}  # fmt: skip

    return [
        field("summary", "Summary", {"type": "string"}),
        field("description", "Description", {"type": "string"}),
        field("labels", "Labels", {"type": "array", "items": "string"}),
        field("priority", "Priority", {"type": "priority"}),
        field("status", "Status", {"type": "status"}, orderable=False),
        field("issuetype", "Issue Type", {"type": "issuetype"}),
        field("project", "Project", {"type": "project"}),
        field("created", "Created", {"type": "datetime"}, orderable=False),
        field("updated", "Updated", {"type": "datetime"}, orderable=False),
        field("fixVersions", "Fix versions", {"type": "array", "items": "version"}),
        field("resolution", "Resolution", {"type": "resolution"}),
        field("resolutiondate", "Resolved", {"type": "datetime"}, orderable=False),
        field("environment", "Environment", {"type": "string"}),
    ]


def _body(request: Request) -> dict[str, Any]:
    if request.json_error or not isinstance(request.json, dict):
        raise JiraError(400, errors("Unexpected character: the body is not a JSON object."))
    return request.json


Handler = Callable[["JiraState", Request, re.Match[str]], Response]


def _server_info(state: JiraState, request: Request, match: re.Match[str]) -> Response:
    return Response(200, {
        "baseUrl": state.base_url, "displayUrl": state.base_url,
        "version": "1001.0.0-SNAPSHOT", "versionNumbers": [1001, 0, 0],
        "deploymentType": "Cloud", "buildNumber": 100289,
        "buildDate": "2026-01-01T00:00:00.000+0000", "serverTime": jira_timestamp(state.clock()),
        "scmInfo": "0000000000000000000000000000000000000000", "serverTitle": "Jira",
        "defaultLocale": {"locale": "en_US"}, "serverTimeZone": "Etc/UTC",
    })  # fmt: skip


def _myself(state: JiraState, request: Request, match: re.Match[str]) -> Response:
    return Response(200, {
        "accountId": state.account_id, "accountType": "atlassian", "displayName": "Switchboard",
        "active": True, "self": f"{state.base_url}/rest/api/2/user?accountId={state.account_id}",
    })  # fmt: skip


def _project(state: JiraState, request: Request, match: re.Match[str]) -> Response:
    from sandbox.jira_issues import ISSUE_TYPES

    proj = state.project(match.group(1))
    if proj is None:
        return Response(404, errors(f"No project could be found with key '{match.group(1)}'."))
    types = [{"id": ident, "name": name, "subtask": name == "Sub-task",
              "self": f"{state.base_url}/rest/api/2/issuetype/{ident}"}
             for name, ident in ISSUE_TYPES.items()]  # fmt: skip
    return Response(200, {**proj, "self": f"{state.base_url}/rest/api/2/project/{proj['id']}",
                          "projectTypeKey": "software", "issueTypes": types})  # fmt: skip


def _create(state: JiraState, request: Request, match: re.Match[str]) -> Response:
    fields = _body(request).get("fields")
    if not isinstance(fields, dict):
        raise JiraError(400, errors("The request must contain a 'fields' object."))
    return Response(201, state.create_issue(fields))


def _get_issue(state: JiraState, request: Request, match: re.Match[str]) -> Response:
    fields = _split(request.query.get("fields"))
    return Response(200, state.issue(match.group(1), fields or None))


def _edit_issue(state: JiraState, request: Request, match: re.Match[str]) -> Response:
    fields = _body(request).get("fields") or {}
    state.edit_issue(match.group(1), fields, account_id=state.account_id)
    return Response(204)


def _transitions(state: JiraState, request: Request, match: re.Match[str]) -> Response:
    if request.method == "GET":
        wanted = request.query.get("transitionId")
        return Response(200, state.transitions(match.group(1), wanted[-1] if wanted else None))
    state.do_transition(match.group(1), _body(request))
    return Response(204)


def _remote_links(state: JiraState, request: Request, match: re.Match[str]) -> Response:
    if request.method == "GET":
        return Response(200, state.remote_links(match.group(1)))
    result, created = state.upsert_remote_link(match.group(1), _body(request))
    return Response(201 if created else 200, result)


def _comments(state: JiraState, request: Request, match: re.Match[str]) -> Response:
    if request.method == "GET":
        comments = state.comments(match.group(1))
        return Response(200, {"startAt": 0, "maxResults": max(len(comments), 50),
                              "total": len(comments), "comments": comments})  # fmt: skip
    body = _body(request).get("body")
    if not isinstance(body, str) or not body.strip():
        problem = {"comment": "Comment body can not be empty!"}
        raise JiraError(400, {"errorMessages": [], "errors": problem})
    comment = state.add_comment(match.group(1), body, author_name="Switchboard",
                                account_id=state.account_id)  # fmt: skip
    return Response(201, comment)


def _edit_comment(state: JiraState, request: Request, match: re.Match[str]) -> Response:
    body = _body(request).get("body")
    if not isinstance(body, str) or not body.strip():
        problem = {"comment": "Comment body can not be empty!"}
        raise JiraError(400, {"errorMessages": [], "errors": problem})
    return Response(200, state.edit_comment(match.group(1), match.group(2), body))


def _issue_link(state: JiraState, request: Request, match: re.Match[str]) -> Response:
    body = _body(request)
    kind, inward, outward = body.get("type"), body.get("inwardIssue"), body.get("outwardIssue")
    if not all(isinstance(x, dict) for x in (kind, inward, outward)):
        raise JiraError(400, errors("type, inwardIssue and outwardIssue are required."))
    assert isinstance(kind, dict) and isinstance(inward, dict) and isinstance(outward, dict)
    state.link_issues(str(kind.get("name")), str(inward.get("key") or inward.get("id")),
                      str(outward.get("key") or outward.get("id")))
    return Response(201)


def _applinks(state: JiraState, request: Request, match: re.Match[str]) -> Response:
    return Response(200, {"list": []})


def _removed(state: JiraState, request: Request, match: re.Match[str]) -> Response:
    return Response(410, REMOVED_SEARCH_BODY)


def _split(values: Any) -> list[str]:
    """A ``fields`` / ``reconcileIssues`` parameter as a flat list (lists or comma strings)."""
    if values is None:
        return []
    items = values if isinstance(values, list) else [values]
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def _page_token(jql: str, offset: int) -> str:
    digest = hashlib.sha1(jql.encode()).hexdigest()[:12]
    return base64.urlsafe_b64encode(f"{offset}:{digest}".encode()).decode().rstrip("=")


def _token_offset(jql: str, token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        offset, digest = text.split(":")
        if digest == hashlib.sha1(jql.encode()).hexdigest()[:12] and int(offset) >= 0:
            return int(offset)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise JiraError(400, errors("The provided next page token is invalid or expired."))


def _search(state: JiraState, request: Request, match: re.Match[str]) -> Response:
    """Enhanced search: ``jql``, ``nextPageToken``, ``maxResults``, ``fields``,
    ``reconcileIssues`` from the query (GET) or JSON body (POST)."""
    if request.method == "POST":
        params: dict[str, Any] = _body(request)
    else:
        params = {name: (values if name in ("fields", "reconcileIssues") else values[-1])
                  for name, values in request.query.items()}  # fmt: skip
    jql = str(params.get("jql") or "")
    try:
        raw_max = params.get("maxResults")
        limit = DEFAULT_MAX_RESULTS if raw_max in (None, "") else int(raw_max)
    except (TypeError, ValueError) as exc:
        raise JiraError(400, errors(f"Invalid maxResults: {params.get('maxResults')!r}")) from exc
    limit = max(1, min(limit, MAX_RESULTS))
    token = params.get("nextPageToken")
    offset = _token_offset(jql, str(token)) if token else 0
    fields = _split(params.get("fields"))
    reconcile = _split(params.get("reconcileIssues"))
    hits = state.search(jql, reconcile=reconcile)
    page = hits[offset : offset + limit]
    with state.lock:
        issues = [state.render(r, fields) if fields else {"id": r["id"]} for r in page]
    body: dict[str, Any] = {"issues": issues, "isLast": offset + limit >= len(hits)}
    if not body["isLast"]:
        body["nextPageToken"] = _page_token(jql, offset + limit)
    return Response(200, body)


_V = r"^/rest/api/(?:2|latest)"
_ISSUE = _V + r"/issue/([^/]+)"
ROUTES: list[tuple[tuple[str, ...], re.Pattern[str], Handler]] = [
    (("GET",), re.compile(_V + r"/serverInfo$"), _server_info),
    (("GET",), re.compile(_V + r"/field$"), lambda s, r, m: Response(200, _fields_list())),
    (("GET",), re.compile(_V + r"/myself$"), _myself),
    (("GET",), re.compile(_V + r"/project/([^/]+)$"), _project),
    (("POST",), re.compile(_V + r"/issue/?$"), _create),
    (("GET",), re.compile(_ISSUE + r"$"), _get_issue),
    (("PUT",), re.compile(_ISSUE + r"$"), _edit_issue),
    (("GET", "POST"), re.compile(_ISSUE + r"/remotelink$"), _remote_links),
    (("GET", "POST"), re.compile(_ISSUE + r"/transitions$"), _transitions),
    (("GET", "POST"), re.compile(_ISSUE + r"/comment$"), _comments),
    (("PUT",), re.compile(_ISSUE + r"/comment/(\d+)$"), _edit_comment),
    (("POST",), re.compile(_V + r"/issueLink$"), _issue_link),
    (("GET",), re.compile(r"^/rest/applinks/latest/listApplicationlinks$"), _applinks),
    (("GET", "POST"), re.compile(r"^/rest/api/(?:2|3|latest)/search/jql$"), _search),
    (("GET", "POST"), re.compile(r"^/rest/api/(?:2|3|latest)/search/?$"), _removed),
    (("POST",), re.compile(r"^/rest/api/(?:2|3|latest)/search/id$"), _removed),
    (("POST",), re.compile(r"^/rest/api/(?:2|3|latest)/expression/eval$"), _removed),
]
_ANONYMOUS = re.compile(_V + r"/serverInfo$")


def handle(state: JiraState, request: Request) -> Response:
    """Authenticate and route one request."""
    if not _ANONYMOUS.match(request.path):
        credentials = basic_auth(request)
        if credentials is None or not state.credentials_ok(*credentials):
            challenge = {"WWW-Authenticate": 'Basic realm="protected-area"'}
            return Response(401, error_body(401), challenge)
    for methods, pattern, handler in ROUTES:
        match = pattern.match(request.path)
        if match is not None and request.method in methods:
            try:
                return handler(state, request, match)
            except JiraError as exc:
                return Response(exc.status, exc.body)
    return Response(404, errors(f"null for uri: {state.base_url}{request.path}"))
