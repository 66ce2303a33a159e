"""Inbound Slack requests: signature verification (slack_sdk's SignatureVerifier) and
``block_actions`` interaction parsing."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from connectors.slack_webhooks import (
    SlackInteraction,
    WebhookPayloadError,
    parse_interaction,
    sign_slack,
    verify_slack_request,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
OLD_SECRET = "1234567890abcdef1234567890abcdef"
NOW = 1_700_000_000


def interaction(**overrides: Any) -> dict[str, Any]:
    """A ``block_actions`` payload shaped after Slack's documented example (a button click)."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": "T9TK3CUKW", "domain": "example"},
        "user": {"id": "UA8RXUSPL", "username": "jtorrance", "name": "jtorrance",
                 "team_id": "T9TK3CUKW"},
        "api_app_id": "AABA1ABCD",
        "container": {"type": "message", "message_ts": "1548261231.000200",
                      "channel_id": "CBR2V3XEX", "is_ephemeral": False},
        "channel": {"id": "CBR2V3XEX", "name": "support-escalations"},
        "message": {"type": "message", "ts": "1548261231.000200", "text": "SEV1"},
        "actions": [{"action_id": "acknowledge", "block_id": "esc", "type": "button",
                     "value": "incident-42", "action_ts": "1548426417.840180"}],
    }  # fmt: skip
    payload.update(overrides)
    return payload


def form(payload: Any) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return urlencode({"payload": text}).encode()


def signed(body: bytes, secret: str = SECRET, timestamp: int = NOW) -> dict[str, str]:
    return {"X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": sign_slack(secret, timestamp, body)}  # fmt: skip


# --- verification -----------------------------------------------------------------------------


def test_valid_signature_is_accepted() -> None:
    body = form(interaction())
    assert verify_slack_request(body, signed(body), [SECRET], now=NOW)


def test_header_names_are_case_insensitive() -> None:
    body = form(interaction())
    headers = {name.lower(): value for name, value in signed(body).items()}
    assert verify_slack_request(body, headers, [SECRET], now=NOW)


def test_signature_matches_slacks_documented_example() -> None:
    # Slack's "verifying requests" walkthrough: this secret, timestamp and body give this hash.
    body = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
            b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
            b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
            b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
            b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")  # fmt: skip
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert sign_slack(SECRET, 1531420618, body) == expected
    headers = {"X-Slack-Request-Timestamp": "1531420618", "X-Slack-Signature": expected}
    assert verify_slack_request(body, headers, [SECRET], now=1531420618)


def test_tampered_body_is_refused() -> None:
    body = form(interaction())
    headers = signed(body)
    tampered = form(interaction(actions=[{"action_id": "resolve", "value": "incident-42"}]))
    assert not verify_slack_request(tampered, headers, [SECRET], now=NOW)


def test_wrong_secret_is_refused() -> None:
    body = form(interaction())
    assert not verify_slack_request(body, signed(body, secret="not-the-secret"), [SECRET],
                                    now=NOW)  # fmt: skip


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Slack-Request-Timestamp": str(NOW)},
        {"X-Slack-Signature": "v0=abc"},
        {"X-Slack-Request-Timestamp": "not-a-number", "X-Slack-Signature": "v0=abc"},
        {"X-Slack-Request-Timestamp": "1_700_000_000", "X-Slack-Signature": "v0=abc"},
        {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": ""},
        {"X-Slack-Request-Timestamp": str(NOW), "X-Slack-Signature": "v1=abc"},
        {"X-Slack-Request-Timestamp": str(NOW), "X-Slack-Signature": "v0=ünïcode"},
    ],
)
def test_missing_or_garbled_headers_are_refused(headers: dict[str, str]) -> None:
    assert not verify_slack_request(form(interaction()), headers, [SECRET], now=NOW)


@pytest.mark.parametrize("skew", [-301, 301, -3600, 3600])
def test_timestamp_more_than_five_minutes_away_is_refused_both_ways(skew: int) -> None:
    body = form(interaction())
    assert not verify_slack_request(body, signed(body, timestamp=NOW + skew), [SECRET], now=NOW)


@pytest.mark.parametrize("skew", [-300, 0, 300])
def test_timestamp_within_five_minutes_is_accepted(skew: int) -> None:
    body = form(interaction())
    assert verify_slack_request(body, signed(body, timestamp=NOW + skew), [SECRET], now=NOW)


def test_any_secret_of_a_rotation_is_accepted() -> None:
    body = form(interaction())
    secrets = [SECRET, OLD_SECRET]
    assert verify_slack_request(body, signed(body, secret=OLD_SECRET), secrets, now=NOW)
    assert verify_slack_request(body, signed(body, secret=SECRET), secrets, now=NOW)
    assert not verify_slack_request(body, signed(body, secret="third"), secrets, now=NOW)


def test_no_usable_secret_refuses_everything() -> None:
    body = form(interaction())
    assert not verify_slack_request(body, signed(body), [], now=NOW)
    assert not verify_slack_request(body, signed(body, secret=" "), ["", " "], now=NOW)


def test_body_that_is_not_utf8_is_refused_without_raising() -> None:
    body = b"payload=\xff\xfe"
    assert not verify_slack_request(body, signed(body), [SECRET], now=NOW)


def test_current_time_is_used_when_now_is_not_given() -> None:
    body = form(interaction())
    assert not verify_slack_request(body, signed(body, timestamp=NOW), [SECRET])


# --- interaction payloads ---------------------------------------------------------------------


def test_button_click_is_parsed() -> None:
    assert parse_interaction(form(interaction())) == SlackInteraction(
        action_id="acknowledge", value="incident-42", user_id="UA8RXUSPL",
        user_name="jtorrance", channel_id="CBR2V3XEX", message_ts="1548261231.000200",
        team_id="T9TK3CUKW",
    )  # fmt: skip


def test_select_menu_value_and_container_fields_are_used() -> None:
    payload = interaction(
        channel=None, message=None, team=None,
        actions=[{"action_id": "severity", "type": "static_select",
                  "selected_option": {"value": "sev2", "text": {"type": "plain_text",
                                                                "text": "SEV2"}}}],
    )  # fmt: skip
    parsed = parse_interaction(form(payload))
    assert parsed.value == "sev2"
    assert parsed.channel_id == "CBR2V3XEX" and parsed.message_ts == "1548261231.000200"
    assert parsed.team_id == "T9TK3CUKW"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (json.dumps(interaction()).encode(), "not application/x-www-form-urlencoded"),
        (b"\xff\xfe", "not application/x-www-form-urlencoded"),
        (b"", "no payload field"),
        (urlencode({"token": "x"}).encode(), "no payload field"),
        (b"payload=a&payload=b", "more than one payload"),
        (form("{not json"), "payload is not JSON"),
        (form("[1, 2]"), "must be a JSON object"),
        (form(interaction(type="view_submission")), "'view_submission'"),
        (form(interaction(type=None)), "None"),
        (form(interaction(actions=[])), "no actions"),
        (form(interaction(actions="acknowledge")), "no actions"),
        (form(interaction(actions=[{"value": "x"}])), "no action_id"),
        (form(interaction(user={"name": "nobody"})), "no user id"),
        (form(interaction(user="UA8RXUSPL")), "user must be an object"),
        (form(interaction(channel=["C1"])), "channel must be an object"),
    ],
)
def test_malformed_interaction_raises_payload_error(body: bytes, message: str) -> None:
    with pytest.raises(WebhookPayloadError, match=message) as caught:
        parse_interaction(body)
    assert isinstance(caught.value, ValueError)
