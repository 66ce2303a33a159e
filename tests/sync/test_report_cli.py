"""``switchboard report``: exit codes, files, the ``report:`` config section and its schedule."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

import main
from rules.source import ProblemsError
from sync.config import load_config
from sync.report.command import REPORT_JOB_ID, schedule_report
from sync.report.settings import ReportSettings, cron_trigger
from sync.store import Store
from tests.sync.report_support import load_fixture

BASE = """\
store:
  url: sqlite:///{db}
connectors:
  zendesk:
    subdomain: acme
    email: ops@example.com
    api_token: t0ken
    custom_fields: {{feedback_category: 360010, kb_article: 360011}}
  jira:
    url: https://acme.atlassian.net
    email: ops@example.com
    api_token: t0ken
"""
REPORT = """\
report:
  timezone: Europe/Berlin
  category_field: feedback_category
  article_field: kb_article
  ignore_tags: [spam]
  top: 5
  riser_min_count: 3
  doc_gap_min_tickets: 2
  out_dir: reports
"""


def write_config(tmp_path: Path, report: str = REPORT, connectors: str = "") -> Path:
    """A config on the store ``tmp_path/hub.db``; ``connectors`` adds to its connectors."""
    path = tmp_path / "config.yaml"
    path.write_text(BASE.format(db=tmp_path / "hub.db") + connectors + report,
                    encoding="utf-8")
    return path


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}").open()
    load_fixture(store)
    store.close()
    return write_config(tmp_path)


def run(*argv: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main.cli(list(argv))
    return int(exit_info.value.code or 0)


def test_report_writes_markdown_html_and_charts_into_out_dir(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run("report", "--config", str(config_path), "--since", "7d",
               "--until", "2026-11-30T09:00")
    out = capsys.readouterr().out
    assert code == 0
    directory = config_path.parent / "reports"  # report.out_dir, relative to the config file
    names = sorted(p.name for p in directory.iterdir())
    assert names == ["report-2026-11-30-volume-by-category.png",
                     "report-2026-11-30-volume-by-tag.png",
                     "report-2026-11-30-volume-over-time.png",
                     "report-2026-11-30.html", "report-2026-11-30.md"]
    assert "Report 2026-11-23 09:00 – 2026-11-30 09:00 (Europe/Berlin): 8 tickets" in out
    markdown = (directory / "report-2026-11-30.md").read_text(encoding="utf-8")
    assert "| login | 4 | 1 | +3 (+300%) |" in markdown


def test_out_overrides_the_configured_directory(config_path: Path, tmp_path: Path) -> None:
    assert run("report", "--config", str(config_path), "--until", "2026-11-30",
               "--out", str(tmp_path / "elsewhere")) == 0
    assert (tmp_path / "elsewhere" / "report-2026-11-30.md").is_file()


@pytest.mark.parametrize("since", ["7", "seven days", "2 days", "0h"])
def test_a_bad_since_exits_2_and_says_what_to_write(
    config_path: Path, since: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("report", "--config", str(config_path), "--since", since) == 2
    assert f"report: --since {since!r}: write a duration (7d, 24h, 2w, 90m)" \
        in capsys.readouterr().err
    assert not (config_path.parent / "reports").exists()


def test_a_bad_until_exits_2(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("report", "--config", str(config_path), "--until", "next monday") == 2
    assert "is not a date (2026-11-30)" in capsys.readouterr().err


def test_post_without_a_slack_channel_exits_2(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("report", "--config", str(config_path), "--post") == 2
    assert "--post needs report.slack_channel" in capsys.readouterr().err


def test_a_missing_store_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path)
    assert run("report", "--config", str(path)) == 3
    assert "no such store" in capsys.readouterr().err


def test_an_invalid_config_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, REPORT.replace("Europe/Berlin", "Europe/Berln"))
    assert run("report", "--config", str(path)) == 1
    assert "unknown timezone 'Europe/Berln'" in capsys.readouterr().err


# -- config -----------------------------------------------------------------------------------


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ProblemsError) as info:
        load_config(path, env={})
    return [str(p) for p in info.value.problems]


def test_report_config_errors_are_all_reported_with_file_and_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, """\
report:
  enabled: true
  schedule: "0 9 * *"
  timezone: Mars/Olympus
  since: a week
  category_field: feedback_kategory
  slack_channel: "#support-reports"
""")
    found = problems_of(path)
    text = "\n".join(found)
    assert len(found) == 5, text
    assert f"{path}:15: report.schedule: '0 9 * *' is not a cron expression: it needs 5 " \
        "fields" in text
    assert f"{path}:16: report.timezone: unknown timezone 'Mars/Olympus'" in text
    assert f"{path}:17: report.since: 'a week' is not a duration" in text
    assert f"{path}:18: report.category_field: unknown custom field 'feedback_kategory'" in text
    assert f"{path}:19: report.slack_channel: needs connectors.slack" in text


@pytest.mark.parametrize(("schedule", "reason"), [
    ("61 9 * * MON", "higher than the maximum value (59)"),
    ("0 9 * * FUNDAY", "Invalid weekday name"),
    ("0 9 * * 8", "numbers run from 0 to 7"),
    ("0 9 * * * *", "needs 5 fields"),
])
def test_a_bad_cron_expression_is_refused_with_its_reason(schedule: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        ReportSettings(schedule=schedule)


def test_the_shipped_config_loads_with_its_report_section() -> None:
    config = load_config(Path(main.__file__).parent / "config.yaml", env={})
    assert config.app.report.schedule == "0 9 * * MON"


# -- schedule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("expression", "after", "expected"), [
    # Wednesday 25 Nov 2026 -> Monday 30 Nov 09:00 Berlin (08:00 UTC).
    ("0 9 * * MON", "2026-11-25T12:00:00+00:00", "2026-11-30T09:00:00+01:00"),
    # Crontab's numbers: 1 is Monday (APScheduler alone would read Tuesday), 0 and 7 Sunday.
    ("0 9 * * 1", "2026-11-25T12:00:00+00:00", "2026-11-30T09:00:00+01:00"),
    ("30 7 * * 0", "2026-11-25T12:00:00+00:00", "2026-11-29T07:30:00+01:00"),
    ("30 7 * * 7", "2026-11-25T12:00:00+00:00", "2026-11-29T07:30:00+01:00"),
    ("0 9 * * 1-5", "2026-11-27T09:00:00+00:00", "2026-11-30T09:00:00+01:00"),
    # Across the spring change (29 March 2026): 09:00 is CEST, UTC+2.
    ("0 9 * * MON", "2026-03-28T12:00:00+00:00", "2026-03-30T09:00:00+02:00"),
    # Both days restricted: crontab fires on either (the 1st, or a Monday), not on both only.
    ("0 9 1 * MON", "2026-11-25T12:00:00+00:00", "2026-11-30T09:00:00+01:00"),
    ("0 9 1 * MON", "2026-11-30T09:00:00+00:00", "2026-12-01T09:00:00+01:00"),
    # A day field starting with * makes crontab require both (an odd day that is a Monday).
    ("0 9 */2 * MON", "2026-11-25T12:00:00+00:00", "2026-12-07T09:00:00+01:00"),
])
def test_the_cron_trigger_fires_at_local_time_in_the_zone(
    expression: str, after: str, expected: str
) -> None:
    trigger = cron_trigger(expression, "Europe/Berlin")
    fire = trigger.get_next_fire_time(None, datetime.fromisoformat(after))
    assert fire is not None
    assert fire.isoformat() == expected


def test_the_scheduled_job_runs_next_at_the_next_monday_nine_in_berlin() -> None:
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start(paused=True)
    try:
        before = datetime.now(UTC)
        job = schedule_report(scheduler, ReportSettings(enabled=True, schedule="0 9 * * MON",
                                                        timezone="Europe/Berlin"), print)
        after = datetime.now(UTC)
        assert job.id == REPORT_JOB_ID
        assert (job.max_instances, job.coalesce) == (1, True)
        trigger = cron_trigger("0 9 * * MON", "Europe/Berlin")
        expected = {trigger.get_next_fire_time(None, moment) for moment in (before, after)}
        assert job.next_run_time in expected
        local = job.next_run_time.astimezone(ZoneInfo("Europe/Berlin"))
        assert (local.strftime("%a %H:%M:%S"), before < job.next_run_time) == \
            ("Mon 09:00:00", True)
    finally:
        scheduler.shutdown(wait=False)
