"""PagerDuty v3 webhooks: signature verification and parsing into IncidentEvent."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.pagerduty_webhooks import (
    HANDLED_EVENT_TYPES,
    IncidentEvent,
    UnsupportedEventError,
    WebhookPayloadError,
    parse_webhook,
    sign,
    verify_signature,
)
from tests.connectors.support import FIXTURES, load

SECRET = "kQ7vZ2rX9mW4pL8sT1yB6nC3dF5gH0jA"
OLD_SECRET = "oldSecret-0000000000000000000000"
BODY = (FIXTURES / "pagerduty" / "webhook_incident_acknowledged.json").read_bytes()


def _independent(secret: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _body(fixture: str) -> bytes:
    return (FIXTURES / "pagerduty" / f"{fixture}.json").read_bytes()


# -- signatures ----------------------------------------------------------------------------


def test_sign_gives_v1_and_the_hex_hmac_sha256_of_the_raw_body() -> None:
    assert sign(SECRET, BODY) == _independent(SECRET, BODY)


def test_a_valid_signature_is_accepted() -> None:
    assert verify_signature(BODY, _independent(SECRET, BODY), [SECRET]) is True


def test_a_tampered_body_is_rejected() -> None:
    header = _independent(SECRET, BODY)
    tampered = BODY.replace(b"acknowledged", b"resolved", 1)
    assert verify_signature(tampered, header, [SECRET]) is False


def test_a_signature_made_with_another_secret_is_rejected() -> None:
    assert verify_signature(BODY, _independent("not-our-secret", BODY), [SECRET]) is False


@pytest.mark.parametrize("header", [None, "", "   "], ids=["missing", "empty", "blank"])
def test_a_missing_or_blank_header_is_rejected(header: str | None) -> None:
    assert verify_signature(BODY, header, [SECRET]) is False


@pytest.mark.parametrize(
    "header",
    ["garbage", "v1=", "v1=zz", "v1=" + "z" * 64, ",,,", "=abc", "v1:" + "0" * 64],
)
def test_a_malformed_header_is_rejected(header: str) -> None:
    assert verify_signature(BODY, header, [SECRET]) is False


def test_during_rotation_either_of_two_v1_signatures_is_enough() -> None:
    valid, stale = _independent(SECRET, BODY), _independent(OLD_SECRET + "x", BODY)

    assert verify_signature(BODY, f"{stale},{valid}", [SECRET]) is True
    assert verify_signature(BODY, f"{valid}, {stale}", [SECRET]) is True
    assert verify_signature(BODY, f"{stale},{stale}", [SECRET]) is False


def test_any_of_two_configured_secrets_is_enough() -> None:
    assert verify_signature(BODY, _independent(OLD_SECRET, BODY), [SECRET, OLD_SECRET]) is True
    assert verify_signature(BODY, _independent(SECRET, BODY), [SECRET, OLD_SECRET]) is True
    assert verify_signature(BODY, _independent("third", BODY), [SECRET, OLD_SECRET]) is False


def test_unknown_signature_versions_are_ignored() -> None:
    digest = _independent(SECRET, BODY).removeprefix("v1=")
    assert verify_signature(BODY, f"v2={digest}", [SECRET]) is False
    assert verify_signature(BODY, f"v2={digest},v1={digest}", [SECRET]) is True


def test_no_configured_secret_rejects_everything() -> None:
    assert verify_signature(BODY, _independent(SECRET, BODY), []) is False


# -- parsing -------------------------------------------------------------------------------


def test_incident_acknowledged_is_read_into_an_incident_event() -> None:
    event = parse_webhook(_body("webhook_incident_acknowledged"))

    assert event == IncidentEvent(
        event_id="01DEN1HNLBC1VITK3RKJJGWOJZ",
        event_type="incident.acknowledged",
        occurred_at=datetime(2026, 11, 27, 10, 15, 22, 169000, tzinfo=UTC),
        incident_id="Q2K8Z6L3M4N5P6",
        incident_number=482,
        incident_key="zendesk-ticket-1001-escalation",
        status="acknowledged",
        title="Checkout down for Enterprise customer (ticket 1001)",
        html_url="https://acme.pagerduty.com/incidents/Q2K8Z6L3M4N5P6",
        urgency="high",
        service_id="PF9KMXH",
        service_name="Payments API",
        agent_id="PLH1HKV",
        agent_name="Alex Doe",
        note=None,
    )
    assert event.handled is True
    assert event.occurred_at.utcoffset() is not None


def test_incident_resolved_carries_the_dedup_key_and_status() -> None:
    event = parse_webhook(_body("webhook_incident_resolved"))

    assert (event.event_type, event.status) == ("incident.resolved", "resolved")
    assert event.incident_key == "zendesk-ticket-1001-escalation"
    assert event.handled is True


def test_incident_annotated_reads_the_note_and_the_incident_reference() -> None:
    event = parse_webhook(_body("webhook_incident_annotated"))

    assert event.event_type == "incident.annotated"
    assert event.note == "Rolled back the 10:00 deploy; error rate is dropping."
    assert event.incident_id == "Q2K8Z6L3M4N5P6"
    assert event.title == "Checkout down for Enterprise customer (ticket 1001)"
    assert event.html_url == "https://acme.pagerduty.com/incidents/Q2K8Z6L3M4N5P6"
    # An incident_note only references the incident: these are not in the payload.
    assert (event.incident_key, event.status, event.incident_number) == (None, None, None)
    assert event.agent_name == "Alex Doe"
    assert event.handled is True


def test_an_unhandled_incident_event_type_is_parsed_and_marked_unhandled() -> None:
    event = parse_webhook(_body("webhook_incident_priority_updated"))

    assert event.event_type == "incident.priority_updated"
    assert event.incident_key == "zendesk-ticket-1001-escalation"
    assert event.handled is False
    assert event.event_type not in HANDLED_EVENT_TYPES


def test_a_service_event_is_unsupported_not_malformed() -> None:
    with pytest.raises(UnsupportedEventError, match="service.updated"):
        parse_webhook(_body("webhook_service_updated"))
    assert issubclass(UnsupportedEventError, WebhookPayloadError)


def test_an_event_without_agent_has_no_agent_fields() -> None:
    payload = load("pagerduty", "webhook_incident_resolved")
    payload["event"]["agent"] = None

    event = parse_webhook(json.dumps(payload).encode())

    assert (event.agent_id, event.agent_name) == (None, None)


def _mutated(change: Any) -> bytes:
    payload = load("pagerduty", "webhook_incident_acknowledged")
    change(payload["event"])
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "JSON list, not an object"),
        (b'{"messages": []}', "no 'event' object"),
        (b'{"event": "incident.acknowledged"}', "no 'event' object"),
        (_mutated(lambda e: e.pop("id")), "event.id is missing"),
        (_mutated(lambda e: e.update(event_type=7)), "event.event_type must be a non-empty"),
        (_mutated(lambda e: e.pop("occurred_at")), "event.occurred_at is missing"),
        (_mutated(lambda e: e.update(occurred_at="yesterday")), "not an ISO-8601 time"),
        (_mutated(lambda e: e.pop("data")), "event.data is missing"),
        (_mutated(lambda e: e.update(data=[])), "event.data is missing or not an object"),
        (_mutated(lambda e: e["data"].pop("id")), "event.data.id is missing"),
        (_mutated(lambda e: e["data"].update(number="482")), "number must be an integer"),
        (_mutated(lambda e: e["data"].update(title=["x"])), "title must be a string or null"),
        (_mutated(lambda e: e.update(agent="Alex")), "agent must be an object or null"),
        (_mutated(lambda e: e.update(data={"type": "incident_note", "content": "x"})),
         "has no 'incident' reference"),
    ],
    ids=["text", "bytes", "list", "no-event", "event-string", "no-id", "type-int", "no-time",
         "bad-time", "no-data", "data-list", "no-incident-id", "number-str", "title-list",
         "agent-str", "note-without-incident"],
)  # fmt: skip
def test_a_malformed_payload_raises_a_clear_webhook_payload_error(
    body: bytes, message: str
) -> None:
    with pytest.raises(WebhookPayloadError, match=message):
        parse_webhook(body)
