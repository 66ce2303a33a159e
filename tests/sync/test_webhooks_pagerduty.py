"""The PagerDuty webhook receiver (v3): signed incident events are stored once; bad input leaves no
row; signed events Switchboard does not act on still get a 2xx (PagerDuty disables a subscription
after three 4xx in a row)."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from starlette.testclient import TestClient

from connectors.pagerduty_webhooks import sign
from sync.config import ReceiverSettings
from sync.schema import inbox
from sync.store import Store
from sync.webhooks import create_app

FIXTURES = Path(__file__).parent.parent / "fixtures" / "pagerduty"
URL = "/webhooks/pagerduty"
SECRET_ONE = "pd-whsec-one-5b7e19c04a2d"
SECRET_TWO = "pd-whsec-two-c83f6a21d90e"
OTHER_SECRET = "pd-whsec-not-ours-77aa01"
FIELD_IDS = {"error_code": 360001}

ACKNOWLEDGED = "webhook_incident_acknowledged.json"
ACK_EVENT_ID = "01DEN1HNLBC1VITK3RKJJGWOJZ"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def headers(body: bytes, *, secret: str = SECRET_ONE,
            webhook_id: str | None = "wh-delivery-1") -> dict[str, str]:
    out = {"Content-Type": "application/json", "X-PagerDuty-Signature": sign(secret, body)}
    if webhook_id is not None:
        out["X-Webhook-Id"] = webhook_id
    return out


def make_client(store: Store, **overrides: object) -> TestClient:
    values: dict[str, object] = {
        "pagerduty_signing_secrets": (SecretStr(SECRET_ONE),),
        "max_body_bytes": 4096,
    }
    values.update(overrides)
    return TestClient(create_app(store, ReceiverSettings(**values), field_ids=FIELD_IDS))


@pytest.fixture
def client(store: Store) -> TestClient:
    return make_client(store)


def rows(store: Store) -> list[sa.Row]:
    with store.read() as conn:
        return conn.execute(sa.select(inbox).order_by(inbox.c.id)).all()


def post(client: TestClient, body: bytes, **kwargs: object):
    return client.post(URL, content=body, headers=headers(body, **kwargs))


# --- accepted ------------------------------------------------------------------------------------


def test_signed_acknowledged_event_is_committed_before_the_202(client, store):
    response = post(client, fixture(ACKNOWLEDGED), webhook_id="wh-ack-1")
    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    [row] = rows(store)
    assert response.json()["id"] == row.id
    assert row.source == "pagerduty"
    assert row.status == "pending"
    assert row.kind == "incident.acknowledged"
    assert row.entity_key == "pagerduty:incident:Q2K8Z6L3M4N5P6"
    assert row.change_key == f"pagerduty:{ACK_EVENT_ID}"
    assert row.delivery_id == "pagerduty:wh-ack-1"
    assert row.payload["style"] == "pagerduty"
    event = row.payload["event"]
    assert event["event_id"] == ACK_EVENT_ID
    assert event["event_type"] == "incident.acknowledged"
    assert event["incident_id"] == "Q2K8Z6L3M4N5P6"
    assert event["incident_key"] == "zendesk-ticket-1001-escalation"
    assert event["status"] == "acknowledged"
    assert event["agent_name"] == "Alex Doe"
    assert event["occurred_at"].startswith("2026-11-27T10:15:22.169")


def test_signature_is_hex_hmac_sha256_of_the_raw_body_with_a_v1_prefix(client, store):
    """Pinned independently of the product's ``sign``: what PagerDuty actually sends."""
    body = fixture(ACKNOWLEDGED)
    digest = hmac.new(SECRET_ONE.encode(), body, hashlib.sha256).hexdigest()
    response = client.post(URL, content=body, headers={"X-PagerDuty-Signature": f"v1={digest}",
                                                       "X-Webhook-Id": "wh-1"})
    assert response.status_code == 202
    assert len(rows(store)) == 1


def test_incident_triggered_is_stored_pending(client, store):
    response = post(client, fixture("webhook_incident_triggered.json"))
    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    [row] = rows(store)
    assert row.status == "pending"
    assert row.kind == "incident.triggered"
    assert row.change_key == "pagerduty:01DEN1GZ7T0X3W5CKQH8F2M9YA"
    assert row.payload["event"]["incident_key"] == "zendesk-ticket-1001-escalation"


def test_incident_annotated_is_stored_with_its_note(client, store):
    response = post(client, fixture("webhook_incident_annotated.json"))
    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    [row] = rows(store)
    assert row.status == "pending"
    assert row.kind == "incident.annotated"
    assert row.entity_key == "pagerduty:incident:Q2K8Z6L3M4N5P6"
    assert row.change_key == "pagerduty:01DEN1JAS2D4Y9QH0VVLZ4QG7R"
    event = row.payload["event"]
    assert event["note"] == "Rolled back the 10:00 deploy; error rate is dropping."
    assert event["incident_key"] is None  # a note only references the incident


def test_incident_resolved_is_stored_pending(client, store):
    assert post(client, fixture("webhook_incident_resolved.json")).status_code == 202
    [row] = rows(store)
    assert (row.status, row.kind) == ("pending", "incident.resolved")


def test_event_without_a_webhook_id_is_stored_without_a_delivery_id(client, store):
    assert post(client, fixture(ACKNOWLEDGED), webhook_id=None).status_code == 202
    [row] = rows(store)
    assert row.delivery_id is None
    assert row.change_key == f"pagerduty:{ACK_EVENT_ID}"


# --- duplicates ----------------------------------------------------------------------------------


def test_redelivery_with_the_same_webhook_id_is_a_duplicate(client, store):
    body = fixture(ACKNOWLEDGED)
    first = post(client, body, webhook_id="wh-same")
    again = post(client, body, webhook_id="wh-same")
    assert first.status_code == 202 and first.json()["status"] == "accepted"
    assert again.status_code == 202
    assert again.json() == {"status": "duplicate", "by": "delivery", "id": first.json()["id"]}
    assert len(rows(store)) == 1


def test_the_same_event_under_another_webhook_id_is_a_duplicate(client, store):
    body = fixture(ACKNOWLEDGED)
    first = post(client, body, webhook_id="wh-a")
    again = post(client, body, webhook_id="wh-b")
    assert again.status_code == 202
    assert again.json() == {"status": "duplicate", "by": "change", "id": first.json()["id"]}
    [row] = rows(store)
    assert row.delivery_id == "pagerduty:wh-a"


def test_different_events_of_one_incident_are_each_stored(client, store):
    post(client, fixture(ACKNOWLEDGED), webhook_id="wh-a")
    post(client, fixture("webhook_incident_resolved.json"), webhook_id="wh-b")
    assert [r.kind for r in rows(store)] == ["incident.acknowledged", "incident.resolved"]


# --- refused: signature --------------------------------------------------------------------------


def test_tampered_body_gets_401_and_leaves_no_row(client, store):
    body = fixture(ACKNOWLEDGED)
    sent = headers(body)
    tampered = body.replace(b'"acknowledged"', b'"resolved"')
    assert tampered != body
    response = client.post(URL, content=tampered, headers=sent)
    assert response.status_code == 401
    assert rows(store) == []


@pytest.mark.parametrize("mutate", [
    pytest.param(lambda h, b: {**h, "X-PagerDuty-Signature": sign(OTHER_SECRET, b)},
                 id="wrong-secret"),
    pytest.param(lambda h, b: {k: v for k, v in h.items() if k != "X-PagerDuty-Signature"},
                 id="missing-header"),
    pytest.param(lambda h, b: {**h, "X-PagerDuty-Signature": ""}, id="empty-header"),
    pytest.param(lambda h, b: {**h, "X-PagerDuty-Signature": "   "}, id="blank-header"),
    pytest.param(lambda h, b: {**h, "X-PagerDuty-Signature": "v1="}, id="v1-without-digest"),
    pytest.param(lambda h, b: {**h, "X-PagerDuty-Signature":
                               sign(SECRET_ONE, b).replace("v1=", "v2=")},
                 id="right-digest-other-version"),
    pytest.param(lambda h, b: {**h, "X-PagerDuty-Signature":
                               "v1=" + hmac.new(SECRET_ONE.encode(), b, hashlib.sha1).hexdigest()},
                 id="sha1-digest"),
])
def test_unsigned_or_badly_signed_requests_get_401_and_leave_no_row(client, store, mutate):
    body = fixture(ACKNOWLEDGED)
    response = client.post(URL, content=body, headers=mutate(headers(body), body))
    assert response.status_code == 401
    assert "error" in response.json()
    assert rows(store) == []


def test_during_rotation_a_header_whose_second_v1_signature_matches_is_accepted(client, store):
    body = fixture(ACKNOWLEDGED)
    stale = sign(OTHER_SECRET, body)
    current = sign(SECRET_ONE, body)
    response = client.post(URL, content=body, headers={
        "X-PagerDuty-Signature": f"{stale},{current}", "X-Webhook-Id": "wh-rot"})
    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    assert len(rows(store)) == 1


def test_a_header_of_only_non_matching_signatures_is_refused(client, store):
    body = fixture(ACKNOWLEDGED)
    response = client.post(URL, content=body, headers={
        "X-PagerDuty-Signature": f"{sign(OTHER_SECRET, body)},{sign('yet-another-secret', body)}",
        "X-Webhook-Id": "wh-rot"})
    assert response.status_code == 401
    assert rows(store) == []


def test_either_configured_secret_is_accepted(store):
    client = make_client(store, pagerduty_signing_secrets=(SecretStr(SECRET_ONE),
                                                           SecretStr(SECRET_TWO)))
    response = post(client, fixture(ACKNOWLEDGED), secret=SECRET_TWO)
    assert response.status_code == 202
    assert len(rows(store)) == 1


def test_a_zendesk_secret_does_not_sign_pagerduty_webhooks(store):
    client = make_client(store, pagerduty_signing_secrets=(),
                         zendesk_signing_secrets=(SecretStr(SECRET_ONE),))
    assert post(client, fixture(ACKNOWLEDGED)).status_code == 401
    assert rows(store) == []


def test_no_configured_secret_refuses_everything(store):
    client = make_client(store, pagerduty_signing_secrets=())
    response = post(client, fixture(ACKNOWLEDGED))
    assert response.status_code == 401
    assert "no PagerDuty signing secret" in response.json()["error"]
    assert rows(store) == []


# --- refused: size and shape ---------------------------------------------------------------------


def test_oversized_body_gets_413_and_leaves_no_row(client, store):
    data = json.loads(fixture(ACKNOWLEDGED))
    data["event"]["data"]["title"] = "x" * 5000
    body = json.dumps(data).encode()
    response = post(client, body)
    assert response.status_code == 413
    assert rows(store) == []


def test_oversized_body_without_content_length_gets_413(client, store):
    data = json.loads(fixture(ACKNOWLEDGED))
    data["event"]["data"]["title"] = "x" * 5000
    body = json.dumps(data).encode()

    def chunks():
        yield body[:2000]
        yield body[2000:]

    response = client.post(URL, content=chunks(), headers=headers(body))
    assert response.status_code == 413
    assert rows(store) == []


def test_body_at_the_limit_is_read(store):
    body = fixture(ACKNOWLEDGED)
    client = make_client(store, max_body_bytes=len(body))
    assert post(client, body).status_code == 202
    assert len(rows(store)) == 1


@pytest.mark.parametrize("body", [
    pytest.param(b"{not json", id="malformed-json"),
    pytest.param(b"\xff\xfe", id="not-utf8"),
    pytest.param(b"[1, 2, 3]", id="array"),
    pytest.param(b"[" * 2000 + b"]" * 2000, id="nested-too-deep"),
    pytest.param(json.dumps({"messages": []}).encode(), id="v2-shape-no-event"),
    pytest.param(json.dumps({"event": {"event_type": "incident.acknowledged",
                                       "occurred_at": "2026-11-27T10:15:22Z",
                                       "data": {"id": "Q1", "type": "incident"}}}).encode(),
                 id="no-event-id"),
    pytest.param(json.dumps({"event": {"id": "E1", "event_type": "incident.acknowledged",
                                       "occurred_at": "soon",
                                       "data": {"id": "Q1", "type": "incident"}}}).encode(),
                 id="bad-occurred-at"),
    pytest.param(json.dumps({"event": {"id": "E1", "event_type": "incident.acknowledged",
                                       "occurred_at": "2026-11-27T10:15:22Z",
                                       "data": {"type": "incident"}}}).encode(),
                 id="no-incident-id"),
])
def test_signed_malformed_payloads_get_400_and_leave_no_row(client, store, body):
    response = post(client, body)
    assert response.status_code == 400
    assert "error" in response.json()
    assert rows(store) == []


# --- signed but not acted on ---------------------------------------------------------------------


def test_signed_non_incident_event_gets_202_and_one_ignored_row(client, store):
    response = post(client, fixture("webhook_service_updated.json"), webhook_id="wh-svc")
    assert response.status_code == 202  # never a 4xx: that would count towards disabling
    assert response.json()["status"] == "ignored"
    [row] = rows(store)
    assert response.json()["id"] == row.id
    assert row.source == "pagerduty"
    assert row.status == "ignored"  # never claimed by a worker, so no rule runs
    assert row.delivery_id == "pagerduty:wh-svc"
    assert row.change_key is None
    assert "service.updated" in row.outcome


def test_signed_priority_updated_gets_202_and_one_ignored_row(client, store):
    response = post(client, fixture("webhook_incident_priority_updated.json"))
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    [row] = rows(store)
    assert row.status == "ignored"
    assert row.kind == "incident.priority_updated"
    assert row.outcome.startswith("ignored:")


def test_redelivery_of_an_ignored_event_adds_no_row(client, store):
    body = fixture("webhook_service_updated.json")
    first = post(client, body, webhook_id="wh-svc")
    again = post(client, body, webhook_id="wh-svc")
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert len(rows(store)) == 1


# --- other routes are unaffected -----------------------------------------------------------------


def test_a_pagerduty_body_posted_to_the_zendesk_route_is_refused(client, store):
    body = fixture(ACKNOWLEDGED)
    response = client.post("/webhooks/zendesk", content=body, headers=headers(body))
    assert response.status_code == 401
    assert rows(store) == []
