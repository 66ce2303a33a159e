"""The Jira webhook receiver (admin webhooks): signed issue and comment events are stored once,
in order per issue; bad input leaves no row; signed events Switchboard does not handle still get
a 2xx; the processor records a stored event as done until Jira -> Zendesk sync exists."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from connectors.jira_webhooks import JiraEvent, parse_webhook, sign
from rules import load_rules
from rules.source import ProblemsError
from sync import inbox
from sync.config import load_config
from sync.processor import EventProcessor
from sync.retry import RetryPolicy
from sync.store import Store
from tests.sync.receiver_support import chunked, inbox_rows, open_store, receiver_client

FIXTURES = Path(__file__).parent.parent / "fixtures" / "jira"
ROOT = Path(__file__).resolve().parents[2]
URL = "/webhooks/jira"
SECRET_ONE = "jira-whsec-one-8d2c61f0a4b9"
SECRET_TWO = "jira-whsec-two-1e7b3a95c0d2"
OTHER_SECRET = "jira-whsec-not-ours-5f60aa"

STATUS = "webhook_issue_updated_status.json"
RESOLVED = "webhook_issue_updated_resolved.json"
DELETED = "webhook_issue_deleted.json"
COMMENT_CREATED = "webhook_comment_created_cloud.json"
COMMENT_UPDATED = "webhook_comment_updated.json"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def headers(body: bytes, *, secret: str = SECRET_ONE,
            identifier: str | None = "wh-delivery-1") -> dict[str, str]:
    out = {"Content-Type": "application/json", "X-Hub-Signature": sign(secret, body)}
    if identifier is not None:
        out["X-Atlassian-Webhook-Identifier"] = identifier
    return out


def make_client(store: Store, **overrides: object) -> TestClient:
    return receiver_client(store, {"jira_signing_secrets": (SecretStr(SECRET_ONE),),
                                   "max_body_bytes": 8192, **overrides})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    yield from open_store(tmp_path)


@pytest.fixture
def client(store: Store) -> TestClient:
    return make_client(store)


def post(client: TestClient, body: bytes, **kwargs: Any) -> Any:
    return client.post(URL, content=body, headers=headers(body, **kwargs))


def oversized() -> bytes:
    data = json.loads(fixture(STATUS))
    data["issue"]["fields"]["summary"] = "x" * 9000
    return json.dumps(data).encode()


# --- accepted ------------------------------------------------------------------------------------


def test_signed_status_change_is_committed_before_the_202(client, store):
    response = post(client, fixture(STATUS), identifier="wh-status-1")
    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    [row] = inbox_rows(store)  # the row is there when the answer is
    assert response.json()["id"] == row.id
    assert (row.source, row.status, row.kind) == ("jira", "pending", "jira:issue_updated")
    assert row.entity_key == "jira:issue:10077"
    assert row.change_key == "jira:issue:10077:1795774522169:34911"
    assert row.delivery_id == "jira:wh-status-1"
    assert row.payload["style"] == "jira"
    event = JiraEvent.from_payload(row.payload["event"])
    assert event == parse_webhook(fixture(STATUS))
    assert (event.issue_key, event.status) == ("SUP-77", "In Progress")
    assert [(c.field, c.to_string) for c in event.changes] == [("status", "In Progress")]


def test_signature_is_hex_hmac_sha256_of_the_raw_body_with_a_sha256_prefix(client, store):
    """Pinned independently of the product's ``sign``: what Jira sends (WebSub)."""
    body = fixture(STATUS)
    digest = hmac.new(SECRET_ONE.encode(), body, hashlib.sha256).hexdigest()
    response = client.post(URL, content=body, headers={"X-Hub-Signature": f"sha256={digest}"})
    assert response.status_code == 202
    assert len(inbox_rows(store)) == 1


@pytest.mark.parametrize(("name", "kind", "entity_key", "change_key"), [
    (RESOLVED, "jira:issue_updated", "jira:issue:10077", "jira:issue:10077:1796211605512:35207"),
    (DELETED, "jira:issue_deleted", "jira:issue:10078", "jira:issue:10078:deleted"),
    (COMMENT_CREATED, "comment_created", "jira:issue:10077",
     "jira:comment:10412:2026-11-27T11:32:21.184+00:00"),
    (COMMENT_UPDATED, "comment_updated", "jira:issue:10077",
     "jira:comment:10412:2026-11-27T12:31:43.489+00:00"),
])
def test_each_handled_event_type_is_stored_pending_under_its_issue(
        client, store, name, kind, entity_key, change_key):
    response = post(client, fixture(name))
    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    [row] = inbox_rows(store)
    assert (row.status, row.kind, row.entity_key, row.change_key) == \
        ("pending", kind, entity_key, change_key)
    assert JiraEvent.from_payload(row.payload["event"]) == parse_webhook(fixture(name))


def test_an_event_without_an_identifier_is_stored_without_a_delivery_id(client, store):
    assert post(client, fixture(STATUS), identifier=None).status_code == 202
    [row] = inbox_rows(store)
    assert row.delivery_id is None
    assert row.change_key == "jira:issue:10077:1795774522169:34911"


# --- duplicates ----------------------------------------------------------------------------------


def test_redelivery_with_the_same_identifier_is_a_duplicate(client, store):
    body = fixture(STATUS)
    first = post(client, body, identifier="wh-same")
    again = post(client, body, identifier="wh-same")
    assert first.json()["status"] == "accepted"
    assert again.status_code == 202
    assert again.json() == {"status": "duplicate", "by": "delivery", "id": first.json()["id"]}
    assert len(inbox_rows(store)) == 1


def test_the_same_event_under_another_identifier_is_a_duplicate(client, store):
    first = post(client, fixture(COMMENT_CREATED), identifier="wh-a")
    again = post(client, fixture(COMMENT_CREATED), identifier="wh-b")
    assert again.status_code == 202
    assert again.json() == {"status": "duplicate", "by": "change", "id": first.json()["id"]}
    [row] = inbox_rows(store)
    assert row.delivery_id == "jira:wh-a"


def test_different_events_of_one_issue_are_each_stored_in_order(client, store):
    for number, name in enumerate([STATUS, COMMENT_CREATED, COMMENT_UPDATED, RESOLVED]):
        assert post(client, fixture(name), identifier=f"wh-{number}").json()["status"] == \
            "accepted"
    rows = inbox_rows(store)
    assert [r.kind for r in rows] == ["jira:issue_updated", "comment_created",
                                      "comment_updated", "jira:issue_updated"]
    assert {r.entity_key for r in rows} == {"jira:issue:10077"}


# --- refused: signature --------------------------------------------------------------------------


def test_tampered_body_gets_401_and_leaves_no_row(client, store):
    body = fixture(STATUS)
    tampered = body.replace(b'"toString": "In Progress"', b'"toString": "Done"')
    assert tampered != body
    response = client.post(URL, content=tampered, headers=headers(body))
    assert response.status_code == 401
    assert inbox_rows(store) == []


def _without_signature(h: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in h.items() if k != "X-Hub-Signature"}


@pytest.mark.parametrize("mutate", [
    pytest.param(lambda h, b: {**h, "X-Hub-Signature": sign(OTHER_SECRET, b)}, id="wrong-secret"),
    pytest.param(lambda h, b: _without_signature(h), id="missing-header"),
    pytest.param(lambda h, b: {**h, "X-Hub-Signature": ""}, id="empty-header"),
    pytest.param(lambda h, b: {**h, "X-Hub-Signature": "   "}, id="blank-header"),
    pytest.param(lambda h, b: {**h, "X-Hub-Signature": "sha256="}, id="prefix-without-digest"),
    pytest.param(lambda h, b: {**h, "X-Hub-Signature": "sha256=not-hex"}, id="malformed-digest"),
    pytest.param(lambda h, b: {**h, "X-Hub-Signature": sign(SECRET_ONE, b).replace(
        "sha256=", "sha1=")}, id="right-digest-wrong-prefix"),
    pytest.param(lambda h, b: {**h, "X-Hub-Signature": sign(SECRET_ONE, b)[len("sha256="):]},
                 id="digest-without-prefix"),
    pytest.param(lambda h, b: {**_without_signature(h),
                               "X-Hub-Signature-256": sign(SECRET_ONE, b)},
                 id="github-style-header-name"),
])
def test_unsigned_or_badly_signed_requests_get_401_and_leave_no_row(client, store, mutate):
    body = fixture(STATUS)
    response = client.post(URL, content=body, headers=mutate(headers(body), body))
    assert response.status_code == 401
    assert "error" in response.json()
    assert inbox_rows(store) == []


@pytest.mark.parametrize("secret", [SECRET_ONE, SECRET_TWO])
def test_during_rotation_either_configured_secret_is_accepted(store, secret):
    client = make_client(store, jira_signing_secrets=(SecretStr(SECRET_ONE),
                                                      SecretStr(SECRET_TWO)))
    response = post(client, fixture(STATUS), secret=secret)
    assert response.status_code == 202
    assert len(inbox_rows(store)) == 1


def test_another_vendors_secret_does_not_sign_jira_webhooks(store):
    client = make_client(store, jira_signing_secrets=(),
                         pagerduty_signing_secrets=(SecretStr(SECRET_ONE),),
                         zendesk_signing_secrets=(SecretStr(SECRET_ONE),))
    assert post(client, fixture(STATUS)).status_code == 401
    assert inbox_rows(store) == []


def test_no_configured_secret_refuses_everything(store):
    client = make_client(store, jira_signing_secrets=())
    response = post(client, fixture(STATUS))
    assert response.status_code == 401
    assert "no Jira signing secret" in response.json()["error"]
    assert inbox_rows(store) == []


# --- refused: size and shape ---------------------------------------------------------------------


def test_oversized_body_gets_413_and_leaves_no_row(client, store):
    response = post(client, oversized())
    assert response.status_code == 413
    assert inbox_rows(store) == []


def test_oversized_body_without_content_length_gets_413(client, store):
    body = oversized()
    response = client.post(URL, content=chunked(body), headers=headers(body))
    assert response.status_code == 413
    assert inbox_rows(store) == []


def test_body_at_the_limit_is_read(store):
    body = fixture(STATUS)
    assert post(make_client(store, max_body_bytes=len(body)), body).status_code == 202
    assert len(inbox_rows(store)) == 1


@pytest.mark.parametrize("body", [
    pytest.param(b"{not json", id="malformed-json"),
    pytest.param(b"\xff\xfe", id="not-utf8"),
    pytest.param(b"[1, 2, 3]", id="array"),
    pytest.param(b"[" * 4000 + b"]" * 4000, id="nested-too-deep"),
    pytest.param(json.dumps({"webhookEvent": "jira:issue_updated"}).encode(), id="no-issue"),
    pytest.param(json.dumps({"webhookEvent": "jira:issue_updated",
                             "issue": {"id": "10077"}}).encode(), id="no-issue-key"),
    pytest.param(json.dumps({"webhookEvent": "jira:issue_updated",
                             "issue": {"id": "ten", "key": "SUP-77"}}).encode(),
                 id="issue-id-not-a-number"),
    pytest.param(json.dumps({"webhookEvent": "comment_created",
                             "issue": {"id": "10077", "key": "SUP-77"}}).encode(),
                 id="comment-event-without-comment"),
    pytest.param(json.dumps({"timestamp": "2019-1-30 15:51:34,870",
                             "webhookEvent": "jira:issue_updated",
                             "issue": {"id": "10077", "key": "SUP-77"}}).encode(),
                 id="timestamp-as-text"),
])
def test_signed_malformed_payloads_get_400_and_leave_no_row(client, store, body):
    response = post(client, body)
    assert response.status_code == 400
    assert response.json()["error"].startswith("malformed payload:")
    assert inbox_rows(store) == []


# --- signed but not handled ----------------------------------------------------------------------


@pytest.mark.parametrize("event_type", ["jira:issue_created", "comment_deleted",
                                        "worklog_updated"])
def test_a_signed_event_of_another_type_gets_202_and_one_ignored_row(client, store, event_type):
    body = json.dumps({"timestamp": 1795774522169, "webhookEvent": event_type}).encode()
    response = post(client, body, identifier="wh-other")
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    [row] = inbox_rows(store)
    assert response.json()["id"] == row.id
    assert (row.source, row.status, row.kind) == ("jira", "ignored", event_type)
    assert row.entity_key == "jira:ignored"
    assert row.delivery_id == "jira:wh-other"
    assert row.change_key is None
    assert row.outcome.startswith("ignored:") and event_type in row.outcome


def test_redelivery_of_an_ignored_event_adds_no_row(client, store):
    body = json.dumps({"webhookEvent": "jira:issue_created"}).encode()
    first = post(client, body, identifier="wh-created")
    again = post(client, body, identifier="wh-created")
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert len(inbox_rows(store)) == 1


def test_a_jira_body_posted_to_the_pagerduty_route_is_refused(client, store):
    body = fixture(STATUS)
    response = client.post("/webhooks/pagerduty", content=body, headers=headers(body))
    assert response.status_code == 401
    assert inbox_rows(store) == []


# --- processing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "outcome"), [
    (STATUS, "jira jira:issue_updated SUP-77: no ticket is linked to it; nothing to do"),
    (DELETED, "jira jira:issue_deleted SUP-78: no ticket is linked to it; nothing to do"),
    (COMMENT_CREATED, "jira comment_created SUP-77: no ticket is linked to it; nothing to do"),
])
def test_a_stored_jira_event_is_processed_to_done_with_its_reason(client, store, name, outcome):
    post(client, fixture(name))
    processor = EventProcessor(store, load_rules([], custom_fields=()), zendesk=None,
                               retry=RetryPolicy(3))
    [item] = inbox.acquire(store, "t/w", 1, 60)
    assert processor.process(item) == outcome
    [row] = inbox_rows(store)
    assert (row.status, row.outcome) == ("done", outcome)


# --- configuration -------------------------------------------------------------------------------


CONFIG = """\
connectors:
  zendesk: {subdomain: acme, email: ops@example.com, api_token: zd-token}
  jira: {url: https://acme.atlassian.net, email: ops@example.com, api_token: jira-token}
receiver:
  jira_signing_secrets: ["${JIRA_WEBHOOK_SECRET}"]
"""


def test_jira_signing_secrets_come_from_the_environment_and_stay_secret(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    config = load_config(path, env={"JIRA_WEBHOOK_SECRET": SECRET_ONE})
    [secret] = config.app.receiver.jira_signing_secrets
    assert secret.get_secret_value() == SECRET_ONE
    assert SECRET_ONE not in repr(config.app)


def test_a_short_jira_signing_secret_is_a_problem_naming_its_path_not_its_value(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    with pytest.raises(ProblemsError) as caught:
        load_config(path, env={"JIRA_WEBHOOK_SECRET": "short-secret"})
    [problem] = caught.value.problems
    assert problem.path == "receiver.jira_signing_secrets[0]"
    assert "short-secret" not in caught.value.render()
