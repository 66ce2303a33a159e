"""Jira webhooks end to end: the real hub, whose receiver runs in a process of its own, takes a
signed Jira delivery, stores it once, and its workers record it."""

from __future__ import annotations

from pathlib import Path

import requests
from pydantic import SecretStr

from connectors.jira_webhooks import sign
from tests.e2e.conftest import inbox, rows

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "jira" / \
    "webhook_issue_updated_status.json"
SECRET = "jira-e2e-whsec-3c9a07e15b2d"


def test_the_receiver_process_is_given_the_jira_secret_and_stores_a_delivery_once(make_hub):
    hub = make_hub(receiver={"jira_signing_secrets": (SecretStr(SECRET),)})
    body = FIXTURE.read_bytes()
    sent = {"Content-Type": "application/json", "X-Hub-Signature": sign(SECRET, body),
            "X-Atlassian-Webhook-Identifier": "e2e-delivery-1"}
    answers = [requests.post(f"{hub.url}/webhooks/jira", data=body, headers=sent, timeout=10)
               for _ in range(2)]
    assert [a.status_code for a in answers] == [202, 202]
    assert [a.json()["status"] for a in answers] == ["accepted", "duplicate"]
    assert hub.wait_idle(10)
    [row] = rows(hub, inbox, inbox.c.source == "jira")
    assert row.status == "done"
    assert row.outcome == "jira jira:issue_updated SUP-77: no ticket is linked to it; nothing to do"
