"""The trend report (DESIGN.md flow 5): what support asked about, what rose, what product and
engineering should hear — computed from the store only, written as Markdown, HTML and PNG charts,
posted to Slack, on demand (``switchboard report``) or on a cron schedule in the hub.

- :mod:`.settings` — the ``report:`` config section (cron and time zone checked at load);
- :mod:`.period` — the period and the previous one it is compared with;
- :mod:`.data` — the numbers, from snapshots, links, Jira states, Productboard notes and SLA
  alerts (:mod:`.model` holds them and defines each);
- :mod:`.render` and :mod:`.charts` — Markdown, HTML, the Slack summary, the PNG charts;
- :mod:`.publish` — the Slack post, once per period;
- :mod:`.command` — the command and the scheduled job.

The config loads :mod:`.settings` at every start, so the modules that pull in matplotlib and the
config itself are imported on first use of their names here.
"""

from __future__ import annotations

import importlib
from typing import Any

from .model import DEFINITIONS, TrendReport
from .period import Period, parse_duration, resolve_period
from .settings import ReportSettings, cron_trigger, report_problems

__all__ = [
    "DEFINITIONS",
    "Period",
    "PostOutcome",
    "ReportFiles",
    "ReportOptions",
    "ReportSettings",
    "StoreUnavailableError",
    "TrendReport",
    "build_report",
    "cron_trigger",
    "generate",
    "parse_duration",
    "post_report",
    "read_report",
    "render_charts",
    "render_html",
    "render_markdown",
    "report_problems",
    "resolve_period",
    "run_report",
    "run_scheduled",
    "schedule_report",
    "slack_summary",
]

_LAZY = {
    "ReportOptions": "data", "StoreUnavailableError": "data", "build_report": "data",
    "read_report": "data", "render_charts": "charts", "render_html": "render",
    "render_markdown": "render", "slack_summary": "render", "PostOutcome": "publish",
    "post_report": "publish", "ReportFiles": "command", "generate": "command",
    "run_report": "command", "run_scheduled": "command", "schedule_report": "command",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
