"""The PagerDuty stand-in, driven by the real connector over real HTTPS, and its webhooks,
received by an independent local server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from connectors.errors import InvalidRequestError, RateLimitedError, RetriableError
from connectors.models import Alert
from connectors.pagerduty import PagerDutyConnector
from connectors.pagerduty_webhooks import parse_webhook, verify_signature
from connectors.settings import PagerDutySettings
from sandbox import Sandbox

OPS_KEY = "0123456789abcdef0123456789abcdef"
OTHER_KEY = "fedcba9876543210fedcba9876543210"
SECRET = "whsec-new-0123456789"
OLD_SECRET = "whsec-old-9876543210"


def _connector(sb: Sandbox, *, trust: bool = True, key: str = OPS_KEY) -> PagerDutyConnector:
    http: dict[str, Any] = {"connect_timeout": 2.0, "read_timeout": 5.0}
    if trust:
        http["verify_tls"] = sb.ca_bundle
    settings = PagerDutySettings(
        routing_keys={"ops": key}, events_url=sb.pagerduty_url, http=http
    )
    return PagerDutyConnector(settings)


@pytest.fixture
def made() -> Iterator[list[PagerDutyConnector]]:
    """Connectors a test builds itself, closed afterwards (their pools hold TLS sockets)."""
    connectors: list[PagerDutyConnector] = []
    yield connectors
    for connector in connectors:
        connector.close()


@pytest.fixture
def pd(sb: Sandbox, made: list[PagerDutyConnector]) -> PagerDutyConnector:
    made.append(_connector(sb))
    return made[-1]


def _alert(key: str = "zendesk-1001", summary: str = "Checkout down (ticket 1001)") -> Alert:
    return Alert(dedup_key=key, summary=summary, source="switchboard", severity="critical",
                 links=(("https://acme.zendesk.com/agent/tickets/1001", "ticket"),))  # fmt: skip


def _enqueue(sb: Sandbox, body: Any = None, *, data: bytes | None = None) -> requests.Response:
    return requests.post(f"{sb.pagerduty_url}/v2/enqueue", json=body, data=data,
                         verify=sb.ca_bundle, timeout=5)  # fmt: skip


def test_the_stand_in_serves_https_with_a_ca_that_exists_while_running() -> None:
    with Sandbox() as sb:
        bundle = sb.ca_bundle
        assert sb.pagerduty_url.startswith("https://127.0.0.1:")
        with open(bundle, encoding="ascii") as handle:
            assert "BEGIN CERTIFICATE" in handle.read()
    with pytest.raises(FileNotFoundError):
        open(bundle).close()


def test_trigger_acknowledge_resolve_round_trip(sb: Sandbox, pd: PagerDutyConnector) -> None:
    assert pd.trigger("ops", _alert()) == "zendesk-1001"
    [incident] = sb.pagerduty.incidents()
    assert incident["status"] == "triggered"
    assert incident["incident_key"] == "zendesk-1001"
    assert incident["title"] == "Checkout down (ticket 1001)"
    assert incident["id"].startswith("Q")
    assert incident["html_url"].endswith(incident["id"])

    assert pd.acknowledge("ops", "zendesk-1001") == "zendesk-1001"
    assert sb.pagerduty.incident("zendesk-1001")["status"] == "acknowledged"

    assert pd.resolve(None, "zendesk-1001") == "zendesk-1001"
    assert sb.pagerduty.incident("zendesk-1001")["status"] == "resolved"
    assert [e["outcome"] for e in sb.pagerduty.events()] == ["opened", "acknowledged", "resolved"]
    assert sb.requests.count("pagerduty", "POST", "/v2/enqueue") == 3


def test_a_second_trigger_with_the_same_key_is_deduplicated(
    sb: Sandbox, pd: PagerDutyConnector
) -> None:
    pd.trigger(None, _alert())
    pd.trigger(None, _alert(summary="Checkout still down"))

    [incident] = sb.pagerduty.incidents()
    assert incident["alert_counts"]["all"] == 2
    assert incident["title"] == "Checkout down (ticket 1001)"
    assert [e["outcome"] for e in sb.pagerduty.events()] == ["opened", "deduplicated"]


def test_after_a_resolve_the_same_key_opens_a_new_incident(
    sb: Sandbox, pd: PagerDutyConnector
) -> None:
    pd.trigger(None, _alert())
    pd.resolve(None, "zendesk-1001")
    pd.acknowledge(None, "zendesk-1001")  # nothing open any more: accepted and dropped
    pd.trigger(None, _alert())

    first, second = sb.pagerduty.incidents()
    assert first["id"] != second["id"]
    assert (first["status"], second["status"]) == ("resolved", "triggered")
    assert second["number"] == first["number"] + 1
    assert [e["outcome"] for e in sb.pagerduty.events()] == [
        "opened", "resolved", "dropped", "opened"
    ]


def test_a_trigger_without_dedup_key_gets_a_generated_one(sb: Sandbox) -> None:
    answer = _enqueue(sb, {"routing_key": OPS_KEY, "event_action": "trigger",
                           "payload": {"summary": "s", "source": "x", "severity": "info"}})

    assert answer.status_code == 202
    body = answer.json()
    assert body["status"] == "success" and body["message"] == "Event processed"
    assert sb.pagerduty.incident(body["dedup_key"])["urgency"] == "low"


_TRIGGER = {"routing_key": OPS_KEY, "event_action": "trigger", "dedup_key": "k",
            "payload": {"summary": "s", "source": "x", "severity": "error"}}  # fmt: skip


def _with(**changes: Any) -> dict[str, Any]:
    event = {**_TRIGGER, "payload": dict(_TRIGGER["payload"])}
    for name, value in changes.items():
        if name.startswith("payload_"):
            event["payload"][name.removeprefix("payload_")] = value
        elif value is None:
            event.pop(name, None)
        else:
            event[name] = value
    return event


@pytest.mark.parametrize(
    "event",
    [
        _with(routing_key="short"),
        _with(event_action="escalate"),
        _with(payload_summary=None),
        _with(payload_source=""),
        _with(payload_severity="fatal"),
        _with(payload_summary="s" * 1025),
        _with(dedup_key="k" * 256),
        {"routing_key": OPS_KEY, "event_action": "acknowledge"},
        {"routing_key": OPS_KEY, "event_action": "resolve"},
        _with(payload=None),
        _with(links="https://example.com"),
    ],
    ids=["routing-key", "action", "no-summary", "blank-source", "severity", "long-summary",
         "long-dedup-key", "ack-no-key", "resolve-no-key", "no-payload", "links-string"],
)  # fmt: skip
def test_an_invalid_event_is_answered_400_and_not_applied(
    sb: Sandbox, event: dict[str, Any]
) -> None:
    answer = _enqueue(sb, event)

    assert answer.status_code == 400
    assert answer.json()["status"] == "invalid"
    assert answer.json()["message"] == "Event object is invalid"
    assert answer.json()["errors"]
    assert sb.pagerduty.events() == [] and sb.pagerduty.incidents() == []


def test_a_body_that_is_not_json_is_400_and_one_over_512_kb_is_413(sb: Sandbox) -> None:
    assert _enqueue(sb, data=b"{not json").status_code == 400
    big = _with(payload_custom_details={"blob": "x" * (512 * 1024)})
    assert _enqueue(sb, big).status_code == 413


def test_an_unconfigured_routing_key_is_refused_as_invalid(
    sb: Sandbox, made: list[PagerDutyConnector]
) -> None:
    sb.pagerduty.require_routing_keys([OTHER_KEY])
    made.append(pd := _connector(sb))

    with pytest.raises(InvalidRequestError, match="Invalid routing key") as caught:
        pd.trigger(None, _alert())

    assert caught.value.status == 400
    assert OPS_KEY not in str(caught.value)


def test_a_429_is_rate_limited_after_exactly_one_request(
    sb: Sandbox, pd: PagerDutyConnector
) -> None:
    sb.faults.add("pagerduty", "POST", r"^/v2/enqueue$", kind="status", status=429,
                  headers={"Retry-After": "2"})  # fmt: skip

    with pytest.raises(RateLimitedError) as caught:
        pd.trigger(None, _alert())

    assert caught.value.retry_after == 2.0
    assert sb.requests.count("pagerduty") == 1
    assert sb.pagerduty.events() == []


def test_a_reset_after_commit_is_ambiguous_and_the_event_did_land(
    sb: Sandbox, pd: PagerDutyConnector
) -> None:
    sb.faults.add("pagerduty", "POST", r"^/v2/enqueue$", kind="reset_after_commit")

    with pytest.raises(RetriableError) as caught:
        pd.trigger(None, _alert())

    assert caught.value.ambiguous is True
    assert [e["outcome"] for e in sb.pagerduty.events()] == ["opened"]
    assert [entry.status for entry in sb.requests.entries("pagerduty")] == [None]
    # Re-sending with the same dedup_key (what the dispatcher does) opens nothing new.
    assert pd.trigger(None, _alert()) == "zendesk-1001"
    assert len(sb.pagerduty.incidents()) == 1


def test_a_connector_that_does_not_trust_the_ca_fails_before_sending(
    sb: Sandbox, made: list[PagerDutyConnector]
) -> None:
    made.append(pd := _connector(sb, trust=False))

    with pytest.raises(RetriableError, match="ConnectError") as caught:
        pd.trigger(None, _alert())

    assert caught.value.ambiguous is False
    assert sb.pagerduty.events() == []
    assert sb.requests.count("pagerduty") == 0


# -- webhooks ------------------------------------------------------------------------------


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Record)
        self.received: list[tuple[dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/webhooks/pagerduty"


class _Record(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers), body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_responder_acknowledging_delivers_a_signed_webhook_the_connector_reads(
    sb: Sandbox, pd: PagerDutyConnector, receiver: _Receiver
) -> None:
    sb.pagerduty.subscribe(receiver.url, [OLD_SECRET, SECRET])
    pd.trigger(None, _alert())  # delivers incident.triggered first

    assert sb.pagerduty.acknowledge_incident("zendesk-1001", by="Alex Doe") == 202

    _triggered, (headers, body) = receiver.received
    assert headers["Content-Type"] == "application/json"
    assert headers["X-PagerDuty-Signature"].count("v1=") == 2
    assert verify_signature(body, headers["X-PagerDuty-Signature"], [SECRET])
    assert verify_signature(body, headers["X-PagerDuty-Signature"], [OLD_SECRET])
    assert not verify_signature(body, headers["X-PagerDuty-Signature"], ["someone-else"])
    event = parse_webhook(body)
    assert event.event_type == "incident.acknowledged"
    assert event.incident_key == "zendesk-1001"
    assert event.status == "acknowledged"
    assert event.agent_name == "Alex Doe"
    assert event.incident_id == sb.pagerduty.incident("zendesk-1001")["id"]
    assert sb.pagerduty.incident("zendesk-1001")["status"] == "acknowledged"


def test_redeliver_resends_the_same_webhook_with_the_same_id(
    sb: Sandbox, pd: PagerDutyConnector, receiver: _Receiver
) -> None:
    sb.pagerduty.subscribe(receiver.url, [SECRET])
    pd.trigger(None, _alert())
    sb.pagerduty.acknowledge_incident("zendesk-1001")
    triggered, delivery = sb.pagerduty.deliveries()
    assert triggered.payload()["event"]["event_type"] == "incident.triggered"

    assert sb.pagerduty.redeliver(delivery.webhook_id) == 202

    _, (first_headers, first_body), (again_headers, again_body) = receiver.received
    assert first_headers["X-Webhook-Id"] == again_headers["X-Webhook-Id"] == delivery.webhook_id
    assert again_body == first_body
    assert again_headers["X-PagerDuty-Signature"] == first_headers["X-PagerDuty-Signature"]


def test_annotate_and_resolve_deliver_distinct_webhooks(
    sb: Sandbox, pd: PagerDutyConnector, receiver: _Receiver
) -> None:
    sb.pagerduty.subscribe(receiver.url, [SECRET])
    pd.trigger(None, _alert())

    sb.pagerduty.annotate_incident("zendesk-1001", "Rolled back the deploy", by="Sam Roe")
    sb.pagerduty.resolve_incident("zendesk-1001", by="Sam Roe")

    triggered, note, resolved = (parse_webhook(body) for _, body in receiver.received)
    assert triggered.event_type == "incident.triggered"
    assert note.event_type == "incident.annotated"
    assert note.note == "Rolled back the deploy"
    assert note.incident_key is None
    assert note.incident_id == resolved.incident_id
    assert (resolved.event_type, resolved.status) == ("incident.resolved", "resolved")
    assert resolved.agent_name == "Sam Roe"
    ids = {headers["X-Webhook-Id"] for headers, _ in receiver.received}
    assert len(ids) == 3
    # The responder resolved it: the hub's own resolve is now accepted and dropped.
    pd.resolve(None, "zendesk-1001")
    assert sb.pagerduty.events()[-1]["outcome"] == "dropped"


def test_a_trigger_that_opens_an_incident_delivers_one_signed_incident_triggered(
    sb: Sandbox, pd: PagerDutyConnector, receiver: _Receiver
) -> None:
    sb.pagerduty.require_routing_keys({OPS_KEY: "Checkout API"})
    subscription = sb.pagerduty.subscribe(receiver.url, [OLD_SECRET, SECRET])

    pd.trigger(None, _alert())  # delivered before the 202: nothing to wait for

    [(headers, body)] = receiver.received
    incident = sb.pagerduty.incident("zendesk-1001")
    signature = headers["X-PagerDuty-Signature"]
    assert signature.count("v1=") == 2
    assert verify_signature(body, signature, [SECRET])
    assert verify_signature(body, signature, [OLD_SECRET])
    assert not verify_signature(body, signature, ["someone-else"])
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Webhook-Subscription"] == subscription
    event = parse_webhook(body)
    assert event.event_type == "incident.triggered"
    assert event.incident_id == incident["id"]
    assert event.incident_key == "zendesk-1001"
    assert event.status == "triggered"
    assert event.title == "Checkout down (ticket 1001)"
    assert event.html_url == incident["html_url"]
    assert event.incident_number == incident["number"]
    assert (event.urgency, event.service_name) == ("high", "Checkout API")
    envelope = json.loads(body)["event"]
    assert envelope["resource_type"] == "incident"
    assert envelope["agent"] == incident["service"]  # the integration, not a person
    assert envelope["agent"]["type"] == "service_reference"
    assert set(envelope["data"]) == {
        "id", "type", "self", "html_url", "number", "status", "incident_key", "created_at",
        "title", "service", "assignees", "escalation_policy", "teams", "priority", "urgency",
        "conference_bridge", "resolve_reason"}
    [delivery] = sb.pagerduty.deliveries()
    assert (delivery.webhook_id, delivery.status) == (headers["X-Webhook-Id"], 202)


def test_a_deduplicated_trigger_delivers_nothing(
    sb: Sandbox, pd: PagerDutyConnector, receiver: _Receiver
) -> None:
    sb.pagerduty.subscribe(receiver.url, [SECRET])
    pd.trigger(None, _alert())
    pd.trigger(None, _alert(summary="Checkout still down"))
    pd.acknowledge(None, "zendesk-1001")
    pd.trigger(None, _alert())

    assert [e["outcome"] for e in sb.pagerduty.events()] == [
        "opened", "deduplicated", "acknowledged", "deduplicated"]
    [delivery] = sb.pagerduty.deliveries()
    assert delivery.payload()["event"]["event_type"] == "incident.triggered"
    assert len(receiver.received) == 1


def test_a_trigger_after_a_resolve_delivers_incident_triggered_for_the_new_incident(
    sb: Sandbox, pd: PagerDutyConnector, receiver: _Receiver
) -> None:
    sb.pagerduty.subscribe(receiver.url, [SECRET])
    pd.trigger(None, _alert())
    pd.resolve(None, "zendesk-1001")
    pd.trigger(None, _alert())

    first, second = (parse_webhook(body) for _, body in receiver.received)
    assert (first.event_type, second.event_type) == ("incident.triggered", "incident.triggered")
    assert [first.incident_id, second.incident_id] == [
        i["id"] for i in sb.pagerduty.incidents()]
    assert first.incident_id != second.incident_id


def test_a_trigger_without_a_subscription_delivers_nothing(
    sb: Sandbox, pd: PagerDutyConnector
) -> None:
    pd.trigger(None, _alert())

    assert sb.pagerduty.deliveries() == []
    assert [e["outcome"] for e in sb.pagerduty.events()] == ["opened"]


def test_incident_triggered_can_be_redelivered_unchanged(
    sb: Sandbox, pd: PagerDutyConnector, receiver: _Receiver
) -> None:
    sb.pagerduty.subscribe(receiver.url, [SECRET])
    pd.trigger(None, _alert())
    [delivery] = sb.pagerduty.deliveries()

    assert sb.pagerduty.redeliver(delivery.webhook_id) == 202

    (first_headers, first_body), (again_headers, again_body) = receiver.received
    assert first_headers["X-Webhook-Id"] == again_headers["X-Webhook-Id"] == delivery.webhook_id
    assert again_body == first_body
    assert delivery.attempts == [202, 202]


def test_an_unreachable_subscriber_does_not_fail_the_trigger(
    sb: Sandbox, pd: PagerDutyConnector
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sb.pagerduty.subscribe(f"http://127.0.0.1:{port}/webhooks/pagerduty", [SECRET])

    assert pd.trigger(None, _alert()) == "zendesk-1001"

    [delivery] = sb.pagerduty.deliveries()
    assert delivery.status is None and delivery.error == "ConnectionError"
    assert [e["outcome"] for e in sb.pagerduty.events()] == ["opened"]
