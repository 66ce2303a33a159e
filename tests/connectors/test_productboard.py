"""ProductboardConnector over requests, with HTTP faked at the transport (``responses``).

Payloads are shaped after the v2 examples recorded in docs/productboard.md
(tests/fixtures/productboard/).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import requests
import responses
import urllib3.exceptions
from pydantic import ValidationError
from responses import matchers

from connectors import CONNECTORS
from connectors.errors import (
    AuthError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    RetriableError,
)
from connectors.http import RateLimiter
from connectors.productboard import (
    InvalidResponseError,
    NewNote,
    NoteContentLockedError,
    ProductboardConnector,
)
from connectors.settings import ProductboardSettings
from sync.config import ConnectorsSettings
from tests.connectors.support import FakeClock, jira_settings, load, zendesk_settings

API = "https://api.productboard.com"
TOKEN = "pb-secret-token-abcdef0123456789"
NOTES = f"{API}/v2/notes"
NOTE_ID = "3f1c6c2e-8a53-4b5e-9d0a-2f7c1e9b4a10"
NOTE = f"{NOTES}/{NOTE_ID}"
ENTITIES = f"{API}/v2/entities"
FEATURE_ID = "7e8581c9-900d-40f5-bf91-5d5cb790a53d"
TAGS = f"{API}/v2/entities/fields/tags/values"
RECORD = "zd-4242-feature-request"

NEW = NewNote(
    title="Export to CSV times out",
    content="<p>The export spins forever.</p>",
    record_id=RECORD,
    source_url="https://acme.zendesk.com/agent/tickets/4242",
    user_email="dana@acme.example",
    user_name="Dana Scully",
    company_name="Acme",
    company_domain="acme.example",
    tags=("export",),
)


def pb(**overrides: Any) -> ProductboardSettings:
    values: dict[str, Any] = {"token": TOKEN}
    values.update(overrides)
    return ProductboardSettings(**values)


@pytest.fixture
def connector(clock: FakeClock) -> ProductboardConnector:
    limiter = RateLimiter(3000, clock=clock, sleep=clock.sleep, burst_seconds=1.0)
    return ProductboardConnector(pb(), limiter=limiter, sleep=clock.sleep)


def sent(call: Any) -> Any:
    return json.loads(call.request.body)


def calls_to(rsps: responses.RequestsMock, method: str, url: str) -> list[Any]:
    return [c for c in rsps.calls
            if c.request.method == method and c.request.url.split("?")[0] == url]


def reset() -> requests.exceptions.ConnectionError:
    """What requests raises when the peer resets the connection after we sent."""
    return requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError(
        "Connection aborted.", ConnectionResetError(104, "Connection reset by peer")))


def test_the_registry_holds_the_productboard_connector() -> None:
    assert CONNECTORS["productboard"] is ProductboardConnector
    assert ProductboardConnector.name == "productboard"


# --- create_note --------------------------------------------------------------------------------


def test_create_note_is_one_post_with_the_v2_body(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.post(NOTES, json=load("productboard", "create_note_response"), status=201)
    note = connector.create_note(NEW)

    assert len(rsps.calls) == 1
    request = rsps.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert sent(rsps.calls[0]) == {"data": {
        "type": "textNote",
        "fields": {"name": NEW.title, "content": NEW.content, "tags": [{"name": "export"}]},
        "metadata": {"source": {"system": "switchboard", "recordId": RECORD,
                                "url": NEW.source_url}},
        "relationships": [{"type": "customer",
                           "target": {"type": "user", "email": "dana@acme.example"}}],
    }}
    assert note.id == NOTE_ID
    assert note.url == f"https://acme.productboard.com/all-notes/notes/{NOTE_ID}"
    assert (note.record_id, note.title, note.content, note.tags) == (
        RECORD, NEW.title, NEW.content, ("export",))
    assert note.source_url == NEW.source_url and note.source_system == "switchboard"


def test_without_a_user_email_the_company_is_the_customer_and_no_tags_no_url_are_sent(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.post(NOTES, json=load("productboard", "create_note_response"), status=201)
    connector.create_note(NewNote(title="T", content="<p>c</p>", record_id="r-1",
                                  company_name="Acme", company_domain="acme.example"))
    data = sent(rsps.calls[0])["data"]
    assert data["relationships"] == [{"type": "customer",
                                      "target": {"type": "company", "domain": "acme.example"}}]
    assert "tags" not in data["fields"]
    assert data["metadata"] == {"source": {"system": "switchboard", "recordId": "r-1"}}

    connector.create_note(NewNote(title="T", content="", record_id="r-2"))
    assert "relationships" not in sent(rsps.calls[1])["data"]


def test_a_full_note_in_the_create_answer_is_read(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.post(NOTES, json=load("productboard", "note"), status=201)
    note = connector.create_note(NEW)
    assert note.created_at is not None and note.created_at.isoformat() == \
        "2026-11-27T10:00:00+00:00"


def test_an_unknown_tag_is_created_then_the_note_sent_again(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.post(NOTES, json=load("productboard", "error_tag_not_found"), status=422)
    rsps.post(NOTES, json=load("productboard", "create_note_response"), status=201)
    rsps.get(TAGS, json=load("productboard", "tag_values"))
    rsps.post(TAGS, json={"data": {"id": "t-new"}}, status=201,
              match=[matchers.json_params_matcher({"data": {"fields": {"name": "mobile"}}})])
    note = connector.create_note(NewNote(title="T", content="<p>c</p>", record_id="r-1",
                                         tags=("mobile", "billing", "EXPORT")))
    # Known tags are sent the way the workspace spells them; the unknown one was created.
    assert sent(rsps.calls[-1])["data"]["fields"]["tags"] == [
        {"name": "mobile"}, {"name": "Billing"}, {"name": "export"}]
    assert note.tags == ("mobile", "Billing", "export")
    assert len(calls_to(rsps, "POST", NOTES)) == 2
    assert len(calls_to(rsps, "POST", TAGS)) == 1


def test_a_tag_created_meanwhile_by_another_note_is_used_not_left_off(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    # Two workers' notes bring the same new tag: the second tag create answers 409.
    rsps.post(NOTES, json=load("productboard", "error_tag_not_found"), status=422)
    rsps.post(NOTES, json=load("productboard", "create_note_response"), status=201)
    rsps.get(TAGS, json=load("productboard", "tag_values"))
    rsps.post(TAGS, status=409, json={"errors": [
        {"code": "resource.conflict", "title": "Conflict", "detail": "Tag 'mobile' exists"}]})
    note = connector.create_note(NewNote(title="T", content="c", record_id="r",
                                         tags=("mobile", "export")))
    assert sent(rsps.calls[-1])["data"]["fields"]["tags"] == [{"name": "mobile"},
                                                              {"name": "export"}]
    assert note.tags == ("mobile", "export")


def test_with_create_missing_tags_off_unknown_tags_are_left_off(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    connector = ProductboardConnector(pb(create_missing_tags=False), sleep=clock.sleep)
    rsps.post(NOTES, json=load("productboard", "error_tag_not_found"), status=422)
    rsps.post(NOTES, json=load("productboard", "create_note_response"), status=201)
    rsps.get(TAGS, json=load("productboard", "tag_values"))
    note = connector.create_note(NewNote(title="T", content="c", record_id="r",
                                         tags=("mobile", "export")))
    assert note.tags == ("export",)
    assert calls_to(rsps, "POST", TAGS) == []


def test_an_unknown_customer_is_created_as_a_user_then_the_note_sent_again(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.post(NOTES, json=load("productboard", "error_customer_not_found"), status=404)
    rsps.post(NOTES, json=load("productboard", "create_note_response"), status=201)
    rsps.post(ENTITIES, json={"data": {"id": "u-1", "type": "user"}}, status=201)
    connector.create_note(NEW)
    assert sent(calls_to(rsps, "POST", ENTITIES)[0]) == {"data": {
        "type": "user", "fields": {"email": "dana@acme.example", "name": "Dana Scully"}}}
    assert len(calls_to(rsps, "POST", NOTES)) == 2


def test_a_customer_still_unknown_after_creating_it_is_left_off(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    for _ in range(2):
        rsps.post(NOTES, json=load("productboard", "error_customer_not_found"), status=404)
    rsps.post(NOTES, json=load("productboard", "create_note_response"), status=201)
    rsps.post(ENTITIES, json=load("productboard", "error_validation"), status=409)
    note = connector.create_note(NEW)
    assert note.id == NOTE_ID
    assert "relationships" not in sent(calls_to(rsps, "POST", NOTES)[-1])["data"]


def test_a_refused_note_raises_invalid_request_with_the_vendor_detail(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.post(NOTES, json=load("productboard", "error_validation"), status=400)
    with pytest.raises(InvalidRequestError) as info:
        connector.create_note(NEW)
    assert info.value.status == 400
    assert info.value.detail == "validation.failed: data.fields.name is required"
    assert len(rsps.calls) == 1


def test_a_422_that_is_not_about_tags_or_customer_is_not_retried(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.post(NOTES, json={"errors": [{"code": "validation.failed", "detail": "too long"}]},
              status=422)
    with pytest.raises(InvalidRequestError, match="too long"):
        connector.create_note(NEW)
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("failure", [
    requests.exceptions.ReadTimeout("read timed out"),
    reset(),
])
def test_a_create_that_fails_after_sending_is_ambiguous_and_not_repeated(
    rsps: responses.RequestsMock, connector: ProductboardConnector, failure: Exception
) -> None:
    rsps.post(NOTES, body=failure)
    with pytest.raises(RetriableError) as info:
        connector.create_note(NEW)
    assert info.value.ambiguous is True
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_create_answered_5xx_is_ambiguous(
    rsps: responses.RequestsMock, connector: ProductboardConnector, status: int
) -> None:
    rsps.post(NOTES, json={"errors": [{"code": "internal.error"}]}, status=status)
    with pytest.raises(RetriableError) as info:
        connector.create_note(NEW)
    assert info.value.ambiguous is True and info.value.status == status
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("body", [
    b"<html>Gateway</html>",
    json.dumps({"data": {"type": "textNote"}}).encode(),
    json.dumps({"data": "3f1c"}).encode(),
    json.dumps([1, 2]).encode(),
])
def test_a_2xx_create_answer_without_the_id_is_ambiguous(
    rsps: responses.RequestsMock, connector: ProductboardConnector, body: bytes
) -> None:
    rsps.post(NOTES, body=body, status=201)
    with pytest.raises(RetriableError, match="find it by record id") as info:
        connector.create_note(NEW)
    assert info.value.ambiguous is True


def test_a_connect_timeout_on_create_is_not_ambiguous(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.post(NOTES, body=requests.exceptions.ConnectTimeout("connect timed out"))
    with pytest.raises(RetriableError) as info:
        connector.create_note(NEW)
    assert info.value.ambiguous is False


def test_429_raises_rate_limited_with_retry_after_and_pauses_the_limiter(
    rsps: responses.RequestsMock, connector: ProductboardConnector, clock: FakeClock
) -> None:
    rsps.post(NOTES, json={"errors": [{"code": "rateLimit.exceeded"}]}, status=429,
              headers={"Retry-After": "7", "X-RateLimit-Remaining": "0"})
    with pytest.raises(RateLimitedError) as info:
        connector.create_note(NEW)
    assert info.value.retry_after == 7
    assert info.value.ambiguous is False
    assert connector.limiter.paused_until == clock.now + 7
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(("status", "error"), [(401, AuthError), (403, AuthError)])
def test_auth_failures_raise_auth_error(
    rsps: responses.RequestsMock, connector: ProductboardConnector, status: int,
    error: type[Exception],
) -> None:
    rsps.post(NOTES, json=load("productboard", "error_unauthorized"), status=status)
    with pytest.raises(error):
        connector.create_note(NEW)
    assert len(rsps.calls) == 1


def test_blank_title_or_record_id_is_refused_before_any_request(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    with pytest.raises(InvalidRequestError, match="title"):
        connector.create_note(NewNote(title=" ", content="c", record_id="r"))
    with pytest.raises(InvalidRequestError, match="record id"):
        connector.create_note(NewNote(title="t", content="c", record_id=""))
    assert len(rsps.calls) == 0


# --- find_note / get_note -------------------------------------------------------------------


def test_find_note_filters_by_record_and_follows_links_next(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.get(NOTES, json=load("productboard", "notes_page1"), match=[
        matchers.query_param_matcher({"metadata[source][recordId]": RECORD,
                                      "metadata[source][system]": "switchboard"})])
    rsps.get(NOTES, json=load("productboard", "notes_page2"),
             match=[matchers.query_param_matcher({"pageCursor": "eyJvIjoxfQ"})])
    note = connector.find_note(RECORD)
    assert note is not None and note.id == NOTE_ID
    assert note.record_id == RECORD and note.tags == ("export",)
    # The second page is the links.next URL as given, nothing added.
    assert rsps.calls[1].request.url == f"{NOTES}?pageCursor=eyJvIjoxfQ"
    assert len(rsps.calls) == 2


def test_find_note_returns_none_when_no_note_carries_the_record(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.get(NOTES, json=load("productboard", "notes_empty"))
    assert connector.find_note("zd-1-none") is None


def test_find_note_checks_the_filter_itself_and_picks_the_oldest_of_several(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    page = load("productboard", "notes_page2")
    older = json.loads(json.dumps(page["data"][0]))
    older["id"], older["createdAt"] = "older-note", "2026-11-01T00:00:00.000Z"
    foreign = json.loads(json.dumps(older))
    foreign["id"], foreign["metadata"]["source"]["system"] = "foreign", "intercom"
    conversation = {"id": "c", "type": "conversationNote", "fields": {"name": "c",
                                                                     "content": [{"x": 1}]}}
    page["data"] = [page["data"][0], foreign, conversation, older]
    rsps.get(NOTES, json=page)
    note = connector.find_note(RECORD)
    assert note is not None and note.id == "older-note"


def test_find_note_refuses_a_links_next_to_another_origin(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    page = load("productboard", "notes_page1")
    page["links"]["next"] = "https://evil.example/v2/notes?pageCursor=x"
    rsps.get(NOTES, json=page)
    with pytest.raises(InvalidResponseError, match="links.next leaves"):
        connector.find_note(RECORD)
    assert len(rsps.calls) == 1


def test_find_note_stops_on_a_page_that_repeats(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    page = load("productboard", "notes_page1")
    rsps.get(NOTES, json=page)
    with pytest.raises(InvalidResponseError, match="repeats"):
        connector.find_note(RECORD)


def test_get_note_reads_the_note(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.get(NOTE, json=load("productboard", "note"))
    note = connector.get_note(NOTE_ID)
    assert (note.id, note.title, note.content) == (NOTE_ID, "Export to CSV times out",
                                                   "<p>The export spins forever.</p>")
    assert note.updated_at is not None and note.updated_at.tzinfo is not None


def test_get_note_of_a_missing_note_raises_not_found(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.get(NOTE, json={"errors": [{"code": "resource.notFound", "detail": "Note not found"}]},
             status=404)
    with pytest.raises(NotFoundError, match="Note not found"):
        connector.get_note(NOTE_ID)
    assert len(rsps.calls) == 1  # a 4xx read is not retried


def _note_with(**changes: Any) -> dict[str, Any]:
    body = load("productboard", "note")
    for path, value in changes.items():
        target = body["data"]
        *parents, last = path.split("__")
        for key in parents:
            target = target[key]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value
    return body


@pytest.mark.parametrize(("answer", "problem"), [
    (_note_with(fields=KeyError), "data.fields is missing"),
    (_note_with(fields="x"), "data.fields must be an object"),
    (_note_with(id=KeyError), "data.id is missing"),
    (_note_with(id=42), "data.id must be a non-empty string, not 42"),
    (_note_with(fields__name=5), "data.fields.name must be a non-empty string, not 5"),
    (_note_with(fields__content=[{"part": 1}]), "data.fields.content must be a string"),
    (_note_with(fields__tags="export"), "data.fields.tags must be a list"),
    (_note_with(fields__tags=[{"id": "x"}]), "data.fields.tags[0].name is missing"),
    (_note_with(links__html=7), "data.links.html must be a string or null, not 7"),
    (_note_with(metadata__source=[]), "data.metadata.source must be an object"),
    (_note_with(metadata__source__recordId=9), "data.metadata.source.recordId must be a string"),
    (_note_with(createdAt="yesterday"), "data.createdAt is not a timestamp"),
    ({"note": {}}, "data is missing"),
    ([], "data is missing"),
])
def test_a_malformed_note_raises_invalid_response_naming_the_value(
    rsps: responses.RequestsMock, connector: ProductboardConnector, answer: Any, problem: str
) -> None:
    rsps.get(NOTE, json=answer)
    with pytest.raises(InvalidResponseError) as info:
        connector.get_note(NOTE_ID)
    assert problem in str(info.value)


def test_an_answer_that_is_not_json_raises_invalid_response(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.get(NOTE, body="<html>maintenance</html>", content_type="text/html")
    with pytest.raises(InvalidResponseError, match="not JSON"):
        connector.get_note(NOTE_ID)


def test_a_read_answered_5xx_is_retried_then_raises_retriable(
    rsps: responses.RequestsMock, connector: ProductboardConnector, clock: FakeClock
) -> None:
    rsps.get(NOTE, status=503)
    with pytest.raises(RetriableError):
        connector.get_note(NOTE_ID)
    assert len(rsps.calls) == 3
    assert len(clock.sleeps) >= 2


def test_a_read_answered_429_waits_retry_after_then_succeeds(
    rsps: responses.RequestsMock, connector: ProductboardConnector, clock: FakeClock
) -> None:
    rsps.get(NOTE, status=429, headers={"Retry-After": "2"})
    rsps.get(NOTE, json=load("productboard", "note"))
    assert connector.get_note(NOTE_ID).id == NOTE_ID
    assert 2 in clock.sleeps or max(clock.sleeps) >= 2


def test_ids_that_are_not_ids_are_refused_before_any_request(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    for bad in ("", "a/b", "../x", "with space"):
        with pytest.raises(InvalidRequestError):
            connector.get_note(bad)
    with pytest.raises(InvalidRequestError):
        connector.find_note("  ")
    assert len(rsps.calls) == 0


# --- append_to_note -------------------------------------------------------------------------


def test_append_reads_then_patches_the_whole_content_with_a_set_operation(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.get(NOTE, json=load("productboard", "note"))
    patched = _note_with(fields__content="<p>The export spins forever.</p><p>Again.</p>")
    rsps.patch(NOTE, json=patched)
    note = connector.append_to_note(NOTE_ID, "<p>Again.</p>")
    assert sent(calls_to(rsps, "PATCH", NOTE)[0]) == {"data": {"patch": [
        {"op": "set", "path": "content",
         "value": "<p>The export spins forever.</p><p>Again.</p>"}]}}
    assert note.content == "<p>The export spins forever.</p><p>Again.</p>"


def test_append_with_a_bare_answer_returns_the_note_with_the_new_content(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.get(NOTE, json=load("productboard", "note"))
    rsps.patch(NOTE, json={"data": {"id": NOTE_ID, "type": "textNote"}})
    note = connector.append_to_note(NOTE_ID, "<p>Again.</p>")
    assert note.content.endswith("<p>Again.</p>") and note.title == "Export to CSV times out"


def test_append_whose_marker_is_already_there_sends_nothing(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.get(NOTE, json=_note_with(fields__content="<p>x</p><p>[c-77]</p>"))
    note = connector.append_to_note(NOTE_ID, "<p>[c-77]</p>", marker="[c-77]")
    assert note.content == "<p>x</p><p>[c-77]</p>"
    assert calls_to(rsps, "PATCH", NOTE) == []


def test_append_refused_422_raises_content_locked(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.get(NOTE, json=load("productboard", "note"))
    rsps.patch(NOTE, json=load("productboard", "error_content_locked"), status=422)
    with pytest.raises(NoteContentLockedError) as info:
        connector.append_to_note(NOTE_ID, "<p>more</p>")
    assert isinstance(info.value, InvalidRequestError)
    assert "validation.forbidden" in info.value.detail


def test_append_to_a_conversation_note_is_refused(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    answer = _note_with(type="conversationNote", fields__content=KeyError)
    rsps.get(NOTE, json=answer)
    with pytest.raises(InvalidRequestError, match="conversationNote"):
        connector.append_to_note(NOTE_ID, "<p>more</p>")


def test_an_append_that_times_out_is_ambiguous(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.get(NOTE, json=load("productboard", "note"))
    rsps.patch(NOTE, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(RetriableError) as info:
        connector.append_to_note(NOTE_ID, "<p>more</p>")
    assert info.value.ambiguous is True
    assert len(calls_to(rsps, "PATCH", NOTE)) == 1


# --- features ---------------------------------------------------------------------------------


def test_iter_features_pages_through_the_feature_entities(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.get(ENTITIES, json=load("productboard", "features_page1"),
             match=[matchers.query_param_matcher({"type[]": "feature"})])
    rsps.get(ENTITIES, json=load("productboard", "features_page2"),
             match=[matchers.query_param_matcher({"pageCursor": "ZmVhdHVyZXMy"})])
    features = list(connector.iter_features())
    assert [(f.name, f.status) for f in features] == [("Dark mode", "Planned"),
                                                      ("CSV export", "In progress")]
    assert features[1].url == f"https://acme.productboard.com/entities/{FEATURE_ID}/detail"


def test_find_feature_matches_the_name_case_insensitively(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.get(ENTITIES, json=load("productboard", "features_page1"),
             match=[matchers.query_param_matcher({"type[]": "feature"})])
    rsps.get(ENTITIES, json=load("productboard", "features_page2"),
             match=[matchers.query_param_matcher({"pageCursor": "ZmVhdHVyZXMy"})])
    found = connector.find_feature("  csv EXPORT ")
    assert found is not None and found.id == FEATURE_ID
    assert connector.find_feature("Teleportation") is None
    assert connector.find_feature("") is None


def test_find_feature_reuses_the_names_it_paged_through(
    rsps: responses.RequestsMock, connector: ProductboardConnector, clock: FakeClock
) -> None:
    rsps.get(ENTITIES, json=load("productboard", "features_page1"),
             match=[matchers.query_param_matcher({"type[]": "feature"})])
    rsps.get(ENTITIES, json=load("productboard", "features_page2"),
             match=[matchers.query_param_matcher({"pageCursor": "ZmVhdHVyZXMy"})])
    assert connector.find_feature("CSV export") is not None
    assert len(rsps.calls) == 2
    found = connector.find_feature("dark mode")
    assert found is not None and found.status == "Planned"
    assert connector.find_feature("CSV EXPORT") is not None
    assert len(rsps.calls) == 2  # every name of the listing was kept

    uncached = ProductboardConnector(pb(feature_cache_seconds=0), sleep=clock.sleep)
    uncached.find_feature("CSV export")
    uncached.find_feature("CSV export")
    assert len(rsps.calls) == 6


def test_get_feature_reads_name_status_and_link(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.get(f"{ENTITIES}/{FEATURE_ID}", json=load("productboard", "feature"))
    feature = connector.get_feature(FEATURE_ID)
    assert (feature.id, feature.name, feature.status) == (FEATURE_ID, "CSV export", "Released")


def test_a_feature_without_a_status_has_none_and_one_with_a_bad_status_is_refused(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    answer = load("productboard", "feature")
    del answer["data"]["fields"]["status"]
    rsps.get(f"{ENTITIES}/{FEATURE_ID}", json=answer)
    assert connector.get_feature(FEATURE_ID).status is None

    answer["data"]["fields"]["status"] = "Released"
    rsps.replace(responses.GET, f"{ENTITIES}/{FEATURE_ID}", json=answer)
    with pytest.raises(InvalidResponseError, match="data.fields.status must be an object"):
        connector.get_feature(FEATURE_ID)


def test_get_feature_of_another_entity_type_is_refused(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    answer = load("productboard", "feature")
    answer["data"]["type"] = "component"
    rsps.get(f"{ENTITIES}/{FEATURE_ID}", json=answer)
    with pytest.raises(InvalidRequestError, match="is a component"):
        connector.get_feature(FEATURE_ID)


def test_link_note_to_feature_posts_a_link_relationship(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.post(f"{NOTE}/relationships", json=load("productboard", "create_note_response"),
              status=201)
    connector.link_note_to_feature(NOTE_ID, FEATURE_ID)
    assert sent(rsps.calls[0]) == {"data": {"type": "link",
                                            "target": {"id": FEATURE_ID, "type": "link"}}}


def test_linking_twice_is_not_an_error(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.post(f"{NOTE}/relationships", json=load("productboard", "error_already_linked"),
              status=409)
    rsps.get(f"{NOTE}/relationships", json=load("productboard", "relationships"))
    connector.link_note_to_feature(NOTE_ID, FEATURE_ID)
    assert connector.linked_feature_ids(NOTE_ID) == [FEATURE_ID]


def test_a_refused_link_to_a_feature_not_linked_raises(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.post(f"{NOTE}/relationships", json=load("productboard", "error_already_linked"),
              status=409)
    rsps.get(f"{NOTE}/relationships", json=load("productboard", "relationships"))
    with pytest.raises(ConflictError):
        connector.link_note_to_feature(NOTE_ID, "0a9f3b62-5d1e-4c7a-b8e4-6f2d1c3e5a70")


def test_linking_to_a_missing_feature_raises_not_found(
    rsps: responses.RequestsMock, connector: ProductboardConnector
) -> None:
    rsps.post(f"{NOTE}/relationships", status=404,
              json={"errors": [{"code": "resource.notFound", "detail": "Entity not found"}]})
    with pytest.raises(NotFoundError):
        connector.link_note_to_feature(NOTE_ID, FEATURE_ID)
    assert len(rsps.calls) == 1


# --- secrets and settings ---------------------------------------------------------------------


def test_the_token_never_reaches_logs_or_errors(
    rsps: responses.RequestsMock, connector: ProductboardConnector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rsps.post(NOTES, status=401, json={"errors": [{"code": "authentication.failed",
                                                   "detail": f"bad token Bearer {TOKEN}"}]})
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as info:
        connector.create_note(NEW)
    for text in (str(info.value), repr(info.value), info.value.detail, caplog.text,
                 repr(connector.settings), str(connector.settings)):
        assert TOKEN not in text
    assert "switchboard.http" in {r.name for r in caplog.records}


def test_settings_defaults() -> None:
    settings = pb()
    assert settings.base_url == "https://api.productboard.com"
    assert settings.requests_per_second == 50
    assert settings.source_system == "switchboard"
    assert settings.http.verify_tls is True
    assert settings.token.get_secret_value() == TOKEN


@pytest.mark.parametrize(("overrides", "message"), [
    ({"token": ""}, "token is empty"),
    ({"token": "   "}, "token is empty"),
    ({"token": "two words"}, "whitespace"),
    ({"base_url": "http://api.productboard.com"}, "must use https://"),
    ({"base_url": "https://api.productboard.com/v2"}, "without a path"),
    ({"base_url": "ftp://x"}, "not a URL"),
    ({"requests_per_second": 0}, "greater than 0"),
    ({"source_system": "has space"}, "letters, digits"),
    ({"timeout_seconds": 5}, "Extra inputs are not permitted"),
    ({"http": {"verify_tls": False}}, "cannot be switched off"),
])
def test_bad_settings_are_refused_with_a_clear_message(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        pb(**overrides)
    assert TOKEN not in str(info.value)


def test_the_token_is_required() -> None:
    with pytest.raises(ValidationError, match="token"):
        ProductboardSettings()  # type: ignore[call-arg]


def test_loopback_http_is_allowed_for_the_sandbox() -> None:
    assert pb(base_url="http://127.0.0.1:8123/").base_url == "http://127.0.0.1:8123"


def test_the_config_section_is_optional() -> None:
    base = {"zendesk": zendesk_settings(), "jira": jira_settings()}
    assert ConnectorsSettings(**base).productboard is None
    configured = ConnectorsSettings(**base, productboard={"token": TOKEN})
    assert configured.productboard is not None
    assert configured.productboard.base_url == "https://api.productboard.com"
    with pytest.raises(ValidationError, match="productboard.token"):
        ConnectorsSettings(**base, productboard={"base_url": API})
