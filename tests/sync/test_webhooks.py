"""The Zendesk webhook receiver: 2xx only after the commit; bad input refused and leaves no row."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from starlette.testclient import TestClient

from sync.config import ReceiverSettings
from sync.schema import inbox
from sync.store import Store
from sync.webhooks import create_app

FIXTURES = Path(__file__).parent.parent / "fixtures" / "zendesk"
NOW = datetime(2026, 11, 27, 10, 0, 10, tzinfo=UTC)
FIELD_IDS = {"error_code": 360001, "product_area": 360002}
SECRET_ONE = "whsec-one-3f9c2a7d41b8"
SECRET_TWO = "whsec-two-8e1d5b0c92f4"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Independent of the product code: base64(HMAC-SHA256(secret, timestamp + body))."""
    return base64.b64encode(hmac.new(secret.encode(), timestamp.encode() + body,
                                     hashlib.sha256).digest()).decode()


def headers(body: bytes, *, secret: str = SECRET_ONE, ts: str = "2026-11-27T10:00:07Z",
            invocation: str | None = "inv-1") -> dict[str, str]:
    out = {"Content-Type": "application/json",
           "X-Zendesk-Webhook-Signature-Timestamp": ts,
           "X-Zendesk-Webhook-Signature": sign(secret, ts, body),
           "X-Zendesk-Webhook-Id": "01HWEBHOOK"}
    if invocation:
        out["X-Zendesk-Webhook-Invocation-Id"] = invocation
    return out


def make_client(store: Store, **overrides: object) -> TestClient:
    values: dict[str, object] = {
        "zendesk_signing_secrets": (SecretStr(SECRET_ONE), SecretStr(SECRET_TWO)),
        "max_body_bytes": 4096,
    }
    values.update(overrides)
    app = create_app(store, ReceiverSettings(**values), field_ids=FIELD_IDS, clock=lambda: NOW)
    return TestClient(app)


@pytest.fixture
def client(store: Store) -> TestClient:
    return make_client(store)


def rows(store: Store) -> list[sa.Row]:
    with store.read() as conn:
        return conn.execute(sa.select(inbox).order_by(inbox.c.id)).all()


def test_signed_event_subscription_is_committed_before_the_200(client, store):
    body = fixture("webhook_event_ticket_created.json")
    response = client.post("/webhooks/zendesk", content=body, headers=headers(body))
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    [row] = rows(store)
    assert row.status == "pending"
    assert row.change_key == "zendesk:ticket:4012:2026-11-27T10:00:00Z"
    assert row.delivery_id == "zendesk:inv-1"
    assert row.payload["hint"] == "ticket.created"
    assert row.payload["complete"] is False  # event subscriptions carry no custom fields
    assert row.payload["fields"]["priority"] == "high"
    assert row.payload["fields"]["organization_id"] == 501


def test_trigger_body_maps_custom_fields_by_name_and_is_complete(client, store):
    body = fixture("webhook_trigger_ticket_updated.json")
    assert client.post("/webhooks/zendesk", content=body, headers=headers(body)).status_code == 200
    [row] = rows(store)
    assert row.payload["complete"] is True
    assert row.payload["fields"]["fields"] == {"error_code": "E1042", "product_area": "routing"}
    assert row.payload["fields"]["tags"] == ["bug_confirmed", "routing", "vip"]


def test_either_signing_secret_is_accepted_during_rotation(client, store):
    body = fixture("webhook_event_ticket_created.json")
    response = client.post("/webhooks/zendesk", content=body,
                           headers=headers(body, secret=SECRET_TWO))
    assert response.status_code == 200
    assert len(rows(store)) == 1


@pytest.mark.parametrize("mutate", [
    pytest.param(lambda h, b: {**h, "X-Zendesk-Webhook-Signature": sign("wrong", "x", b)},
                 id="wrong-secret"),
    pytest.param(lambda h, b: {k: v for k, v in h.items() if k != "X-Zendesk-Webhook-Signature"},
                 id="missing-signature"),
    pytest.param(lambda h, b: {k: v for k, v in h.items()
                               if k != "X-Zendesk-Webhook-Signature-Timestamp"},
                 id="missing-timestamp"),
    pytest.param(lambda h, b: {**h, "X-Zendesk-Webhook-Signature-Timestamp":
                               "2026-11-27T10:00:08Z"}, id="timestamp-not-the-signed-one"),
])
def test_unsigned_or_badly_signed_requests_get_401_and_leave_no_row(client, store, mutate):
    body = fixture("webhook_event_ticket_created.json")
    response = client.post("/webhooks/zendesk", content=body, headers=mutate(headers(body), body))
    assert response.status_code == 401
    assert rows(store) == []


def test_tampered_body_is_refused(client, store):
    body = fixture("webhook_event_ticket_created.json")
    sent = headers(body)
    tampered = body.replace(b'"HIGH"', b'"LOW"')
    assert client.post("/webhooks/zendesk", content=tampered, headers=sent).status_code == 401
    assert rows(store) == []


@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_stale_or_future_timestamps_are_refused(client, store, offset):
    body = fixture("webhook_event_ticket_created.json")
    ts = (NOW + offset).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = client.post("/webhooks/zendesk", content=body, headers=headers(body, ts=ts))
    assert response.status_code == 401
    assert "tolerance" in response.json()["error"]
    assert rows(store) == []


def test_unreadable_timestamp_is_refused(client, store):
    body = fixture("webhook_event_ticket_created.json")
    response = client.post("/webhooks/zendesk", content=body,
                           headers=headers(body, ts="yesterday at noon"))
    assert response.status_code == 401
    assert rows(store) == []


def test_oversized_body_gets_413(client, store):
    body = json.dumps({"type": "zen:event-type:ticket.created", "pad": "x" * 5000}).encode()
    response = client.post("/webhooks/zendesk", content=body, headers=headers(body))
    assert response.status_code == 413
    assert rows(store) == []


def test_oversized_body_without_content_length_gets_413(client, store):
    body = b"{" + b'"a": "' + b"x" * 5000 + b'"}'

    def chunks():
        yield body[:2000]
        yield body[2000:]

    response = client.post("/webhooks/zendesk", content=chunks(), headers=headers(body))
    assert response.status_code == 413
    assert rows(store) == []


@pytest.mark.parametrize("body", [
    pytest.param(b"{not json", id="malformed-json"),
    pytest.param(b"[1, 2, 3]", id="array"),
    pytest.param(b"\xff\xfe", id="not-utf8"),
    pytest.param(b"[" * 2000 + b"]" * 2000, id="nested-too-deep"),
    pytest.param(json.dumps({"switchboard": "zendesk-trigger/1", "ticket": {"updated_at":
                 "2026-11-27T10:00:00Z"}}).encode(), id="trigger-without-id"),
    pytest.param(json.dumps({"switchboard": "zendesk-trigger/1", "ticket": {"id": "abc",
                 "updated_at": "2026-11-27T10:00:00Z"}}).encode(), id="id-wrong-type"),
    pytest.param(json.dumps({"switchboard": "zendesk-trigger/1", "ticket": {"id": "1",
                 "updated_at": "soon"}}).encode(), id="bad-updated-at"),
    pytest.param(json.dumps({"switchboard": "zendesk-trigger/1", "ticket": {"id": "1",
                 "updated_at": "2026-11-27T10:00:00Z", "tags": {"a": 1}}}).encode(),
                 id="tags-wrong-type"),
    pytest.param(json.dumps({"type": "zen:event-type:ticket.created", "detail": "x"}).encode(),
                 id="event-without-detail"),
])
def test_malformed_payloads_get_400_and_leave_no_row(client, store, body):
    response = client.post("/webhooks/zendesk", content=body, headers=headers(body))
    assert response.status_code == 400
    assert rows(store) == []


def test_signed_event_of_an_unhandled_type_is_acknowledged_and_recorded_as_ignored(client, store):
    body = fixture("webhook_event_user_created.json")
    response = client.post("/webhooks/zendesk", content=body, headers=headers(body))
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    [row] = rows(store)
    assert row.status == "ignored"  # never claimed by a worker, so no rule runs
    assert row.kind == "zen:event-type:user.created"


def test_redelivery_with_the_same_invocation_id_is_a_duplicate(client, store):
    body = fixture("webhook_event_ticket_created.json")
    first = client.post("/webhooks/zendesk", content=body, headers=headers(body))
    again = client.post("/webhooks/zendesk", content=body, headers=headers(body))
    assert first.json()["status"] == "accepted"
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "by": "delivery", "id": first.json()["id"]}
    assert len(rows(store)) == 1


def test_one_change_seen_in_both_payload_shapes_is_one_event(client, store):
    event = fixture("webhook_event_tags_changed.json")
    trigger = fixture("webhook_trigger_ticket_updated.json")
    a = client.post("/webhooks/zendesk", content=event, headers=headers(event, invocation="a"))
    b = client.post("/webhooks/zendesk", content=trigger,
                    headers=headers(trigger, invocation="b"))
    assert a.json()["status"] == "accepted"
    assert b.json()["status"] == "duplicate" and b.json()["by"] == "change"
    assert len(rows(store)) == 1


def test_no_configured_secret_refuses_everything(store):
    client = make_client(store, zendesk_signing_secrets=())
    body = fixture("webhook_event_ticket_created.json")
    assert client.post("/webhooks/zendesk", content=body, headers=headers(body)).status_code == 401
    assert rows(store) == []


def test_failed_commit_answers_503_with_retry_after(client, store):
    with store.write() as conn:
        conn.execute(sa.text("DROP TABLE inbox"))
    body = fixture("webhook_event_ticket_created.json")
    response = client.post("/webhooks/zendesk", content=body, headers=headers(body))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"


def test_healthz_answers_when_the_store_does(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def trigger_body(event: object = "ticket.updated", **ticket: object) -> bytes:
    """Switchboard's trigger template, as Zendesk renders it (strings), with ``ticket`` changes."""
    base = json.loads(fixture("webhook_trigger_ticket_updated.json"))
    base["event"] = event
    base["ticket"].update(ticket)
    return json.dumps(base).encode()


def event_body(**detail: object) -> bytes:
    base = json.loads(fixture("webhook_event_ticket_created.json"))
    base["detail"].update(detail)
    return json.dumps(base).encode()


@pytest.mark.parametrize("body", [
    pytest.param(trigger_body(id="-3"), id="negative-id"),
    pytest.param(trigger_body(id="0"), id="zero-id"),
    pytest.param(trigger_body(id=str(10**23)), id="id-past-64-bits"),
    pytest.param(trigger_body(id=str(2**63)), id="id-just-past-64-bits"),
    pytest.param(trigger_body(id=10**23), id="json-number-id-past-64-bits"),
    pytest.param(trigger_body(id=-3), id="json-number-negative-id"),
    pytest.param(trigger_body(id="4012.7"), id="fractional-id"),
    pytest.param(trigger_body(id=4012.0), id="json-float-id"),
    pytest.param(trigger_body(id="+4012"), id="signed-id"),
    pytest.param(event_body(id="-3"), id="event-negative-id"),
    pytest.param(event_body(id="0"), id="event-zero-id"),
    pytest.param(trigger_body(requester_id="-1"), id="negative-requester"),
    pytest.param(trigger_body(organization_id="0"), id="zero-organization"),
    pytest.param(trigger_body(assignee_id=str(10**23)), id="assignee-past-64-bits"),
    pytest.param(event_body(group_id="-20001"), id="event-negative-group"),
])
def test_ids_that_are_not_positive_64_bit_integers_get_400_and_leave_no_row(client, store, body):
    response = client.post("/webhooks/zendesk", content=body, headers=headers(body))
    assert response.status_code == 400
    assert "must be" in response.json()["error"]
    assert rows(store) == []


def test_largest_64_bit_id_and_empty_optional_ids_are_accepted(client, store):
    body = trigger_body(id=str(2**63 - 1), requester_id="", organization_id=None,
                        assignee_id="900002", group_id="")
    assert client.post("/webhooks/zendesk", content=body, headers=headers(body)).status_code == 200
    [row] = rows(store)
    fields = row.payload["fields"]
    assert fields["id"] == 2**63 - 1
    assert (fields["requester_id"], fields["organization_id"], fields["group_id"]) == \
        (None, None, None)
    assert fields["assignee_id"] == 900002


@pytest.mark.parametrize("body", [
    pytest.param(trigger_body(updated_at="2026-11-27T10:05:00"), id="naive-updated-at"),
    pytest.param(trigger_body(created_at="2026-11-27T10:00:00"), id="naive-created-at"),
    pytest.param(trigger_body(updated_at="2026-11-27"), id="date-only-updated-at"),
    pytest.param(event_body(updated_at="2026-11-27T10:00:00"), id="event-naive-updated-at"),
    pytest.param(trigger_body(updated_at=1795780800), id="unix-number-updated-at"),
])
def test_timestamps_without_a_utc_offset_get_400_and_leave_no_row(client, store, body):
    response = client.post("/webhooks/zendesk", content=body, headers=headers(body))
    assert response.status_code == 400
    assert rows(store) == []


@pytest.mark.parametrize("stamp", ["2026-11-27T12:05:00+02:00", "2026-11-27T10:05Z",
                                   "2026-11-27T05:05:00-05:00"])
def test_timestamp_with_z_or_an_offset_is_stored_in_utc(client, store, stamp):
    body = trigger_body(updated_at=stamp)
    assert client.post("/webhooks/zendesk", content=body, headers=headers(body)).status_code == 200
    [row] = rows(store)
    assert row.payload["fields"]["updated_at"] == "2026-11-27T10:05:00Z"


@pytest.mark.parametrize("updated_at", [
    pytest.param("9999-12-31T23:59:59Z", id="end-of-time"),
    pytest.param("9999-12-31T23:00:00-05:00", id="past-datetime-max-in-utc"),
    pytest.param((NOW + timedelta(minutes=6)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 id="beyond-the-tolerance"),
])
def test_updated_at_further_in_the_future_than_the_tolerance_gets_400(client, store, updated_at):
    for body in (trigger_body(updated_at=updated_at), event_body(updated_at=updated_at)):
        response = client.post("/webhooks/zendesk", content=body, headers=headers(body))
        assert response.status_code == 400
    assert rows(store) == []


def test_updated_at_slightly_ahead_within_the_tolerance_is_accepted(client, store):
    ahead = (NOW + timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = trigger_body(updated_at=ahead)
    assert client.post("/webhooks/zendesk", content=body, headers=headers(body)).status_code == 200
    assert len(rows(store)) == 1


def test_the_future_limit_follows_the_configured_tolerance(store):
    client = make_client(store, timestamp_tolerance_seconds=30)
    ahead = (NOW + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = trigger_body(updated_at=ahead)
    assert client.post("/webhooks/zendesk", content=body, headers=headers(body)).status_code == 400
    assert rows(store) == []


def test_signature_timestamp_out_of_datetime_range_is_refused_not_a_crash(client, store):
    body = fixture("webhook_event_ticket_created.json")
    response = client.post("/webhooks/zendesk", content=body,
                           headers=headers(body, ts="9999-12-31T23:00:00-05:00"))
    assert response.status_code == 401
    assert rows(store) == []


@pytest.mark.parametrize("event", ["ticket.deleted", "ticket.solved", "user.created"])
def test_signed_trigger_body_of_an_unhandled_event_is_acknowledged_and_recorded_as_ignored(
        client, store, event):
    body = trigger_body(event=event, id="not even an id")
    response = client.post("/webhooks/zendesk", content=body, headers=headers(body))
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    [row] = rows(store)
    assert row.status == "ignored"  # never claimed by a worker, so no rule runs
    assert row.kind == f"trigger:{event}"


@pytest.mark.parametrize("event", ["ticket.created", "ticket.updated"])
def test_trigger_body_of_a_handled_event_with_a_malformed_ticket_gets_400(client, store, event):
    body = trigger_body(event=event, id="-3")
    assert client.post("/webhooks/zendesk", content=body, headers=headers(body)).status_code == 400
    assert rows(store) == []


def test_trigger_body_whose_event_is_not_text_gets_400(client, store):
    body = trigger_body(event={"type": "ticket.created"})
    assert client.post("/webhooks/zendesk", content=body, headers=headers(body)).status_code == 400
    assert rows(store) == []


def test_healthz_fails_when_the_inbox_writer_is_gone(store):
    client = make_client(store)
    client.app.state.writer.close()
    assert client.get("/healthz").status_code == 503


# --- comments ------------------------------------------------------------------------------------


def comment_event(comment: object = None, **event: object) -> bytes:
    data = json.loads(fixture("webhook_event_comment_added.json"))
    if comment is not None:
        data["event"]["comment"] = comment
    data["event"].update(event)
    return json.dumps(data).encode()


def test_comment_added_event_carries_the_comment_into_the_inbox(client, store):
    body = fixture("webhook_event_comment_added.json")
    assert client.post("/webhooks/zendesk", content=body, headers=headers(body)).status_code == 200
    [row] = rows(store)
    assert row.kind == "zen:event-type:ticket.comment_added"
    assert row.change_key == "zendesk:ticket:4012:2026-11-27T10:00:05Z"
    assert row.payload["hint"] == "ticket.updated"
    assert row.payload["comment"] == {
        "id": 7300004, "body": "Still failing after the update. Any news?", "public": True,
        "author_id": 7501, "created_at": "2026-11-27T10:00:05Z"}


def test_other_ticket_events_carry_no_comment(client, store):
    body = fixture("webhook_event_tags_changed.json")
    assert client.post("/webhooks/zendesk", content=body, headers=headers(body)).status_code == 200
    [row] = rows(store)
    assert "comment" not in row.payload


@pytest.mark.parametrize("comment", [
    pytest.param({"id": "7300004", "is_public": True}, id="no-body"),
    pytest.param({"id": "7300004", "body": "hi"}, id="no-visibility"),
    pytest.param({"body": "hi", "is_public": False}, id="no-id"),
])
def test_a_comment_the_payload_does_not_fully_carry_is_left_to_be_read(client, store, comment):
    body = comment_event(comment)
    assert client.post("/webhooks/zendesk", content=body, headers=headers(body)).status_code == 200
    [row] = rows(store)
    assert "comment" not in row.payload


def test_visibility_given_as_text_is_read(client, store):
    body = comment_event({"id": "7", "body": "note", "is_public": "false", "author": {"id": "9"}})
    assert client.post("/webhooks/zendesk", content=body, headers=headers(body)).status_code == 200
    assert rows(store)[0].payload["comment"]["public"] is False


@pytest.mark.parametrize("comment", [
    pytest.param("Still failing", id="comment-not-an-object"),
    pytest.param({"id": "x7", "body": "hi", "is_public": True}, id="id-not-an-id"),
    pytest.param({"id": "7", "body": ["hi"], "is_public": True}, id="body-not-text"),
    pytest.param({"id": "7", "body": "hi", "is_public": "maybe"}, id="visibility-not-boolean"),
    pytest.param({"id": "7", "body": "hi", "is_public": True, "author": "Dana"},
                 id="author-not-an-object"),
    pytest.param({"id": "7", "body": "hi", "is_public": True, "author": {"id": -3}},
                 id="author-id-negative"),
])
def test_a_malformed_comment_gets_400_and_leaves_no_row(client, store, comment):
    body = comment_event(comment)
    assert client.post("/webhooks/zendesk", content=body, headers=headers(body)).status_code == 400
    assert rows(store) == []


def test_a_comment_event_whose_event_is_not_an_object_gets_400(client, store):
    data = json.loads(fixture("webhook_event_comment_added.json"))
    data["event"] = "comment"
    body = json.dumps(data).encode()
    assert client.post("/webhooks/zendesk", content=body, headers=headers(body)).status_code == 400
    assert rows(store) == []
