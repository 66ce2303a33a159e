"""The demo's last scene: the trend report of what the demo played, written to
``report.out_dir`` and posted to the Slack stand-in's ``#support-reports`` (summary and chart)."""

from __future__ import annotations

__all__ = ["report_scene"]

from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.markup import escape

from sync.report.command import generate, out_dir, publish
from sync.report.period import resolve_period
from sync.report.settings import zone

CHANNEL = "support-reports"


def report_scene(hub: Any, sb: Any, console: Console) -> None:
    """Write the report of ``report.since`` up to the end of this hour (every ticket the demo
    created is in it) and post it once to the stand-in's ``#support-reports``."""
    config = hub.config
    settings = config.app.report
    tz = zone(settings.timezone)
    now = datetime.now(UTC)
    end = now.astimezone(tz).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    period = resolve_period(settings.since, end.isoformat(), tz, now)
    files = generate(config, period, out_dir(config), now=now)
    report = files.report
    console.rule("Trend report")
    console.print(f"{period.label()}: {report.tickets} tickets; top tags "
                  + ", ".join(f"{r.name} ({r.current})" for r in report.top_tags[:5]))
    console.print(f"Written: {files.markdown}, {files.html.name}, "
                  + ", ".join(p.name for p in files.charts.values()))
    if hub.slack is None:
        return
    # By id: the hub's connector listed the channels moments ago and re-lists only once a minute.
    channel = sb.slack.add_channel(CHANNEL)
    posted = publish(files, hub.slack, channel, now=now.timestamp())
    console.print(f"Posted to #{CHANNEL}: the summary (ts {posted.message.ts}) and the chart "
                  f"({escape(posted.file.name)})")
