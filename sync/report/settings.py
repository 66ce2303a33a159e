"""The ``report:`` section of ``config.yaml``: when the trend report runs and what it counts.

Validated with the rest of the config (every problem at once, each at its ``file:line``):
``schedule`` must be a 5-field crontab expression, ``timezone`` an IANA zone name, ``since`` a
duration (``7d``); :func:`report_problems` checks what needs the rest of the config
(``category_field`` and ``article_field`` are names of ``connectors.zendesk.custom_fields``,
``slack_channel`` needs ``connectors.slack``).

Crontab's day-of-week numbers (0 or 7 = Sunday, 1 = Monday) are translated into names before
APScheduler 3 sees them: its ``CronTrigger.from_crontab`` reads 0 as Monday. When both day fields
are restricted (neither starts with ``*``), crontab runs on a day matching either of them, where
one ``CronTrigger`` would need both: such a schedule is the union of two triggers.
"""

from __future__ import annotations

__all__ = ["ReportSettings", "cron_trigger", "report_problems", "zone"]

import re
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sync.report.period import parse_duration

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NUMERIC_DAYS = re.compile(r"^(\*|\d+(?:-\d+)?)(?:/(\d+))?$")


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``. Raises ValueError naming it when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {name!r} (an IANA name such as Europe/Berlin "
                         "or UTC)") from exc


def _weekdays(field: str) -> str:
    """A crontab day-of-week field with its numbers (0-7, Sunday = 0 or 7) as day names."""
    out: list[str] = []
    for token in field.split(","):
        match = _NUMERIC_DAYS.match(token)
        if match is None or token == "*":
            out.append(token)  # names (mon-fri) and "*" mean the same to APScheduler
            continue
        span, step = match.group(1), int(match.group(2) or 1)
        if span == "*":
            first, last = 0, 6
        else:
            first_text, _, last_text = span.partition("-")
            first = int(first_text)
            last = int(last_text) if last_text else (first if match.group(2) is None else 7)
        if not (0 <= first <= 7 and 0 <= last <= 7) or first > last or step < 1:
            raise ValueError(f"day of week {token!r}: numbers run from 0 to 7 (0 and 7 are "
                             "Sunday), a range from low to high")
        out.extend(dict.fromkeys(_DAY_NAMES[day % 7] for day in range(first, last + 1, step)))
    return ",".join(dict.fromkeys(out))


def cron_trigger(expression: str, timezone: str) -> BaseTrigger:
    """The APScheduler trigger of a 5-field crontab ``expression`` in ``timezone``.

    Raises ValueError with a readable reason for a malformed expression or an unknown zone.
    """
    tz = zone(timezone)
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"{expression!r} is not a cron expression: it needs 5 fields (minute "
                         f"hour day-of-month month day-of-week, e.g. \"0 9 * * MON\"), not "
                         f"{len(fields)}")
    either = not fields[2].startswith("*") and not fields[4].startswith("*")
    fields[4] = _weekdays(fields[4])

    def trigger(day: str, day_of_week: str) -> CronTrigger:
        return CronTrigger(minute=fields[0], hour=fields[1], day=day, month=fields[3],
                           day_of_week=day_of_week, timezone=tz)

    try:
        if either:
            return OrTrigger([trigger(fields[2], "*"), trigger("*", fields[4])])
        return trigger(fields[2], fields[4])
    except ValueError as exc:
        raise ValueError(f"{expression!r} is not a valid cron expression: {exc}") from exc


class ReportSettings(BaseModel):
    """When the trend report runs, where it goes, and the thresholds of its sections."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(False, description="run the report on `schedule` in the hub")
    schedule: str = Field("0 9 * * MON", description="5-field crontab expression, in `timezone`")
    timezone: str = Field("UTC", description="IANA zone of the schedule, the period's bounds and "
                          "the dates shown")
    since: str = Field("7d", description="length of the reported period (Nm, Nh, Nd, Nw); the "
                       "previous period of the same length is the comparison")
    out_dir: str = Field("var/reports", description="where the files go; relative to the "
                         "config file")
    slack_channel: str | None = Field(None, description="channel the summary and the main "
                                      "chart are posted to (needs connectors.slack)")
    category_field: str | None = Field(None, description="a connectors.zendesk.custom_fields "
                                       "name holding the feedback category")
    top: int = Field(10, ge=1, le=100, description="rows per ranked table")
    riser_min_count: int = Field(5, ge=1, description="tickets a tag needs in the period to "
                                 "rank as a riser")
    doc_gap_min_tickets: int = Field(3, ge=1, description="solved tickets without an article a "
                                     "tag needs to count as a documentation gap")
    article_tags: tuple[str, ...] = Field(("kb_linked",), description="tags that mark a ticket "
                                          "answered with a help-center article")
    article_field: str | None = Field(None, description="a connectors.zendesk.custom_fields name "
                                      "that, when set, marks a help-center article linked")
    ignore_tags: tuple[str, ...] = Field((), description="tags never counted (Switchboard's "
                                         "switchboard_* marker tags never are)")
    note_ignore_tags: tuple[str, ...] = Field((), description="Productboard note tags that are "
                                              "no topic (e.g. the tags every note gets)")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("since")
    @classmethod
    def _since(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("article_tags", "ignore_tags", "note_ignore_tags")
    @classmethod
    def _tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(tag.strip().lower() for tag in value)
        if any(not tag or " " in tag for tag in cleaned):
            raise ValueError("tags are single words (no spaces), not empty")
        return cleaned

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        cron_trigger(value, "UTC")  # the zone does not change what is valid
        return value


def report_problems(data: Any, custom_fields: Iterable[str]) -> list[tuple[tuple[str, ...], str,
                                                                          str]]:
    """What the ``report`` section asks of the rest of the config, as (path, message, hint):
    custom field names it uses that ``connectors.zendesk.custom_fields`` lacks, and a Slack
    channel without ``connectors.slack``. ``data`` is the config file's mapping (checked even
    when other settings are invalid, so every problem is reported at once)."""
    report = data.get("report") if isinstance(data, dict) else None
    if not isinstance(report, dict):
        return []
    fields = set(custom_fields)
    problems: list[tuple[tuple[str, ...], str, str]] = []
    for key in ("category_field", "article_field"):
        name = report.get(key)
        if isinstance(name, str) and name not in fields:
            problems.append((("report", key), f"unknown custom field {name!r}",
                             "name one of connectors.zendesk.custom_fields: "
                             + (", ".join(sorted(fields)) or "(none configured)")))
    connectors = data.get("connectors")
    slack = connectors.get("slack") if isinstance(connectors, dict) else None
    if report.get("slack_channel") is not None and not isinstance(slack, dict):
        problems.append((("report", "slack_channel"), "needs connectors.slack, which is not "
                         "configured", "add connectors.slack or remove report.slack_channel"))
    return problems
