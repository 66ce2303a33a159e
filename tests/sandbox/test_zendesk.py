"""The Zendesk stand-in's HTTP contract, exercised with plain requests and with zenpy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
from zenpy import Zenpy
from zenpy.lib.api_objects import Comment

from sandbox import Sandbox, ZendeskError


def _ticket_url(sb: Sandbox, ticket_id: int) -> str:
    return f"{sb.zendesk_url}/api/v2/tickets/{ticket_id}.json"


def _export(sb: Sandbox, zd: requests.Session, **params: object) -> dict:
    response = zd.get(f"{sb.zendesk_url}/api/v2/incremental/tickets/cursor.json", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_request_without_auth_is_refused_with_401(sb: Sandbox) -> None:
    sb.zendesk.create_ticket({"subject": "s", "description": "d"})
    with requests.Session() as anonymous:
        response = anonymous.get(_ticket_url(sb, 1001))
        malformed = anonymous.get(_ticket_url(sb, 1001), auth=("agent@example.com", "no-token"))
    assert response.status_code == 401
    assert response.json() == {"error": "Couldn't authenticate you"}
    assert malformed.status_code == 401


def test_required_credentials_reject_other_pairs(sb: Sandbox, zd: requests.Session) -> None:
    sb.zendesk.create_ticket({"subject": "s", "description": "d"})
    sb.zendesk.require_credentials("agent@example.com", "zd-token")
    assert zd.get(_ticket_url(sb, 1001)).status_code == 200
    other = zd.get(_ticket_url(sb, 1001), auth=("x@example.com/token", "zd-token"))
    assert other.status_code == 401


def test_get_ticket_returns_zendesk_shape_and_404_for_unknown(
    sb: Sandbox, zd: requests.Session
) -> None:
    created = sb.zendesk.create_ticket(
        {"subject": "Login broken", "description": "It fails", "priority": "high",
         "tags": ["Bug", "login"], "custom_fields": [{"id": 360001, "value": "E42"}]}
    )  # fmt: skip
    ticket = zd.get(_ticket_url(sb, created["id"])).json()["ticket"]
    assert ticket["id"] == 1001
    assert ticket["url"] == _ticket_url(sb, 1001)
    assert ticket["status"] == "new" and ticket["priority"] == "high"
    assert ticket["tags"] == ["bug", "login"]
    assert ticket["custom_fields"] == ticket["fields"] == [{"id": 360001, "value": "E42"}]
    assert ticket["updated_at"].endswith("Z") and isinstance(ticket["generated_timestamp"], int)
    assert sb.zendesk.comments(1001)[0]["body"] == "It fails"
    missing = zd.get(_ticket_url(sb, 999))
    assert missing.status_code == 404
    assert missing.json() == {"error": "RecordNotFound", "description": "Not found"}


def test_safe_update_with_stale_stamp_is_refused_with_409_and_changes_nothing(
    sb: Sandbox, zd: requests.Session
) -> None:
    ticket = sb.zendesk.create_ticket({"subject": "s", "description": "d", "tags": ["a"]})
    stale = ticket["updated_at"]
    sb.zendesk.update_ticket(1001, {"priority": "urgent"})  # an agent edits meanwhile
    response = zd.put(_ticket_url(sb, 1001), json={"ticket": {
        "tags": ["a", "marker"], "comment": {"body": "note", "public": False},
        "safe_update": True, "updated_stamp": stale}})  # fmt: skip
    assert response.status_code == 409
    assert response.json()["error"] == "UpdateConflict"
    assert sb.zendesk.ticket(1001)["tags"] == ["a"]
    assert len(sb.zendesk.comments(1001)) == 1


def test_safe_update_with_current_stamp_applies_note_and_tags_in_one_audit(
    sb: Sandbox, zd: requests.Session
) -> None:
    ticket = sb.zendesk.create_ticket({"subject": "s", "description": "d", "tags": ["a"]})
    stamp = ticket["updated_at"].replace("Z", "+00:00")  # same instant, other spelling
    response = zd.put(_ticket_url(sb, 1001), json={"ticket": {
        "comment": {"body": "Linked to SUP-1", "public": False}, "additional_tags": ["marker"],
        "custom_fields": [{"id": 777, "value": "SUP-1"}],
        "safe_update": "true", "updated_stamp": stamp}})  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ticket"]["tags"] == ["a", "marker"]
    assert {"id": 777, "value": "SUP-1"} in body["ticket"]["custom_fields"]
    assert body["ticket"]["updated_at"] > ticket["updated_at"]
    assert [e["type"] for e in body["audit"]["events"]] == ["Comment", "Change", "Change"]
    note = sb.zendesk.comments(1001)[-1]
    assert note["public"] is False and note["author_id"] == sb.zendesk.api_author_id


def test_tags_in_an_update_replace_the_list_and_remove_tags_removes(
    sb: Sandbox, zd: requests.Session
) -> None:
    sb.zendesk.create_ticket({"subject": "s", "description": "d", "tags": ["a", "b"]})
    replaced = zd.put(_ticket_url(sb, 1001), json={"ticket": {"tags": ["c"]}}).json()["ticket"]
    assert replaced["tags"] == ["c"]
    zd.put(_ticket_url(sb, 1001), json={"ticket": {"additional_tags": ["d"], "remove_tags": "c"}})
    assert sb.zendesk.ticket(1001)["tags"] == ["d"]


def test_update_that_changes_nothing_keeps_updated_at(sb: Sandbox, zd: requests.Session) -> None:
    ticket = sb.zendesk.create_ticket({"subject": "s", "description": "d", "tags": ["a"]})
    response = zd.put(_ticket_url(sb, 1001), json={"ticket": {"additional_tags": ["a"]}})
    assert response.status_code == 200
    assert sb.zendesk.ticket(1001)["updated_at"] == ticket["updated_at"]


def test_updated_at_strictly_increases_within_one_second(sb: Sandbox) -> None:
    frozen = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
    sb.zendesk.clock = lambda: frozen
    stamps = [sb.zendesk.create_ticket({"subject": "s", "description": "d"})["updated_at"]]
    for n in range(3):
        stamps.append(sb.zendesk.update_ticket(1001, {"subject": f"s{n}"})["updated_at"])
    assert stamps == sorted(set(stamps))
    assert stamps[-1] == "2026-11-27T10:00:03Z"


def test_invalid_bodies_are_refused(sb: Sandbox, zd: requests.Session) -> None:
    sb.zendesk.create_ticket({"subject": "s", "description": "d"})
    not_json = zd.put(_ticket_url(sb, 1001), data=b"{nope",
                      headers={"Content-Type": "application/json"})  # fmt: skip
    no_ticket = zd.put(_ticket_url(sb, 1001), json={"tags": ["x"]})
    bad_status = zd.put(_ticket_url(sb, 1001), json={"ticket": {"status": "bogus"}})
    assert (not_json.status_code, no_ticket.status_code, bad_status.status_code) == (400, 400, 422)
    assert bad_status.json()["error"] == "RecordInvalid"


def test_post_creates_ticket_with_audit_and_comments_endpoint_lists_it(
    sb: Sandbox, zd: requests.Session
) -> None:
    response = zd.post(f"{sb.zendesk_url}/api/v2/tickets.json", json={"ticket": {
        "subject": "Outage: login", "comment": {"body": "Many tickets"}, "type": "problem"}})
    assert response.status_code == 201
    assert response.json()["ticket"]["description"] == "Many tickets"
    assert response.json()["audit"]["events"][0]["type"] == "Comment"
    comments = zd.get(f"{sb.zendesk_url}/api/v2/tickets/1001/comments.json").json()
    assert comments["count"] == 1 and comments["next_page"] is None
    assert comments["comments"][0]["body"] == "Many tickets"


def test_export_pages_with_cursor_then_end_of_stream_keeps_continuation(
    sb: Sandbox, zd: requests.Session
) -> None:
    for n in range(5):
        sb.zendesk.create_ticket({"subject": f"t{n}", "description": "d"})
    first = _export(sb, zd, start_time=0, per_page=2)
    assert set(first) == {"tickets", "after_cursor", "after_url", "before_cursor",
                          "before_url", "end_of_stream"}  # fmt: skip
    export_url = f"{sb.zendesk_url}/api/v2/incremental/tickets/cursor.json?cursor="
    assert first["after_url"].startswith(export_url)
    pages, page = [first], first
    while not page["end_of_stream"]:
        page = _export(sb, zd, cursor=page["after_cursor"], per_page=2)
        pages.append(page)
    assert [[t["id"] for t in p["tickets"]] for p in pages] == [[1001, 1002], [1003, 1004], [1005]]
    again = _export(sb, zd, cursor=pages[-1]["after_cursor"])
    assert again["tickets"] == [] and again["end_of_stream"] is True
    assert again["after_cursor"] == pages[-1]["after_cursor"]


def test_updated_ticket_reappears_at_the_end_of_the_export(
    sb: Sandbox, zd: requests.Session
) -> None:
    for n in range(3):
        sb.zendesk.create_ticket({"subject": f"t{n}", "description": "d"})
    done = _export(sb, zd, start_time=0)
    sb.zendesk.update_ticket(1001, {"status": "open"})
    sb.zendesk.create_ticket({"subject": "t3", "description": "d"})
    later = _export(sb, zd, cursor=done["after_cursor"])
    assert [(t["id"], t["status"]) for t in later["tickets"]] == [(1001, "open"), (1004, "new")]
    from_scratch = _export(sb, zd, start_time=0)
    assert [t["id"] for t in from_scratch["tickets"]] == [1002, 1003, 1001, 1004]


def test_export_leaves_out_recent_changes_when_configured(
    sb: Sandbox, zd: requests.Session
) -> None:
    sb.zendesk.create_ticket({"subject": "old", "description": "d",
                              "created_at": "2026-01-01T00:00:00Z"})  # fmt: skip
    sb.zendesk.create_ticket({"subject": "new", "description": "d"})
    sb.zendesk.export_exclude_recent_seconds = 60
    page = _export(sb, zd, start_time=0)
    assert [t["subject"] for t in page["tickets"]] == ["old"]


def test_export_refuses_garbage_cursor_and_missing_parameters(
    sb: Sandbox, zd: requests.Session
) -> None:
    url = f"{sb.zendesk_url}/api/v2/incremental/tickets/cursor.json"
    garbage = zd.get(url, params={"cursor": "not-a-cursor"})
    assert garbage.status_code == 400
    assert garbage.json()["error"] == "InvalidPaginationParameter"
    assert zd.get(url).status_code == 400


def test_deleted_ticket_is_gone_from_reads_but_exported_as_deleted(
    sb: Sandbox, zd: requests.Session
) -> None:
    sb.zendesk.create_ticket({"subject": "s", "description": "d"})
    sb.zendesk.delete_ticket(1001)
    assert zd.get(_ticket_url(sb, 1001)).status_code == 404
    assert [t["status"] for t in _export(sb, zd, start_time=0)["tickets"]] == ["deleted"]
    with pytest.raises(ZendeskError):
        sb.zendesk.ticket(1001)


def test_rate_limit_answers_429_with_retry_after(sb: Sandbox, zd: requests.Session) -> None:
    sb.zendesk.create_ticket({"subject": "s", "description": "d"})
    sb.zendesk.set_rate_limit(2)
    ok = [zd.get(_ticket_url(sb, 1001)) for _ in range(2)]
    limited = zd.get(_ticket_url(sb, 1001))
    assert [r.headers["X-Rate-Limit-Remaining"] for r in ok] == ["1", "0"]
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_update_many_applies_each_ticket_and_reports_a_job(
    sb: Sandbox, zd: requests.Session
) -> None:
    for _ in range(2):
        sb.zendesk.create_ticket({"subject": "s", "description": "d"})
    response = zd.put(f"{sb.zendesk_url}/api/v2/tickets/update_many.json", json={"tickets": [
        {"id": 1001, "additional_tags": ["fixed"]}, {"id": 1002, "additional_tags": ["fixed"]},
        {"id": 4040, "additional_tags": ["fixed"]}]})  # fmt: skip
    job = response.json()["job_status"]
    assert job["status"] == "queued"
    done = zd.get(job["url"]).json()["job_status"]
    assert done["status"] == "completed"
    assert [r["success"] for r in done["results"]] == [True, True, False]
    assert all("fixed" in t["tags"] for t in sb.zendesk.tickets())


def test_zenpy_reads_updates_and_exports_through_the_sandbox(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZENPY_FORCE_SCHEME", "http")
    monkeypatch.setenv("ZENPY_FORCE_NETLOC", sb.zendesk_netloc)
    for n in range(3):
        sb.zendesk.create_ticket({"subject": f"t{n}", "description": "d", "tags": ["x"]})
    with requests.Session() as session:
        client = Zenpy(subdomain="sandbox", email="agent@example.com", token="zd-token",
                       session=session)  # fmt: skip
        ticket = client.tickets(id=1001)
        assert ticket.subject == "t0"
        ticket.comment = Comment(body="internal note", public=False)
        ticket.tags = ["x", "switchboard"]
        client.tickets.update(ticket)
        exported = client.tickets.incremental(start_time=0, per_page=2)
        ids = [t.id for t in exported]
    assert ids == [1002, 1003, 1001]
    assert exported.end_of_stream is True and exported.after_cursor
    assert sb.zendesk.ticket(1001)["tags"] == ["x", "switchboard"]
    assert sb.zendesk.comments(1001)[-1]["public"] is False
