"""Secrets stay secret: tokens never reach logs, errors or the store, even when calls fail."""

from __future__ import annotations

import base64
import logging
import sqlite3

from .conftest import bug_ticket

ZD_TOKEN = "zd-secret-token-123"
JIRA_TOKEN = "jira-secret-token-456"


def test_tokens_never_reach_logs_errors_or_the_store(sb, make_hub, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    sb.zendesk.require_credentials("demo@example.com", ZD_TOKEN)
    sb.jira.require_credentials("demo@example.com", JIRA_TOKEN)
    hub = make_hub(env={"ZENDESK_API_TOKEN": ZD_TOKEN, "JIRA_API_TOKEN": JIRA_TOKEN},
                   dispatcher={"max_attempts": 2})
    sb.faults.add("jira", "POST", r"^/rest/api/2/issue$", kind="status", status=500, times=None)
    sb.zendesk.deliver(bug_ticket(sb), style="trigger", event_type="ticket.created")
    assert hub.wait_idle(20)
    hub.poll_now()

    # The tokens were really used (the sandbox accepts only them), so their absence below means
    # something.
    assert sb.requests.count("jira", method="POST") >= 2
    assert sb.requests.count("zendesk", method="GET") >= 1
    forbidden = [ZD_TOKEN, JIRA_TOKEN,
                 base64.b64encode(f"demo@example.com/token:{ZD_TOKEN}".encode()).decode(),
                 base64.b64encode(f"demo@example.com:{JIRA_TOKEN}".encode()).decode()]
    conn = sqlite3.connect(hub.config.store_url()[len("sqlite:///"):])
    try:
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    for secret in forbidden:
        assert secret not in caplog.text
        assert secret not in dump
    assert "gave up after 2 attempts" in dump  # the dead letter's reason is stored, sans secrets
