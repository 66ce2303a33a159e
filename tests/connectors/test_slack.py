"""SlackConnector over the real slack_sdk client, talking HTTP to the sandbox's Slack stand-in.

``responses`` cannot intercept slack_sdk (urllib), so every test runs against a real local server.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient

from connectors.errors import (
    AuthError,
    ConnectorError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    RetriableError,
)
from connectors.models import SlackMessage
from connectors.settings import SlackSettings
from connectors.slack import EVENT_TYPE, SlackConnector
from sandbox import Sandbox
from tests.connectors.support import FakeClock

TOKEN = "xoxb-1111-2222-secretSLACKtoken"
POST = r"/api/chat\.postMessage$"
BLOCKS = ({"type": "section", "text": {"type": "mrkdwn", "text": "*SEV1* checkout down"}},)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        sandbox.slack.require_token(TOKEN)
        yield sandbox


def settings(base_url: str, **overrides: Any) -> SlackSettings:
    values: dict[str, Any] = {"bot_token": TOKEN, "base_url": base_url}
    values.update(overrides)
    return SlackSettings(**values)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def slack(sb: Sandbox, clock: FakeClock) -> SlackConnector:
    return SlackConnector(settings(sb.slack_url), clock=clock, sleep=clock.sleep)


def posts(sb: Sandbox) -> list[Any]:
    return sb.requests.entries("slack", path_regex=POST)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- posting ----------------------------------------------------------------------------------


def test_construction_makes_no_request(sb: Sandbox) -> None:
    SlackConnector(settings(sb.slack_url))
    assert len(sb.requests) == 0


def test_post_sends_text_blocks_and_idempotency_key_as_metadata(
    sb: Sandbox, slack: SlackConnector
) -> None:
    posted = slack.post("#support-escalations", SlackMessage("SEV1: checkout down", BLOCKS),
                        key="esc-42-root")  # fmt: skip
    channel = sb.slack.add_channel("unused")  # ids are distinct from the seeded channels
    assert posted.channel != channel and posted.thread_ts is None
    [sent] = posts(sb)
    assert sent.json == {
        "channel": posted.channel,
        "text": "SEV1: checkout down",
        "blocks": [dict(BLOCKS[0])],
        "metadata": {"event_type": EVENT_TYPE, "event_payload": {"idempotency_key": "esc-42-root"}},
    }
    stored = sb.slack.message("support-escalations", posted.ts)
    assert stored is not None and stored["text"] == "SEV1: checkout down"
    assert stored["blocks"] == [dict(BLOCKS[0])]
    assert stored["metadata"]["event_payload"] == {"idempotency_key": "esc-42-root"}


def test_reply_goes_into_the_thread_of_its_root(sb: Sandbox, slack: SlackConnector) -> None:
    root = slack.post("support-escalations", SlackMessage("root"), key="root")
    reply = slack.post(root.channel, SlackMessage("update 1"), key="r1", thread_ts=root.ts)
    # A reply's ts given as thread_ts: Slack files it under the root, and so do we.
    nested = slack.post(root.channel, SlackMessage("update 2"), key="r2", thread_ts=reply.ts)
    assert reply.thread_ts == root.ts and nested.thread_ts == root.ts
    assert [m["text"] for m in sb.slack.thread(root.channel, root.ts)] == ["update 1", "update 2"]
    assert [m["text"] for m in sb.slack.messages(root.channel)] == ["root"]
    assert posts(sb)[1].json["thread_ts"] == root.ts


def test_update_rewrites_the_root_in_place_and_keeps_its_ts(
    sb: Sandbox, slack: SlackConnector
) -> None:
    root = slack.post("#support-outages", SlackMessage("SEV2: open", BLOCKS), key="root")
    updated = slack.update("#support-outages", root.ts, SlackMessage("SEV2: resolved"), key="root")
    assert updated.ts == root.ts and updated.channel == root.channel
    [message] = sb.slack.messages(root.channel)
    assert message["ts"] == root.ts and message["text"] == "SEV2: resolved"
    assert "blocks" not in message  # no blocks given: the old ones are removed, not kept
    assert "edited" in message
    update = sb.requests.entries("slack", path_regex=r"chat\.update$")[0]
    assert update.json["metadata"]["event_payload"] == {"idempotency_key": "root"}


def test_update_of_unknown_message_is_not_found(slack: SlackConnector) -> None:
    with pytest.raises(NotFoundError, match="message_not_found"):
        slack.update("#support-outages", "1700000000.000100", SlackMessage("x"), key="k")


def test_blank_text_is_refused_before_sending(sb: Sandbox, slack: SlackConnector) -> None:
    with pytest.raises(InvalidRequestError, match="needs text"):
        slack.post("C5B000001", SlackMessage("  ", BLOCKS), key="k")
    assert len(sb.requests) == 0


# --- channels ---------------------------------------------------------------------------------


def test_channel_name_is_resolved_once_through_every_page(
    sb: Sandbox, slack: SlackConnector
) -> None:
    for number in range(210):  # more than one conversations.list page of 200
        sb.slack.add_channel(f"team-{number:03d}")
    last = sb.slack.add_channel("zz-last")
    assert slack.channel_id("#zz-last") == last
    slack.post("#zz-last", SlackMessage("one"), key="a")
    slack.post("zz-last", SlackMessage("two"), key="b")
    listings = sb.requests.entries("slack", path_regex=r"conversations\.list$")
    assert len(listings) == 2  # two pages, once
    assert [m["text"] for m in sb.slack.messages(last)] == ["one", "two"]


def test_channel_id_is_used_as_is(sb: Sandbox, slack: SlackConnector) -> None:
    assert slack.channel_id("C0123ABCDE") == "C0123ABCDE"
    assert len(sb.requests) == 0


def test_unknown_channel_is_not_found_and_relisted_at_most_once_a_minute(
    sb: Sandbox, slack: SlackConnector, clock: FakeClock
) -> None:
    with pytest.raises(NotFoundError, match="'#nowhere'"):
        slack.post("#nowhere", SlackMessage("x"), key="k")
    with pytest.raises(NotFoundError):
        slack.channel_id("nowhere")
    assert sb.requests.count("slack", path_regex=r"conversations\.list$") == 1
    created = sb.slack.add_channel("nowhere")
    clock.now += 61
    assert slack.channel_id("#nowhere") == created
    assert sb.requests.count("slack", path_regex=r"conversations\.list$") == 2


def test_archived_channel_is_not_resolved(sb: Sandbox, slack: SlackConnector) -> None:
    archived = sb.slack.add_channel("old-incidents", archived=True)
    with pytest.raises(NotFoundError, match="old-incidents"):
        slack.channel_id("#old-incidents")
    with pytest.raises(InvalidRequestError, match="is_archived"):
        slack.post(archived, SlackMessage("x"), key="k")


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ratelimited", RateLimitedError),
        ("rate_limited", RateLimitedError),
        ("invalid_auth", AuthError),
        ("not_authed", AuthError),
        ("account_inactive", AuthError),
        ("token_revoked", AuthError),
        ("missing_scope", AuthError),
        ("no_permission", AuthError),
        ("channel_not_found", NotFoundError),
        ("message_not_found", NotFoundError),
        ("thread_not_found", NotFoundError),
        ("is_archived", InvalidRequestError),
        ("not_in_channel", InvalidRequestError),
        ("msg_too_long", InvalidRequestError),
        ("no_text", InvalidRequestError),
        ("invalid_blocks", InvalidRequestError),
        ("cant_update_message", InvalidRequestError),
        ("edit_window_closed", InvalidRequestError),
        ("invalid_metadata_format", InvalidRequestError),
        ("some_future_code", InvalidRequestError),
        ("internal_error", RetriableError),
        ("fatal_error", RetriableError),
        ("service_unavailable", RetriableError),
        ("request_timeout", RetriableError),
    ],
)
def test_ok_false_code_maps_to_its_class(
    sb: Sandbox, slack: SlackConnector, code: str, expected: type[ConnectorError]
) -> None:
    sb.faults.add("slack", "POST", POST, kind="status", status=200,
                  body={"ok": False, "error": code})  # fmt: skip
    with pytest.raises(expected) as caught:
        slack.post("C5B000001", SlackMessage("x"), key="k")
    error = caught.value
    assert type(error) is expected and error.detail == code
    assert isinstance(error.__cause__, Exception)
    if expected is RetriableError:
        assert isinstance(error, RetriableError) and error.ambiguous
    assert len(posts(sb)) == 1


def test_sandbox_refusals_reach_the_caller_as_their_classes(
    sb: Sandbox, slack: SlackConnector
) -> None:
    outside = sb.slack.add_channel("not-joined", member=False)
    with pytest.raises(InvalidRequestError, match="not_in_channel"):
        slack.post(outside, SlackMessage("x"), key="k")
    with pytest.raises(InvalidRequestError, match="msg_too_long"):
        slack.post("#support-outages", SlackMessage("x" * 40_001), key="k")
    with pytest.raises(NotFoundError, match="thread_not_found"):
        slack.post("#support-outages", SlackMessage("x"), key="k", thread_ts="1.000001")
    wrong = SlackConnector(settings(sb.slack_url, bot_token="xoxb-wrong"))
    with pytest.raises(AuthError, match="invalid_auth"):
        wrong.post("C5B000001", SlackMessage("x"), key="k")


def test_429_is_rate_limited_with_retry_after_and_sent_once(
    sb: Sandbox, slack: SlackConnector, clock: FakeClock
) -> None:
    sb.faults.add("slack", "POST", POST, kind="status", status=429, headers={"Retry-After": "7"},
                  body={"ok": False, "error": "ratelimited"})  # fmt: skip
    with pytest.raises(RateLimitedError) as caught:
        slack.post("C5B000001", SlackMessage("x"), key="k")
    assert caught.value.retry_after == 7.0 and caught.value.status == 429
    assert len(posts(sb)) == 1  # no slack_sdk retry handler re-sent it
    # The channel's limiter honours Retry-After before the next post.
    slack.post("C5B000001", SlackMessage("x"), key="k")
    assert clock.sleeps and clock.sleeps[0] == pytest.approx(7.0)


def test_sandbox_pace_429_reaches_the_caller(sb: Sandbox, slack: SlackConnector) -> None:
    sb.slack.clock = lambda: 500.0  # frozen: the bucket never refills
    sb.slack.set_post_rate(1, 1)
    slack.post("C5B000001", SlackMessage("first"), key="a")
    with pytest.raises(RateLimitedError) as caught:
        slack.post("C5B000001", SlackMessage("second"), key="b")
    assert caught.value.retry_after == 1.0
    assert [e.status for e in posts(sb)] == [200, 429]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_ambiguous_and_sent_once(sb: Sandbox, slack: SlackConnector, status: int) -> None:
    sb.faults.add("slack", "POST", POST, kind="status", status=status)
    with pytest.raises(RetriableError) as caught:
        slack.post("C5B000001", SlackMessage("x"), key="k")
    assert caught.value.ambiguous and not isinstance(caught.value, RateLimitedError)
    assert caught.value.status == status
    assert len(posts(sb)) == 1


# --- transport and reconciliation -------------------------------------------------------------


def test_lost_answer_is_ambiguous_and_the_post_is_found_by_key(
    sb: Sandbox, slack: SlackConnector
) -> None:
    sb.faults.add("slack", "POST", POST, kind="reset_after_commit")
    with pytest.raises(RetriableError) as caught:
        slack.post("#support-escalations", SlackMessage("SEV1"), key="esc-7-root")
    assert caught.value.ambiguous
    assert len(posts(sb)) == 1  # exactly one attempt
    [landed] = sb.slack.messages("support-escalations")
    for number in range(250):  # push it onto the second history page
        sb.slack.add_message("support-escalations", f"chatter {number}")
    found = slack.find_by_key("#support-escalations", "esc-7-root")
    assert found is not None and found.ts == landed["ts"] and found.thread_ts is None
    assert slack.find_by_key("#support-escalations", "never-posted") is None
    assert sb.requests.count("slack", path_regex=r"conversations\.history$") >= 2 + 2


def test_reply_is_found_by_key_in_its_thread_only(sb: Sandbox, slack: SlackConnector) -> None:
    root = slack.post("#support-escalations", SlackMessage("root"), key="root")
    sb.faults.add("slack", "POST", POST, kind="reset_after_commit")
    with pytest.raises(RetriableError):
        slack.post(root.channel, SlackMessage("reply"), key="reply-1", thread_ts=root.ts)
    found = slack.find_by_key(root.channel, "reply-1", thread_ts=root.ts)
    [reply] = sb.slack.thread(root.channel, root.ts)
    assert found is not None and found.ts == reply["ts"] and found.thread_ts == root.ts
    assert slack.find_by_key(root.channel, "reply-1") is None  # replies are not in history
    assert slack.find_by_key(root.channel, "reply-2", thread_ts=root.ts) is None


def test_find_by_key_looks_back_only_find_lookback_seconds(sb: Sandbox) -> None:
    import time

    later = SlackConnector(settings(sb.slack_url, find_lookback_seconds=60),
                           wall_clock=lambda: time.time() + 3600)  # fmt: skip
    later.post("#support-outages", SlackMessage("old"), key="old")
    assert later.find_by_key("#support-outages", "old") is None


def test_connection_refused_is_retriable_and_not_ambiguous() -> None:
    slack = SlackConnector(settings(f"http://127.0.0.1:{closed_port()}/api/"))
    with pytest.raises(RetriableError) as caught:
        slack.post("C5B000001", SlackMessage("x"), key="k")
    assert not caught.value.ambiguous
    assert "ConnectionRefusedError" in str(caught.value)


def test_tls_handshake_failure_is_retriable_and_not_ambiguous(sb: Sandbox) -> None:
    plain_http = sb.slack_url.replace("http://", "https://")
    slack = SlackConnector(settings(plain_http))
    with pytest.raises(RetriableError) as caught:
        slack.post("C5B000001", SlackMessage("x"), key="k")
    assert not caught.value.ambiguous
    assert len(posts(sb)) == 0


def test_read_timeout_is_ambiguous(sb: Sandbox) -> None:
    sb.faults.add("slack", "POST", POST, kind="delay", delay=0.5)
    slack = SlackConnector(settings(sb.slack_url, http={"read_timeout": 0.1}))
    with pytest.raises(RetriableError) as caught:
        slack.post("C5B000001", SlackMessage("x"), key="k")
    assert caught.value.ambiguous
    assert "Timeout" in str(caught.value)


# --- pace -------------------------------------------------------------------------------------


def test_channel_limiter_paces_a_burst_per_channel(
    sb: Sandbox, slack: SlackConnector, clock: FakeClock
) -> None:
    for number in range(5):  # 60/min: a burst of 3, then one a second
        slack.post("C5B000001", SlackMessage(f"m{number}"), key=f"k{number}")
    assert clock.sleeps == [pytest.approx(1.0), pytest.approx(1.0)]
    slack.post("C5B000002", SlackMessage("other channel"), key="other")
    assert len(clock.sleeps) == 2  # another channel has its own bucket
    assert len(posts(sb)) == 6


# --- secrets, logging, proxies ----------------------------------------------------------------


def test_one_log_line_per_call(sb: Sandbox, slack: SlackConnector,
                               caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="switchboard.http")
    slack.post("#support-outages", SlackMessage("x"), key="k")
    lines = [r for r in caplog.records if r.name == "switchboard.http"]
    assert [r.slack_method for r in lines] == ["conversations.list", "chat.postMessage"]  # type: ignore[attr-defined]
    post = lines[1].getMessage()
    assert "method=chat.postMessage" in post and "status=200" in post and "ok=true" in post
    assert "channel=C" in post and "elapsed_ms=" in post


def test_token_never_appears_in_errors_logs_or_reprs(
    sb: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    slack = SlackConnector(settings(sb.slack_url))
    errors: list[BaseException] = []
    sb.slack.require_token("xoxb-something-else")
    sb.faults.add("slack", "POST", POST, kind="reset_after_commit")
    for _ in range(2):  # invalid_auth, then the reset
        with pytest.raises(ConnectorError) as caught:
            slack.post("C5B000001", SlackMessage("x"), key="k")
        errors.append(caught.value)
    sb.faults.add("slack", "POST", POST, kind="status", status=200,
                  body={"ok": False, "error": f"echo {TOKEN}"})  # fmt: skip
    with pytest.raises(ConnectorError) as caught:
        slack.post("C5B000001", SlackMessage("x"), key="k")
    errors.append(caught.value)
    refused = SlackConnector(settings(f"http://127.0.0.1:{closed_port()}/api/"))
    with pytest.raises(ConnectorError) as caught:
        refused.post("C5B000001", SlackMessage("x"), key="k")
    errors.append(caught.value)
    for error in errors:
        assert TOKEN not in str(error) and TOKEN not in repr(error)
    assert "***" in str(errors[2])
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(slack) and TOKEN not in repr(slack.settings)


def test_loopback_never_goes_through_a_proxy(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    # The environment really does send a plain WebClient to the (dead) proxy ...
    bare = WebClient(token=TOKEN, base_url=sb.slack_url, retry_handlers=[])
    assert bare.proxy == proxy
    with pytest.raises(OSError, match="Connection refused"):
        bare.auth_test()
    # ... while the connector reaches the sandbox directly.
    posted = SlackConnector(settings(sb.slack_url)).post("C5B000001", SlackMessage("x"), key="k")
    assert sb.slack.message("C5B000001", posted.ts) is not None
