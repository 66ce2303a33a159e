"""The Slack stand-in's HTTP contract (api-notes/slack.md), exercised with plain requests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox import Sandbox

TOKEN = "xoxb-sandbox-token"
META = {"event_type": "switchboard_intent", "event_payload": {"idempotency_key": "k-1"}}


@pytest.fixture
def sl(sb: Sandbox) -> Iterator[requests.Session]:
    """A session carrying a bot token the way slack_sdk does (``Authorization: Bearer``)."""
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        yield session


def call(sb: Sandbox, sl: requests.Session, method: str, *, form: bool = False,
         get: bool = False, **args: Any) -> requests.Response:  # fmt: skip
    url = sb.slack_url + method
    if get:
        return sl.get(url, params=args)
    if form:
        return sl.post(url, data={k: json.dumps(v) if isinstance(v, dict | list) else v
                                  for k, v in args.items()})  # fmt: skip
    return sl.post(url, json=args)


def ok(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["ok"] is True, body
    return body


def error(response: requests.Response, status: int = 200) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False
    return str(body["error"])


@pytest.fixture
def esc(sb: Sandbox, sl: requests.Session) -> str:
    listed = ok(call(sb, sl, "conversations.list"))["channels"]
    return str(next(c["id"] for c in listed if c["name"] == "support-escalations"))


# --- auth and errors --------------------------------------------------------------------------


def test_errors_are_http_200_with_ok_false(sb: Sandbox, sl: requests.Session) -> None:
    assert error(call(sb, sl, "chat.postMessage", channel="C000NOPE", text="x")) == (
        "channel_not_found"
    )
    assert error(call(sb, sl, "no.such.method")) == "unknown_method"


def test_token_is_required_and_checked(sb: Sandbox, sl: requests.Session) -> None:
    with requests.Session() as anonymous:
        assert error(anonymous.post(sb.slack_url + "auth.test")) == "not_authed"
    assert ok(call(sb, sl, "auth.test"))["user_id"]  # any token until one is required
    sb.slack.require_token("xoxb-the-right-one")
    assert error(call(sb, sl, "auth.test")) == "invalid_auth"
    with requests.Session() as right:
        right.headers["Authorization"] = "Bearer xoxb-the-right-one"
        assert ok(right.post(sb.slack_url + "auth.test"))["team_id"]


def test_post_refusals(sb: Sandbox, sl: requests.Session, esc: str) -> None:
    archived = sb.slack.add_channel("archived", archived=True)
    outside = sb.slack.add_channel("outside", member=False)
    assert error(call(sb, sl, "chat.postMessage", channel=archived, text="x")) == "is_archived"
    assert error(call(sb, sl, "chat.postMessage", channel=outside, text="x")) == "not_in_channel"
    assert error(call(sb, sl, "chat.postMessage", channel=esc)) == "no_text"
    assert error(call(sb, sl, "chat.postMessage", channel=esc, text="", blocks=[])) == "no_text"
    assert error(call(sb, sl, "chat.postMessage", channel=esc, text="x" * 40_001)) == (
        "msg_too_long"
    )
    assert ok(call(sb, sl, "chat.postMessage", channel=esc, text="x" * 40_000))
    assert error(call(sb, sl, "chat.postMessage", channel=esc, text="x",
                      blocks=[{"no": "type"}])) == "invalid_blocks"  # fmt: skip
    assert error(call(sb, sl, "chat.postMessage", channel=esc, text="x",
                      metadata={"event_type": 1})) == "invalid_metadata_format"  # fmt: skip
    assert error(call(sb, sl, "chat.postMessage", channel=esc, text="x",
                      thread_ts="1.000001")) == "thread_not_found"  # fmt: skip


def test_blocks_alone_are_enough_and_names_are_accepted(
    sb: Sandbox, sl: requests.Session, esc: str
) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    posted = ok(call(sb, sl, "chat.postMessage", channel="#support-escalations", blocks=blocks))
    assert posted["channel"] == esc and posted["message"]["blocks"] == blocks


# --- messages and threads ---------------------------------------------------------------------


def test_ts_is_unique_increasing_and_slack_shaped(
    sb: Sandbox, sl: requests.Session, esc: str
) -> None:
    stamps = [ok(call(sb, sl, "chat.postMessage", channel=esc, text=f"m{n}"))["ts"]
              for n in range(20)]  # fmt: skip
    assert len(set(stamps)) == 20
    assert stamps == sorted(stamps, key=lambda ts: tuple(int(p) for p in ts.split(".")))
    assert all(len(ts.split(".")[1]) == 6 and len(ts.split(".")[0]) == 10 for ts in stamps)


def test_reply_to_a_reply_is_filed_under_the_root(
    sb: Sandbox, sl: requests.Session, esc: str
) -> None:
    root = ok(call(sb, sl, "chat.postMessage", channel=esc, text="root"))["ts"]
    first = ok(call(sb, sl, "chat.postMessage", channel=esc, text="r1", thread_ts=root))
    second = ok(call(sb, sl, "chat.postMessage", channel=esc, text="r2",
                     thread_ts=first["ts"]))  # fmt: skip
    assert first["message"]["thread_ts"] == root and second["message"]["thread_ts"] == root
    assert [m["text"] for m in sb.slack.thread(esc, root)] == ["r1", "r2"]
    assert sb.slack.message(esc, root)["reply_count"] == 2  # type: ignore[index]
    history = ok(call(sb, sl, "conversations.history", channel=esc, form=True))["messages"]
    assert [m["text"] for m in history] == ["root"]  # replies stay in their thread


def test_update_keeps_ts_replaces_content_and_marks_edited(
    sb: Sandbox, sl: requests.Session, esc: str
) -> None:
    blocks = [{"type": "section", "text": {"type": "plain_text", "text": "open"}}]
    ts = ok(call(sb, sl, "chat.postMessage", channel=esc, text="open", blocks=blocks,
                 metadata=META))["ts"]  # fmt: skip
    updated = ok(call(sb, sl, "chat.update", channel=esc, ts=ts, text="resolved"))
    assert updated["ts"] == ts and updated["text"] == "resolved"
    stored = sb.slack.message(esc, ts)
    assert stored is not None and stored["edited"]["user"]
    assert stored["blocks"] == blocks and stored["metadata"] == META  # absent: kept
    ok(call(sb, sl, "chat.update", channel=esc, ts=ts, text="resolved", blocks=[], metadata={}))
    stored = sb.slack.message(esc, ts)
    assert stored is not None and "blocks" not in stored and "metadata" not in stored
    assert len(sb.slack.messages(esc)) == 1


def test_update_refusals(sb: Sandbox, sl: requests.Session, esc: str) -> None:
    theirs = sb.slack.add_message(esc, "a human wrote this")
    ours = ok(call(sb, sl, "chat.postMessage", channel=esc, text="ours"))["ts"]
    assert error(call(sb, sl, "chat.update", channel=esc, ts="1.000001", text="x")) == (
        "message_not_found"
    )
    assert error(call(sb, sl, "chat.update", channel=esc, ts=theirs, text="x")) == (
        "cant_update_message"
    )
    assert error(call(sb, sl, "chat.update", channel=esc, ts=ours, text="")) == "no_text"
    assert error(call(sb, sl, "chat.update", channel="C000NOPE", ts=ours, text="x")) == (
        "channel_not_found"
    )


def test_permalink(sb: Sandbox, sl: requests.Session, esc: str) -> None:
    root = ok(call(sb, sl, "chat.postMessage", channel=esc, text="root"))["ts"]
    reply = ok(call(sb, sl, "chat.postMessage", channel=esc, text="r", thread_ts=root))["ts"]
    link = ok(call(sb, sl, "chat.getPermalink", get=True, channel=esc, message_ts=reply))
    assert link["permalink"].endswith(f"/archives/{esc}/p{reply.replace('.', '')}"
                                      f"?thread_ts={root}&cid={esc}")  # fmt: skip
    assert error(call(sb, sl, "chat.getPermalink", channel=esc, message_ts="1.1")) == (
        "message_not_found"
    )


# --- metadata ---------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["json", "form", "get"])
def test_metadata_is_returned_only_with_include_all_metadata(
    sb: Sandbox, sl: requests.Session, esc: str, style: str
) -> None:
    root = ok(call(sb, sl, "chat.postMessage", channel=esc, text="root", metadata=META))
    assert "metadata" not in root["message"]
    # The reply is form-encoded: its metadata travels as a JSON string.
    ok(call(sb, sl, "chat.postMessage", channel=esc, text="r", thread_ts=root["ts"],
            form=True, metadata=META))
    read: dict[str, Any] = {"form": style == "form", "get": style == "get"}
    for method, extra in (("conversations.history", {}),
                          ("conversations.replies", {"ts": root["ts"]})):  # fmt: skip
        plain = ok(call(sb, sl, method, channel=esc, **extra, **read))["messages"]
        assert plain and all("metadata" not in m for m in plain)
        flag = "true" if style != "form" else "1"
        full = ok(call(sb, sl, method, channel=esc, include_all_metadata=flag, **extra,
                       **read))["messages"]  # fmt: skip
        assert full and all(m["metadata"] == META for m in full)


def test_history_honours_oldest_and_needs_membership(
    sb: Sandbox, sl: requests.Session, esc: str
) -> None:
    first = ok(call(sb, sl, "chat.postMessage", channel=esc, text="first"))["ts"]
    ok(call(sb, sl, "chat.postMessage", channel=esc, text="second"))
    after = ok(call(sb, sl, "conversations.history", channel=esc, oldest=first, form=True))
    assert [m["text"] for m in after["messages"]] == ["second"]
    both = ok(call(sb, sl, "conversations.history", channel=esc, oldest=first,
                   inclusive="true", form=True))  # fmt: skip
    assert [m["text"] for m in both["messages"]] == ["second", "first"]
    outside = sb.slack.add_channel("outside", member=False)
    assert error(call(sb, sl, "conversations.history", channel=outside)) == "not_in_channel"


# --- pagination -------------------------------------------------------------------------------


def test_conversations_list_paginates_and_filters(sb: Sandbox, sl: requests.Session) -> None:
    sb.slack.add_channel("old", archived=True)
    sb.slack.add_channel("secret", private=True)
    sb.slack.add_channel("secret-without-bot", private=True, member=False)
    names: list[str] = []
    cursor = ""
    while True:
        page = ok(call(sb, sl, "conversations.list", form=True, limit=2, cursor=cursor,
                       types="public_channel,private_channel", exclude_archived="true"))
        assert len(page["channels"]) <= 2
        names += [c["name"] for c in page["channels"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert names == ["support-escalations", "support-outages", "secret"]
    public = ok(call(sb, sl, "conversations.list"))["channels"]
    assert [c["name"] for c in public] == ["support-escalations", "support-outages", "old"]
    assert error(call(sb, sl, "conversations.list", cursor="garbage!")) == "invalid_cursor"


def test_history_paginates_newest_first(sb: Sandbox, sl: requests.Session, esc: str) -> None:
    for number in range(5):
        sb.slack.add_message(esc, f"m{number}")
    texts: list[str] = []
    cursor = ""
    while True:
        page = ok(call(sb, sl, "conversations.history", channel=esc, limit=2, cursor=cursor))
        texts += [m["text"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        assert page["has_more"] is bool(cursor)
        if not cursor:
            break
    assert texts == ["m4", "m3", "m2", "m1", "m0"]


# --- pace -------------------------------------------------------------------------------------


def test_posting_faster_than_the_channel_pace_is_429_with_retry_after(
    sb: Sandbox, sl: requests.Session, esc: str
) -> None:
    now = [100.0]
    sb.slack.clock = lambda: now[0]
    sb.slack.set_post_rate(1, 2)
    other = sb.slack.add_channel("other")
    assert ok(call(sb, sl, "chat.postMessage", channel=esc, text="1"))
    assert ok(call(sb, sl, "chat.postMessage", channel=esc, text="2"))
    limited = call(sb, sl, "chat.postMessage", channel=esc, text="3")
    assert error(limited, status=429) == "ratelimited"
    assert limited.headers["Retry-After"] == "1"
    assert ok(call(sb, sl, "chat.postMessage", channel=other, text="elsewhere"))
    now[0] += 1.0
    assert ok(call(sb, sl, "chat.postMessage", channel=esc, text="3 again"))
    assert [m["text"] for m in sb.slack.messages(esc)] == ["1", "2", "3 again"]


def test_injected_faults_apply_to_slack(sb: Sandbox, sl: requests.Session, esc: str) -> None:
    sb.faults.add("slack", "POST", r"chat\.postMessage$", kind="status", status=503)
    assert error(call(sb, sl, "chat.postMessage", channel=esc, text="x"),
                 status=503) == "service_unavailable"  # fmt: skip
    assert sb.requests.count("slack", path_regex=r"chat\.postMessage$") == 1
    assert sb.slack.messages(esc) == []
