"""Opening a problem ticket, finding it by external id, attaching incidents: ZendeskConnector
over real zenpy, HTTP faked at the transport (payloads after Zendesk's documented examples)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from connectors.errors import (
    FatalError,
    InvalidRequestError,
    RateLimitedError,
    RetriableError,
)
from connectors.models import NewTicket, TicketUpdate
from connectors.zendesk import ZendeskConnector
from tests.connectors.support import ZENDESK, load, zendesk_settings

TICKETS_URL = f"{ZENDESK}/api/v2/tickets.json"
EXTERNAL_ID = "switchboard/window:checkout-outage:checkout:2026-11-27T10:05:00Z"
PROBLEM = NewTicket(subject="Possible outage: checkout", note="Opened by Switchboard.",
                    type="problem", priority="urgent",
                    tags=("outage_problem", "switchboard_6f1d2c0a9b8e"), external_id=EXTERNAL_ID)


def connector() -> ZendeskConnector:
    return ZendeskConnector(zendesk_settings())


def test_create_ticket_posts_one_problem_with_an_internal_first_comment(
        rsps: responses.RequestsMock) -> None:
    rsps.post(TICKETS_URL, json=load("zendesk", "ticket_create_problem_response"), status=201)
    ticket = connector().create_ticket(PROBLEM)
    assert len(rsps.calls) == 1
    assert json.loads(rsps.calls[0].request.body) == {"ticket": {
        "subject": "Possible outage: checkout",
        "comment": {"body": "Opened by Switchboard.", "public": False},
        "type": "problem", "priority": "urgent", "external_id": EXTERNAL_ID,
        "tags": ["outage_problem", "switchboard_6f1d2c0a9b8e"]}}
    assert (ticket.id, ticket.type, ticket.status) == (5120, "problem", "new")
    assert ticket.updated_at == datetime(2026, 11, 27, 10, 6, tzinfo=UTC)


def test_create_ticket_omits_what_is_not_given(rsps: responses.RequestsMock) -> None:
    rsps.post(TICKETS_URL, json=load("zendesk", "ticket_create_problem_response"), status=201)
    connector().create_ticket(NewTicket(subject="S", note="N"))
    assert json.loads(rsps.calls[0].request.body) == {
        "ticket": {"subject": "S", "comment": {"body": "N", "public": False}}}


@pytest.mark.parametrize(("status", "error", "ambiguous"), [
    (500, RetriableError, True), (503, RetriableError, True), (422, InvalidRequestError, None)])
def test_create_ticket_failures_send_one_request(rsps: responses.RequestsMock, status: int,
                                                 error: type[Exception],
                                                 ambiguous: bool | None) -> None:
    body = load("zendesk", "error_invalid") if status == 422 else {"error": "down"}
    rsps.post(TICKETS_URL, json=body, status=status)
    with pytest.raises(error) as info:
        connector().create_ticket(PROBLEM)
    assert len(rsps.calls) == 1
    if ambiguous is not None:
        assert info.value.ambiguous is ambiguous


def test_create_ticket_timeout_is_ambiguous_and_429_is_rate_limited(
        rsps: responses.RequestsMock) -> None:
    rsps.post(TICKETS_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(RetriableError) as info:
        connector().create_ticket(PROBLEM)
    assert info.value.ambiguous is True
    rsps.replace(responses.POST, TICKETS_URL, status=429, headers={"Retry-After": "7"},
                 json={"error": "APIRateLimitExceeded"})
    with pytest.raises(RateLimitedError) as limited:
        connector().create_ticket(PROBLEM)
    assert limited.value.retry_after == 7
    assert len(rsps.calls) == 2


def test_create_ticket_with_an_answer_that_is_not_a_ticket_is_fatal(
        rsps: responses.RequestsMock) -> None:
    rsps.post(TICKETS_URL, json={"ticket": {"id": "not a number"}}, status=201)
    with pytest.raises(FatalError):
        connector().create_ticket(PROBLEM)


def test_find_tickets_by_external_id_reads_one_page(rsps: responses.RequestsMock) -> None:
    created = load("zendesk", "ticket_create_problem_response")["ticket"]
    rsps.get(TICKETS_URL, json={"tickets": [created], "next_page": None, "previous_page": None,
                                "count": 1})
    found = connector().find_tickets_by_external_id(EXTERNAL_ID)
    assert [t.id for t in found] == [5120]
    assert len(rsps.calls) == 1
    query = parse_qs(urlsplit(rsps.calls[0].request.url).query)
    assert query == {"external_id": [EXTERNAL_ID]}


def test_find_tickets_by_external_id_none_and_malformed(rsps: responses.RequestsMock) -> None:
    rsps.get(TICKETS_URL, json={"tickets": [], "next_page": None, "count": 0})
    assert connector().find_tickets_by_external_id(EXTERNAL_ID) == []
    rsps.replace(responses.GET, TICKETS_URL, json={"count": 0})
    with pytest.raises(FatalError, match="malformed"):
        connector().find_tickets_by_external_id(EXTERNAL_ID)
    rsps.replace(responses.GET, TICKETS_URL, body="<html>oops</html>")
    with pytest.raises(RetriableError):
        connector().find_tickets_by_external_id(EXTERNAL_ID)


def test_update_ticket_attaches_an_incident_to_its_problem(rsps: responses.RequestsMock) -> None:
    url = f"{ZENDESK}/api/v2/tickets/4012.json"
    rsps.put(url, json=load("zendesk", "ticket_update_response"))
    connector().update_ticket(TicketUpdate(
        ticket_id=4012, updated_stamp=datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
        tags=("checkout", "switchboard_6f1d2c0a9b8e"), type="incident", problem_id=5120))
    body: dict[str, Any] = json.loads(rsps.calls[0].request.body)["ticket"]
    assert (body["type"], body["problem_id"]) == ("incident", 5120)
    assert body["safe_update"] is True


def test_update_ticket_refuses_a_bad_problem_id_before_any_request(
        rsps: responses.RequestsMock) -> None:
    with pytest.raises(ValueError):
        connector().update_ticket(TicketUpdate(
            ticket_id=4012, updated_stamp=datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
            type="incident", problem_id=-3))
    assert len(rsps.calls) == 0
