"""``switchboard report`` and the hub's scheduled report: compute, write the files, post.

Files: ``report-<date>.md``, ``report-<date>.html`` and ``report-<date>-<chart>.png`` in the
output directory, ``<date>`` being the local date the period ends on (a later report ending the
same day replaces them). The store is only read; no vendor is called unless the report is posted.
"""

from __future__ import annotations

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_OK",
    "EXIT_POST_FAILED",
    "EXIT_STORE",
    "REPORT_JOB_ID",
    "ReportFiles",
    "generate",
    "options_of",
    "run_report",
    "run_scheduled",
    "schedule_report",
]

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler

from connectors.errors import ConnectorError, SwitchboardError
from sync.config import LoadedConfig
from sync.report.charts import MAIN_CHART, render_charts
from sync.report.data import ReportOptions, StoreUnavailableError, read_report
from sync.report.model import TrendReport
from sync.report.period import Period, resolve_period
from sync.report.publish import PostOutcome, post_report
from sync.report.render import render_html, render_markdown, slack_summary
from sync.report.settings import ReportSettings, cron_trigger, zone

EXIT_OK, EXIT_BAD_INPUT, EXIT_STORE, EXIT_POST_FAILED = 0, 2, 3, 4
REPORT_JOB_ID = "trend-report"
log = logging.getLogger("switchboard.report")


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """A report written to disk: the report itself and the paths of its files."""

    report: TrendReport
    markdown: Path
    html: Path
    charts: dict[str, Path]


def options_of(settings: ReportSettings) -> ReportOptions:
    return ReportOptions(
        category_field=settings.category_field, article_field=settings.article_field,
        article_tags=settings.article_tags, ignore_tags=settings.ignore_tags,
        note_ignore_tags=settings.note_ignore_tags, top=settings.top,
        riser_min_count=settings.riser_min_count,
        doc_gap_min_tickets=settings.doc_gap_min_tickets)


def out_dir(config: LoadedConfig) -> Path:
    """``report.out_dir``, relative to the config file."""
    path = Path(config.app.report.out_dir)
    return path if path.is_absolute() else config.path.parent / path


def generate(config: LoadedConfig, period: Period, directory: Path, *,
             now: datetime | None = None) -> ReportFiles:
    """Compute the report of ``period`` from the config's store and write its files.

    Raises :class:`StoreUnavailableError` (store missing or unreadable) and ``OSError`` (the
    directory cannot be written).
    """
    report = read_report(config.store_url(), period, options_of(config.app.report), now=now,
                         sla=getattr(config.app, "sla", None))
    stem = f"report-{period.local(period.until):%Y-%m-%d}"
    directory.mkdir(parents=True, exist_ok=True)
    charts = render_charts(report, directory, stem)
    markdown = directory / f"{stem}.md"
    markdown.write_text(render_markdown(report, charts), encoding="utf-8")
    page = directory / f"{stem}.html"
    page.write_text(render_html(report, charts), encoding="utf-8")
    return ReportFiles(report, markdown, page, charts)


def publish(files: ReportFiles, slack: Any, channel: str, *, now: float,
            sleep: Callable[[float], None] | None = None) -> PostOutcome:
    """Post the summary and the main chart of ``files`` to ``channel`` (once; see
    :mod:`sync.report.publish`)."""
    summary = slack_summary(files.report, [files.markdown.name, files.html.name])
    if sleep is None:
        return post_report(slack, channel, files.report, summary, files.charts[MAIN_CHART],
                           now=now)
    return post_report(slack, channel, files.report, summary, files.charts[MAIN_CHART],
                       now=now, sleep=sleep)


def run_report(config: LoadedConfig, *, since: str | None, until: str | None,
               out: str | None, post: bool, slack: Any = None, now: datetime | None = None,
               stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """The ``report`` command; returns its exit status (see ``main.py``)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    settings = config.app.report
    moment = now or datetime.now(UTC)
    try:
        period = resolve_period(since or settings.since, until, zone(settings.timezone), moment)
    except ValueError as exc:
        print(f"report: {exc}", file=stderr)
        return EXIT_BAD_INPUT
    if post and (settings.slack_channel is None or config.app.connectors.slack is None):
        print("report: --post needs report.slack_channel (and connectors.slack) in "
              f"{config.path.name}", file=stderr)
        return EXIT_BAD_INPUT
    directory = Path(out) if out else out_dir(config)
    try:
        files = generate(config, period, directory, now=moment)
    except StoreUnavailableError as exc:
        print(f"report: {exc}", file=stderr)
        return EXIT_STORE
    except OSError as exc:
        print(f"report: cannot write to {directory}: {exc.strerror or exc}", file=stderr)
        return EXIT_STORE
    print(f"Report {period.label()}: {files.report.tickets} tickets", file=stdout)
    for path in (files.markdown, files.html, *files.charts.values()):
        print(f"  {path}", file=stdout)
    if not post or settings.slack_channel is None:
        return EXIT_OK
    if slack is None:
        from connectors.slack import SlackConnector

        assert config.app.connectors.slack is not None
        slack = SlackConnector(config.app.connectors.slack)
    try:
        outcome = publish(files, slack, settings.slack_channel, now=moment.timestamp())
    except (ConnectorError, SwitchboardError) as exc:
        print(f"report: files written, but posting to {settings.slack_channel} failed: {exc}"
              + (f" ({exc.detail})" if isinstance(exc, ConnectorError) and exc.detail
                 and exc.detail not in str(exc) else ""), file=stderr)
        return EXIT_POST_FAILED
    print(_outcome_line(settings.slack_channel, outcome), file=stdout)
    return EXIT_OK


def _outcome_line(channel: str, outcome: PostOutcome) -> str:
    message = "posted" if outcome.message_posted else "already there"
    chart = "uploaded" if outcome.file_uploaded else "already there"
    return (f"Slack {channel}: summary {message} (ts {outcome.message.ts}), chart {chart} "
            f"(file {outcome.file.id})")


def run_scheduled(config: LoadedConfig, slack: Any, *, now: datetime | None = None,
                  sleep: Callable[[float], None] | None = None) -> ReportFiles:
    """One scheduled run: the period of ``report.since`` ending at the start of this hour,
    written to ``report.out_dir`` and posted to ``report.slack_channel`` when set.

    Raises what :func:`generate` and the Slack connector raise; the hub logs it.
    """
    settings = config.app.report
    moment = now or datetime.now(UTC)
    period = resolve_period(settings.since, None, zone(settings.timezone), moment)
    files = generate(config, period, out_dir(config), now=moment)
    log.info("trend report %s written: %s", period.label(), files.markdown)
    if settings.slack_channel is not None and slack is not None:
        outcome = publish(files, slack, settings.slack_channel, now=moment.timestamp(),
                          sleep=sleep)
        log.info("trend report %s", _outcome_line(settings.slack_channel, outcome))
    return files


def schedule_report(scheduler: BaseScheduler, settings: ReportSettings,
                    run: Callable[[], Any]) -> Job:
    """Add the report job on ``settings.schedule`` in ``settings.timezone`` (never
    overlapping, missed runs coalesced into one, run up to an hour late)."""
    return scheduler.add_job(run, cron_trigger(settings.schedule, settings.timezone),
                             id=REPORT_JOB_ID, max_instances=1, coalesce=True,
                             misfire_grace_time=3600, replace_existing=True)
