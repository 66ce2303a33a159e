"""ZendeskConnector over real zenpy, with HTTP faked at the transport."""

from __future__ import annotations

import base64
import json
import logging
import os
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import urllib3.exceptions

from connectors.errors import (
    AuthError,
    ConfigurationError,
    ConflictError,
    InvalidRequestError,
    RateLimitedError,
    RetriableError,
    SkippableError,
)
from connectors.http import RateLimiter, build_session
from connectors.models import Ticket, TicketUpdate
from connectors.zendesk import ZendeskConnector, ticket_from_api
from tests.connectors.support import ZENDESK, ZENDESK_TOKEN, FakeClock, load, zendesk_settings

TICKET_URL = f"{ZENDESK}/api/v2/tickets/4012.json"
EXPORT_URL = f"{ZENDESK}/api/v2/incremental/tickets/cursor.json"
FIELD_IDS = {"error_code": 360001, "product_area": 360002, "jira_key": 360003}


def connector(**settings: Any) -> ZendeskConnector:
    return ZendeskConnector(zendesk_settings(**settings))


def quiet_connector(clock: FakeClock) -> ZendeskConnector:
    """A connector whose limiter and retry backoff run on a fake clock."""
    settings = zendesk_settings()
    limiter = RateLimiter(settings.requests_per_minute, clock=clock, sleep=clock.sleep)
    session = build_session("zendesk", settings.http, limiter=limiter, sleep=clock.sleep)
    return ZendeskConnector(settings, limiter=limiter, session=session)


def body_of(call: Any) -> Any:
    return json.loads(call.request.body)


def safe_update(**kwargs: Any) -> TicketUpdate:
    values: dict[str, Any] = {
        "ticket_id": 4012,
        "updated_stamp": datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
    }
    values.update(kwargs)
    return TicketUpdate(**values)


# --- get_ticket -------------------------------------------------------------------------------


def test_get_ticket_reads_one_ticket_with_fields_by_name(rsps: responses.RequestsMock) -> None:
    rsps.get(TICKET_URL, json=load("zendesk", "ticket"))
    ticket = connector().get_ticket(4012)
    assert len(rsps.calls) == 1
    assert rsps.calls[0].request.method == "GET"
    assert rsps.calls[0].request.url == TICKET_URL
    expected_auth = base64.b64encode(f"bot@acme.example/token:{ZENDESK_TOKEN}".encode()).decode()
    assert rsps.calls[0].request.headers["Authorization"] == f"Basic {expected_auth}"
    assert ticket == Ticket(
        id=4012,
        updated_at=datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
        created_at=datetime(2026, 11, 20, 9, 15, tzinfo=UTC),
        subject="Checkout fails with E4012",
        description="The checkout page shows error E4012 after I enter my card.",
        status="open",
        priority="high",
        type="problem",
        tags=("bug_confirmed", "checkout"),
        requester_id=20978392,
        organization_id=509974,
        assignee_id=235323,
        group_id=98738,
        custom_fields={"error_code": "E4012", "product_area": "checkout"},
        url=f"{ZENDESK}/agent/tickets/4012",
    )


def test_get_ticket_is_never_answered_from_zenpys_cache(rsps: responses.RequestsMock) -> None:
    rsps.get(TICKET_URL, json=load("zendesk", "ticket"))
    zd = connector()
    zd.get_ticket(4012)
    zd.get_ticket(4012)
    assert len(rsps.calls) == 2


def test_get_ticket_of_a_deleted_ticket_is_skippable(rsps: responses.RequestsMock) -> None:
    rsps.get(TICKET_URL, json=load("zendesk", "error_not_found"), status=404)
    with pytest.raises(SkippableError) as info:
        connector().get_ticket(4012)
    assert info.value.status == 404
    assert len(rsps.calls) == 1


def test_get_ticket_with_bad_credentials_is_an_auth_error_without_the_token(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    rsps.get(TICKET_URL, json=load("zendesk", "error_unauthorized"), status=401)
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as info:
        connector().get_ticket(4012)
    basic = base64.b64encode(f"bot@acme.example/token:{ZENDESK_TOKEN}".encode()).decode()
    for text in (str(info.value), repr(info.value), caplog.text):
        assert ZENDESK_TOKEN not in text
        assert basic not in text
    assert len(rsps.calls) == 1


def test_get_ticket_rate_limited_is_raised_after_one_request(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.get(TICKET_URL, body="Too Many Requests", status=429, headers={"Retry-After": "45"})
    zd = quiet_connector(clock)
    with pytest.raises(RateLimitedError) as info:
        zd.get_ticket(4012)
    assert info.value.retry_after == 45
    assert len(rsps.calls) == 1  # zenpy did not sleep and retry
    assert zd.limiter.paused_until == pytest.approx(clock.now + 45)


def test_get_ticket_retries_on_5xx_a_bounded_number_of_times(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.get(TICKET_URL, body="upstream down", status=503)
    with pytest.raises(RetriableError) as info:
        quiet_connector(clock).get_ticket(4012)
    assert info.value.ambiguous is True
    assert len(rsps.calls) == 3


def test_get_ticket_recovers_from_a_read_timeout(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.get(TICKET_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    rsps.get(TICKET_URL, json=load("zendesk", "ticket"))
    assert quiet_connector(clock).get_ticket(4012).id == 4012
    assert len(rsps.calls) == 2


def test_sandbox_base_url_is_reached_without_environment_overrides(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get("http://127.0.0.1:8123/api/v2/tickets/4012.json", json=load("zendesk", "ticket"))
    zd = connector(base_url="http://127.0.0.1:8123/")
    ticket = zd.get_ticket(4012)
    assert [c.request.url for c in rsps.calls] == ["http://127.0.0.1:8123/api/v2/tickets/4012.json"]
    assert ticket.url == "http://127.0.0.1:8123/agent/tickets/4012"
    assert zd.ticket_url(7) == "http://127.0.0.1:8123/agent/tickets/7"
    assert "ZENPY_FORCE_NETLOC" not in os.environ


def test_ticket_url_is_the_agent_ui_url() -> None:
    assert connector().ticket_url(4012) == f"{ZENDESK}/agent/tickets/4012"


# --- export_page ------------------------------------------------------------------------------


def test_export_page_first_call_uses_start_time_then_the_cursor(
    rsps: responses.RequestsMock,
) -> None:
    first = load("zendesk", "export_first_page")
    rsps.get(f"{EXPORT_URL}?start_time=1795680000", json=first)
    rsps.get(
        f"{EXPORT_URL}?cursor=MTc5NTY4MzY2MC4wfHw0MDEzfA%3D%3D",
        json=load("zendesk", "export_last_page"),
    )
    zd = connector()

    page = zd.export_page(start_time=1795680000)
    assert len(rsps.calls) == 1  # one page, no auto-pagination through after_url
    assert [t.id for t in page.tickets] == [4012, 4013]
    assert page.tickets[1].custom_fields == {"error_code": None, "product_area": "auth"}
    assert page.after_cursor == "MTc5NTY4MzY2MC4wfHw0MDEzfA=="
    assert page.end_of_stream is False

    last = zd.export_page(cursor=page.after_cursor)
    assert [c.request.url for c in rsps.calls] == [
        f"{EXPORT_URL}?start_time=1795680000",
        f"{EXPORT_URL}?cursor=MTc5NTY4MzY2MC4wfHw0MDEzfA%3D%3D",
    ]
    assert last.tickets == ()
    assert last.end_of_stream is True
    assert last.after_cursor == "MTc5NTY4MzcyMC4wfHw0MDEzfA=="


def test_export_page_sends_a_cursor_url_encoded(rsps: responses.RequestsMock) -> None:
    rsps.get(EXPORT_URL, json=load("zendesk", "export_last_page"))
    connector().export_page(cursor="ab+c/d==")
    assert rsps.calls[0].request.url == f"{EXPORT_URL}?cursor=ab%2Bc%2Fd%3D%3D"


def test_export_page_passes_per_page(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{EXPORT_URL}?per_page=100&start_time=0", json=load("zendesk", "export_last_page"))
    connector().export_page(start_time=0, per_page=100)
    assert len(rsps.calls) == 1
    query = urlsplit(rsps.calls[0].request.url).query
    assert parse_qs(query) == {"per_page": ["100"], "start_time": ["0"]}


@pytest.mark.parametrize(
    "kwargs", [{}, {"start_time": 1, "cursor": "abc"}, {"start_time": 1, "per_page": 5000}]
)
def test_export_page_refuses_bad_arguments_before_any_request(
    rsps: responses.RequestsMock, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        connector().export_page(**kwargs)
    assert len(rsps.calls) == 0


def test_export_page_rate_limited_sends_one_request(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.get(f"{EXPORT_URL}?start_time=0", status=429, headers={"Retry-After": "60"})
    with pytest.raises(RateLimitedError) as info:
        quiet_connector(clock).export_page(start_time=0)
    assert info.value.retry_after == 60
    assert len(rsps.calls) == 1


# --- update_ticket ----------------------------------------------------------------------------


def test_update_ticket_sends_one_safe_update_with_note_tags_fields_and_status(
    rsps: responses.RequestsMock,
) -> None:
    rsps.put(TICKET_URL, json=load("zendesk", "ticket_update_response"))
    ticket = connector().update_ticket(
        safe_update(
            note="Linked to SUP-77 — engineering is on it.",
            tags=("bug_confirmed", "checkout", "switchboard_jira_linked"),
            custom_fields={"jira_key": "SUP-77"},
            status="pending",
        )
    )
    assert len(rsps.calls) == 1
    call = rsps.calls[0]
    assert (call.request.method, call.request.url) == ("PUT", TICKET_URL)
    assert body_of(call) == {
        "ticket": {
            "id": 4012,
            "comment": {"body": "Linked to SUP-77 — engineering is on it.", "public": False},
            "tags": ["bug_confirmed", "checkout", "switchboard_jira_linked"],
            "custom_fields": [{"id": 360003, "value": "SUP-77"}],
            "status": "pending",
            "safe_update": True,
            "updated_stamp": "2026-11-27T10:00:00Z",
        }
    }
    # The ticket comes from the PUT's answer, not from a read-back.
    assert ticket.updated_at == datetime(2026, 11, 27, 10, 5, tzinfo=UTC)
    assert ticket.status == "pending"
    assert ticket.tags[-1] == "switchboard_jira_linked"
    assert ticket.custom_fields["jira_key"] == "SUP-77"


def test_update_ticket_omits_what_is_not_given(rsps: responses.RequestsMock) -> None:
    rsps.put(TICKET_URL, json=load("zendesk", "ticket_update_response"))
    connector().update_ticket(safe_update(tags=("a", "b")))
    assert body_of(rsps.calls[0]) == {
        "ticket": {
            "id": 4012,
            "tags": ["a", "b"],
            "safe_update": True,
            "updated_stamp": "2026-11-27T10:00:00Z",
        }
    }


def test_update_ticket_with_an_unknown_field_name_fails_before_any_request(
    rsps: responses.RequestsMock,
) -> None:
    with pytest.raises(ConfigurationError, match="no_such_field"):
        connector().update_ticket(safe_update(custom_fields={"no_such_field": 1}))
    assert len(rsps.calls) == 0


def test_update_ticket_conflict_is_a_conflict_error(rsps: responses.RequestsMock) -> None:
    rsps.put(TICKET_URL, json=load("zendesk", "error_conflict"), status=409)
    with pytest.raises(ConflictError) as info:
        connector().update_ticket(safe_update(note="x"))
    assert "Safe Update" in info.value.detail
    assert len(rsps.calls) == 1


def test_update_ticket_invalid_is_an_invalid_request(rsps: responses.RequestsMock) -> None:
    rsps.put(TICKET_URL, json=load("zendesk", "error_invalid"), status=422)
    with pytest.raises(InvalidRequestError):
        connector().update_ticket(safe_update(status="open"))
    rsps.put(TICKET_URL, json={"error": "bad"}, status=400)
    with pytest.raises(InvalidRequestError):
        connector().update_ticket(safe_update(status="open"))
    assert len(rsps.calls) == 2


def test_update_ticket_of_a_deleted_ticket_is_skippable(rsps: responses.RequestsMock) -> None:
    rsps.put(TICKET_URL, json=load("zendesk", "error_not_found"), status=404)
    with pytest.raises(SkippableError):
        connector().update_ticket(safe_update(note="x"))
    assert len(rsps.calls) == 1


def test_update_ticket_rate_limited_is_raised_after_one_request(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.put(TICKET_URL, body="Too Many Requests", status=429, headers={"Retry-After": "3"})
    with pytest.raises(RateLimitedError) as info:
        quiet_connector(clock).update_ticket(safe_update(note="x"))
    assert info.value.retry_after == 3
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("status", [500, 503])
def test_update_ticket_5xx_is_ambiguous_and_not_retried(
    rsps: responses.RequestsMock, status: int
) -> None:
    rsps.put(TICKET_URL, body="error", status=status)
    with pytest.raises(RetriableError) as info:
        connector().update_ticket(safe_update(note="x"))
    assert info.value.ambiguous is True
    assert len(rsps.calls) == 1


def test_update_ticket_read_timeout_is_ambiguous(rsps: responses.RequestsMock) -> None:
    rsps.put(TICKET_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(RetriableError) as info:
        connector().update_ticket(safe_update(note="x"))
    assert info.value.ambiguous is True
    assert len(rsps.calls) == 1


def test_update_ticket_refused_connection_is_not_ambiguous(rsps: responses.RequestsMock) -> None:
    reason = urllib3.exceptions.NewConnectionError(
        None, "Failed to establish a new connection: [Errno 111] Connection refused"
    )
    rsps.put(TICKET_URL, body=requests.exceptions.ConnectionError(reason))
    with pytest.raises(RetriableError) as info:
        connector().update_ticket(safe_update(note="x"))
    assert info.value.ambiguous is False
    assert len(rsps.calls) == 1


# --- ticket_from_api --------------------------------------------------------------------------


def test_ticket_from_api_keys_custom_fields_by_configured_name() -> None:
    ticket = ticket_from_api(
        load("zendesk", "ticket")["ticket"], field_ids=FIELD_IDS, agent_url_base=ZENDESK + "/"
    )
    assert dict(ticket.custom_fields) == {"error_code": "E4012", "product_area": "checkout"}
    assert ticket.url == f"{ZENDESK}/agent/tickets/4012"


def test_ticket_from_api_reads_a_webhook_detail_with_string_ids() -> None:
    ticket = ticket_from_api(
        load("zendesk", "webhook_ticket_detail"), field_ids=FIELD_IDS, agent_url_base=ZENDESK
    )
    assert ticket.id == 4013
    assert ticket.organization_id == 509974
    assert (ticket.status, ticket.priority, ticket.type) == ("open", "high", "incident")
    assert ticket.custom_fields == {}


@pytest.mark.parametrize(
    "change",
    [
        {"id": None},
        {"id": "abc"},
        {"id": True},
        {"id": -3},
        {"updated_at": None},
        {"updated_at": "yesterday"},
        {"created_at": "not a time"},
    ],
)
def test_ticket_from_api_refuses_a_bad_id_or_timestamp(change: dict[str, Any]) -> None:
    data = dict(load("zendesk", "ticket")["ticket"])
    data.update(change)
    with pytest.raises(ValueError):
        ticket_from_api(data, field_ids=FIELD_IDS, agent_url_base=ZENDESK)


def test_ticket_from_api_refuses_a_missing_id() -> None:
    data = dict(load("zendesk", "ticket")["ticket"])
    del data["id"]
    with pytest.raises(ValueError):
        ticket_from_api(data, field_ids=FIELD_IDS, agent_url_base=ZENDESK)
