"""The Productboard stand-in, driven by the real ProductboardConnector over real HTTP (and by
plain requests for the parts of the contract the connector does not use)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connectors.errors import AuthError, NotFoundError, RateLimitedError, RetriableError
from connectors.http import RateLimiter
from connectors.productboard import (
    NewNote,
    NoteContentLockedError,
    ProductboardConnector,
)
from connectors.settings import ProductboardSettings
from sandbox import Sandbox

TOKEN = "pb-sandbox-token-0123456789"
NOTES = r"^/v2/notes$"


class Clock:
    """A monotonic clock the sandbox's rate limit reads; moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        sandbox.productboard.require_token(TOKEN)
        yield sandbox


def settings(sb: Sandbox, **overrides: Any) -> ProductboardSettings:
    values: dict[str, Any] = {"token": TOKEN, "base_url": sb.productboard_url}
    values.update(overrides)
    return ProductboardSettings(**values)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def pb(sb: Sandbox, sleeps: list[float]) -> Iterator[ProductboardConnector]:
    connector = ProductboardConnector(settings(sb), sleep=sleeps.append)
    yield connector
    connector.close()


def ticket_note(number: int, **overrides: Any) -> NewNote:
    values: dict[str, Any] = {
        "title": f"Ticket {number}: bulk export",
        "content": f"<p>Customer words of ticket {number}.</p>",
        "record_id": f"zd-{number}-feature-request",
        "source_url": f"https://acme.zendesk.com/agent/tickets/{number}",
        "user_email": "dana@acme.example", "user_name": "Dana Scully",
        "company_name": "Acme", "company_domain": "acme.example",
        "tags": ("export",),
    }
    values.update(overrides)
    return NewNote(**values)


def creates(sb: Sandbox) -> list[Any]:
    return sb.requests.entries("productboard", "POST", NOTES)


# --- notes --------------------------------------------------------------------------------------


def test_a_note_with_a_known_customer_and_tags_is_one_call(
    sb: Sandbox, pb: ProductboardConnector
) -> None:
    sb.productboard.add_user("dana@acme.example", "Dana Scully")
    sb.productboard.add_tags("export")
    note = pb.create_note(ticket_note(1))

    assert len(sb.requests.entries("productboard")) == 1
    stored = sb.productboard.note(note.id)
    assert stored is not None
    assert stored["fields"]["name"] == "Ticket 1: bulk export"
    assert stored["fields"]["content"] == "<p>Customer words of ticket 1.</p>"
    assert [t["name"] for t in stored["fields"]["tags"]] == ["export"]
    assert stored["metadata"]["source"] == {
        "system": "switchboard", "recordId": "zd-1-feature-request",
        "url": "https://acme.zendesk.com/agent/tickets/1"}
    customer = sb.productboard.customer_of(note.id)
    assert customer is not None and customer["fields"]["email"] == "dana@acme.example"
    assert note.url == stored["links"]["html"]


def test_a_new_customer_and_new_tags_are_created_once_then_notes_are_one_call(
    sb: Sandbox, pb: ProductboardConnector
) -> None:
    first = pb.create_note(ticket_note(1, tags=("export", "Mobile")))
    assert sorted(sb.productboard.tags()) == ["Mobile", "export"]
    assert [u["fields"]["email"] for u in sb.productboard.entities("user")] == [
        "dana@acme.example"]
    assert first.tags == ("export", "Mobile")
    calls = len(sb.requests.entries("productboard"))

    pb.create_note(ticket_note(2, tags=("EXPORT",)))
    assert len(sb.requests.entries("productboard")) == calls + 1


def test_the_company_is_the_customer_when_there_is_no_user_email(
    sb: Sandbox, pb: ProductboardConnector
) -> None:
    note = pb.create_note(ticket_note(3, user_email=None, tags=()))
    customer = sb.productboard.customer_of(note.id)
    assert customer is not None
    assert (customer["type"], customer["fields"]) == (
        "company", {"name": "Acme", "domain": "acme.example"})


def test_find_get_and_append_over_http(sb: Sandbox, pb: ProductboardConnector) -> None:
    created = pb.create_note(ticket_note(4))
    found = pb.find_note("zd-4-feature-request")
    assert found is not None and found.id == created.id
    assert found.created_at is not None
    assert pb.find_note("zd-5-feature-request") is None

    appended = pb.append_to_note(created.id, "<p>Agent summary.</p>", marker="summary-4")
    assert appended.content == "<p>Customer words of ticket 4.</p><p>Agent summary.</p>"
    assert pb.get_note(created.id).content == appended.content
    with pytest.raises(NotFoundError):
        pb.get_note("00000000-0000-4000-8000-000000000000")


def test_find_note_pages_through_links_next(sb: Sandbox, pb: ProductboardConnector) -> None:
    sb.productboard.set_page_size(1)
    first = pb.create_note(ticket_note(6))
    pb.create_note(ticket_note(6))  # a duplicate: newest first, so the oldest is on page 2
    for number in range(7, 10):
        pb.create_note(ticket_note(number))
    found = pb.find_note("zd-6-feature-request")
    assert found is not None and found.id == first.id
    listed = sb.requests.entries("productboard", "GET", NOTES)
    assert len(listed) == 2
    assert "pageCursor" in listed[1].query and "metadata[source][recordId]" not in listed[1].query


def test_an_ambiguous_create_is_found_by_record_id_and_not_duplicated(
    sb: Sandbox, pb: ProductboardConnector
) -> None:
    sb.productboard.add_user("dana@acme.example")
    sb.productboard.add_tags("export")
    sb.faults.add("productboard", "POST", NOTES, kind="reset_after_commit")
    note = ticket_note(10)
    with pytest.raises(RetriableError) as info:
        pb.create_note(note)
    assert info.value.ambiguous is True

    # What the caller does after an ambiguous failure: look before creating again.
    found = pb.find_note(note.record_id)
    assert found is not None
    assert len(sb.productboard.notes_for_record(note.record_id)) == 1
    assert len(creates(sb)) == 1


def test_a_create_answered_503_is_ambiguous_and_find_note_sees_nothing(
    sb: Sandbox, pb: ProductboardConnector
) -> None:
    sb.faults.add("productboard", "POST", NOTES, kind="status", status=503)
    with pytest.raises(RetriableError) as info:
        pb.create_note(ticket_note(11))
    assert info.value.ambiguous is True and info.value.status == 503
    assert pb.find_note("zd-11-feature-request") is None
    assert pb.create_note(ticket_note(11)).record_id == "zd-11-feature-request"


def test_a_slow_create_times_out_ambiguously_and_lands_anyway(sb: Sandbox) -> None:
    sb.productboard.add_user("dana@acme.example")
    sb.productboard.add_tags("export")
    slow = ProductboardConnector(settings(sb, http={"read_timeout": 0.2}))
    sb.faults.add("productboard", "POST", NOTES, kind="delay", delay=0.6)
    with pytest.raises(RetriableError) as info:
        slow.create_note(ticket_note(12))
    assert info.value.ambiguous is True
    deadline = time.monotonic() + 5
    while not sb.productboard.notes_for_record("zd-12-feature-request"):
        assert time.monotonic() < deadline, "the delayed create never landed"
        time.sleep(0.05)
    assert slow.find_note("zd-12-feature-request") is not None


def test_a_wrong_token_is_refused_and_never_echoed(sb: Sandbox) -> None:
    wrong = "pb-wrong-token-9876543210"
    connector = ProductboardConnector(settings(sb, token=wrong))
    with pytest.raises(AuthError) as info:
        connector.find_note("zd-1")
    assert info.value.status == 401
    assert wrong not in str(info.value) and TOKEN not in str(info.value)
    assert sb.productboard.notes() == []


# --- rate limit -------------------------------------------------------------------------------


def test_over_the_limit_a_write_raises_rate_limited_and_a_read_waits_and_retries(
    sb: Sandbox, pb: ProductboardConnector, sleeps: list[float]
) -> None:
    clock = Clock()
    sb.productboard.clock = clock
    sb.productboard.set_rate_limit(2)
    fid = sb.productboard.add_feature("Dark mode")
    pb.get_feature(fid)
    pb.get_feature(fid)
    with pytest.raises(RateLimitedError) as info:
        pb.create_note(ticket_note(13))
    assert info.value.retry_after >= 1
    assert sb.productboard.notes() == []

    # The read's first attempt gets 429; the connector sleeps Retry-After (a fake sleep here),
    # the window moves on meanwhile, and the retry is served.
    sleeps.clear()
    original = sb.productboard.clock
    sb.productboard.clock = lambda: original() + (1.5 if sleeps else 0.0)
    assert pb.get_feature(fid).name == "Dark mode"
    assert sleeps and max(sleeps) >= 1


def test_the_limit_is_fifty_a_second_per_token_with_headers(sb: Sandbox) -> None:
    clock = Clock()
    sb.productboard.clock = clock
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        answers = [session.get(sb.productboard_url + "/v2/entities") for _ in range(51)]
    assert [a.status_code for a in answers[:50]] == [200] * 50
    assert answers[0].headers["X-RateLimit-Limit"] == "50"
    assert answers[49].headers["X-RateLimit-Remaining"] == "0"
    last = answers[50]
    assert last.status_code == 429 and int(last.headers["Retry-After"]) >= 1
    assert last.json()["errors"][0]["code"] == "rateLimit.exceeded"
    clock.now += 1.0
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        assert session.get(sb.productboard_url + "/v2/entities").status_code == 200


def test_the_connector_spaces_its_calls_under_the_limit(sb: Sandbox) -> None:
    default = ProductboardConnector(settings(sb))
    assert isinstance(default.limiter, RateLimiter)
    assert default.limiter.capacity == 1  # spaced evenly: no burst on top of 50/s
    assert default.limiter.per_minute == 3000
    # At exactly 50/s the margin is nil (network jitter can still meet a 429, which is
    # handled); a little under it, a long run never meets the limit.
    connector = ProductboardConnector(settings(sb, requests_per_second=45))
    fid = sb.productboard.add_feature("Dark mode")
    for _ in range(60):
        connector.get_feature(fid)
    assert all(e.status == 200 for e in sb.requests.entries("productboard"))


# --- features and links -------------------------------------------------------------------------


def test_features_their_status_and_a_release(sb: Sandbox, pb: ProductboardConnector) -> None:
    sb.productboard.set_page_size(2)
    ids = [sb.productboard.add_feature(name, status="Planned")
           for name in ("Dark mode", "CSV export", "SSO", "Audit log", "Webhooks")]
    sb.productboard.add_feature("Platform", entity_type="component")
    assert [f.name for f in pb.iter_features()] == [
        "Dark mode", "CSV export", "SSO", "Audit log", "Webhooks"]
    found = pb.find_feature("csv export")
    assert found is not None and found.id == ids[1] and found.status == "Planned"

    sb.productboard.set_feature_status(ids[1], "Released")
    assert pb.get_feature(ids[1]).status == "Released"


def test_link_is_idempotent_and_locks_the_content(sb: Sandbox, pb: ProductboardConnector) -> None:
    fid = sb.productboard.add_feature("CSV export")
    note = pb.create_note(ticket_note(14))
    pb.link_note_to_feature(note.id, fid)
    pb.link_note_to_feature(note.id, fid)
    assert sb.productboard.linked_features(note.id) == [fid]
    assert pb.linked_feature_ids(note.id) == [fid]
    with pytest.raises(NoteContentLockedError):
        pb.append_to_note(note.id, "<p>later comment</p>")
    with pytest.raises(NotFoundError):
        pb.link_note_to_feature(note.id, "00000000-0000-4000-8000-000000000000")


# --- the contract, with plain requests ----------------------------------------------------------


@pytest.fixture
def http(sb: Sandbox) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        yield session


def test_errors_have_the_v2_shape(sb: Sandbox, http: requests.Session) -> None:
    url = sb.productboard_url
    with requests.Session() as anonymous:
        answer = anonymous.get(url + "/v2/notes")
    assert answer.status_code == 401
    assert set(answer.json()["errors"][0]) == {"code", "title", "detail"}
    assert http.post(url + "/v2/notes", data=b"{not json").status_code == 400
    missing_name = http.post(url + "/v2/notes", json={"data": {"type": "textNote",
                                                               "fields": {}}})
    assert missing_name.status_code == 400
    assert "data.fields.name" in missing_name.json()["errors"][0]["detail"]
    opportunity = http.post(url + "/v2/notes", json={"data": {"type": "opportunityNote",
                                                              "fields": {"name": "x"}}})
    assert opportunity.status_code == 422
    assert http.get(url + "/v2/notes", params={"pageCursor": "bogus"}).status_code == 400
    assert http.get(url + "/v2/entities",
                    params={"metadata[source][recordId]": "x"}).status_code == 400
    assert http.put(url + "/v2/notes").status_code == 405
    assert http.get(url + "/v2/nothing").status_code == 404


def test_search_notes_and_entities(sb: Sandbox, http: requests.Session,
                                   pb: ProductboardConnector) -> None:
    note = pb.create_note(ticket_note(15, tags=()))
    pb.create_note(ticket_note(16, tags=()))
    answer = http.post(sb.productboard_url + "/v2/notes/search", json={"data": {"filter": {
        "metadata": {"source": {"system": "switchboard", "recordId": "zd-15-feature-request"}}}}})
    assert answer.status_code == 200
    assert [n["id"] for n in answer.json()["data"]] == [note.id]
    assert answer.json()["links"]["next"] is None

    sb.productboard.add_feature("CSV export")
    sb.productboard.add_feature("Export to PDF")
    sb.productboard.add_feature("SSO")
    found = http.post(sb.productboard_url + "/v2/entities/search",
                      json={"data": {"filter": {"type": ["feature"], "name": "export"}}})
    assert sorted(e["fields"]["name"] for e in found.json()["data"]) == [
        "CSV export", "Export to PDF"]


def test_patch_with_fields_and_with_operations(sb: Sandbox, http: requests.Session,
                                               pb: ProductboardConnector) -> None:
    note = pb.create_note(ticket_note(17, tags=("export",)))
    url = f"{sb.productboard_url}/v2/notes/{note.id}"
    sb.productboard.add_tags("urgent")
    renamed = http.patch(url, json={"data": {"fields": {"name": "Renamed"}}})
    assert renamed.status_code == 200 and renamed.json()["data"]["fields"]["name"] == "Renamed"
    tagged = http.patch(url, json={"data": {"patch": [
        {"op": "addItems", "path": "tags", "value": [{"name": "urgent"}]}]}})
    assert [t["name"] for t in tagged.json()["data"]["fields"]["tags"]] == ["export", "urgent"]
    refused = http.patch(url, json={"data": {"patch": [{"op": "clear", "path": "name"}]}})
    assert refused.status_code == 400
    both = http.patch(url, json={"data": {"fields": {}, "patch": []}})
    assert both.status_code == 400


def test_faults_can_target_productboard(sb: Sandbox, pb: ProductboardConnector) -> None:
    sb.faults.add("productboard", "GET", r"^/v2/entities", kind="status", status=500, times=3)
    with pytest.raises(RetriableError):
        pb.find_feature("x")
    entries = sb.requests.entries("productboard", "GET")
    assert [e.fault for e in entries] == ["status"] * 3
