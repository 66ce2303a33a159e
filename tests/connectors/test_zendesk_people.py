"""ZendeskConnector reads of requesters, organizations and comments, over real zenpy with HTTP
faked at the transport: the calls it makes (one sideloading show, cache hits), and what it does
with bad vendor answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from connectors.cache import TtlCache
from connectors.errors import (
    FatalError,
    NotFoundError,
    RateLimitedError,
    RetriableError,
    SkippableError,
)
from connectors.http import RateLimiter, build_session
from connectors.models import Comment, Organization, TicketPeople, User
from connectors.zendesk import ZendeskConnector
from tests.connectors.support import ZENDESK, FakeClock, load, zendesk_settings

TICKET_URL = f"{ZENDESK}/api/v2/tickets/4012.json"
USER_URL = f"{ZENDESK}/api/v2/users/20978392.json"
ORG_URL = f"{ZENDESK}/api/v2/organizations/509974.json"
COMMENTS_URL = f"{ZENDESK}/api/v2/tickets/4012/comments.json"
PEOPLE = {"user_fields": ("account_manager", "seats"), "organization_fields": ("plan_tier",)}

DANA = User(id=20978392, name="Dana Reyes", email="dana.reyes@globex.example",
            tags=("vip", "beta_program"), organization_id=509974,
            fields={"account_manager": "sam", "seats": 250})
GLOBEX = Organization(id=509974, name="Globex", tags=("enterprise", "priority_support"),
                      fields={"plan_tier": "enterprise"})


def connector(clock: FakeClock | None = None, **settings: Any) -> ZendeskConnector:
    """A connector with the people settings; on a fake clock when one is given."""
    values = {**PEOPLE, **settings}
    if clock is None:
        return ZendeskConnector(zendesk_settings(**values))
    config = zendesk_settings(**values)
    limiter = RateLimiter(config.requests_per_minute, clock=clock, sleep=clock.sleep)
    session = build_session("zendesk", config.http, limiter=limiter, sleep=clock.sleep)
    return ZendeskConnector(config, limiter=limiter, session=session)


def query(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def path(call: Any) -> str:
    return urlsplit(call.request.url).path


# --- one call for the ticket and its people ---------------------------------------------------


def test_ticket_and_people_come_from_one_sideloading_show(rsps: responses.RequestsMock) -> None:
    rsps.get(TICKET_URL, json=load("zendesk", "ticket_with_people"))
    ticket, people = connector().get_ticket_and_people(4012)
    assert len(rsps.calls) == 1
    assert rsps.calls[0].request.method == "GET"
    assert query(rsps.calls[0]) == {"include": ["users,organizations"]}
    assert ticket.id == 4012 and ticket.custom_fields["error_code"] == "E4012"
    assert people == TicketPeople(DANA, GLOBEX)


def test_people_are_cached_so_a_second_ticket_of_them_costs_no_call(
        rsps: responses.RequestsMock) -> None:
    rsps.get(TICKET_URL, json=load("zendesk", "ticket_with_people"))
    zd = connector()
    first = zd.get_people(4012, 20978392, 509974)
    again = zd.get_people(4013, 20978392, 509974)
    assert first == again == TicketPeople(DANA, GLOBEX)
    assert len(rsps.calls) == 1


def test_cached_people_expire_after_people_cache_seconds(rsps: responses.RequestsMock) -> None:
    rsps.get(TICKET_URL, json=load("zendesk", "ticket_with_people"))
    now = [1000.0]
    zd = ZendeskConnector(zendesk_settings(**PEOPLE, people_cache_seconds=60),
                          clock=lambda: now[0])
    zd.get_people(4012, 20978392, 509974)
    now[0] += 59
    zd.get_people(4012, 20978392, 509974)
    assert len(rsps.calls) == 1
    now[0] += 2
    zd.get_people(4012, 20978392, 509974)
    assert len(rsps.calls) == 2


def test_people_cache_seconds_zero_reads_every_time(rsps: responses.RequestsMock) -> None:
    rsps.get(TICKET_URL, json=load("zendesk", "ticket_with_people"))
    zd = connector(people_cache_seconds=0)
    assert zd.get_people(4012, 20978392, 509974) == TicketPeople(DANA, GLOBEX)
    assert zd.get_people(4012, 20978392, 509974) == TicketPeople(DANA, GLOBEX)
    assert len(rsps.calls) == 2


def test_only_the_missing_person_is_read_on_its_own(rsps: responses.RequestsMock) -> None:
    rsps.get(TICKET_URL, json=load("zendesk", "ticket_with_people"))
    other = load("zendesk", "organization")
    other["organization"].update(id=777, name="Initech", tags=[])
    rsps.get(f"{ZENDESK}/api/v2/organizations/777.json", json=other)
    zd = connector()
    zd.get_people(4012, 20978392, 509974)  # both cached now
    people = zd.get_people(4012, 20978392, 777)
    assert [path(c) for c in rsps.calls] == ["/api/v2/tickets/4012.json",
                                             "/api/v2/organizations/777.json"]
    assert people.requester == DANA
    assert people.organization == Organization(id=777, name="Initech",
                                               fields={"plan_tier": "enterprise"})


def test_a_person_the_sideload_lacks_is_read_directly(rsps: responses.RequestsMock) -> None:
    answer = load("zendesk", "ticket_with_people")
    answer["users"] = [u for u in answer["users"] if u["id"] != 20978392]
    rsps.get(TICKET_URL, json=answer)
    rsps.get(USER_URL, json=load("zendesk", "user"))
    people = connector().get_people(4012, 20978392, 509974)
    assert [path(c) for c in rsps.calls] == ["/api/v2/tickets/4012.json",
                                             "/api/v2/users/20978392.json"]
    assert people == TicketPeople(DANA, GLOBEX)


def test_a_sideloaded_user_without_user_fields_is_read_in_full(
        rsps: responses.RequestsMock) -> None:
    answer = load("zendesk", "ticket_with_people")
    for user in answer["users"]:
        del user["user_fields"]
    rsps.get(TICKET_URL, json=answer)
    rsps.get(USER_URL, json=load("zendesk", "user"))
    people = connector().get_people(4012, 20978392, 509974)
    assert people.requester == DANA and people.requester.fields["seats"] == 250
    assert len(rsps.calls) == 2


def test_no_requester_and_no_organization_costs_no_call(rsps: responses.RequestsMock) -> None:
    assert connector().get_people(4012, None, None) == TicketPeople(None, None)
    assert len(rsps.calls) == 0


def test_unconfigured_user_fields_are_dropped_and_configured_missing_ones_are_none(
        rsps: responses.RequestsMock) -> None:
    rsps.get(USER_URL, json=load("zendesk", "user"))
    user = connector(user_fields=("seats", "vip_level")).get_user(20978392)
    assert dict(user.fields) == {"seats": 250, "vip_level": None}


# --- bad vendor answers ----------------------------------------------------------------------


def test_a_deleted_user_is_none_and_remembered(rsps: responses.RequestsMock) -> None:
    rsps.get(USER_URL, json=load("zendesk", "error_not_found"), status=404)
    rsps.get(ORG_URL, json=load("zendesk", "organization"))
    zd = connector()
    zd.get_people(4012, 20978392, None)
    people = zd.get_people(4012, 20978392, None)
    assert people == TicketPeople(None, None)
    assert len(rsps.calls) == 1  # the 404 was cached too


def test_get_user_of_a_deleted_user_is_not_found(rsps: responses.RequestsMock) -> None:
    rsps.get(USER_URL, json=load("zendesk", "error_not_found"), status=404)
    with pytest.raises(NotFoundError) as info:
        connector().get_user(20978392)
    assert info.value.status == 404


def test_people_of_a_deleted_ticket_are_skippable(rsps: responses.RequestsMock) -> None:
    rsps.get(TICKET_URL, json=load("zendesk", "error_not_found"), status=404)
    with pytest.raises(SkippableError):
        connector().get_people(4012, 20978392, 509974)


def test_rate_limited_people_read_is_raised_after_one_request(
        rsps: responses.RequestsMock, clock: FakeClock) -> None:
    rsps.get(TICKET_URL, body="Too Many Requests", status=429, headers={"Retry-After": "30"})
    zd = connector(clock)
    with pytest.raises(RateLimitedError) as info:
        zd.get_people(4012, 20978392, 509974)
    assert info.value.retry_after == 30
    assert len(rsps.calls) == 1
    assert zd.limiter.paused_until == pytest.approx(clock.now + 30)


def test_5xx_on_a_user_read_is_retried_a_bounded_number_of_times(
        rsps: responses.RequestsMock, clock: FakeClock) -> None:
    rsps.get(USER_URL, body="upstream down", status=502)
    with pytest.raises(RetriableError):
        connector(clock).get_user(20978392)
    assert len(rsps.calls) == 3


def test_malformed_json_is_retriable_and_nothing_is_cached(
        rsps: responses.RequestsMock, clock: FakeClock) -> None:
    rsps.get(TICKET_URL, body='{"ticket": {"id": 4012', content_type="application/json")
    zd = connector(clock)
    with pytest.raises(RetriableError):
        zd.get_people(4012, 20978392, 509974)
    reads = len(rsps.calls)
    rsps.replace(responses.GET, TICKET_URL, json=load("zendesk", "ticket_with_people"))
    assert zd.get_people(4012, 20978392, 509974) == TicketPeople(DANA, GLOBEX)
    assert len(rsps.calls) == reads + 1


@pytest.mark.parametrize("change", [
    pytest.param({"id": "dana"}, id="id-not-a-number"),
    pytest.param({"id": None}, id="id-missing"),
    pytest.param({"tags": "vip"}, id="tags-not-a-list"),
    pytest.param({"name": 42}, id="name-not-text"),
    pytest.param({"user_fields": ["seats"]}, id="user-fields-not-an-object"),
    pytest.param({"user_fields": {"seats": {"n": 1}}}, id="user-field-an-object"),
])
def test_a_user_of_the_wrong_shape_is_fatal(rsps: responses.RequestsMock,
                                            change: dict[str, Any]) -> None:
    body = load("zendesk", "user")
    body["user"].update(change)
    rsps.get(USER_URL, json=body)
    with pytest.raises(FatalError) as info:
        connector().get_user(20978392)
    assert "malformed" in str(info.value)


@pytest.mark.parametrize("body", [
    pytest.param([], id="a-list"),
    pytest.param({"organization": "Globex"}, id="organization-not-an-object"),
    pytest.param({"organization": {"id": 509974, "organization_fields": "x"}}, id="fields-text"),
])
def test_an_organization_of_the_wrong_shape_is_fatal(rsps: responses.RequestsMock,
                                                     body: Any) -> None:
    rsps.get(ORG_URL, json=body)
    with pytest.raises(FatalError):
        connector().get_organization(509974)


def test_sideloads_of_the_wrong_type_are_fatal(rsps: responses.RequestsMock) -> None:
    answer = load("zendesk", "ticket_with_people")
    answer["organizations"] = {"509974": answer["organizations"][0]}
    rsps.get(TICKET_URL, json=answer)
    with pytest.raises(FatalError) as info:
        connector().get_ticket_and_people(4012)
    assert "'organizations' is not a list" in str(info.value)


def test_a_show_without_a_ticket_is_fatal(rsps: responses.RequestsMock) -> None:
    rsps.get(TICKET_URL, json={"users": []})
    with pytest.raises(FatalError):
        connector().get_ticket_and_people(4012)


# --- comments --------------------------------------------------------------------------------


def test_recent_comments_are_one_call_newest_first(rsps: responses.RequestsMock) -> None:
    rsps.get(COMMENTS_URL, json=load("zendesk", "comments_newest_first"))
    comments = connector().recent_comments(4012, limit=3)
    assert len(rsps.calls) == 1
    assert query(rsps.calls[0]) == {"sort": ["-created_at"], "page[size]": ["3"]}
    assert comments[0] == Comment(id=7300004, body="Still failing after the update. Any news?",
                                  public=True, author_id=20978392,
                                  created_at=datetime(2026, 11, 27, 10, 0, tzinfo=UTC))
    assert [c.id for c in comments] == [7300004, 7300003, 7300002]
    assert comments[1].public is False


def test_recent_comments_are_sorted_even_if_the_answer_is_not(
        rsps: responses.RequestsMock) -> None:
    answer = load("zendesk", "comments_newest_first")
    answer["comments"].reverse()
    rsps.get(COMMENTS_URL, json=answer)
    assert [c.id for c in connector().recent_comments(4012, limit=2)] == [7300004, 7300003]


def test_recent_comments_of_a_deleted_ticket_are_skippable(
        rsps: responses.RequestsMock) -> None:
    rsps.get(COMMENTS_URL, json=load("zendesk", "error_not_found"), status=404)
    with pytest.raises(SkippableError):
        connector().recent_comments(4012)


@pytest.mark.parametrize("change", [
    pytest.param({"public": "true"}, id="public-as-text"),
    pytest.param({"created_at": None}, id="no-created-at"),
    pytest.param({"created_at": "yesterday"}, id="created-at-not-a-time"),
    pytest.param({"id": -1}, id="negative-id"),
    pytest.param({"body": ["a"]}, id="body-a-list"),
])
def test_a_comment_of_the_wrong_shape_is_fatal(rsps: responses.RequestsMock,
                                               change: dict[str, Any]) -> None:
    answer = load("zendesk", "comments_newest_first")
    answer["comments"][1].update(change)
    rsps.get(COMMENTS_URL, json=answer)
    with pytest.raises(FatalError):
        connector().recent_comments(4012)


def test_comments_not_a_list_is_fatal(rsps: responses.RequestsMock) -> None:
    rsps.get(COMMENTS_URL, json={"comments": None})
    with pytest.raises(FatalError):
        connector().recent_comments(4012)


def test_recent_comments_refuses_a_bad_limit_before_any_request(
        rsps: responses.RequestsMock) -> None:
    with pytest.raises(ValueError):
        connector().recent_comments(4012, limit=0)
    assert len(rsps.calls) == 0


# --- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize("keys", [("plan tier",), ("123",), ("tier", "tier")])
def test_bad_or_repeated_field_keys_are_refused(keys: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        zendesk_settings(organization_fields=keys)


def test_ttl_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    cache: TtlCache[int, str | None] = TtlCache(60, 2, clock=lambda: 0.0)
    cache.put(1, "a")
    cache.put(2, None)
    assert cache.lookup(1) == (True, "a")  # 1 is now the most recently used
    cache.put(3, "c")
    assert cache.lookup(2) == (False, None)
    assert cache.lookup(3) == (True, "c") and len(cache) == 2
    with pytest.raises(ValueError):
        TtlCache(-1, 2)


def test_the_api_user_is_read_once(rsps: responses.RequestsMock) -> None:
    me = load("zendesk", "user")
    me["user"].update(id=900001, name="Switchboard", role="admin")
    rsps.get(f"{ZENDESK}/api/v2/users/me.json", json=me)
    zd = connector()
    assert zd.own_user_id() == 900001
    assert zd.own_user_id() == 900001
    assert len(rsps.calls) == 1
