"""Jira Cloud connector, built on the ``jira`` client (pycontribs).

The client is created lazily, on first use and once (thread-safe), because its constructor talks
to Jira and the hub must start while Jira is down. It runs with ``max_retries=0`` and with
:class:`connectors.http.HygieneAdapter` mounted on its own ``ResilientSession``: the adapter
raises our exceptions for every status >= 400 and every transport failure before
``ResilientSession`` can look at them, so the client never re-sends anything on its own (it would
otherwise retry 429/503 and connection errors with sleeps of up to 60 s).

Vendor JSON stops here: callers get :class:`~connectors.models.IssueRef`.
"""

from __future__ import annotations

__all__ = ["JiraConnector"]

import json
import logging
import math
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from jira import JIRA
from jira.resources import Issue

from connectors.errors import ConfigurationError, FatalError, InvalidRequestError
from connectors.http import (
    USER_AGENT,
    RateLimiter,
    install_hygiene,
    translate_transport_errors,
)
from connectors.models import BugDraft, IssueRef, IssueState, RemoteLink, Transition
from connectors.settings import JiraSettings

VENDOR = "jira"
log = logging.getLogger(__name__)

_ISSUE_KEY = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_]*-[0-9]+|[0-9]+)$")
_MAX_LABEL = 255
#: Issue keys per search (the JQL stays short; 100 results fill one page).
SEARCH_KEYS = 100
#: The fields :meth:`JiraConnector.search_updated` asks for.
STATE_FIELDS = ("status", "resolution", "priority", "fixVersions", "updated")


class JiraConnector:
    """Creates and finds Jira issues and upserts remote links on them.

    Every method raises the :mod:`connectors.errors` tree: :class:`RetriableError` (5xx,
    timeouts, connection failures; ``RateLimitedError`` for 429), :class:`AuthError`,
    :class:`NotFoundError`, :class:`InvalidRequestError` (also for a label or issue key we refuse
    to send) and :class:`ConfigurationError` (the site is not Jira Cloud).
    """

    name = VENDOR

    def __init__(self, settings: JiraSettings, *, limiter: RateLimiter | None = None) -> None:
        """Construction makes no network call; the first method call fetches ``serverInfo``."""
        self.settings = settings
        self.limiter = limiter if limiter is not None else RateLimiter(settings.requests_per_minute)
        self._client: JIRA | None = None
        self._account_id: str | None = None
        self._lock = threading.Lock()

    def browse_url(self, key: str) -> str:
        """The web URL of an issue."""
        return f"{self.settings.url}/browse/{_issue_key(key)}"

    def create_issue(self, draft: BugDraft) -> IssueRef:
        """Create an issue (exactly one ``POST /rest/api/2/issue``) and return its reference."""
        labels = [_label(label) for label in draft.labels]
        fields: dict[str, Any] = {
            # Dicts, not strings: given a str, the client first GETs the project / issue types.
            "project": {"key": draft.project},
            "issuetype": {"name": draft.issue_type},
            "summary": draft.summary,
            "description": draft.description,
            "labels": labels,
        }
        if draft.priority:
            fields["priority"] = {"name": draft.priority}
        client = self._jira()
        with translate_transport_errors(VENDOR, "create issue"):
            # prefetch=False: otherwise the client re-reads the new issue with a GET.
            issue = client.create_issue(fields=fields, prefetch=False)
        return self._ref(issue.raw, "create issue")

    def find_issue_by_label(self, label: str) -> IssueRef | None:
        """The oldest issue carrying ``label``, or ``None`` (``GET /rest/api/2/search/jql``).

        Jira search lags behind writes: a ``None`` right after an ambiguous create is not proof
        that the issue does not exist (see ``JiraSettings.search_lag_seconds``).
        """
        jql = f"labels = {_jql_string(_label(label))} ORDER BY created ASC"
        client = self._jira()
        with translate_transport_errors(VENDOR, "search issues by label"):
            result = client.enhanced_search_issues(jql, fields=["status"], maxResults=2)
        if result is None:
            # The client's @cloud_api decorator returns None (not an empty list) off Cloud.
            raise ConfigurationError(
                f"connectors.jira.url: {self.settings.url} is not Jira Cloud; "
                "issue search needs the Cloud /search/jql API"
            )
        issues = list(result)
        if not issues:
            return None
        if len(issues) > 1:
            log.warning("jira: more than one issue carries label %s; using the oldest", label)
        first = issues[0]
        if not isinstance(first, Issue):
            raise FatalError(f"{VENDOR}: search returned {type(first).__name__}", vendor=VENDOR)
        return self._ref(first.raw, "search issues by label")

    def search_updated(self, keys: Sequence[str], since: datetime | None) -> list[IssueState]:
        """The issues among ``keys`` (at most 100) updated at or after ``since`` (all when
        ``None``), oldest change first: ONE ``/search/jql`` per 100 results.

        Jira refuses the whole search (400, :class:`InvalidRequestError`) when one of the keys
        names an issue that does not exist (deleted): callers narrow the keys down.
        """
        if not 1 <= len(keys) <= SEARCH_KEYS:
            raise ValueError(f"search_updated takes 1 to {SEARCH_KEYS} keys, got {len(keys)}")
        jql = f"key in ({', '.join(_issue_key(k) for k in keys)})"
        if since is not None:
            # Relative ("-15m"), because JQL reads absolute dates in the Jira user's own time
            # zone, which Switchboard does not know; a minute more than asked, never less.
            age = (datetime.now(UTC) - since.astimezone(UTC)).total_seconds()
            jql += f" AND updated >= -{max(1, math.ceil(age / 60) + 1)}m"
        jql += " ORDER BY updated ASC"
        client = self._jira()
        with translate_transport_errors(VENDOR, "search issues updated since"):
            found = client.enhanced_search_issues(jql, fields=list(STATE_FIELDS),
                                                  maxResults=False)
        return [_state(issue.raw) for issue in found]

    def get_issue(self, key: str) -> IssueRef:
        """Read an issue's reference and status (``GET /rest/api/2/issue/{key}?fields=status``)."""
        key = _issue_key(key)
        client = self._jira()
        with translate_transport_errors(VENDOR, f"get issue {key}"):
            issue = client.issue(key, fields="status")
        return self._ref(issue.raw, f"get issue {key}")

    def read_state(self, key: str) -> IssueState:
        """Read what Switchboard follows of an issue — status, resolution, priority, fix
        versions, ``updated`` (one ``GET /rest/api/2/issue/{key}?fields=...``)."""
        key = _issue_key(key)
        client = self._jira()
        with translate_transport_errors(VENDOR, f"read issue {key}"):
            issue = client.issue(key, fields=",".join(STATE_FIELDS))
        return _state(issue.raw)

    def transitions(self, issue_key: str) -> list[Transition]:
        """The transitions Jira offers on the issue from its current status, to the account
        Switchboard acts as (``GET /rest/api/2/issue/{key}/transitions``; an empty list when
        the workflow offers none, or the account may not transition the issue)."""
        key = _issue_key(issue_key)
        client = self._jira()
        with translate_transport_errors(VENDOR, f"list transitions of {key}"):
            try:
                found = client.transitions(key)
            except (KeyError, TypeError):  # an answer without a "transitions" list
                found = None
        if not isinstance(found, list):
            raise FatalError(f"{VENDOR}: transitions of {key}: no transitions list in the "
                             "answer", vendor=VENDOR)
        return [_transition(t) for t in found if isinstance(t, dict) and t.get("id")]

    def transition_issue(self, issue_key: str, transition_id: str) -> None:
        """Move an issue through one transition: exactly one
        ``POST /rest/api/2/issue/{key}/transitions`` with ``{"transition": {"id": ...}}``
        (Jira answers 204). A transition the issue's current status does not offer is a 400
        (:class:`InvalidRequestError`)."""
        key = _issue_key(issue_key)
        if not str(transition_id).isdigit():
            raise InvalidRequestError(f"{VENDOR}: invalid transition id {transition_id!r}",
                                      vendor=VENDOR)
        client = self._jira()
        with translate_transport_errors(VENDOR, f"transition {key}"):
            # An id, so the client does not first look a name up with another GET.
            client.transition_issue(key, str(transition_id))

    def set_priority(self, issue_key: str, priority: str) -> None:
        """Set an issue's priority by name: exactly one ``PUT /rest/api/2/issue/{key}`` with
        ``{"fields": {"priority": {"name": ...}}}`` (Jira answers 204; an unknown priority is a
        400, :class:`InvalidRequestError`)."""
        key = _issue_key(issue_key)
        if not priority or not priority.strip():
            raise InvalidRequestError(f"{VENDOR}: empty priority name", vendor=VENDOR)
        client = self._jira()
        url = f"{self.settings.url}/rest/api/2/issue/{quote(key, safe='')}"
        body = {"fields": {"priority": {"name": priority}}}
        with translate_transport_errors(VENDOR, f"set the priority of {key}"):
            client._session.put(url, data=json.dumps(body))

    def upsert_remote_link(self, issue_key: str, link: RemoteLink) -> None:
        """Create or update (by ``global_id``) a remote link: exactly one
        ``POST /rest/api/2/issue/{key}/remotelink``."""
        key = _issue_key(issue_key)
        if not link.global_id or len(link.global_id) > 255:
            raise InvalidRequestError(
                f"{VENDOR}: remote link globalId must be 1-255 characters", vendor=VENDOR
            )
        body: dict[str, Any] = {
            "globalId": link.global_id,
            "application": {"type": link.application_type, "name": link.application_name},
            "relationship": link.relationship,
            "object": {"url": link.url, "title": link.title},
        }
        if link.summary:
            body["object"]["summary"] = link.summary
        client = self._jira()
        url = f"{self.settings.url}/rest/api/2/issue/{quote(key, safe='')}/remotelink"
        with translate_transport_errors(VENDOR, f"upsert remote link on {key}"):
            # Straight through the client's session (auth, headers, our adapter):
            # add_remote_link first GETs /rest/applinks/latest/listApplicationlinks on every
            # call, and add_simple_link cannot send a globalId, so it would not upsert.
            client._session.post(url, data=json.dumps(body))

    def link_issues(self, inward_key: str, outward_key: str, type_name: str = "Relates") -> None:
        """Link two issues (exactly one ``POST /rest/api/2/issueLink``)."""
        body = {"type": {"name": type_name}, "inwardIssue": {"key": _issue_key(inward_key)},
                "outwardIssue": {"key": _issue_key(outward_key)}}
        client = self._jira()
        with translate_transport_errors(VENDOR, f"link {inward_key} to {outward_key}"):
            client._session.post(f"{self.settings.url}/rest/api/2/issueLink",
                                 data=json.dumps(body))

    def own_account_id(self) -> str:
        """The account Switchboard acts as (``GET /rest/api/2/myself``, once per process): the
        author of the comments it writes, so that their webhooks are recognised."""
        with self._lock:
            cached = self._account_id
        if cached is not None:
            return cached
        client = self._jira()
        with translate_transport_errors(VENDOR, "who am I"):
            data = client._session.get(f"{self.settings.url}/rest/api/2/myself").json()
        account = data.get("accountId") or data.get("name") if isinstance(data, dict) else None
        if not account:
            raise FatalError(f"{VENDOR}: /myself names no account", vendor=VENDOR)
        with self._lock:
            self._account_id = str(account)
        return str(account)

    def add_comment(self, issue_key: str, body: str) -> str:
        """Add a comment (wiki markup): exactly one ``POST /rest/api/2/issue/{key}/comment``.
        Returns its id. Not idempotent: callers that must not add two find it by its text
        (:meth:`find_comment`) after an ambiguous failure."""
        key = _issue_key(issue_key)
        client = self._jira()
        url = f"{self.settings.url}/rest/api/2/issue/{quote(key, safe='')}/comment"
        with translate_transport_errors(VENDOR, f"add comment on {key}"):
            response = client._session.post(url, data=json.dumps({"body": body}))
            data = response.json()
        if not isinstance(data, dict) or not data.get("id"):
            raise FatalError(f"{VENDOR}: add comment on {key}: no comment id in the answer",
                             vendor=VENDOR)
        return str(data["id"])

    def edit_comment(self, issue_key: str, comment_id: str, body: str) -> None:
        """Replace a comment's body: exactly one ``PUT .../comment/{id}`` (idempotent)."""
        key = _issue_key(issue_key)
        if not str(comment_id).isdigit():
            raise ValueError(f"not a comment id: {comment_id!r}")
        client = self._jira()
        url = (f"{self.settings.url}/rest/api/2/issue/{quote(key, safe='')}/comment/"
               f"{comment_id}")
        with translate_transport_errors(VENDOR, f"edit comment {comment_id} on {key}"):
            client._session.put(url, data=json.dumps({"body": body}))

    def find_comment(self, issue_key: str, marker: str) -> str | None:
        """The id of the newest comment whose body contains ``marker``, or ``None`` (one
        ``GET .../comment``: the newest 100, where a comment just written is)."""
        key = _issue_key(issue_key)
        client = self._jira()
        url = f"{self.settings.url}/rest/api/2/issue/{quote(key, safe='')}/comment"
        with translate_transport_errors(VENDOR, f"list comments of {key}"):
            query: dict[str, str | int] = {"maxResults": 100, "orderBy": "-created"}
            data = client._session.get(url, params=query).json()
        for comment in (data.get("comments") or []) if isinstance(data, dict) else []:
            if isinstance(comment, dict) and marker in str(comment.get("body") or ""):
                return str(comment.get("id"))
        return None

    def _jira(self) -> JIRA:
        """The client, created on first use; a failed creation is retried on the next call."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> JIRA:
        http = self.settings.http
        with translate_transport_errors(VENDOR, "connect"):
            # get_server_info=False: the constructor would fetch serverInfo through a session
            # we have not had the chance to equip yet (no limiter, no logging, its own errors).
            client = JIRA(
                server=self.settings.url,
                basic_auth=(self.settings.email, self.settings.api_token.get_secret_value()),
                options={"verify": http.verify_tls, "headers": {"User-Agent": USER_AGENT}},
                max_retries=0,
                timeout=(http.connect_timeout, http.read_timeout),
                get_server_info=False,
            )
            # ResilientSession subclasses requests.Session; mounting the adapter on it is the
            # documented requests extension point and covers every call the client makes.
            install_hygiene(client._session, VENDOR, http, limiter=self.limiter)
            # What the constructor does with get_server_info=True, now through our adapter:
            # ``deploymentType`` is the public attribute the client's @cloud_api methods read.
            info = client.server_info()
        if not isinstance(info, dict) or "versionNumbers" not in info:
            raise FatalError(f"{VENDOR}: serverInfo has no versionNumbers", vendor=VENDOR)
        client.deploymentType = info.get("deploymentType")
        return client

    def _ref(self, raw: Any, what: str) -> IssueRef:
        if not isinstance(raw, dict) or not raw.get("key") or raw.get("id") is None:
            raise FatalError(f"{VENDOR}: {what}: response has no issue key", vendor=VENDOR)
        status = category = None
        fields = raw.get("fields")
        if isinstance(fields, dict) and isinstance(fields.get("status"), dict):
            status = fields["status"].get("name")
            if isinstance(fields["status"].get("statusCategory"), dict):
                category = fields["status"]["statusCategory"].get("key")
        key = str(raw["key"])
        return IssueRef(id=str(raw["id"]), key=key, url=self.browse_url(key), status=status,
                        status_category=category)


def _name(fields: dict[str, Any], key: str) -> str | None:
    value = fields.get(key)
    return str(value["name"]) if isinstance(value, dict) and value.get("name") else None


def _transition(raw: dict[str, Any]) -> Transition:
    to: dict[str, Any] = raw["to"] if isinstance(raw.get("to"), dict) else {}
    category: dict[str, Any] = to["statusCategory"] \
        if isinstance(to.get("statusCategory"), dict) else {}
    return Transition(id=str(raw["id"]), name=str(raw.get("name") or ""),
                      to_status=str(to.get("name") or ""),
                      to_category=str(category["key"]) if category.get("key") else None)


def _state(raw: Any) -> IssueState:
    """An :class:`IssueState` from a search result; :class:`FatalError` if it is not one."""
    fields = raw.get("fields") if isinstance(raw, dict) else None
    updated = parse_jira_time(fields.get("updated")) if isinstance(fields, dict) else None
    if not isinstance(fields, dict) or updated is None or not raw.get("key") \
            or raw.get("id") is None:
        raise FatalError(f"{VENDOR}: search returned an issue without key, id or updated",
                         vendor=VENDOR)
    versions = tuple((str(v["name"]), v.get("released") if isinstance(v.get("released"), bool)
                      else None)
                     for v in fields.get("fixVersions") or [] if isinstance(v, dict)
                     and v.get("name"))
    return IssueState(id=str(raw["id"]), key=str(raw["key"]), updated=updated,
                      status=_name(fields, "status"), resolution=_name(fields, "resolution"),
                      priority=_name(fields, "priority"), fix_versions=versions)


def parse_jira_time(value: object) -> datetime | None:
    """Jira's ``2026-11-27T10:00:00.000+0000`` (or ISO-8601) as an aware UTC datetime."""
    if not isinstance(value, str):
        return None
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", value.strip()).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else None


def _label(label: str) -> str:
    """Refuse labels Jira would reject or split: empty, whitespace, control chars, too long."""
    if (
        not label
        or len(label) > _MAX_LABEL
        or any(ch.isspace() or not ch.isprintable() for ch in label)
    ):
        raise InvalidRequestError(
            f"{VENDOR}: invalid label {label!r}: labels are 1-255 printable characters "
            "without spaces",
            vendor=VENDOR,
        )
    return label


def _jql_string(value: str) -> str:
    """A JQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _issue_key(key: str) -> str:
    if not isinstance(key, str) or not _ISSUE_KEY.match(key):
        raise InvalidRequestError(f"{VENDOR}: invalid issue key {key!r}", vendor=VENDOR)
    return key
