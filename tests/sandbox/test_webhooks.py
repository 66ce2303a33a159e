"""Webhook delivery: payload shapes and signatures, checked by an independent local receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sandbox import Sandbox, sign_zendesk

SECRET = "dGhpcy1pcy1hLXNpZ25pbmctc2VjcmV0"


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Record)
        self.received: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/webhooks/zendesk"


class _Record(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append({"headers": dict(self.headers), "body": body})
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


def _independent_signature(timestamp: str, body: bytes) -> str:
    mac = hmac.new(SECRET.encode(), timestamp.encode() + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def _seed(sb: Sandbox, receiver: _Receiver) -> None:
    sb.zendesk.create_ticket({"subject": "Login broken", "description": "It fails",
                              "priority": "high", "type": "incident", "tags": ["bug", "login"],
                              "organization_id": 55,
                              "custom_fields": [{"id": 360001, "value": "E42"},
                                                {"id": 360002, "value": None}]})  # fmt: skip
    sb.zendesk.configure_webhook(receiver.url, SECRET)


def test_trigger_delivery_is_signed_and_renders_strings(sb: Sandbox, receiver: _Receiver) -> None:
    _seed(sb, receiver)
    response = sb.zendesk.deliver(1001, timestamp="2026-11-27T10:00:00Z")
    assert response.status_code == 202
    (delivery,) = receiver.received
    headers, body = delivery["headers"], delivery["body"]
    assert headers["X-Zendesk-Webhook-Signature-Timestamp"] == "2026-11-27T10:00:00Z"
    assert headers["X-Zendesk-Webhook-Signature"] == _independent_signature(
        "2026-11-27T10:00:00Z", body
    )
    assert headers["X-Zendesk-Webhook-Id"] == "01HSANDBOXWEBHOOK"
    assert headers["X-Zendesk-Webhook-Invocation-Id"]
    payload = json.loads(body)
    assert payload["switchboard"] == "zendesk-trigger/1" and payload["event"] == "ticket.created"
    ticket = payload["ticket"]
    assert ticket["id"] == "1001" and ticket["tags"] == "bug login"
    assert ticket["organization_id"] == "55" and ticket["assignee_id"] == ""
    assert ticket["custom_fields"] == {"360001": "E42", "360002": ""}
    assert all(isinstance(v, str) for k, v in ticket.items() if k != "custom_fields")


def test_event_delivery_has_string_ids_and_upper_case_values(
    sb: Sandbox, receiver: _Receiver
) -> None:
    _seed(sb, receiver)
    sb.zendesk.update_ticket(1001, {"status": "solved"})
    sb.zendesk.deliver(1001, style="event", event_type="ticket.status_changed")
    payload = json.loads(receiver.received[0]["body"])
    assert payload["type"] == "zen:event-type:ticket.status_changed"
    assert payload["subject"] == "zen:ticket:1001"
    detail = payload["detail"]
    assert detail["id"] == "1001" and detail["organization_id"] == "55"
    assert (detail["status"], detail["priority"], detail["type"]) == ("SOLVED", "HIGH", "INCIDENT")
    assert "custom_fields" not in detail
    assert payload["event"]["current"] == "SOLVED" and payload["event"]["previous"] == "NEW"


def test_wrong_secret_and_body_override_are_sent_as_asked(
    sb: Sandbox, receiver: _Receiver
) -> None:
    _seed(sb, receiver)
    sb.zendesk.deliver(1001, secret="other", timestamp="t", invocation_id="inv-1")
    sb.zendesk.deliver(1001, body_override=b'{"tampered": true}', timestamp="t")
    forged, overridden = receiver.received
    assert forged["headers"]["X-Zendesk-Webhook-Signature"] != _independent_signature(
        "t", forged["body"]
    )
    assert forged["headers"]["X-Zendesk-Webhook-Invocation-Id"] == "inv-1"
    assert overridden["body"] == b'{"tampered": true}'
    assert overridden["headers"]["X-Zendesk-Webhook-Signature"] == _independent_signature(
        "t", overridden["body"]
    )


def test_sign_zendesk_matches_an_independent_hmac() -> None:
    assert sign_zendesk(SECRET, "2026-11-27T10:00:00Z", b"{}") == _independent_signature(
        "2026-11-27T10:00:00Z", b"{}"
    )
