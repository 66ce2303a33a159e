"""The trend report in a running hub: scheduled on its cron expression in its time zone, and a
run writes the files and posts to the sandbox's Slack through the hub's own connector, once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sandbox import Sandbox
from sync.hub import Hub
from sync.report.settings import cron_trigger
from tests.sync.report_support import load_fixture


def test_the_hub_schedules_the_report_and_a_run_posts_it_once(
    make_hub: Callable[..., Hub], sb: Sandbox, tmp_path: Path
) -> None:
    channel = sb.slack.add_channel("support-reports")
    before = datetime.now(UTC)
    hub = make_hub(report={"enabled": True, "schedule": "30 7 * * 1",
                           "timezone": "America/New_York", "since": "30d",
                           "out_dir": str(tmp_path / "reports"),
                           "slack_channel": "#support-reports"})
    after = datetime.now(UTC)

    # Mondays 07:30 in New York (crontab's 1 = Monday), whatever the hub's own UTC clock says.
    trigger = cron_trigger("30 7 * * 1", "America/New_York")
    next_run = hub.next_report_time()
    assert next_run in {trigger.get_next_fire_time(None, m) for m in (before, after)}
    assert next_run is not None
    assert next_run.astimezone(ZoneInfo("America/New_York")).strftime("%a %H:%M") == "Mon 07:30"

    load_fixture(hub.store)
    now = datetime.now(UTC)
    files = hub.run_report_now(now)
    assert files.markdown.is_file() and files.markdown.parent == tmp_path / "reports"
    messages = sb.slack.messages("support-reports")
    assert len(messages) == 2 and messages[0]["text"].startswith("*Support trend report*")
    [shared] = sb.slack.files("support-reports")
    assert shared["channel"] == channel
    assert shared["content"] == files.charts["volume-by-tag"].read_bytes()

    hub.run_report_now(now)  # the same period again: found, not posted again
    assert len(sb.slack.messages("support-reports")) == 2
    assert len(sb.slack.files("support-reports")) == 1
