"""Injected faults, the request log and shutdown behaviour."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from sandbox import Sandbox

NOTE = {"ticket": {"comment": {"body": "note", "public": False}, "additional_tags": ["marker"]}}


def _put_note(sb: Sandbox, session: requests.Session, **kwargs: Any) -> requests.Response:
    return session.put(f"{sb.zendesk_url}/api/v2/tickets/1001.json", json=NOTE, **kwargs)


def _in_thread(call: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``call`` in a thread; its result (or exception) lands in the returned dict."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except Exception as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_status_fault_answers_without_applying(sb: Sandbox, zd: requests.Session) -> None:
    sb.zendesk.create_ticket({"subject": "s", "description": "d"})
    sb.faults.add("zendesk", "PUT", r"^/api/v2/tickets/1001\.json$", kind="status", status=503)
    failed = _put_note(sb, zd)
    assert failed.status_code == 503 and failed.json()["error"] == "ServiceUnavailable"
    assert "marker" not in sb.zendesk.ticket(1001)["tags"]
    assert _put_note(sb, zd).status_code == 200  # times=1: the next one goes through


def test_429_fault_carries_retry_after(sb: Sandbox, jr: requests.Session) -> None:
    sb.faults.add("jira", None, r"/search/jql", kind="status", status=429, times=None)
    for _ in range(2):
        response = jr.get(f"{sb.jira_url}/rest/api/2/search/jql", params={"jql": "project = SUP"})
        assert response.status_code == 429 and response.headers["Retry-After"] == "1"
        assert response.json()["errorMessages"]


def test_reset_after_commit_applies_the_write_but_sends_no_answer(
    sb: Sandbox, zd: requests.Session, jr: requests.Session
) -> None:
    sb.zendesk.create_ticket({"subject": "s", "description": "d"})
    sb.faults.add("zendesk", "PUT", r"/tickets/1001", kind="reset_after_commit")
    sb.faults.add("jira", "POST", r"^/rest/api/2/issue$", kind="reset_after_commit")
    with pytest.raises(requests.ConnectionError):
        _put_note(sb, zd)
    with pytest.raises(requests.ConnectionError):
        jr.post(f"{sb.jira_url}/rest/api/2/issue", json={"fields": {
            "project": {"key": "SUP"}, "issuetype": {"name": "Bug"}, "summary": "x"}})
    assert "marker" in sb.zendesk.ticket(1001)["tags"]
    assert [i["key"] for i in sb.jira.issues()] == ["SUP-1"]
    entry = sb.requests.entries("zendesk", "PUT")[-1]
    assert entry.status is None and entry.fault == "reset_after_commit"
    assert _put_note(sb, zd).status_code == 200  # the same keep-alive session recovers


@pytest.mark.parametrize(("phase", "applied_while_held"), [("before", False), ("after", True)])
def test_hold_parks_the_request_until_released(
    sb: Sandbox, zd: requests.Session, phase: str, applied_while_held: bool
) -> None:
    sb.zendesk.create_ticket({"subject": "s", "description": "d"})
    fault = sb.faults.add("zendesk", "PUT", r"/tickets/1001", kind="hold", phase=phase)
    thread, outcome = _in_thread(lambda: _put_note(sb, zd, timeout=5))
    assert fault.wait_reached(timeout=5)
    assert ("marker" in sb.zendesk.ticket(1001)["tags"]) is applied_while_held
    assert thread.is_alive()
    fault.release()
    thread.join(timeout=5)
    assert outcome["result"].status_code == 200
    assert "marker" in sb.zendesk.ticket(1001)["tags"]


def test_delay_fault_makes_the_client_time_out(sb: Sandbox, jr: requests.Session) -> None:
    sb.faults.add("jira", "GET", r"/serverInfo", kind="delay", delay=0.3)
    with pytest.raises(requests.Timeout):
        jr.get(f"{sb.jira_url}/rest/api/2/serverInfo", timeout=0.1)
    assert jr.get(f"{sb.jira_url}/rest/api/2/serverInfo", timeout=2).status_code == 200


def test_stop_releases_held_requests_and_survives_a_vanished_client() -> None:
    sb = Sandbox().start()
    sb.zendesk.create_ticket({"subject": "s", "description": "d"})
    fault = sb.faults.add("zendesk", "PUT", r"/tickets/1001", kind="hold", phase="after")
    session = requests.Session()
    session.auth = ("agent@example.com/token", "zd-token")
    thread, outcome = _in_thread(lambda: _put_note(sb, session, timeout=0.3))
    assert fault.wait_reached(timeout=5)
    thread.join(timeout=5)  # the client gives up while the request is held
    assert isinstance(outcome.get("error"), requests.Timeout)
    session.close()
    sb.stop()
    assert fault.released
    assert "marker" in sb.zendesk.ticket(1001)["tags"]


def test_request_log_records_method_path_query_body_and_status(
    sb: Sandbox, zd: requests.Session
) -> None:
    sb.zendesk.create_ticket({"subject": "s", "description": "d"})
    _put_note(sb, zd)
    zd.get(f"{sb.zendesk_url}/api/v2/incremental/tickets/cursor.json", params={"start_time": 5})
    assert sb.requests.count("zendesk", "PUT", r"/tickets/1001") == 1
    put, export = sb.requests.entries("zendesk")
    assert put.json == NOTE and put.status == 200
    assert export.query == {"start_time": "5"} and export.status == 200
    sb.requests.clear()
    assert sb.requests.count("zendesk") == 0
