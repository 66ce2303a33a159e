"""HTTP hygiene: the rate limiter, the session/adapter and the transport-error translation."""

from __future__ import annotations

import base64
import http.client
import logging
import re
import threading

import pytest
import requests
import responses
import urllib3.exceptions
from jira.exceptions import JIRAError
from jira.resilientsession import ResilientSession
from responses import matchers
from zenpy.lib.exception import APIException

from connectors.errors import (
    AuthError,
    ConfigurationError,
    ConflictError,
    ConnectorError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    RetriableError,
)
from connectors.http import (
    MAX_RETRY_WAIT,
    USER_AGENT,
    RateLimiter,
    build_session,
    install_hygiene,
    translate_transport_errors,
)
from connectors.settings import HttpSettings
from tests.connectors.support import FakeClock

API = "https://api.vendor.example"


def refused() -> requests.exceptions.ConnectionError:
    """What requests raises when nothing listens on the port."""
    reason = urllib3.exceptions.NewConnectionError(
        None, "Failed to establish a new connection: [Errno 111] Connection refused"
    )
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(None, f"{API}/x", reason)
    )


def reset() -> requests.exceptions.ConnectionError:
    """What requests raises when the peer resets the connection after we sent."""
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError(
            "Connection aborted.", ConnectionResetError(104, "Connection reset by peer")
        )
    )


# --- RateLimiter ------------------------------------------------------------------------------


def test_limiter_allows_a_burst_then_spaces_calls_at_the_rate(clock: FakeClock) -> None:
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)  # 1/s, burst of 3
    for _ in range(3):
        limiter.acquire()
    assert clock.sleeps == []
    limiter.acquire()
    limiter.acquire()
    assert clock.sleeps == pytest.approx([1.0, 1.0])


def test_limiter_burst_is_at_least_one_token(clock: FakeClock) -> None:
    limiter = RateLimiter(6, clock=clock, sleep=clock.sleep)  # one call per 10 s
    assert limiter.capacity == 1
    limiter.acquire()
    limiter.acquire()
    assert clock.sleeps == pytest.approx([10.0])


def test_limiter_pause_blocks_every_acquire_until_it_ends(clock: FakeClock) -> None:
    limiter = RateLimiter(600, clock=clock, sleep=clock.sleep)
    start = clock.now
    limiter.pause(30)
    limiter.acquire()
    assert clock.now == pytest.approx(start + 30)
    # After the pause the bucket restarts with one token, not a full burst.
    limiter.acquire()
    assert clock.now == pytest.approx(start + 30 + 0.1)


def test_limiter_pause_never_shortens_a_longer_pause(clock: FakeClock) -> None:
    limiter = RateLimiter(600, clock=clock, sleep=clock.sleep)
    limiter.pause(30)
    limiter.pause(5)
    assert limiter.paused_until == pytest.approx(clock.now + 30)


def test_limiter_rejects_a_non_positive_rate() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_limiter_hands_out_each_token_once_across_threads(clock: FakeClock) -> None:
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            clock.sleep(seconds)

    limiter = RateLimiter(60, clock=clock, sleep=sleep)
    threads = [threading.Thread(target=limiter.acquire) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 3 from the burst, the other 5 each waited for a token of their own.
    assert clock.now >= 1000.0 + 5 - 1e-9


# --- the session ------------------------------------------------------------------------------


def session(**kwargs: object) -> requests.Session:
    kwargs.setdefault("sleep", FakeClock().sleep)
    return build_session("vendor", HttpSettings(), **kwargs)


def test_default_timeout_user_agent_and_tls_verification_are_applied(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(
        f"{API}/ok",
        json={},
        match=[matchers.request_kwargs_matcher({"timeout": (5.0, 30.0)})],
    )
    session().get(f"{API}/ok", timeout=None)
    request = rsps.calls[0].request
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.req_kwargs["verify"] is not False  # type: ignore[attr-defined]


def test_a_callers_explicit_timeout_is_kept(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/ok", json={}, match=[matchers.request_kwargs_matcher({"timeout": 2.5})])
    session().get(f"{API}/ok", timeout=2.5)
    assert len(rsps.calls) == 1


def test_base_url_override_rewrites_only_the_vendor_origin(rsps: responses.RequestsMock) -> None:
    rsps.get("http://127.0.0.1:8123/api/v2/tickets/1.json?x=1", json={"ok": True})
    rsps.get("https://elsewhere.example/thing", json={})
    s = session(base_url_override=("https://ACME.zendesk.com", "http://127.0.0.1:8123/"))
    response = s.get("https://acme.zendesk.com/api/v2/tickets/1.json?x=1")
    s.get("https://elsewhere.example/thing")
    assert [c.request.url for c in rsps.calls] == [
        "http://127.0.0.1:8123/api/v2/tickets/1.json?x=1",
        "https://elsewhere.example/thing",
    ]
    # The caller still sees the URL it asked for (zenpy routes responses by it).
    assert response.url == "https://acme.zendesk.com/api/v2/tickets/1.json?x=1"
    assert response.request.url == "https://acme.zendesk.com/api/v2/tickets/1.json?x=1"


def test_one_log_line_per_response_without_query_or_credentials(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    rsps.get(f"{API}/items", json={}, headers={"X-Rate-Limit-Remaining": "699"})
    s = session()
    s.auth = ("bot@acme.example/token", "s3cr3t-token-value")
    with caplog.at_level(logging.DEBUG, logger="switchboard.http"):
        s.get(f"{API}/items?cursor=abc&start_time=5")
    records = [r for r in caplog.records if r.name == "switchboard.http"]
    assert len(records) == 1
    record = records[0]
    assert re.fullmatch(
        r"vendor=vendor method=GET path=/items status=200 elapsed_ms=\d+ rate_limit_remaining=699",
        record.getMessage(),
    )
    assert record.http_path == "/items"  # type: ignore[attr-defined]
    assert record.http_status == 200  # type: ignore[attr-defined]
    assert record.http_rate_limit_remaining == "699"  # type: ignore[attr-defined]
    assert "cursor" not in caplog.text
    assert "s3cr3t" not in caplog.text


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, InvalidRequestError),
        (401, AuthError),
        (403, AuthError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, InvalidRequestError),
    ],
)
def test_error_statuses_raise_the_mapped_class(
    rsps: responses.RequestsMock, status: int, expected: type[ConnectorError]
) -> None:
    rsps.post(f"{API}/items", json={"error": "nope"}, status=status)
    with pytest.raises(expected) as info:
        session().post(f"{API}/items", json={})
    assert info.value.status == status
    assert "nope" in info.value.detail
    assert len(rsps.calls) == 1


def test_error_detail_never_carries_the_credentials(rsps: responses.RequestsMock) -> None:
    token = "s3cr3t-token-value"
    basic = base64.b64encode(f"bot/token:{token}".encode()).decode()
    padding = "x" * 170  # puts the token across the excerpt's cut-off point
    rsps.get(f"{API}/me", body=f"bad credentials {padding} {token} / Basic {basic}", status=401)
    s = session()
    s.auth = ("bot/token", token)
    with pytest.raises(AuthError) as info:
        s.get(f"{API}/me")
    assert "s3cr3t" not in str(info.value)
    assert basic[:8] not in str(info.value)
    assert "bad credentials" in str(info.value)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_write_raises_ambiguous_retriable_and_is_not_retried(
    rsps: responses.RequestsMock, status: int
) -> None:
    rsps.post(f"{API}/items", body="oops", status=status)
    with pytest.raises(RetriableError) as info:
        session().post(f"{API}/items", json={})
    assert info.value.ambiguous is True
    assert len(rsps.calls) == 1


def test_a_429_raises_rate_limited_pauses_the_limiter_and_sends_once(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    limiter = RateLimiter(600, clock=clock, sleep=clock.sleep)
    rsps.post(f"{API}/items", body="slow down", status=429, headers={"Retry-After": "17"})
    with pytest.raises(RateLimitedError) as info:
        session(limiter=limiter).post(f"{API}/items", json={})
    assert info.value.retry_after == 17
    assert len(rsps.calls) == 1
    assert limiter.paused_until == pytest.approx(clock.now + 17)


def test_get_retries_are_bounded_and_back_off(rsps: responses.RequestsMock) -> None:
    waits = FakeClock()
    rsps.get(f"{API}/items", body="unavailable", status=503)
    with pytest.raises(RetriableError):
        session(sleep=waits.sleep, read_retries=2).get(f"{API}/items")
    assert len(rsps.calls) == 3
    assert len(waits.sleeps) == 2
    assert 0 < waits.sleeps[0] <= waits.sleeps[1] * 2


def test_get_recovers_when_a_retry_succeeds(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/items", body=requests.exceptions.ReadTimeout("read timed out"))
    rsps.get(f"{API}/items", json={"items": []})
    response = session().get(f"{API}/items")
    assert response.json() == {"items": []}
    assert len(rsps.calls) == 2


def test_get_429_within_the_cap_waits_retry_after_then_retries(
    rsps: responses.RequestsMock,
) -> None:
    waits = FakeClock()
    rsps.get(f"{API}/items", status=429, headers={"Retry-After": "2"})
    rsps.get(f"{API}/items", json={})
    session(sleep=waits.sleep).get(f"{API}/items")
    assert len(rsps.calls) == 2
    assert waits.sleeps == [2.0]


def test_get_429_beyond_the_cap_is_raised_without_sleeping(rsps: responses.RequestsMock) -> None:
    waits = FakeClock()
    rsps.get(f"{API}/items", status=429, headers={"Retry-After": str(int(MAX_RETRY_WAIT) + 50)})
    with pytest.raises(RateLimitedError) as info:
        session(sleep=waits.sleep).get(f"{API}/items")
    assert info.value.retry_after == MAX_RETRY_WAIT + 50
    assert len(rsps.calls) == 1
    assert waits.sleeps == []


def test_a_4xx_read_is_not_retried(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/items", status=404)
    with pytest.raises(NotFoundError):
        session().get(f"{API}/items")
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(
    ("exc", "ambiguous"),
    [
        (requests.exceptions.ReadTimeout("read timed out"), True),
        (requests.exceptions.ChunkedEncodingError("incomplete read"), True),
        (reset(), True),
        (requests.exceptions.ConnectTimeout("connect timed out"), False),
        (refused(), False),
    ],
)
def test_transport_failures_of_a_write_are_translated_once(
    rsps: responses.RequestsMock, exc: Exception, ambiguous: bool
) -> None:
    rsps.post(f"{API}/items", body=exc)
    with pytest.raises(RetriableError) as info:
        session().post(f"{API}/items", json={})
    assert info.value.ambiguous is ambiguous
    assert info.value.__cause__ is exc
    assert len(rsps.calls) == 1


# --- translate_transport_errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "ambiguous"),
    [
        (requests.exceptions.ConnectTimeout("x"), False),
        (refused(), False),
        (requests.exceptions.ConnectionError("Failed to resolve 'nowhere.invalid'"), False),
        (requests.exceptions.ReadTimeout("x"), True),
        (requests.exceptions.ChunkedEncodingError("x"), True),
        (reset(), True),
        (ConnectionResetError(104, "reset"), True),
        (http.client.RemoteDisconnected("closed"), True),
    ],
)
def test_translate_maps_transport_exceptions(exc: Exception, ambiguous: bool) -> None:
    with pytest.raises(RetriableError) as info, translate_transport_errors("vendor", "call"):
        raise exc
    assert info.value.ambiguous is ambiguous
    assert info.value.__cause__ is exc
    assert info.value.vendor == "vendor"


def test_translate_lets_our_own_errors_through_unchanged() -> None:
    original = ConflictError("vendor: changed", vendor="vendor", status=409)
    with pytest.raises(ConflictError) as info, translate_transport_errors("vendor", "call"):
        raise original
    assert info.value is original


def test_translate_maps_an_invalid_url_to_configuration() -> None:
    with pytest.raises(ConfigurationError), translate_transport_errors("vendor", "call"):
        raise requests.exceptions.MissingSchema("no scheme")


def test_translate_maps_library_exceptions_by_status() -> None:
    response = requests.Response()
    response.status_code = 429
    response.headers["Retry-After"] = "9"
    with pytest.raises(RateLimitedError) as info, translate_transport_errors("zendesk", "call"):
        raise APIException('{"error": "slow"}', response=response)
    assert info.value.retry_after == 9

    with pytest.raises(NotFoundError), translate_transport_errors("jira", "call"):
        raise JIRAError("gone", status_code=404)


# --- the vendor libraries' own retry loops never run ------------------------------------------


def test_a_resilient_session_with_retries_on_still_sends_a_failing_write_once(
    rsps: responses.RequestsMock,
) -> None:
    # jira's ResilientSession re-sends 429/503 and connection errors with sleeps of 10-60 s;
    # with our adapter mounted it never sees a failed response or a requests exception.
    resilient = ResilientSession(max_retries=3)
    install_hygiene(resilient, "jira", HttpSettings())
    rsps.post(f"{API}/issue", status=503, headers={"Retry-After": "30"})
    rsps.post(f"{API}/other", body=refused())
    with pytest.raises(RetriableError):
        resilient.post(f"{API}/issue", data="{}")
    with pytest.raises(RetriableError):
        resilient.post(f"{API}/other", data="{}")
    assert len(rsps.calls) == 2
