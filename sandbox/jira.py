"""The Jira Cloud stand-in's state: projects, issues, comments, remote links and a search index
that lags behind writes (see ``api-notes/jira.md``).

Search lag: every write records a version of the issue; ``/search/jql`` sees, for each issue,
the latest version written at least ``search_lag`` seconds ago (an issue younger than that is
invisible), except for issues named in ``reconcileIssues``, which are read at their current state.
Tests simulate engineers with :meth:`JiraState.transition` and :meth:`JiraState.add_comment`.

Workflow: the REST API moves an issue only through the transitions the workflow offers from its
status (``sandbox.jira_workflow``; :meth:`JiraState.set_workflow`); :meth:`JiraState.transition`
is an engineer's move and ignores it. Every status or priority change is kept in the issue's
changelog (:meth:`JiraState.changelog`) with the account that made it — the API user's for REST
writes — so that tests can build the webhook Jira would send.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sandbox import jira_api, jql
from sandbox.base import Request, Response, jira_timestamp, parse_timestamp, utc_now
from sandbox.jira_api import JiraError, errors
from sandbox.jira_issues import (
    CATEGORIES,
    EXTRA_FIELDS,
    ISSUE_TYPES,
    PRIORITIES,
    check_fields,
    named,
    render,
    view,
)
from sandbox.jira_workflow import (
    DEFAULT_WORKFLOW,
    WorkflowTransition,
    offered,
    render_transition,
)

_VERSIONS_KEPT = 50
#: The account the simulated engineer acts as (tests' webhooks name it too).
ENGINEER = "5b10ac8d82e05b22cc7d4ef5"

__all__ = ["ENGINEER", "JiraError", "JiraState"]

class JiraState:
    """Projects and issues behind one lock. Tests may set ``clock`` and ``search_lag``."""

    vendor = "jira"

    def __init__(self, projects: tuple[str, ...] = ("SUP",), search_lag: float = 0.0) -> None:
        self.lock = threading.RLock()
        self.base_url = "https://sandbox.atlassian.net"
        self.search_lag = search_lag
        self.clock: Callable[[], datetime] = utc_now
        self.account_id = "5b10a2844c20165700ede21g"
        self._projects = {
            key: {"id": str(10000 + index), "key": key, "name": f"{key} project"}
            for index, key in enumerate(projects)
        }
        self._issues: dict[str, dict[str, Any]] = {}
        self._keys: dict[str, str] = {}
        self._counters = {key: 0 for key in projects}
        self._versions: dict[str, list[tuple[float, dict[str, Any]]]] = {}
        self._links: dict[str, list[dict[str, Any]]] = {}
        self._comments: dict[str, list[dict[str, Any]]] = {}
        self._issue_links: list[dict[str, str]] = []
        self._workflow: tuple[WorkflowTransition, ...] = DEFAULT_WORKFLOW
        self._changelog: dict[str, list[dict[str, Any]]] = {}
        self._status_ids = {"To Do": "10000", "In Progress": "3", "Done": "10001"}
        self._next = {"issue": 10001, "link": 10000, "comment": 10000, "changelog": 20000}
        self._credentials: tuple[str, str] | None = None

    # -- configuration -----------------------------------------------------------------------

    def set_base_url(self, url: str) -> None:
        """Set the URL the state is served at (``self`` links and ``serverInfo.baseUrl``)."""
        with self.lock:
            self.base_url = url.rstrip("/")

    def set_search_lag(self, seconds: float) -> None:
        """How long a write stays invisible to ``/search/jql`` (applies to past writes too)."""
        with self.lock:
            self.search_lag = seconds

    def set_workflow(self, transitions: tuple[WorkflowTransition, ...]) -> None:
        """Replace the workflow the REST API's transitions follow."""
        with self.lock:
            self._workflow = tuple(transitions)

    def require_credentials(self, email: str, token: str) -> None:
        """Accept only this email/API-token pair (by default any non-empty pair is accepted)."""
        with self.lock:
            self._credentials = (email, token)

    def credentials_ok(self, user: str, password: str) -> bool:
        """Whether Basic credentials are acceptable."""
        with self.lock:
            if self._credentials is not None:
                return (user, password) == self._credentials
        return bool(user) and bool(password)

    def handle(self, request: Request) -> Response:
        """Serve one REST request (see ``sandbox.jira_api``)."""
        return jira_api.handle(self, request)

    def error_body(self, status: int, message: str | None = None) -> dict[str, Any]:
        """A Jira-shaped error body for ``status``."""
        return jira_api.error_body(status, message)

    # -- internals ---------------------------------------------------------------------------

    def _id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] = value + 1
        return value

    def _find(self, id_or_key: str) -> dict[str, Any]:
        ident = self._keys.get(str(id_or_key).upper(), str(id_or_key))
        record = self._issues.get(ident)
        if record is None:
            raise JiraError(404, errors(
                "Issue does not exist or you do not have permission to see it."
            ))  # fmt: skip
        return record

    def _touch(self, record: dict[str, Any]) -> None:
        """A write: strictly later ``updated`` (ms resolution), and a new search-index version."""
        moment = self.clock()
        if record.get("updated") is not None and moment <= record["updated"]:
            moment = record["updated"] + timedelta(milliseconds=1)
        record["updated"] = moment
        versions = self._versions.setdefault(record["id"], [])
        versions.append((time.monotonic(), copy.deepcopy(record)))
        del versions[:-_VERSIONS_KEPT]

    def _status_id(self, name: str) -> str:
        if name not in self._status_ids:
            self._status_ids[name] = str(10100 + len(self._status_ids))
        return self._status_ids[name]

    def _known(self, ref: Any) -> bool:
        return self.project(ref) is not None

    def project(self, ref: Any) -> dict[str, str] | None:
        """The project with this key or id (None if unknown)."""
        if ref is None:
            return None
        text = str(ref)
        return next(
            (p for p in self._projects.values() if text.upper() == p["key"] or text == p["id"]),
            None,
        )

    # -- issues ------------------------------------------------------------------------------

    def create_issue(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Create an issue from REST ``fields`` and return ``{"id", "key", "self"}``.
        Raises JiraError(400) listing every invalid field, as Jira does."""
        with self.lock:
            problems = check_fields(fields, creating=True, project_known=self._known)
            if problems:
                raise JiraError(400, {"errorMessages": [], "errors": problems})
            project = fields["project"]
            ref = project.get("key") or project.get("id") if isinstance(project, dict) else project
            proj = self.project(ref)
            assert proj is not None
            self._counters[proj["key"]] += 1
            issue_id = str(self._id("issue"))
            key = f"{proj['key']}-{self._counters[proj['key']]}"
            now = self.clock()
            record: dict[str, Any] = {
                "id": issue_id,
                "key": key,
                "project": dict(proj),
                "summary": fields["summary"],
                "description": fields.get("description"),
                "labels": list(fields.get("labels") or []),
                "priority": named(fields.get("priority") or "Medium", PRIORITIES),
                "issuetype": named(fields["issuetype"], ISSUE_TYPES),
                "status": "To Do",
                "category": "new",
                "resolution": None,
                "resolutiondate": None,
                "created": now,
                "updated": None,
                "extra": {k: v for k, v in fields.items() if k in EXTRA_FIELDS
                          or k.startswith("customfield_")},
            }  # fmt: skip
            self._touch(record)
            self._issues[issue_id] = record
            self._keys[key] = issue_id
            url = f"{self.base_url}/rest/api/2/issue/{issue_id}"
            return {"id": issue_id, "key": key, "self": url}

    def edit_issue(self, id_or_key: str, fields: dict[str, Any], *,
                   account_id: str = ENGINEER) -> dict[str, Any]:
        """Edit fields as ``PUT /issue/{key}`` does (by default as an engineer; the API edits
        as the API user); returns the issue JSON. Raises JiraError."""
        with self.lock:
            record = self._find(id_or_key)
            problems = check_fields(fields, creating=False, project_known=self._known)
            for name in ("project", "issuetype"):
                if name in fields:
                    problems[name] = f"Field '{name}' cannot be changed by the sandbox."
            if problems:
                raise JiraError(400, {"errorMessages": [], "errors": problems})
            before = record["priority"]
            for name, value in fields.items():
                if name == "priority":
                    record["priority"] = named(value, PRIORITIES) if value else "Medium"
                elif name == "labels":
                    record["labels"] = list(value or [])
                elif name in ("summary", "description"):
                    record[name] = value
                else:
                    record["extra"][name] = value
            self._touch(record)
            self._log(record, account_id, "priority", PRIORITIES, before, record["priority"])
            return self.render(record)

    def delete_issue(self, id_or_key: str) -> None:
        """Simulate an issue deleted in Jira: gone from reads and searches. Raises JiraError."""
        with self.lock:
            record = self._find(id_or_key)
            del self._issues[record["id"]]
            self._keys.pop(record["key"].upper(), None)
            self._versions.pop(record["id"], None)

    def transition(self, id_or_key: str, status_name: str, category_key: str, *,
                   account_id: str = ENGINEER) -> dict[str, Any]:
        """Simulate an engineer moving an issue to ``status_name`` in category ``category_key``
        (``new`` / ``indeterminate`` / ``done``), whatever the workflow says; returns the issue
        JSON."""
        if category_key not in CATEGORIES:
            raise ValueError(f"unknown category {category_key!r}; expected {list(CATEGORIES)}")
        with self.lock:
            return self._move(self._find(id_or_key), status_name, category_key, account_id)

    def _move(self, record: dict[str, Any], status_name: str, category_key: str,
              account_id: str) -> dict[str, Any]:
        before = record["status"]
        record["status"], record["category"] = status_name, category_key
        done = category_key == "done"
        record["resolution"] = "Done" if done else None
        record["resolutiondate"] = self.clock() if done else None
        self._touch(record)
        self._log(record, account_id, "status", None, before, status_name)
        return self.render(record)

    def _log(self, record: dict[str, Any], account_id: str, field: str,
             ids: dict[str, str] | None, before: str, after: str) -> None:
        """After a write (``_touch``): when ``field`` changed, a changelog entry."""
        if before == after:
            return
        ident = (lambda name: ids.get(name)) if ids is not None else self._status_id
        self._changelog.setdefault(record["id"], []).append({
            "id": str(self._id("changelog")), "accountId": account_id,
            "created": jira_timestamp(record["updated"]),
            "items": [{"field": field, "fieldtype": "jira", "fieldId": field,
                       "from": ident(before), "fromString": before,
                       "to": ident(after), "toString": after}]})

    def changelog(self, id_or_key: str) -> list[dict[str, Any]]:
        """The issue's status and priority changes, oldest first: ``{"id", "accountId",
        "created", "items": [...]}`` each (items as a webhook's ``changelog.items``)."""
        with self.lock:
            return copy.deepcopy(self._changelog.get(self._find(id_or_key)["id"], []))

    def issue_updated_webhook(self, id_or_key: str, entry: int = -1) -> dict[str, Any]:
        """The ``jira:issue_updated`` delivery Jira sends for changelog ``entry`` of an issue
        (by default its latest): ``user`` is the account that made the change (the API user
        for REST writes), ``issue`` the issue as it is now."""
        with self.lock:
            record = self._find(id_or_key)
            change = self._changelog.get(record["id"], [])[entry]
            account = change["accountId"]
            name = "Switchboard" if account == self.account_id else "Sandbox Engineer"
            at = parse_timestamp(change["created"])
            return {
                "timestamp": int(at.timestamp() * 1000), "webhookEvent": "jira:issue_updated",
                "issue_event_type_name": "issue_generic",
                "user": {"self": f"{self.base_url}/rest/api/2/user?accountId={account}",
                         "accountId": account, "displayName": name, "active": True,
                         "accountType": "atlassian"},
                "issue": self.render(record),
                "changelog": {"id": change["id"], "items": copy.deepcopy(change["items"])},
            }  # fmt: skip

    def transitions(self, id_or_key: str, transition_id: str | None = None) -> dict[str, Any]:
        """``GET /issue/{key}/transitions``: what the workflow offers from the issue's status
        (only ``transition_id``, or nothing, when one is asked for). Raises JiraError(404)."""
        with self.lock:
            record = self._find(id_or_key)
            found = [t for t in offered(self._workflow, record["status"])
                     if transition_id is None or t.id == str(transition_id)]
            rendered = [render_transition(t, self.base_url, self._status_id(t.to),
                                          CATEGORIES[t.category]) for t in found]
            return {"expand": "transitions", "transitions": rendered}

    def do_transition(self, id_or_key: str, body: dict[str, Any]) -> None:
        """``POST /issue/{key}/transitions`` as the API user. Raises JiraError: 404 for an
        unknown issue, 400 for a missing transition, one the issue's status does not offer, or
        fields (this workflow's transitions have no screen)."""
        with self.lock:
            record = self._find(id_or_key)
            transition = body.get("transition")
            ident = transition.get("id") if isinstance(transition, dict) else None
            if ident is None or str(ident).strip() == "":
                raise JiraError(400, errors("You must specify a transition to perform."))
            chosen = next((t for t in offered(self._workflow, record["status"])
                           if t.id == str(ident)), None)
            if chosen is None:
                raise JiraError(400, errors(f"Transition id '{ident}' is not valid for this "
                                            "issue."))
            fields = body.get("fields") or {}
            if not isinstance(fields, dict):
                raise JiraError(400, errors("Operation value must be an object."))
            if fields:
                raise JiraError(400, {"errorMessages": [], "errors": {
                    name: f"Field '{name}' cannot be set. It is not on the appropriate "
                    "screen, or unknown." for name in fields}})
            self._move(record, chosen.to, chosen.category, self.account_id)

    def add_comment(
        self, id_or_key: str, body: str, *, author_name: str = "Sandbox Engineer",
        account_id: str = ENGINEER,
    ) -> dict[str, Any]:  # fmt: skip
        """Add a comment (by default as an engineer; the API adds them as the API user)."""
        with self.lock:
            record = self._find(id_or_key)
            comment_id = str(self._id("comment"))
            author = {
                "accountId": account_id, "displayName": author_name, "active": True,
                "self": f"{self.base_url}/rest/api/2/user?accountId={account_id}",
            }  # fmt: skip
            self._touch(record)
            stamp = jira_timestamp(record["updated"])
            comment = {
                "self": f"{self.base_url}/rest/api/2/issue/{record['id']}/comment/{comment_id}",
                "id": comment_id, "author": author, "body": body, "updateAuthor": author,
                "created": stamp, "updated": stamp, "jsdPublic": True,
            }  # fmt: skip
            self._comments.setdefault(record["id"], []).append(comment)
            return copy.deepcopy(comment)

    def edit_comment(self, id_or_key: str, comment_id: str, body: str) -> dict[str, Any]:
        """Replace a comment's body (``PUT /issue/{key}/comment/{id}``). Raises JiraError(404)
        for an unknown issue or comment."""
        with self.lock:
            record = self._find(id_or_key)
            for comment in self._comments.get(record["id"], []):
                if comment["id"] == str(comment_id):
                    self._touch(record)
                    comment["body"] = body
                    comment["updated"] = jira_timestamp(record["updated"])
                    return copy.deepcopy(comment)
            raise JiraError(404, errors("Can not find a comment for the id: "
                                        f"{comment_id}."))

    def link_issues(self, type_name: str, inward: str, outward: str) -> None:
        """``POST /issueLink``: link two issues (the same link twice is kept once).
        Raises JiraError(404) for an unknown issue, (400) for an unknown link type."""
        if type_name not in ("Relates", "Blocks", "Duplicate", "Cloners"):
            raise JiraError(400, errors(f"No issue link type with name '{type_name}' found."))
        with self.lock:
            link = {"type": type_name, "inward": self._find(inward)["key"],
                    "outward": self._find(outward)["key"]}
            if link not in self._issue_links:
                self._issue_links.append(link)

    def issue_links(self, id_or_key: str) -> list[dict[str, str]]:
        """The issue links that involve an issue: ``{"type", "inward", "outward"}`` each."""
        with self.lock:
            key = self._find(id_or_key)["key"]
            return [dict(link) for link in self._issue_links if key in link.values()]

    def delete_comment(self, id_or_key: str, comment_id: str) -> None:
        """Simulate someone deleting a comment in Jira."""
        with self.lock:
            record = self._find(id_or_key)
            self._comments[record["id"]] = [c for c in self._comments.get(record["id"], [])
                                            if c["id"] != str(comment_id)]

    def upsert_remote_link(
        self, id_or_key: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Create or replace (same ``globalId``) a remote link: ({"id", "self"}, created?)."""
        with self.lock:
            record = self._find(id_or_key)
            obj = body.get("object")
            if not isinstance(obj, dict) or not obj.get("url") or not obj.get("title"):
                raise JiraError(400, {"errorMessages": [], "errors": {
                    "object": "A remote link needs object.url and object.title."}})  # fmt: skip
            links = self._links.setdefault(record["id"], [])
            global_id = body.get("globalId")
            existing = next((k for k in links if global_id and k["globalId"] == global_id), None)
            link_id = existing["id"] if existing else self._id("link")
            link = {
                "id": link_id,
                "self": f"{self.base_url}/rest/api/2/issue/{record['key']}/remotelink/{link_id}",
                "globalId": global_id,
                "application": body.get("application"),
                "relationship": body.get("relationship"),
                "object": {k: obj.get(k) for k in ("url", "title", "summary", "icon", "status")},
            }
            if existing is not None:
                links[links.index(existing)] = link
            else:
                links.append(link)
            return {"id": link_id, "self": link["self"]}, existing is None

    def issues(self) -> list[dict[str, Any]]:
        """Every issue's current JSON, in creation order."""
        with self.lock:
            records = sorted(self._issues.values(), key=lambda r: int(r["id"]))
            return [self.render(r) for r in records]

    def issue(self, id_or_key: str, fields: list[str] | None = None) -> dict[str, Any]:
        """One issue's current JSON (``fields`` as in :meth:`render`). Raises JiraError(404)."""
        with self.lock:
            return self.render(self._find(id_or_key), fields)

    def remote_links(self, id_or_key: str) -> list[dict[str, Any]]:
        """Copies of an issue's remote links, oldest first."""
        with self.lock:
            return copy.deepcopy(self._links.get(self._find(id_or_key)["id"], []))

    def comments(self, id_or_key: str) -> list[dict[str, Any]]:
        """Copies of an issue's comments, oldest first."""
        with self.lock:
            return copy.deepcopy(self._comments.get(self._find(id_or_key)["id"], []))

    # -- rendering and search ----------------------------------------------------------------

    def render(self, record: dict[str, Any], fields: list[str] | None = None) -> dict[str, Any]:
        """Issue JSON for a record or past version (see ``sandbox.jira_issues.render``)."""
        return render(record, self.base_url, self._status_id(record["status"]), fields)

    def view(self, record: dict[str, Any]) -> dict[str, Any]:
        """The flat values JQL clauses test (see ``sandbox.jql``)."""
        return view(record, self._status_id(record["status"]))

    def search(
        self, query_text: str, *, reconcile: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """The records (as search sees them now) matching ``query_text``, ordered.
        Raises JiraError(400) for JQL outside the supported subset or naming unknown projects."""
        with self.lock:
            try:
                query = jql.parse(query_text, self.clock())
            except jql.JQLError as exc:
                raise JiraError(400, errors(str(exc))) from exc
            for clause in query.clauses:
                if clause.field == "key" and clause.op in ("=", "in"):
                    # Jira refuses the whole search when a named issue does not exist.
                    for value in clause.values:
                        ident = self._keys.get(str(value).upper(), str(value))
                        if ident not in self._issues:
                            raise JiraError(400, errors(
                                f"An issue with key '{value}' does not exist for field "
                                "'key'."))
                if clause.field == "project":
                    for value in clause.values:
                        if self.project(value) is None and not any(
                            p["name"].lower() == value.lower() for p in self._projects.values()
                        ):
                            raise JiraError(400, errors(
                                f"The value '{value}' does not exist for the field 'project'."))
            horizon = time.monotonic() - self.search_lag
            fresh = {str(r) for r in reconcile or []}
            hits = []
            for issue_id, record in self._issues.items():
                if issue_id not in fresh:
                    visible = [v for t, v in self._versions[issue_id] if t <= horizon]
                    if not visible:
                        continue
                    record = visible[-1]
                if jql.matches(query, self.view(record)):
                    hits.append(record)
            for order in reversed(jql.ordering(query)):
                hits.sort(key=_order_key(order.field), reverse=order.descending)
            return [copy.deepcopy(r) for r in hits]


def _order_key(field: str) -> Callable[[dict[str, Any]], Any]:
    if field == "key":
        return lambda r: (r["project"]["key"], int(r["key"].rsplit("-", 1)[1]))
    return lambda r: r[field]
