"""Posting the trend report to Slack through the real connector (slack_sdk over HTTP) against the
sandbox's Slack stand-in: the summary message, the chart uploaded with files upload v2, no double
post, and Slack's errors surfacing clearly."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import main
from connectors.errors import NotFoundError, RateLimitedError, RetriableError
from connectors.settings import SlackSettings
from connectors.slack import EVENT_TYPE, SlackConnector
from sandbox import Sandbox
from sync.config import load_config
from sync.report.command import generate
from sync.report.period import resolve_period
from sync.report.publish import KEY_PREFIX, post_report, slack_file_name
from sync.report.render import slack_summary
from sync.store import Store
from tests.connectors.support import FakeClock
from tests.sync.report_support import load_fixture
from tests.sync.test_report_cli import REPORT, write_config

TOKEN = "xoxb-report-token-0001"
CHANNEL = "#support-reports"
PERIOD_KEY = "20261123T0800Z-20261130T0800Z"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        sandbox.slack.require_token(TOKEN)
        yield sandbox


@pytest.fixture
def channel_id(sb: Sandbox) -> str:
    return sb.slack.add_channel("support-reports")


@pytest.fixture
def config_path(tmp_path: Path, sb: Sandbox, channel_id: str) -> Path:
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}").open()
    load_fixture(store)
    store.close()
    return slack_config(tmp_path, sb, TOKEN)


def slack_config(tmp_path: Path, sb: Sandbox, token: str) -> Path:
    return write_config(tmp_path, REPORT + f"  slack_channel: \"{CHANNEL}\"\n",
                        f"  slack:\n    bot_token: {token}\n    base_url: {sb.slack_url}\n")


def run(*argv: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main.cli(list(argv))
    return int(exit_info.value.code or 0)


def report_args(config_path: Path) -> tuple[str, ...]:
    return ("report", "--config", str(config_path), "--since", "7d",
            "--until", "2026-11-30T09:00", "--post")


def calls(sb: Sandbox, method: str) -> int:
    return sb.requests.count("slack", path_regex=re.escape(f"/api/{method}") + "$")


def test_post_sends_the_summary_and_uploads_the_chart_once_per_period(
    sb: Sandbox, channel_id: str, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(*report_args(config_path)) == 0
    first = capsys.readouterr().out
    assert "summary posted" in first and "chart uploaded" in first

    messages = sb.slack.messages(CHANNEL)
    assert len(messages) == 2  # the summary, then the message that shares the chart
    summary = messages[0]
    assert summary["text"].startswith("*Support trend report* 2026-11-23 09:00 – 2026-11-30 "
                                      "09:00 (Europe/Berlin)\n• *8* tickets")
    assert summary["metadata"] == {"event_type": EVENT_TYPE, "event_payload": {
        "idempotency_key": f"{KEY_PREFIX}{PERIOD_KEY}"}}
    [shared] = sb.slack.files(CHANNEL)
    chart = config_path.parent / "reports" / "report-2026-11-30-volume-by-tag.png"
    assert shared["channel"] == channel_id
    assert messages[1]["files"][0]["id"] == shared["id"]
    assert shared["name"] == f"switchboard-report-{PERIOD_KEY}-volume-by-tag.png"
    assert shared["content"] == chart.read_bytes()
    assert shared["length"] == len(chart.read_bytes())
    assert shared["alt_txt"] == "Tickets by tag, this period and the previous one"
    assert shared["initial_comment"] == ("Tickets by tag, this period and the previous one: "
                                         "2026-11-23 09:00 – 2026-11-30 09:00 (Europe/Berlin)")
    assert shared["title"].startswith("Tickets by tag, this period and the previous one, ")
    assert shared["thread_ts"] is None and shared["ts"] == messages[1]["ts"]
    assert messages[1]["text"] == shared["initial_comment"]

    # The same period again: found, nothing posted or uploaded twice.
    assert run(*report_args(config_path)) == 0
    second = capsys.readouterr().out
    assert "summary already there" in second and "chart already there" in second
    assert len(sb.slack.messages(CHANNEL)) == 2
    assert len(sb.slack.files(CHANNEL)) == 1
    assert (calls(sb, "chat.postMessage"), calls(sb, "files.getUploadURLExternal"),
            calls(sb, "files.completeUploadExternal")) == (1, 1, 1)


def test_a_failed_share_is_completed_by_the_next_run_without_a_second_summary(
    sb: Sandbox, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sb.faults.add("slack", "POST", r"/api/files\.completeUploadExternal$", kind="status",
                  status=200, body={"ok": False, "error": "posting_to_channel_denied"})
    assert run(*report_args(config_path)) == 4
    err = capsys.readouterr().err
    assert f"report: files written, but posting to {CHANNEL} failed: slack: " \
           "files.completeUploadExternal in C" in err
    assert "posting_to_channel_denied" in err
    assert len(sb.slack.messages(CHANNEL)) == 1 and sb.slack.files(CHANNEL) == []

    assert run(*report_args(config_path)) == 0
    assert calls(sb, "chat.postMessage") == 1
    assert len(sb.slack.files(CHANNEL)) == 1
    assert len(sb.slack.messages(CHANNEL)) == 2


def test_a_wrong_token_exits_4_naming_invalid_auth_after_writing_the_files(
    sb: Sandbox, channel_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}").open()
    load_fixture(store)
    store.close()
    path = slack_config(tmp_path, sb, "xoxb-wrong-token")
    assert run(*report_args(path)) == 4
    err = capsys.readouterr().err
    assert "invalid_auth" in err and "xoxb-wrong-token" not in err
    assert (tmp_path / "reports" / "report-2026-11-30.md").is_file()
    assert sb.slack.messages(CHANNEL) == []


def test_a_channel_the_bot_is_not_in_exits_4_naming_not_in_channel(
    sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sb.slack.add_channel("product-feedback", member=False)
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}").open()
    load_fixture(store)
    store.close()
    path = slack_config(tmp_path, sb, TOKEN)
    path.write_text(path.read_text(encoding="utf-8").replace(CHANNEL, "#product-feedback"),
                    encoding="utf-8")
    assert run(*report_args(path)) == 4
    assert "not_in_channel" in capsys.readouterr().err


# -- retries, through post_report with a fake clock -------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def written(config_path: Path, tmp_path: Path) -> Any:
    config = load_config(config_path, env={})
    period = resolve_period("7d", "2026-11-30T09:00", ZoneInfo("Europe/Berlin"),
                            datetime(2026, 11, 30, 8, 30, tzinfo=UTC))
    return generate(config, period, tmp_path / "out")


def connector(sb: Sandbox, clock: FakeClock) -> SlackConnector:
    return SlackConnector(SlackSettings(bot_token=TOKEN, base_url=sb.slack_url), clock=clock,
                          sleep=clock.sleep)


def post(sb: Sandbox, clock: FakeClock, files: Any, sleeps: list[float]) -> Any:
    return post_report(connector(sb, clock), CHANNEL, files.report,
                       slack_summary(files.report), files.charts["volume-by-tag"],
                       now=time.time(), sleep=sleeps.append)


def test_a_rate_limited_post_is_tried_again_after_retry_after(
    sb: Sandbox, clock: FakeClock, written: Any
) -> None:
    sb.faults.add("slack", "POST", r"/api/chat\.postMessage$", kind="status", status=429,
                  headers={"Retry-After": "7"})
    sleeps: list[float] = []
    outcome = post(sb, clock, written, sleeps)
    assert sleeps == [7.0]
    assert outcome.message_posted and outcome.file_uploaded
    assert len(sb.slack.messages(CHANNEL)) == 2


def test_a_lasting_rate_limit_surfaces_as_rate_limited_after_three_attempts(
    sb: Sandbox, clock: FakeClock, written: Any
) -> None:
    sb.faults.add("slack", "POST", r"/api/files\.getUploadURLExternal$", kind="status",
                  status=429, headers={"Retry-After": "3"}, times=None)
    sleeps: list[float] = []
    with pytest.raises(RateLimitedError) as info:
        post(sb, clock, written, sleeps)
    assert info.value.retry_after == 3.0 and info.value.status == 429
    assert sleeps == [3.0, 3.0]
    assert calls(sb, "files.getUploadURLExternal") == 3
    assert calls(sb, "chat.postMessage") == 1  # found by its key on the later attempts


def test_a_5xx_from_the_upload_url_is_an_ambiguous_retriable_error(
    sb: Sandbox, channel_id: str, clock: FakeClock
) -> None:
    sb.faults.add("slack", "POST", r"^/upload/v1/", kind="status", status=502,
                  body={"error": "bad gateway"})
    slack = connector(sb, clock)
    with pytest.raises(RetriableError) as info:
        slack.upload_file(CHANNEL, "a.png", b"\x89PNG", title="A")
    assert info.value.ambiguous and info.value.status == 502
    assert calls(sb, "files.completeUploadExternal") == 0


def test_an_upload_url_slack_does_not_know_is_not_found(
    sb: Sandbox, channel_id: str, clock: FakeClock
) -> None:
    sb.faults.add("slack", "POST", r"^/upload/v1/", kind="status", status=404,
                  body={"error": "not found"})
    with pytest.raises(NotFoundError):
        connector(sb, clock).upload_file(CHANNEL, "a.png", b"\x89PNG", title="A")


def test_the_chart_name_in_slack_names_the_period(written: Any) -> None:
    assert slack_file_name(written.report) == f"switchboard-report-{PERIOD_KEY}-volume-by-tag.png"
