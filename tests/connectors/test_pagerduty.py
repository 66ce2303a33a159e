"""PagerDutyConnector through the real ``pagerduty`` client, faked at the httpx2 transport."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pagerduty.api_client
import pytest

from connectors.errors import (
    ConfigurationError,
    FatalError,
    InvalidRequestError,
    RateLimitedError,
    RetriableError,
)
from connectors.models import Alert
from connectors.pagerduty import PagerDutyConnector
from connectors.settings import PagerDutySettings
from tests.connectors.support import load

OPS_KEY = "R0ut1ngKeyOps000000000000000ops1"
DB_KEY = "R0ut1ngKeyDb0000000000000000db02"
ENQUEUE = "https://events.pagerduty.com/v2/enqueue"

Handler = Callable[[httpx2.Request], httpx2.Response]


class FakePagerDuty:
    """A MockTransport handler that records requests and answers from a queue."""

    def __init__(self) -> None:
        self.requests: list[httpx2.Request] = []
        self.answers: list[httpx2.Response | Exception] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else _accepted(None)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]


def _accepted(dedup_key: str | None = "zendesk-ticket-1001-escalation") -> httpx2.Response:
    body = load("pagerduty", "enqueue_accepted")
    if dedup_key is not None:
        body["dedup_key"] = dedup_key
    return httpx2.Response(202, json=body)


def _settings(**overrides: Any) -> PagerDutySettings:
    values: dict[str, Any] = {"routing_keys": {"ops": OPS_KEY}}
    values.update(overrides)
    return PagerDutySettings(**values)


@pytest.fixture
def fake() -> FakePagerDuty:
    return FakePagerDuty()


@pytest.fixture
def connector(fake: FakePagerDuty) -> Iterator[PagerDutyConnector]:
    pd = PagerDutyConnector(_settings(), transport=httpx2.MockTransport(fake))
    yield pd
    pd.close()


@pytest.fixture(autouse=True)
def _library_never_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    # The client sleeps before each of its own retries; if one ever ran, fail instead of hang.
    def refuse(seconds: float) -> None:
        raise AssertionError(f"the pagerduty client tried to retry (sleep {seconds})")

    monkeypatch.setattr(pagerduty.api_client.time, "sleep", refuse)


def _alert(**overrides: Any) -> Alert:
    values: dict[str, Any] = {
        "dedup_key": "zendesk-ticket-1001-escalation",
        "summary": "Checkout down for Enterprise customer (ticket 1001)",
        "source": "switchboard",
        "severity": "error",
        "component": "checkout",
        "group": "payments",
        "class_": "customer-escalation",
        "custom_details": {"ticket_id": 1001, "plan": "enterprise"},
        "links": (("https://acme.zendesk.com/agent/tickets/1001", "Zendesk ticket 1001"),),
    }
    values.update(overrides)
    return Alert(**values)


def test_construction_makes_no_request(fake: FakePagerDuty) -> None:
    PagerDutyConnector(_settings(), transport=httpx2.MockTransport(fake))
    assert fake.requests == []


def test_trigger_posts_one_event_and_returns_the_echoed_dedup_key(
    connector: PagerDutyConnector, fake: FakePagerDuty
) -> None:
    fake.answers.append(_accepted("zendesk-ticket-1001-escalation"))

    assert connector.trigger("ops", _alert()) == "zendesk-ticket-1001-escalation"

    assert len(fake.requests) == 1
    request = fake.requests[0]
    assert request.method == "POST"
    assert str(request.url) == ENQUEUE
    assert request.headers["User-Agent"].startswith("switchboard/")
    assert fake.bodies()[0] == {
        "routing_key": OPS_KEY,
        "event_action": "trigger",
        "dedup_key": "zendesk-ticket-1001-escalation",
        "payload": {
            "summary": "Checkout down for Enterprise customer (ticket 1001)",
            "source": "switchboard",
            "severity": "error",
            "component": "checkout",
            "group": "payments",
            "class": "customer-escalation",
            "custom_details": {"ticket_id": 1001, "plan": "enterprise"},
        },
        "links": [
            {"href": "https://acme.zendesk.com/agent/tickets/1001", "text": "Zendesk ticket 1001"}
        ],
    }


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_acknowledge_and_resolve_send_only_key_action_and_dedup_key(
    connector: PagerDutyConnector, fake: FakePagerDuty, action: str
) -> None:
    fake.answers.append(_accepted("zd-1001"))

    assert getattr(connector, action)(None, "zd-1001") == "zd-1001"

    assert fake.bodies() == [
        {"routing_key": OPS_KEY, "event_action": action, "dedup_key": "zd-1001"}
    ]


def test_a_summary_over_1024_characters_is_cut_with_an_ellipsis(
    connector: PagerDutyConnector, fake: FakePagerDuty
) -> None:
    connector.trigger(None, _alert(summary="x" * 3000))

    summary = fake.bodies()[0]["payload"]["summary"]
    assert len(summary) == 1024
    assert summary.endswith("x…")


def test_each_service_sends_its_own_routing_key(fake: FakePagerDuty) -> None:
    settings = _settings(routing_keys={"ops": OPS_KEY, "db": DB_KEY}, default_service="db")
    pd = PagerDutyConnector(settings, transport=httpx2.MockTransport(fake))

    pd.trigger("ops", _alert())
    pd.trigger(None, _alert())
    pd.resolve("ops", "k")

    assert [body["routing_key"] for body in fake.bodies()] == [OPS_KEY, DB_KEY, OPS_KEY]
    assert pd.services() == ("db", "ops")
    assert pd.limiter("ops") is not pd.limiter("db")


def test_an_unknown_service_is_a_configuration_error_naming_the_services(
    connector: PagerDutyConnector, fake: FakePagerDuty
) -> None:
    with pytest.raises(ConfigurationError, match=r"unknown service 'billing'.*ops"):
        connector.trigger("billing", _alert())
    assert fake.requests == []


def test_no_service_and_no_default_is_a_configuration_error(fake: FakePagerDuty) -> None:
    settings = _settings(routing_keys={"ops": OPS_KEY, "db": DB_KEY})
    pd = PagerDutyConnector(settings, transport=httpx2.MockTransport(fake))

    with pytest.raises(ConfigurationError, match="no default_service.*db, ops"):
        pd.acknowledge(None, "k")
    assert fake.requests == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"dedup_key": ""},
        {"dedup_key": "k" * 256},
        {"severity": "fatal"},
        {"summary": "   "},
        {"links": (("javascript:alert(1)", "x"),)},
        {"links": (("ftp://files.example.com/a", "x"),)},
        {"custom_details": {"when": object()}},
        {"custom_details": {"ratio": float("nan")}},
    ],
    ids=["empty-key", "long-key", "severity", "blank-summary", "js-link", "ftp-link",
         "object-details", "nan-details"],
)  # fmt: skip
def test_an_invalid_alert_is_refused_before_sending(
    connector: PagerDutyConnector, fake: FakePagerDuty, overrides: dict[str, Any]
) -> None:
    with pytest.raises(InvalidRequestError):
        connector.trigger(None, _alert(**overrides))
    assert fake.requests == []


def test_a_dedup_key_of_255_characters_is_sent(
    connector: PagerDutyConnector, fake: FakePagerDuty
) -> None:
    connector.acknowledge(None, "k" * 255)
    assert fake.bodies()[0]["dedup_key"] == "k" * 255


def test_a_400_is_an_invalid_request_error_with_pagerdutys_message(
    connector: PagerDutyConnector, fake: FakePagerDuty
) -> None:
    fake.answers.append(httpx2.Response(400, json=load("pagerduty", "enqueue_invalid")))

    with pytest.raises(InvalidRequestError) as caught:
        connector.trigger(None, _alert())

    assert caught.value.status == 400
    assert "Event object is invalid" in str(caught.value)
    assert len(fake.requests) == 1


def test_a_429_raises_rate_limited_after_one_request_honouring_retry_after(
    connector: PagerDutyConnector, fake: FakePagerDuty
) -> None:
    fake.answers.append(httpx2.Response(429, json={"status": "throttle event",
                                                   "message": "Request Limit Exceeded"},
                                        headers={"Retry-After": "17"}))  # fmt: skip

    with pytest.raises(RateLimitedError) as caught:
        connector.trigger(None, _alert())

    assert caught.value.retry_after == 17.0
    assert caught.value.ambiguous is False
    # The library would re-send a 429 without limit: exactly one request proves it never ran.
    assert len(fake.requests) == 1
    assert connector.limiter(None).paused_until != float("-inf")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_is_an_ambiguous_retriable_error_after_one_request(
    connector: PagerDutyConnector, fake: FakePagerDuty, status: int
) -> None:
    fake.answers.append(httpx2.Response(status, text="upstream trouble"))

    with pytest.raises(RetriableError) as caught:
        connector.trigger(None, _alert())

    assert caught.value.status == status
    assert caught.value.ambiguous is True
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("failure", "ambiguous"),
    [
        (httpx2.ReadTimeout("timed out"), True),
        (httpx2.RemoteProtocolError("Server disconnected without sending a response."), True),
        (httpx2.ConnectError("[Errno 111] Connection refused"), False),
        (httpx2.ConnectTimeout("timed out"), False),
    ],
    ids=["read-timeout", "disconnect", "connect-error", "connect-timeout"],
)
def test_transport_failures_are_retriable_and_say_whether_the_event_may_have_landed(
    connector: PagerDutyConnector, fake: FakePagerDuty, failure: Exception, ambiguous: bool
) -> None:
    fake.answers.append(failure)

    with pytest.raises(RetriableError) as caught:
        connector.acknowledge(None, "zd-1001")

    assert caught.value.ambiguous is ambiguous
    assert caught.value.__cause__ is failure
    assert len(fake.requests) == 1  # the library's network retries never ran


def test_a_202_without_dedup_key_is_fatal(
    connector: PagerDutyConnector, fake: FakePagerDuty
) -> None:
    body = load("pagerduty", "enqueue_accepted_without_dedup_key")
    fake.answers.append(httpx2.Response(202, json=body))

    with pytest.raises(FatalError, match="unexpected answer"):
        connector.trigger(None, _alert())


def test_a_202_that_is_not_json_is_fatal(
    connector: PagerDutyConnector, fake: FakePagerDuty
) -> None:
    fake.answers.append(httpx2.Response(202, text="<html>proxy</html>"))

    with pytest.raises(FatalError):
        connector.resolve(None, "zd-1001")


def test_one_log_line_per_response_without_body(
    connector: PagerDutyConnector, fake: FakePagerDuty, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="switchboard.http"):
        connector.trigger(None, _alert())

    lines = [r for r in caplog.records if r.name == "switchboard.http"]
    assert len(lines) == 1
    assert lines[0].getMessage().startswith(
        "vendor=pagerduty method=POST path=/v2/enqueue status=202 elapsed_ms="
    )
    assert "Checkout" not in caplog.text


def test_the_routing_key_never_appears_in_errors_logs_or_reprs(
    fake: FakePagerDuty, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings()
    pd = PagerDutyConnector(settings, transport=httpx2.MockTransport(fake))
    echo = {"status": "invalid", "message": "Event object is invalid",
            "errors": [f"routing_key {OPS_KEY} is not enabled"]}  # fmt: skip
    fake.answers.extend([
        _accepted("k"),
        httpx2.Response(400, json=echo),
        httpx2.Response(500, text=f"internal error for {OPS_KEY}"),
        httpx2.Response(429, json=echo, headers={"Retry-After": "0"}),
        httpx2.ReadTimeout("timed out"),
        httpx2.Response(202, json={"status": "success", "echo": OPS_KEY}),
    ])  # fmt: skip
    errors: list[Exception] = []
    with caplog.at_level(logging.DEBUG):
        pd.trigger(None, _alert())
        for _ in range(5):
            try:
                pd.acknowledge(None, "k")
            except (InvalidRequestError, RetriableError, FatalError) as exc:
                errors.append(exc)

    assert len(errors) == 5
    for error in errors:
        assert OPS_KEY not in str(error)
        assert OPS_KEY not in repr(error)
    assert OPS_KEY not in caplog.text
    assert OPS_KEY not in repr(pd)
    assert OPS_KEY not in repr(settings)
    assert OPS_KEY[-8:] not in caplog.text
