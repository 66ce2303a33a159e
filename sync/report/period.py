"""The period a trend report covers, and the previous period it is compared with.

A period is ``[since, until)``. ``until`` defaults to the start of the current hour in the
report's time zone, so that runs within the same hour report the same period (and a second
Slack post of it is recognised). ``since`` is a duration back from ``until`` (``90m``, ``24h``,
``7d``, ``2w``) or a date / time. Days and weeks are counted on the wall clock of the zone (a
week across a daylight-saving change is still Monday 09:00 to Monday 09:00); minutes and hours
are absolute. The previous period has the same length and ends where this one starts.
"""

from __future__ import annotations

__all__ = ["Period", "parse_duration", "parse_moment", "resolve_period"]

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True, slots=True)
class Span:
    """A duration as written: an amount of minutes, hours, days or weeks."""

    amount: int
    unit: str

    def back(self, moment: datetime, tz: tzinfo) -> datetime:
        """``moment`` minus this span (days and weeks on the zone's wall clock), aware UTC."""
        delta = timedelta(**{_UNITS[self.unit]: self.amount})
        if self.unit in ("d", "w"):
            local = moment.astimezone(tz).replace(tzinfo=None) - delta
            return local.replace(tzinfo=tz).astimezone(UTC)
        return (moment - delta).astimezone(UTC)


def parse_duration(text: str) -> Span:
    """``7d`` -> Span(7, "d"). Raises ValueError for anything but a positive Nm/Nh/Nd/Nw."""
    match = _DURATION.match(text or "")
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration: write a positive number of minutes, "
                         "hours, days or weeks, e.g. 90m, 24h, 7d, 2w")
    return Span(int(match.group(1)), match.group(2).lower())


def parse_moment(text: str, tz: tzinfo) -> datetime:
    """A date (``2026-11-30``: midnight in ``tz``) or an ISO time (with an offset or ``Z``;
    without one, in ``tz``), aware UTC. Raises ValueError otherwise."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a date (2026-11-30) or a time "
                         "(2026-11-30T09:00, 2026-11-30T09:00:00Z)") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Period:
    """``[since, until)`` (aware UTC) in a time zone, and how to go one period back."""

    since: datetime
    until: datetime
    tz: tzinfo
    span: Span | None = None

    @property
    def previous(self) -> Period:
        """The period of the same length that ends where this one starts."""
        start = self.span.back(self.since, self.tz) if self.span is not None \
            else self.since - (self.until - self.since)
        return Period(start, self.since, self.tz, self.span)

    @property
    def key(self) -> str:
        """A stable name of the period (UTC), for idempotency keys and file names."""
        return f"{self.since:%Y%m%dT%H%MZ}-{self.until:%Y%m%dT%H%MZ}"

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def label(self) -> str:
        """``2026-11-23 09:00 – 2026-11-30 09:00 (Europe/Berlin)``."""
        return (f"{self.local(self.since):%Y-%m-%d %H:%M} – {self.local(self.until):%Y-%m-%d %H:%M}"
                f" ({self.tz})")

    def contains(self, moment: datetime) -> bool:
        return self.since <= moment < self.until


def resolve_period(since: str, until: str | None, tz: tzinfo, now: datetime) -> Period:
    """The period of ``--since`` / ``--until`` as of ``now``. Raises ValueError with a message
    for the user when either cannot be read, the period is empty, or it or the previous period
    starts before the first moment a datetime holds."""
    try:
        period = _resolve(since, until, tz, now)
        period.previous  # noqa: B018 -- computed here so that an overflow is the user's error
    except OverflowError:
        raise ValueError("the period is too far back: it and the previous period of the same "
                         "length must both start after the year 1") from None
    return period


def _resolve(since: str, until: str | None, tz: tzinfo, now: datetime) -> Period:
    if until:
        end = parse_moment(until, tz)
    else:
        local = now.astimezone(tz)
        end = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    span: Span | None = None
    try:
        span = parse_duration(since)
    except ValueError:
        try:
            start = parse_moment(since, tz)
        except ValueError:
            raise ValueError(f"--since {since!r}: write a duration (7d, 24h, 2w, 90m) or a "
                             "date (2026-11-23)") from None
    else:
        start = span.back(end, tz)
    if start >= end:
        raise ValueError(f"the period is empty: since {start:%Y-%m-%d %H:%M} UTC is not "
                         f"before until {end:%Y-%m-%d %H:%M} UTC")
    return Period(start, end, tz, span)
