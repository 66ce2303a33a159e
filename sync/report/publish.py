"""Posting a report to Slack once: the summary as a message, the main chart as a file.

The summary carries the idempotency key ``switchboard-report:<period>`` as message metadata (as
every Switchboard message does); the chart is shared under a file name that names the period.
Before each step the channel's history since the end of the period is searched — for the key
(:meth:`~connectors.slack.SlackConnector.find_by_key`), then for the file name
(:meth:`~connectors.slack.SlackConnector.find_file`) — so a report run twice for the same period,
or run again after a failure half-way, posts what is missing and nothing twice. A retriable
failure (rate limit, 5xx, a lost answer) is tried again after ``Retry-After`` or a short backoff,
at most ``attempts`` times in all. Caveat: Slack shares a completed upload asynchronously, so an
upload whose answer was lost may not be listed yet when it is looked for a moment later.
"""

from __future__ import annotations

__all__ = ["KEY_PREFIX", "PostOutcome", "post_report", "slack_file_name"]

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.errors import RetriableError
from connectors.models import SlackFile, SlackMessage, SlackPosted
from sync.report.charts import CHARTS, MAIN_CHART
from sync.report.model import TrendReport

KEY_PREFIX = "switchboard-report:"
log = logging.getLogger("switchboard.report")
#: Searched before the end of the period too, for clocks a little apart.
_MARGIN_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class PostOutcome:
    """The summary message and the chart file in Slack, and whether this run made them."""

    message: SlackPosted
    message_posted: bool
    file: SlackFile
    file_uploaded: bool


def slack_file_name(report: TrendReport, chart: str = MAIN_CHART) -> str:
    """The chart's file name in Slack: one per period, so it can be looked for."""
    return f"switchboard-report-{report.period.key}-{chart}.png"


def post_report(slack: Any, channel: str, report: TrendReport, summary: str, chart: Path, *,
                now: float, attempts: int = 3,
                sleep: Callable[[float], None] = time.sleep) -> PostOutcome:
    """Post ``summary`` and upload ``chart`` to ``channel`` unless they are there already.

    ``slack`` is a :class:`~connectors.slack.SlackConnector`; ``now`` is the wall clock (unix
    seconds). Raises the connector's errors (``connectors.errors``) once ``attempts`` are spent
    on retriable ones, at once for the others.
    """
    for attempt in range(1, attempts + 1):
        try:
            return _post_once(slack, channel, report, summary, chart, now=now)
        except RetriableError as exc:
            if attempt == attempts:
                raise
            wait = exc.retry_after if exc.retry_after is not None else 2.0 * attempt
            log.warning("report post to %s failed (%s); attempt %s of %s in %.0fs", channel,
                        exc, attempt + 1, attempts, wait)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def _post_once(slack: Any, channel: str, report: TrendReport, summary: str, chart: Path, *,
               now: float) -> PostOutcome:
    key = KEY_PREFIX + report.period.key
    oldest = min(report.period.until.timestamp(), now) - _MARGIN_SECONDS
    message: SlackPosted | None = slack.find_by_key(channel, key, oldest=oldest)
    posted = message is None
    if message is None:
        message = slack.post(channel, SlackMessage(summary), key=key)
    name = slack_file_name(report)
    shared: SlackFile | None = slack.find_file(channel, name, oldest=oldest)
    uploaded = shared is None
    if shared is None:
        shared = slack.upload_file(
            channel, name, chart.read_bytes(), title=f"{CHARTS[MAIN_CHART]}, "
            f"{report.period.label()}", initial_comment=f"{CHARTS[MAIN_CHART]}: "
            f"{report.period.label()}", alt_text=CHARTS[MAIN_CHART])  # fmt: skip
    return PostOutcome(message, posted, shared, uploaded)
