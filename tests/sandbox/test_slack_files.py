"""The Slack stand-in's files upload v2 (files.getUploadURLExternal, the POST to the upload URL,
files.completeUploadExternal), exercised with plain requests as Slack's method reference
describes them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox import Sandbox

TOKEN = "xoxb-sandbox-token"
PNG = b"\x89PNG\r\n\x1a\nnot really a picture"


@pytest.fixture
def sl(sb: Sandbox) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        yield session


def call(sb: Sandbox, sl: requests.Session, method: str, **form: Any) -> dict[str, Any]:
    """A form-encoded call, as slack_sdk sends these methods."""
    response = sl.post(sb.slack_url + method, data={
        k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in form.items()})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def upload_url(sb: Sandbox, sl: requests.Session, **form: Any) -> dict[str, Any]:
    body = call(sb, sl, "files.getUploadURLExternal", filename="chart.png", length=len(PNG),
                **form)
    assert body["ok"] is True, body
    return body


def test_get_upload_url_hands_out_a_url_and_a_file_id(sb: Sandbox, sl: requests.Session) -> None:
    body = upload_url(sb, sl)
    assert body["file_id"].startswith("F")
    assert body["upload_url"].startswith(sb.slack_url.removesuffix("api/") + "upload/v1/")


@pytest.mark.parametrize(("form", "code"), [
    ({"filename": "a.png", "length": 0}, "missing_argument"),
    ({"filename": "a.png", "length": "many"}, "invalid_arguments"),
    ({"length": 10}, "invalid_arguments"),
    ({"filename": "a.png", "length": 10, "alt_txt": "x" * 1001}, "alt_txt_too_large"),
])
def test_get_upload_url_refuses_bad_arguments(
    sb: Sandbox, sl: requests.Session, form: dict[str, Any], code: str
) -> None:
    assert call(sb, sl, "files.getUploadURLExternal", **form) == {"ok": False, "error": code}


def test_every_files_method_needs_a_token(sb: Sandbox) -> None:
    response = requests.post(sb.slack_url + "files.getUploadURLExternal",
                             data={"filename": "a.png", "length": 3})
    assert response.json() == {"ok": False, "error": "not_authed"}


def test_the_upload_url_takes_raw_bytes_and_answers_ok_in_plain_text(
    sb: Sandbox, sl: requests.Session
) -> None:
    ticket = upload_url(sb, sl)
    response = requests.post(ticket["upload_url"], data=PNG)  # no token: the URL is enough
    assert (response.status_code, response.text) == (200, f"OK - {len(PNG)}")
    assert response.headers["Content-Type"].startswith("text/plain")
    shared = call(sb, sl, "files.completeUploadExternal",
                  files=[{"id": ticket["file_id"], "title": "Chart"}],
                  channel_id=sb.slack.add_channel("reports"), initial_comment="This week")
    assert shared["ok"] is True
    [view] = shared["files"]
    assert (view["id"], view["name"], view["title"], view["mimetype"], view["size"]) == \
        (ticket["file_id"], "chart.png", "Chart", "image/png", len(PNG))
    [message] = sb.slack.messages("reports")
    assert message["text"] == "This week" and message["files"][0]["id"] == ticket["file_id"]
    assert message["upload"] is True and message["bot_id"]
    assert sb.slack.files("reports")[0]["content"] == PNG


def test_the_upload_url_takes_a_multipart_form_too(sb: Sandbox, sl: requests.Session) -> None:
    ticket = upload_url(sb, sl)
    response = requests.post(ticket["upload_url"], files={"file": ("chart.png", PNG)})
    assert response.status_code == 200
    call(sb, sl, "files.completeUploadExternal", files=[{"id": ticket["file_id"]}],
         channel_id=sb.slack.add_channel("reports"))
    [shared] = sb.slack.files("reports")
    assert (shared["content"], shared["title"], shared["initial_comment"]) == \
        (PNG, "chart.png", None)


def test_an_unknown_upload_url_is_a_404(sb: Sandbox) -> None:
    response = requests.post(sb.slack_url.removesuffix("api/") + "upload/v1/nope", data=PNG)
    assert response.status_code == 404


def test_complete_refuses_a_file_never_uploaded_or_already_shared(
    sb: Sandbox, sl: requests.Session
) -> None:
    channel = sb.slack.add_channel("reports")
    ticket = upload_url(sb, sl)
    files = [{"id": ticket["file_id"], "title": "Chart"}]
    assert call(sb, sl, "files.completeUploadExternal", files=files, channel_id=channel) == \
        {"ok": False, "error": "file_not_found"}  # no bytes yet
    requests.post(ticket["upload_url"], data=PNG)
    assert call(sb, sl, "files.completeUploadExternal", files=files,
                channel_id=channel)["ok"] is True
    assert call(sb, sl, "files.completeUploadExternal", files=files, channel_id=channel) == \
        {"ok": False, "error": "file_not_found"}
    assert call(sb, sl, "files.completeUploadExternal", files=[{"id": "F0NOPE"}],
                channel_id=channel)["error"] == "file_not_found"
    assert call(sb, sl, "files.completeUploadExternal", files="[not json",
                channel_id=channel)["error"] == "invalid_arguments"


@pytest.mark.parametrize(("channel", "code"), [
    ("U0SBXHUMAN", "invalid_arguments"),      # a user id is not a conversation id
    ("C0UNKNOWN1", "invalid_channel"),
    ("outsiders", "not_in_channel"),
])
def test_complete_checks_the_channel(
    sb: Sandbox, sl: requests.Session, channel: str, code: str
) -> None:
    if channel == "outsiders":
        channel = sb.slack.add_channel("outsiders", member=False)
    ticket = upload_url(sb, sl)
    requests.post(ticket["upload_url"], data=PNG)
    assert call(sb, sl, "files.completeUploadExternal", files=[{"id": ticket["file_id"]}],
                channel_id=channel) == {"ok": False, "error": code}


def test_complete_into_a_thread_files_a_reply(sb: Sandbox, sl: requests.Session) -> None:
    channel = sb.slack.add_channel("reports")
    root = sb.slack.add_message("reports", "the summary")
    ticket = upload_url(sb, sl)
    requests.post(ticket["upload_url"], data=PNG)
    call(sb, sl, "files.completeUploadExternal", files=[{"id": ticket["file_id"]}],
         channel_id=channel, thread_ts=root, initial_comment="chart")
    assert len(sb.slack.messages("reports")) == 1
    [reply] = sb.slack.thread("reports", root)
    assert reply["files"][0]["id"] == ticket["file_id"]
    assert sb.slack.files("reports")[0]["thread_ts"] == root
