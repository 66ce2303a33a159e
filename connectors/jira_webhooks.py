"""Jira admin webhooks: signature verification and the typed event Switchboard acts on.

A delivery carries one event (``api-notes/jira.md``, "Webhooks"; shape of a Server delivery)::

    {"timestamp": 1546892751184, "webhookEvent": "jira:issue_updated",
     "issue_event_type_name": "issue_generic", "user": {"accountId": "...", "displayName": "..."},
     "issue": {"id": "11442", "key": "INDEV-6", "fields": {"status": {"name": ...}, ...}},
     "changelog": {"id": "34911", "items": [{"field": "status", "fieldId": "status",
                   "from": "10257", "fromString": "To Do",
                   "to": "10258", "toString": "In Progress"}]}}

- ``jira:issue_updated``: the changes Switchboard follows are read from ``changelog.items[]`` —
  status, resolution, priority and fix versions (a fix-version item is named ``"Fix Version"``
  with ``fieldId`` ``"fixVersions"``, one item per version added or removed); other items are
  left out. An update without a changelog (``issue_event_type_name`` ``issue_commented``) has
  no changes.
- ``jira:issue_deleted``: the issue as it was.
- ``comment_created`` / ``comment_updated``: ``comment`` (``id``, ``body``, ``author``,
  ``created``, ``updated``, optional ``visibility`` and ``jsdPublic``) and a trimmed ``issue``
  (``id``, ``key``, ``fields`` with summary, status, priority), as recorded Jira Cloud deliveries
  show. A recorded Jira Server delivery has no ``issue``: such a delivery is refused, having no
  issue key. A body is wiki-markup text (what recorded deliveries carry) or an Atlassian Document
  Format document (a JSON object), flattened to text by :func:`adf_to_text`.

Other event types (``jira:issue_created``, ``comment_deleted``, ``worklog_*``, ``sprint_*``...)
raise :class:`UnsupportedEventError`: the receiver answers 2xx and records them as ignored.

Signature: admin webhooks created with a secret send ``X-Hub-Signature: sha256=<hex
HMAC-SHA256(secret, raw body)>`` (WebSub; not ``X-Hub-Signature-256``). The header carries no
timestamp, so there is no replay window to check: a replay is caught by de-duplication instead.
Deliveries are at least once: de-duplicate on ``X-Atlassian-Webhook-Identifier``, and on the
event's identity (:attr:`JiraEvent.change_key`).

Vendor JSON stops here: callers get :class:`JiraEvent`, which :meth:`JiraEvent.to_payload`
turns into JSON for the inbox (times as ISO-8601 text) and :meth:`JiraEvent.from_payload` reads
back.
"""

from __future__ import annotations

__all__ = [
    "HANDLED_EVENT_TYPES",
    "SIGNATURE_HEADER",
    "TRACKED_FIELDS",
    "WEBHOOK_ID_HEADER",
    "FieldChange",
    "FixVersion",
    "JiraComment",
    "JiraEvent",
    "UnsupportedEventError",
    "WebhookPayloadError",
    "adf_to_text",
    "parse_webhook",
    "sign",
    "verify_signature",
]

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.json_fields import FieldReader

SIGNATURE_HEADER = "X-Hub-Signature"
WEBHOOK_ID_HEADER = "X-Atlassian-Webhook-Identifier"
SIGNATURE_METHOD = "sha256"

ISSUE_UPDATED = "jira:issue_updated"
ISSUE_DELETED = "jira:issue_deleted"
COMMENT_EVENTS = frozenset({"comment_created", "comment_updated"})
#: The ``webhookEvent`` values :func:`parse_webhook` reads.
HANDLED_EVENT_TYPES = frozenset({ISSUE_UPDATED, ISSUE_DELETED} | COMMENT_EVENTS)

#: Changelog items kept, by ``fieldId`` (or, lower-cased, by ``field`` when there is no
#: ``fieldId``) -> the name :class:`FieldChange` gives the field.
TRACKED_FIELDS = {
    "status": "status",
    "resolution": "resolution",
    "priority": "priority",
    "fixversions": "fixVersions",
    "fix version": "fixVersions",
}

_HEX_DIGEST = 64
#: Jira ids are Java longs; bounding them keeps the inbox keys built from them short.
_MAX_ID = 2**63 - 1
_HEX = frozenset("0123456789abcdef")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
#: Deeper ADF is refused rather than walked (real comments nest a few levels).
MAX_ADF_DEPTH = 64
#: ADF nodes whose children are inline (joined as they are); other containers hold blocks,
#: which become lines.
_INLINE_CONTAINERS = frozenset({"paragraph", "heading", "codeBlock"})


class WebhookPayloadError(ValueError):
    """A webhook body that is not a Jira event Switchboard can read; the message says why."""


class UnsupportedEventError(WebhookPayloadError):
    """A well-formed delivery of an event type Switchboard does not handle (``event_type``).

    Answer it with a 2xx and ignore it: it is a genuine delivery, only not one Switchboard acts
    on (and what Jira does after a 4xx — retry, or count it against the webhook — is not
    documented).
    """

    def __init__(self, event_type: str) -> None:
        super().__init__(f"webhookEvent {event_type!r} is not an event Switchboard handles")
        self.event_type = event_type


_read = FieldReader(WebhookPayloadError)
_required_str, _optional_str, _optional_object = (
    _read.required_str, _read.optional_str, _read.optional_object)


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One changelog item of a tracked field: ids (``from`` / ``to``) and display strings.

    ``field`` is ``status``, ``resolution``, ``priority`` or ``fixVersions``. For a fix version
    one item is one version added (``from`` empty) or removed (``to`` empty).
    """

    field: str
    from_id: str | None = None
    from_string: str | None = None
    to_id: str | None = None
    to_string: str | None = None


@dataclass(frozen=True, slots=True)
class FixVersion:
    """A version in ``issue.fields.fixVersions``; ``released`` is ``None`` when not sent."""

    name: str
    id: str | None = None
    released: bool | None = None


@dataclass(frozen=True, slots=True)
class JiraComment:
    """The comment of a ``comment_*`` event.

    ``body`` is text: wiki markup as Jira sent it (``body_format == "wiki"``), or an ADF
    document flattened by :func:`adf_to_text` (``"adf"``). ``visibility_type`` /
    ``visibility_value`` restrict who sees it (``role`` / ``Developers``); ``jsd_public`` is
    Jira Service Management's public flag. Each is ``None`` when the payload lacks it.
    """

    id: str
    body: str
    body_format: str
    updated: datetime
    created: datetime | None = None
    author_name: str | None = None
    author_account_id: str | None = None
    visibility_type: str | None = None
    visibility_value: str | None = None
    jsd_public: bool | None = None


@dataclass(frozen=True, slots=True)
class JiraEvent:
    """One Jira webhook event, as Switchboard sees it.

    ``status``, ``resolution`` and ``priority`` are names, from ``issue.fields``: the issue's
    state after the event, ``None`` where unset or not sent (a comment event's trimmed issue has
    no resolution). ``fix_versions`` is ``None`` when the payload has no ``fixVersions``.
    ``changes`` are the tracked changelog items of an ``jira:issue_updated``; ``comment`` is set
    for comment events. ``user_*`` name who caused an issue event (comment events name the
    comment's author instead).
    """

    event_type: str
    issue_id: str
    issue_key: str
    timestamp: datetime | None = None
    issue_event_type: str | None = None
    changelog_id: str | None = None
    status: str | None = None
    resolution: str | None = None
    priority: str | None = None
    fix_versions: tuple[FixVersion, ...] | None = None
    changes: tuple[FieldChange, ...] = ()
    comment: JiraComment | None = None
    user_name: str | None = None
    user_account_id: str | None = None

    @property
    def entity_key(self) -> str:
        """The issue: events of one issue are processed in order."""
        return f"jira:issue:{self.issue_id}"

    @property
    def change_key(self) -> str | None:
        """Identity of the event (not the delivery), or ``None`` when the payload has none.

        An update: issue id + ``timestamp`` (ms) + changelog id; a comment: comment id + its
        ``updated`` time; a deletion: the issue id.
        """
        if self.comment is not None:
            updated = self.comment.updated.isoformat(timespec="milliseconds")
            return f"jira:comment:{self.comment.id}:{updated}"
        if self.event_type == ISSUE_DELETED:
            return f"jira:issue:{self.issue_id}:deleted"
        if self.timestamp is None and self.changelog_id is None:
            return None
        millis = "-" if self.timestamp is None else (self.timestamp - _EPOCH) // _MILLISECOND
        return f"jira:issue:{self.issue_id}:{millis}:{self.changelog_id or '-'}"

    def to_payload(self) -> dict[str, Any]:
        """A JSON-able dict (times as ISO-8601 text) that :meth:`from_payload` reads back."""
        out: dict[str, Any] = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["timestamp"] = _iso(self.timestamp)
        out["fix_versions"] = None if self.fix_versions is None else [
            _fields(v) for v in self.fix_versions]
        out["changes"] = [_fields(c) for c in self.changes]
        if self.comment is not None:
            comment = _fields(self.comment)
            comment["updated"] = _iso(self.comment.updated)
            comment["created"] = _iso(self.comment.created)
            out["comment"] = comment
        return out

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> JiraEvent:
        """The event :meth:`to_payload` wrote; raises ``KeyError`` / ``TypeError`` /
        ``ValueError`` for anything else."""
        values = dict(payload)
        values["timestamp"] = _from_iso(values.get("timestamp"))
        versions = values.get("fix_versions")
        values["fix_versions"] = None if versions is None else tuple(
            FixVersion(**v) for v in versions)
        values["changes"] = tuple(FieldChange(**c) for c in values.get("changes") or ())
        if values.get("comment") is not None:
            comment = dict(values["comment"])
            comment["updated"] = _from_iso(comment["updated"])
            comment["created"] = _from_iso(comment.get("created"))
            values["comment"] = JiraComment(**comment)
        return cls(**values)


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


# -- signature ----------------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature`` value Jira sends for ``body`` signed with ``secret``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_METHOD}={digest}"


def verify_signature(secrets: Sequence[str], body: bytes, header: str | None) -> bool:
    """Whether ``header`` (``sha256=<hex>``) signs ``body`` under any of ``secrets``.

    ``body`` must be the raw request body, unaltered. A missing, blank or malformed header, a
    method other than ``sha256``, or no secret gives ``False``. Every configured secret is
    compared, in constant time. Never raises.
    """
    if not header or not secrets:
        return False
    method, sep, value = header.strip().partition("=")
    value = value.strip().lower()
    if not sep or method != SIGNATURE_METHOD or len(value) != _HEX_DIGEST \
            or not _HEX.issuperset(value):
        return False
    matched = False
    for secret in secrets:
        if secret:
            digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
            # No early exit: the work done does not depend on which secret matched.
            matched |= hmac.compare_digest(value, digest)
    return matched


# -- parsing ------------------------------------------------------------------------------------


def parse_webhook(body: bytes) -> JiraEvent:
    """Read a webhook body into a :class:`JiraEvent`.

    Raises :class:`UnsupportedEventError` for a well-formed event of a type not in
    :data:`HANDLED_EVENT_TYPES`, and :class:`WebhookPayloadError` for a body that is not JSON,
    not an object, has no ``webhookEvent``, no ``issue`` object with an ``id`` and a ``key``,
    a comment event without a ``comment`` (id, body, ``updated``), or any value of the wrong
    type (a ``timestamp`` that is not milliseconds, ids that are not numbers, ...).
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise WebhookPayloadError(f"webhook body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise WebhookPayloadError(
            f"webhook body is a JSON {type(document).__name__}, not an object")
    event_type = _required_str(document, "webhookEvent", "body")
    if event_type not in HANDLED_EVENT_TYPES:
        raise UnsupportedEventError(event_type)
    issue = _optional_object(document, "issue", "body")
    if issue is None:
        raise WebhookPayloadError("body has no 'issue' object")
    fields = _optional_object(issue, "fields", "issue") or {}
    user = _optional_object(document, "user", "body")
    values: dict[str, Any] = {
        "event_type": event_type,
        "issue_id": _required_id(issue, "id", "issue"),
        "issue_key": _required_str(issue, "key", "issue"),
        "timestamp": _timestamp(document.get("timestamp")),
        "issue_event_type": _optional_str(document, "issue_event_type_name", "body"),
        "status": _name(fields, "status"),
        "resolution": _name(fields, "resolution"),
        "priority": _name(fields, "priority"),
        "fix_versions": _fix_versions(fields.get("fixVersions")),
        "user_name": _optional_str(user, "displayName", "user"),
        "user_account_id": _optional_str(user, "accountId", "user"),
    }
    if event_type == ISSUE_UPDATED:
        changelog = _optional_object(document, "changelog", "body")
        if changelog is not None:
            values["changelog_id"] = _optional_id(changelog, "id", "changelog")
            values["changes"] = _changes(changelog.get("items"))
    elif event_type in COMMENT_EVENTS:
        comment = _optional_object(document, "comment", "body")
        if comment is None:
            raise WebhookPayloadError(f"{event_type} has no 'comment' object")
        values["comment"] = _comment(comment)
    return JiraEvent(**values)


def adf_to_text(document: Any, _depth: int = 0) -> str:
    """Plain text of an Atlassian Document Format node: text nodes as they are, a hard break
    as a newline, each paragraph (or other block) on its own line; marks (bold, links) and
    attributes are dropped, a mention or emoji keeps its ``attrs.text``.

    Raises :class:`WebhookPayloadError` for a node that is not an object, ``content`` that is
    not a list, ``text`` that is not a string, or nesting deeper than :data:`MAX_ADF_DEPTH`.
    """
    if _depth > MAX_ADF_DEPTH:
        raise WebhookPayloadError(f"ADF body nests deeper than {MAX_ADF_DEPTH} levels")
    if not isinstance(document, Mapping):
        raise WebhookPayloadError(f"ADF node must be an object, not {document!r}")
    kind = document.get("type")
    if kind == "text":
        return _required_text(document, "text", "ADF text node")
    if kind == "hardBreak":
        return "\n"
    attrs = document.get("attrs")
    if kind in ("mention", "emoji") and isinstance(attrs, Mapping):
        return _required_text(attrs, "text", f"ADF {kind} node") if "text" in attrs else ""
    content = document.get("content", [])
    if not isinstance(content, list):
        raise WebhookPayloadError(f"ADF {kind} node: content must be a list, not {content!r}")
    parts = [adf_to_text(child, _depth + 1) for child in content]
    return ("" if kind in _INLINE_CONTAINERS else "\n").join(parts)


def _comment(raw: Mapping[str, Any]) -> JiraComment:
    body = raw.get("body")
    if isinstance(body, str):
        text, body_format = body, "wiki"
    elif isinstance(body, dict) and body.get("type") == "doc":
        text, body_format = adf_to_text(body), "adf"
    else:
        raise WebhookPayloadError("comment.body must be text or an ADF document "
                                  f"({{\"type\": \"doc\", ...}}), not {body!r}")
    updated = _time(raw, "updated", "comment")
    if updated is None:
        raise WebhookPayloadError("comment.updated is missing")
    author = _optional_object(raw, "author", "comment")
    visibility = _optional_object(raw, "visibility", "comment")
    public = raw.get("jsdPublic")
    if public is not None and not isinstance(public, bool):
        raise WebhookPayloadError(f"comment.jsdPublic must be true, false or null, not "
                                  f"{public!r}")
    return JiraComment(
        id=_required_id(raw, "id", "comment"),
        body=text,
        body_format=body_format,
        updated=updated,
        created=_time(raw, "created", "comment"),
        author_name=_optional_str(author, "displayName", "comment.author"),
        author_account_id=_optional_str(author, "accountId", "comment.author"),
        visibility_type=_optional_str(visibility, "type", "comment.visibility"),
        visibility_value=_optional_str(visibility, "value", "comment.visibility"),
        jsd_public=public,
    )


def _changes(items: Any) -> tuple[FieldChange, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise WebhookPayloadError(f"changelog.items must be a list, not {items!r}")
    changes = []
    for index, item in enumerate(items):
        where = f"changelog.items[{index}]"
        if not isinstance(item, dict):
            raise WebhookPayloadError(f"{where} must be an object, not {item!r}")
        name = item.get("fieldId") or item.get("field")
        if not isinstance(name, str):
            raise WebhookPayloadError(f"{where} names no field (fieldId or field)")
        field = TRACKED_FIELDS.get(name.lower())
        if field is None:
            continue  # a change Switchboard does not follow (description, rank, assignee...)
        changes.append(FieldChange(
            field=field,
            from_id=_optional_text(item, "from", where),
            from_string=_optional_str(item, "fromString", where),
            to_id=_optional_text(item, "to", where),
            to_string=_optional_str(item, "toString", where),
        ))
    return tuple(changes)


def _fix_versions(value: Any) -> tuple[FixVersion, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise WebhookPayloadError(f"issue.fields.fixVersions must be a list, not {value!r}")
    versions = []
    for index, raw in enumerate(value):
        where = f"issue.fields.fixVersions[{index}]"
        if not isinstance(raw, dict):
            raise WebhookPayloadError(f"{where} must be an object, not {raw!r}")
        released = raw.get("released")
        if released is not None and not isinstance(released, bool):
            raise WebhookPayloadError(f"{where}.released must be true, false or null, not "
                                      f"{released!r}")
        versions.append(FixVersion(name=_required_str(raw, "name", where),
                                   id=_optional_id(raw, "id", where), released=released))
    return tuple(versions)


def _name(fields: Mapping[str, Any], key: str) -> str | None:
    """``fields.<key>.name`` of an object-valued field (status, resolution, priority)."""
    return _optional_str(_optional_object(fields, key, "issue.fields"), "name",
                         f"issue.fields.{key}")


def _timestamp(value: Any) -> datetime | None:
    """``timestamp``: milliseconds since the epoch -> aware UTC."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise WebhookPayloadError(f"body.timestamp must be milliseconds since the epoch, not "
                                  f"{value!r}")
    try:
        return _EPOCH + value * _MILLISECOND
    except OverflowError as exc:
        raise WebhookPayloadError(f"body.timestamp is out of range: {value!r}") from exc


def _time(obj: Mapping[str, Any], key: str, where: str) -> datetime | None:
    """An ISO-8601 time with an offset (Jira writes ``+0300``) -> aware UTC."""
    text = _optional_str(obj, key, where)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise WebhookPayloadError(f"{where}.{key} is not an ISO-8601 time: {text!r}") from exc
    if parsed.tzinfo is None:
        raise WebhookPayloadError(f"{where}.{key} has no UTC offset: {text!r}")
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise WebhookPayloadError(f"{where}.{key} is out of range: {text!r}") from exc


def _required_id(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = _optional_id(obj, key, where)
    if value is None:
        raise WebhookPayloadError(f"{where}.{key} is missing")
    return value


def _optional_id(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    """A Jira id: a non-negative 64-bit number, sent as a string (or a JSON integer)."""
    value = obj.get(key)
    if value is None:
        return None
    # The length first: int() refuses text of more than 4300 digits with a plain ValueError.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_ID:
        return str(value)
    raise WebhookPayloadError(f"{where}.{key} must be a numeric id, not {value!r}")


def _required_text(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise WebhookPayloadError(f"{where}: {key} must be a string, not {value!r}")
    return value


def _optional_text(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    """A changelog ``from`` / ``to``: an id as text (a number is taken as its text)."""
    value = obj.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _optional_str(obj, key, where)
