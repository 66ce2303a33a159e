"""Jira admin webhooks: signature verification, parsing into JiraEvent, ADF flattening."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.jira_webhooks import (
    FieldChange,
    FixVersion,
    JiraEvent,
    UnsupportedEventError,
    WebhookPayloadError,
    adf_to_text,
    parse_webhook,
    sign,
    verify_signature,
)
from tests.connectors.support import FIXTURES, load

SECRET = "jira-whsec-4f1a9c2e7b3d5a60"
OLD_SECRET = "jira-whsec-old-0c8e2b71d94f"
STATUS = "webhook_issue_updated_status"
RESOLVED = "webhook_issue_updated_resolved"
DELETED = "webhook_issue_deleted"
COMMENT_CREATED = "webhook_comment_created_cloud"
COMMENT_UPDATED = "webhook_comment_updated"


def _body(name: str) -> bytes:
    return (FIXTURES / "jira" / f"{name}.json").read_bytes()


def _independent(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _edited(name: str, edit: Any) -> bytes:
    """A fixture with ``edit(document)`` applied."""
    document = load("jira", name)
    edit(document)
    return json.dumps(document).encode()


def _doc(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "doc", "version": 1, "content": list(blocks)}


def _para(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(nodes)}


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


# -- signatures ---------------------------------------------------------------------------------

BODY = _body(STATUS)


def test_sign_gives_sha256_and_the_hex_hmac_sha256_of_the_raw_body() -> None:
    assert sign(SECRET, BODY) == _independent(SECRET, BODY)


def test_a_valid_signature_is_accepted() -> None:
    assert verify_signature([SECRET], BODY, _independent(SECRET, BODY)) is True


def test_upper_case_hex_is_the_same_signature() -> None:
    method, _, digest = _independent(SECRET, BODY).partition("=")
    assert verify_signature([SECRET], BODY, f"{method}={digest.upper()}") is True


def test_a_tampered_body_is_rejected() -> None:
    tampered = BODY.replace(b"In Progress", b"Done", 1)
    assert verify_signature([SECRET], tampered, _independent(SECRET, BODY)) is False


def test_a_signature_made_with_another_secret_is_rejected() -> None:
    assert verify_signature([SECRET], BODY, _independent("not-our-secret-000", BODY)) is False


def test_during_rotation_either_configured_secret_is_accepted() -> None:
    for secret in (OLD_SECRET, SECRET):
        assert verify_signature([OLD_SECRET, SECRET], BODY, sign(secret, BODY)) is True


def test_no_configured_secret_accepts_nothing() -> None:
    assert verify_signature([], BODY, sign(SECRET, BODY)) is False


@pytest.mark.parametrize("header", [
    pytest.param(None, id="missing"),
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("sha256=", id="no-digest"),
    pytest.param("sha256", id="no-equals"),
    pytest.param("sha256=xyz", id="not-hex"),
    pytest.param("sha256=" + "g" * 64, id="64-non-hex"),
    pytest.param("sha256=abcd", id="short-digest"),
])
def test_a_missing_blank_or_malformed_header_is_rejected(header: str | None) -> None:
    assert verify_signature([SECRET], BODY, header) is False


def test_the_right_digest_under_another_method_prefix_is_rejected() -> None:
    digest = sign(SECRET, BODY).partition("=")[2]
    for method in ("sha1", "sha512", "v1"):
        assert verify_signature([SECRET], BODY, f"{method}={digest}") is False
    assert verify_signature([SECRET], BODY, digest) is False  # bare digest, no prefix


def test_a_sha1_digest_under_the_sha256_prefix_is_rejected() -> None:
    sha1 = hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    assert verify_signature([SECRET], BODY, f"sha256={sha1}") is False


# -- parsing: the fixtures ----------------------------------------------------------------------


def test_a_status_change_is_read_from_the_changelog() -> None:
    event = parse_webhook(_body(STATUS))
    assert (event.event_type, event.issue_id, event.issue_key) == \
        ("jira:issue_updated", "10077", "SUP-77")
    assert event.issue_event_type == "issue_generic"
    assert event.timestamp == datetime(2026, 11, 27, 10, 15, 22, 169000, tzinfo=UTC)
    assert event.changelog_id == "34911"
    assert event.changes == (FieldChange("status", "10257", "To Do", "10258", "In Progress"),)
    assert (event.status, event.resolution, event.priority) == ("In Progress", None, "High")
    assert event.fix_versions == ()
    assert (event.user_name, event.user_account_id) == \
        ("Priya Natarajan", "5b912f1c1aa25f2be7d36947")
    assert event.comment is None
    assert event.entity_key == "jira:issue:10077"
    assert event.change_key == "jira:issue:10077:1795774522169:34911"


def test_resolution_status_and_fix_version_changes_are_kept_and_others_left_out() -> None:
    event = parse_webhook(_body(RESOLVED))
    assert event.changes == (
        FieldChange("resolution", None, None, "10000", "Done"),
        FieldChange("status", "10258", "In Progress", "10259", "Done"),
        FieldChange("fixVersions", None, None, "10021", "2.4.1"),
    )  # the timeestimate item is not a change Switchboard follows
    assert (event.status, event.resolution) == ("Done", "Done")
    assert event.fix_versions == (FixVersion("2.4.1", "10021", released=True),)


def test_a_deleted_issue_is_read_with_its_last_state() -> None:
    event = parse_webhook(_body(DELETED))
    assert (event.event_type, event.issue_id, event.issue_key) == \
        ("jira:issue_deleted", "10078", "SUP-78")
    assert (event.status, event.priority) == ("To Do", "Medium")
    assert event.changes == ()
    assert event.change_key == "jira:issue:10078:deleted"


def test_a_cloud_comment_with_an_adf_body_is_flattened_to_text() -> None:
    event = parse_webhook(_body(COMMENT_CREATED))
    assert (event.event_type, event.issue_id, event.issue_key) == \
        ("comment_created", "10077", "SUP-77")
    comment = event.comment
    assert comment is not None
    assert comment.id == "10412"
    assert comment.body_format == "adf"
    assert comment.body == ("Root cause found: saved-card tokens expire after the vault "
                            "migration.\nFix ships in 2.4.1.\ncc @Marek Nowak")
    assert (comment.author_name, comment.author_account_id) == \
        ("Priya Natarajan", "5b912f1c1aa25f2be7d36947")
    assert (comment.visibility_type, comment.visibility_value) == ("role", "Developers")
    assert comment.jsd_public is True
    assert comment.created == comment.updated == \
        datetime(2026, 11, 27, 11, 32, 21, 184000, tzinfo=UTC)
    # The trimmed issue of a comment event: status and priority, no resolution or versions.
    assert (event.status, event.priority, event.resolution) == ("In Progress", "High", None)
    assert event.fix_versions is None
    assert event.change_key == "jira:comment:10412:2026-11-27T11:32:21.184+00:00"


def test_an_edited_comment_with_a_wiki_body_keeps_its_text_and_a_new_identity() -> None:
    event = parse_webhook(_body(COMMENT_UPDATED))
    comment = event.comment
    assert comment is not None
    assert comment.body_format == "wiki"
    assert comment.body.startswith("Root cause found: *saved-card tokens*")
    assert comment.visibility_type is None
    assert comment.updated == datetime(2026, 11, 27, 12, 31, 43, 489000, tzinfo=UTC)
    assert event.change_key != parse_webhook(_body(COMMENT_CREATED)).change_key


@pytest.mark.parametrize("name", [STATUS, RESOLVED, DELETED, COMMENT_CREATED, COMMENT_UPDATED])
def test_an_event_survives_the_trip_through_json(name: str) -> None:
    event = parse_webhook(_body(name))
    payload = json.loads(json.dumps(event.to_payload()))
    assert JiraEvent.from_payload(payload) == event


def test_an_update_without_a_changelog_has_no_changes_and_is_keyed_by_its_timestamp() -> None:
    event = parse_webhook(_edited(STATUS, lambda d: d.pop("changelog")))
    assert event.changes == ()
    assert event.change_key == "jira:issue:10077:1795774522169:-"


def test_an_update_without_timestamp_or_changelog_has_no_identity_to_dedupe_on() -> None:
    def edit(document: dict[str, Any]) -> None:
        del document["changelog"], document["timestamp"]
    assert parse_webhook(_edited(STATUS, edit)).change_key is None


def test_a_changelog_item_with_only_a_field_name_is_still_recognised() -> None:
    def edit(document: dict[str, Any]) -> None:
        for item in document["changelog"]["items"]:
            item.pop("fieldId")
    event = parse_webhook(_edited(RESOLVED, edit))
    assert [c.field for c in event.changes] == ["resolution", "status", "fixVersions"]


def test_numeric_ids_are_read_as_their_text() -> None:
    def edit(document: dict[str, Any]) -> None:
        document["issue"]["id"] = 10077
        document["changelog"]["id"] = 34911
    event = parse_webhook(_edited(STATUS, edit))
    assert (event.issue_id, event.changelog_id) == ("10077", "34911")


# -- parsing: refused and ignored ---------------------------------------------------------------


@pytest.mark.parametrize("event_type", ["jira:issue_created", "comment_deleted",
                                        "worklog_created", "sprint_started"])
def test_an_event_type_not_handled_is_unsupported(event_type: str) -> None:
    body = json.dumps({"timestamp": 1795774522169, "webhookEvent": event_type}).encode()
    with pytest.raises(UnsupportedEventError) as caught:
        parse_webhook(body)
    assert caught.value.event_type == event_type
    assert event_type in str(caught.value)


def _parent(document: Any, path: str) -> tuple[Any, Any]:
    """The container holding ``a.b.c`` (list indexes as numbers) and the key of it there."""
    *parents, last = path.split(".")
    for part in parents:
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document, int(last) if isinstance(document, list) else last


def _set(path: str, value: Any) -> Any:
    def edit(document: dict[str, Any]) -> None:
        target, key = _parent(document, path)
        target[key] = value
    return edit


def _drop(path: str) -> Any:
    def edit(document: dict[str, Any]) -> None:
        target, key = _parent(document, path)
        del target[key]
    return edit


@pytest.mark.parametrize(("name", "edit", "message"), [
    pytest.param(STATUS, _drop("issue"), "no 'issue' object", id="no-issue"),
    pytest.param(STATUS, _set("issue", "SUP-77"), "issue must be an object", id="issue-string"),
    pytest.param(STATUS, _drop("issue.key"), "issue.key is missing", id="no-issue-key"),
    pytest.param(STATUS, _set("issue.key", ""), "issue.key must be", id="blank-issue-key"),
    pytest.param(STATUS, _set("issue.key", 77), "issue.key must be", id="numeric-issue-key"),
    pytest.param(STATUS, _drop("issue.id"), "issue.id is missing", id="no-issue-id"),
    pytest.param(STATUS, _set("issue.id", "SUP-77"), "numeric id", id="issue-id-not-a-number"),
    pytest.param(STATUS, _set("issue.id", "9" * 20), "numeric id", id="issue-id-too-large"),
    pytest.param(STATUS, _set("issue.id", "9" * 5000), "numeric id", id="issue-id-5000-digits"),
    pytest.param(STATUS, _set("issue.id", 2**63), "numeric id", id="issue-id-over-64-bits"),
    pytest.param(STATUS, _set("issue.id", True), "numeric id", id="issue-id-boolean"),
    pytest.param(STATUS, _drop("webhookEvent"), "webhookEvent is missing", id="no-event-type"),
    pytest.param(STATUS, _set("webhookEvent", 3), "webhookEvent must be", id="event-type-number"),
    pytest.param(STATUS, _set("timestamp", "2019-1-30 15:51:34,870"), "milliseconds",
                 id="timestamp-as-text"),
    pytest.param(STATUS, _set("timestamp", -1), "milliseconds", id="timestamp-negative"),
    pytest.param(STATUS, _set("timestamp", 10**20), "out of range", id="timestamp-too-large"),
    pytest.param(STATUS, _set("issue.fields.status", "Done"), "fields.status must be an object",
                 id="status-not-an-object"),
    pytest.param(STATUS, _set("issue.fields.status.name", 5), "status.name must be",
                 id="status-name-number"),
    pytest.param(STATUS, _set("issue.fields", []), "issue.fields must be an object",
                 id="fields-list"),
    pytest.param(STATUS, _set("changelog.items", {}), "items must be a list",
                 id="changelog-items-object"),
    pytest.param(STATUS, _set("changelog.items.0", "status"), "must be an object",
                 id="changelog-item-string"),
    pytest.param(STATUS, _set("changelog.items.0.toString", ["Done"]), "toString must be",
                 id="changelog-to-string-list"),
    pytest.param(RESOLVED, _set("issue.fields.fixVersions", {"name": "2.4.1"}),
                 "fixVersions must be a list", id="fix-versions-object"),
    pytest.param(RESOLVED, _set("issue.fields.fixVersions.0.released", "yes"),
                 "released must be", id="released-text"),
    pytest.param(RESOLVED, _drop("issue.fields.fixVersions.0.name"), "name is missing",
                 id="fix-version-without-name"),
    pytest.param(COMMENT_CREATED, _drop("comment"), "has no 'comment' object",
                 id="comment-event-without-comment"),
    pytest.param(COMMENT_CREATED, _drop("comment.id"), "comment.id is missing",
                 id="comment-without-id"),
    pytest.param(COMMENT_CREATED, _set("comment.body", 12), "comment.body must be",
                 id="comment-body-number"),
    pytest.param(COMMENT_CREATED, _set("comment.body", {"content": []}), "ADF document",
                 id="comment-body-object-not-adf"),
    pytest.param(COMMENT_CREATED, _drop("comment.updated"), "comment.updated is missing",
                 id="comment-without-updated"),
    pytest.param(COMMENT_CREATED, _set("comment.updated", "yesterday"), "not an ISO-8601",
                 id="comment-updated-not-a-time"),
    pytest.param(COMMENT_CREATED, _set("comment.updated", "2026-11-27T11:32:21.184"),
                 "no UTC offset", id="comment-updated-naive"),
    pytest.param(COMMENT_CREATED, _set("comment.jsdPublic", "true"), "jsdPublic must be",
                 id="jsd-public-text"),
    pytest.param(COMMENT_CREATED, _set("comment.author", "Priya"), "author must be an object",
                 id="author-string"),
    pytest.param(COMMENT_CREATED, _set("comment.body.content", "text"), "must be a list",
                 id="adf-content-not-a-list"),
])
def test_a_malformed_payload_of_a_handled_type_is_refused_with_what_is_wrong(
        name: str, edit: Any, message: str) -> None:
    with pytest.raises(WebhookPayloadError) as caught:
        parse_webhook(_edited(name, edit))
    assert not isinstance(caught.value, UnsupportedEventError)
    assert message in str(caught.value)


@pytest.mark.parametrize(("body", "message"), [
    pytest.param(b"{not json", "not JSON", id="malformed-json"),
    pytest.param(b"\xff\xfe", "not JSON", id="not-utf8"),
    pytest.param(b"", "not JSON", id="empty"),
    pytest.param(b"[1, 2, 3]", "JSON list, not an object", id="array"),
    pytest.param(b'"jira:issue_updated"', "JSON str, not an object", id="string"),
    pytest.param(b"null", "JSON NoneType, not an object", id="null"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "not JSON", id="nested-too-deep"),
])
def test_a_body_that_is_not_a_json_object_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(WebhookPayloadError) as caught:
        parse_webhook(body)
    assert message in str(caught.value)


# -- ADF ----------------------------------------------------------------------------------------


def test_adf_paragraphs_become_lines_and_marks_are_dropped() -> None:
    document = _doc(_para(_text("Fixed in "), {"type": "text", "text": "2.4.1",
                                                 "marks": [{"type": "code"}]}),
                    _para(_text("Thanks!")))
    assert adf_to_text(document) == "Fixed in 2.4.1\nThanks!"


def test_adf_hard_breaks_mentions_and_emoji_keep_their_text() -> None:
    document = _doc(_para(_text("one"), {"type": "hardBreak"}, _text("two "),
                          {"type": "mention", "attrs": {"id": "5b9", "text": "@Priya"}},
                          _text(" "), {"type": "emoji", "attrs": {"shortName": ":ok:",
                                                                  "text": "👍"}}))
    assert adf_to_text(document) == "one\ntwo @Priya 👍"


def test_adf_lists_and_headings_give_one_line_per_block() -> None:
    document = _doc({"type": "heading", "attrs": {"level": 2}, "content": [_text("Steps")]},
                    {"type": "bulletList", "content": [
                        {"type": "listItem", "content": [_para(_text("open the cart"))]},
                        {"type": "listItem", "content": [_para(_text("pay"))]}]})
    assert adf_to_text(document) == "Steps\nopen the cart\npay"


def test_adf_nodes_without_text_give_nothing_and_an_empty_paragraph_an_empty_line() -> None:
    assert adf_to_text(_doc()) == ""
    assert adf_to_text(_doc(_para(), _para(_text("x")))) == "\nx"
    assert adf_to_text(_doc(_para({"type": "mention", "attrs": {"id": "5b9"}}))) == ""


@pytest.mark.parametrize("document", [
    pytest.param("text", id="not-an-object"),
    pytest.param(_doc(_para({"type": "text", "text": 5})), id="text-not-a-string"),
    pytest.param(_doc(_para({"type": "text"})), id="text-missing"),
    pytest.param({"type": "doc", "content": {"type": "paragraph"}}, id="content-not-a-list"),
    pytest.param(_doc("paragraph"), id="child-not-an-object"),
])
def test_malformed_adf_is_refused(document: Any) -> None:
    with pytest.raises(WebhookPayloadError):
        adf_to_text(document)


def test_adf_nested_beyond_the_limit_is_refused_not_walked() -> None:
    node: dict[str, Any] = _text("deep")
    for _ in range(200):
        node = {"type": "blockquote", "content": [node]}
    with pytest.raises(WebhookPayloadError, match="nests deeper"):
        adf_to_text(_doc(node))
