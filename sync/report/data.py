"""Computing a trend report from the store: read-only, no vendor call.

Snapshots are streamed, never loaded whole: SQL picks the few JSON values a report needs (tags,
status, created_at, the category and article fields, and the subject and description only of
tickets that mention a help-center URL) of the tickets created in this period or the previous
one, and Python counts them. Links, notes and SLA alerts are aggregated in SQL. Tables a store
may not have yet (``productboard_notes``, ``jira_issues``, ``sla_alerts`` — older migrations)
are looked up at run time and their section says so instead of failing.
"""

from __future__ import annotations

__all__ = ["MARKER_PREFIX", "ReportOptions", "StoreUnavailableError", "build_report",
           "has_article_link", "read_report"]

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from sync.report.model import (
    BugRow,
    CountRow,
    DocGapRow,
    FeatureRow,
    RiserRow,
    SlaRow,
    SlaSection,
    SolvedRow,
    TrendReport,
)
from sync.report.period import Period
from sync.schema import (
    bugs,
    cursors,
    jira_issues,
    links,
    productboard_notes,
    sla_alerts,
    snapshots,
)
from sync.store import Store

#: Switchboard's own marker tags (``sync.actions``): bookkeeping, never a topic.
MARKER_PREFIX = "switchboard_"
SOLVED = frozenset({"solved", "closed"})
#: A help-center article URL: Zendesk Guide serves articles under ``/hc/<locale>/articles/<id>``
#: (the locale is optional), on the account's domain or a custom one.
HC_ARTICLE = re.compile(r"https?://[^\s\"'<>]+/hc/(?:[a-z]{2}(?:-[a-z0-9]+)?/)?articles/\d+",
                        re.IGNORECASE)
NO_CATEGORY = "(none)"
#: The row of notes linked to no feature that carry no topic tag either.
NO_TOPIC = "(no feature, no topic tag)"
#: The cursor name prefix under which the Productboard poll keeps a linked feature's state.
FEATURE_CURSOR = "productboard-feature:"
_STREAM = 5000


class StoreUnavailableError(RuntimeError):
    """The store does not exist or holds no Switchboard tables."""


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """What a report counts (from ``report:`` in the config)."""

    category_field: str | None = None
    article_field: str | None = None
    article_tags: tuple[str, ...] = ("kb_linked",)
    ignore_tags: tuple[str, ...] = ()
    note_ignore_tags: tuple[str, ...] = ()
    top: int = 10
    riser_min_count: int = 5
    doc_gap_min_tickets: int = 3

    def article_rule(self) -> str:
        """The rule that says a ticket had a help-center article linked, in words."""
        parts = []
        if self.article_tags:
            parts.append("it carries a tag of report.article_tags ("
                         + ", ".join(self.article_tags) + ")")
        if self.article_field:
            parts.append(f"its custom field {self.article_field} is not empty")
        parts.append("its subject or description holds a help-center article URL "
                     "(…/hc/[locale/]articles/<id>)")
        return "a ticket had an article linked when " + ", or ".join(parts)


def has_article_link(tags: Iterable[str], field_value: Any, text: str | None,
                     options: ReportOptions) -> bool:
    """Whether a ticket had a help-center article linked, by :meth:`ReportOptions.article_rule`."""
    if any(tag in options.article_tags for tag in tags):
        return True
    if options.article_field and field_value not in (None, "", "[]", "false", [], False):
        return True
    return bool(text) and HC_ARTICLE.search(text or "") is not None


def read_report(url: str, period: Period, options: ReportOptions, *,
                now: datetime | None = None, sla: Any = None) -> TrendReport:
    """Open the store at ``url`` read-only (no lock, no migration) and compute the report.

    Raises :class:`StoreUnavailableError` when the store is missing or has no snapshots table.
    """
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if not database or database == ":memory:" or not Path(database).is_file():
            raise StoreUnavailableError(f"{database or url}: no such store (has the hub run "
                                        "with this config?)")
    store = Store(url, checkpoints=False)
    try:
        with store.read() as conn:
            if not sa.inspect(conn).has_table("snapshots"):
                raise StoreUnavailableError(f"{url}: not a Switchboard store (no snapshots)")
            return build_report(conn, period, options, now=now, sla=sla)
    except sa.exc.OperationalError as exc:
        raise StoreUnavailableError(f"{url}: cannot read the store ({exc.orig or exc})") from exc
    finally:
        store.engine.dispose()


def build_report(conn: sa.Connection, period: Period, options: ReportOptions, *,
                 now: datetime | None = None, sla: Any = None) -> TrendReport:
    """Every section of the report of ``period`` from an open connection.

    ``sla`` is the config's ``sla`` section (``sync.sla_config.SlaSettings``) or None: whether
    the SLA watch runs, and the targets the solved-within-target estimate uses.
    """
    previous = period.previous
    inspector = sa.inspect(conn)
    tally = _Tally(period, previous, options, _resolution_targets(sla))
    for row in _snapshot_rows(conn, previous.since, period.until, options):
        tally.add(row)
    undated = int(conn.execute(sa.select(sa.func.count()).select_from(snapshots).where(
        snapshots.c.data["created_at"].as_string().is_(None))).scalar_one())
    features, features_note = (_features(conn, period, options)
                               if inspector.has_table("productboard_notes")
                               else ((), "no Productboard notes table in this store"))
    return TrendReport(
        period=period, previous=previous, generated_at=now or datetime.now(UTC),
        tickets=tally.total[0], tickets_previous=tally.total[1], undated=undated,
        tags=tally.tag_rows(), top_tags=tally.tag_rows()[:options.top],
        risers=tally.risers(), category_field=options.category_field,
        categories=tally.category_rows(), features=features, features_note=features_note,
        bugs=_bugs(conn, period, options, inspector.has_table("jira_issues")),
        doc_gaps=tally.doc_gaps(), sla=_sla(conn, period, inspector, sla, tally),
        buckets=tally.bucket_rows(), bucket_unit=tally.unit,
        riser_min_count=options.riser_min_count,
        doc_gap_min_tickets=options.doc_gap_min_tickets, article_rule=options.article_rule())


# -- tickets ------------------------------------------------------------------------------------


def _snapshot_rows(conn: sa.Connection, start: datetime, end: datetime,
                   options: ReportOptions) -> Iterable[sa.Row[Any]]:
    data = snapshots.c.data
    created = data["created_at"].as_string()
    subject = sa.func.coalesce(data["subject"].as_string(), "")
    description = sa.func.coalesce(data["description"].as_string(), "")
    # Only tickets that mention /hc/ bring their text back, for the exact URL check.
    text = sa.case((sa.or_(subject.like("%/hc/%"), description.like("%/hc/%")),
                    subject + " " + description), else_=sa.null())
    # Values come back as text (a list as its JSON text), parsed here only where needed: the
    # JSON type's own decoding of three values per row costs more than the rest of the count.
    columns: list[Any] = [created.label("created"), data["status"].as_string().label("status"),
                          data["tags"].as_string().label("tags"), text.label("text"),
                          data["priority"].as_string().label("priority"),
                          data["updated_at"].as_string().label("updated")]
    columns.append((data[("fields", options.category_field)].as_string()
                    if options.category_field else sa.null()).label("category"))
    columns.append((data[("fields", options.article_field)].as_string()
                    if options.article_field else sa.null()).label("article"))
    # created_at is stored as Zendesk writes it (2026-11-27T10:00:00Z), which sorts as text; a
    # day of margin keeps any other spelling in, and Python decides exactly.
    low = f"{start - timedelta(days=1):%Y-%m-%dT%H:%M:%S}Z"
    high = f"{end + timedelta(days=1):%Y-%m-%dT%H:%M:%S}Z"
    query = sa.select(*columns).where(created >= low, created < high)
    return conn.execution_options(stream_results=True, yield_per=_STREAM).execute(query)


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _json_list(text: Any) -> list[Any]:
    """A JSON array as SQL returned its text (``[]`` for anything else)."""
    if not isinstance(text, str) or not text.startswith("["):
        return []
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    return value if isinstance(value, list) else []


def _values(value: Any) -> list[str]:
    """A custom field's value(s) as text: a list (a multi-select, as JSON text) counts each
    item; empty -> ``(none)``."""
    if isinstance(value, str) and value.startswith("["):
        value = _json_list(value) or None
    items = value if isinstance(value, list) else [value]
    out = [str(v).strip() for v in items if v not in (None, "") and str(v).strip()]
    return out or [NO_CATEGORY]


class _Tally:
    """Counters over the streamed snapshots; index 0 = this period, 1 = the previous one."""

    def __init__(self, period: Period, previous: Period, options: ReportOptions,
                 targets: Callable[[str | None], timedelta | None] | None = None) -> None:
        self.period, self.previous, self.options = period, previous, options
        self.targets = targets
        #: (priority, target) -> [solved, solved within the target]
        self.resolved: dict[tuple[str, timedelta], list[int]] = defaultdict(lambda: [0, 0])
        self.ignored = frozenset(options.ignore_tags)
        self.total = [0, 0]
        self.tags: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
        self.categories: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
        self.solved: Counter[str] = Counter()
        self.gaps: Counter[str] = Counter()
        length = period.until - period.since
        self.unit = "day" if length >= timedelta(days=3) else "hour"
        self.step = timedelta(days=1) if self.unit == "day" else timedelta(hours=1)
        self.buckets: tuple[Counter[int], Counter[int]] = (Counter(), Counter())

    def add(self, row: sa.Row[Any]) -> None:
        created = _when(row.created)
        if created is None:
            return
        if self.period.contains(created):
            index, start = 0, self.period.since
        elif self.previous.contains(created):
            index, start = 1, self.previous.since
        else:
            return
        tags = {t.lower() for t in _json_list(row.tags) if isinstance(t, str) and t}
        counted = {t for t in tags if not t.startswith(MARKER_PREFIX) and t not in self.ignored}
        self.total[index] += 1
        self.tags[index].update(counted)
        if self.options.category_field:
            self.categories[index].update(set(_values(row.category)))
        self.buckets[index][self._bucket(created, start)] += 1
        if index == 0 and (row.status or "").lower() in SOLVED:
            self.solved.update(counted)
            if not has_article_link(tags, row.article, row.text, self.options):
                self.gaps.update(counted)
            if self.targets is not None:
                self._resolution(row.priority, created, _when(row.updated))

    def _resolution(self, priority: str | None, created: datetime,
                    updated: datetime | None) -> None:
        assert self.targets is not None
        target = self.targets(priority)
        if target is None or updated is None:
            return
        cell = self.resolved[(priority or "none", target)]
        cell[0] += 1
        if updated - created <= target:
            cell[1] += 1

    def _bucket(self, moment: datetime, start: datetime) -> int:
        if self.unit == "hour":
            return int((moment - start) // self.step)
        tz = self.period.tz
        return (moment.astimezone(tz).date() - start.astimezone(tz).date()).days

    def tag_rows(self) -> tuple[CountRow, ...]:
        names = set(self.tags[0]) | set(self.tags[1])
        rows = [CountRow(n, self.tags[0][n], self.tags[1][n]) for n in names]
        return tuple(sorted((r for r in rows if r.current), key=lambda r: (-r.current, r.name)))

    def category_rows(self) -> tuple[CountRow, ...]:
        names = set(self.categories[0]) | set(self.categories[1])
        rows = [CountRow(n, self.categories[0][n], self.categories[1][n]) for n in names]
        return tuple(sorted(rows, key=lambda r: (r.name == NO_CATEGORY, -r.current,
                                                 -r.previous, r.name)))

    def risers(self) -> tuple[RiserRow, ...]:
        rows = [RiserRow(tag, now, self.tags[1][tag], (now - self.tags[1][tag])
                         / max(self.tags[1][tag], 1))
                for tag, now in self.tags[0].items()
                if now >= self.options.riser_min_count and now > self.tags[1][tag]]
        rows.sort(key=lambda r: (-r.growth, -r.current, r.tag))
        return tuple(rows[:self.options.top])

    def doc_gaps(self) -> tuple[DocGapRow, ...]:
        rows = [DocGapRow(tag, n, self.solved[tag]) for tag, n in self.gaps.items()
                if n >= self.options.doc_gap_min_tickets]
        rows.sort(key=lambda r: (-r.without_article, r.tag))
        return tuple(rows[:self.options.top])

    def bucket_rows(self) -> tuple[tuple[str, int, int], ...]:
        out = []
        moment, index = self.period.since, 0
        while moment < self.period.until:
            local = moment.astimezone(self.period.tz)
            label = f"{local:%Y-%m-%d}" if self.unit == "day" else f"{local:%m-%d %H:00}"
            out.append((label, self.buckets[0][index], self.buckets[1][index]))
            index += 1
            moment = moment + self.step if self.unit == "hour" \
                else _next_day(moment, self.period.tz)
        return tuple(out)


def _next_day(moment: datetime, tz: Any) -> datetime:
    """The next local midnight after ``moment`` (aware UTC)."""
    local = moment.astimezone(tz)
    day = local.date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


# -- features, bugs, SLA ----------------------------------------------------------------------


def _feature_names(conn: sa.Connection, ids: set[str]) -> Mapping[str, str]:
    """Feature names the store keeps: the Productboard poll records each linked feature's state
    (``id``, ``name``, ``status``) as the cursor ``productboard-feature:<id>``
    (``sync.productboard_events.feature_cursor``)."""
    if not ids:
        return {}
    names = {f"{FEATURE_CURSOR}{i}": i for i in ids}
    out: dict[str, str] = {}
    for row in conn.execute(sa.select(cursors.c.name, cursors.c.value)
                            .where(cursors.c.name.in_(sorted(names)))):
        value = row.value if isinstance(row.value, dict) else {}
        if isinstance(value.get("name"), str) and value["name"].strip():
            out[names[row.name]] = value["name"].strip()
    return out


def _features(conn: sa.Connection, period: Period,
              options: ReportOptions) -> tuple[tuple[FeatureRow, ...], str]:
    notes = productboard_notes
    rows = conn.execute(sa.select(notes.c.id, notes.c.feature_id, notes.c.requester_email,
                                  notes.c.organization, notes.c.tags)
                        .where(notes.c.created_at >= period.since,
                               notes.c.created_at < period.until)).all()
    names = _feature_names(conn, {str(r.feature_id) for r in rows if r.feature_id})
    ignored = frozenset(options.ignore_tags) | frozenset(options.note_ignore_tags)
    by_key: dict[tuple[str, str | None], tuple[set[int], set[str]]] = defaultdict(
        lambda: (set(), set()))
    total = 0
    for row in rows:
        total += 1
        customer = (row.organization or "").strip().casefold() or \
            (row.requester_email or "").strip().casefold()
        if row.feature_id:
            fid = str(row.feature_id)
            keys: list[tuple[str, str | None]] = [(names.get(fid, f"feature {fid}"), fid)]
        else:
            tags = row.tags if isinstance(row.tags, list) else []
            keys = [(f"tag: {t}", None) for t in sorted({str(t).lower() for t in tags})
                    if t and not str(t).lower().startswith(MARKER_PREFIX)
                    and str(t).lower() not in ignored] or [(NO_TOPIC, None)]
        for key in keys:
            ids, customers = by_key[key]
            ids.add(int(row.id))
            if customer:
                customers.add(customer)
    out = [FeatureRow(label, fid, len(ids), len(customers))
           for (label, fid), (ids, customers) in by_key.items()]
    out.sort(key=lambda r: (-r.customers, -r.notes, r.label))
    note = "" if total else "no Productboard notes in the period"
    return tuple(out[:options.top]), note


def _bugs(conn: sa.Connection, period: Period, options: ReportOptions,
          has_issues: bool) -> tuple[BugRow, ...]:
    in_period = sa.func.sum(sa.case((sa.and_(links.c.created_at >= period.since,
                                             links.c.created_at < period.until), 1), else_=0))
    counted = conn.execute(
        sa.select(links.c.ref, sa.func.count().label("total"), in_period.label("recent"),
                  sa.func.max(links.c.url).label("url"))
        .where(links.c.system == "jira").group_by(links.c.ref)
        .having(in_period > 0)).all()
    ranked = sorted(counted, key=lambda r: (-int(r.recent), -int(r.total), r.ref))
    ranked = ranked[:options.top]
    keys = [r.ref for r in ranked]
    status: dict[str, str] = {}
    urls: dict[str, str] = {}
    if keys:
        for bug in conn.execute(sa.select(bugs.c.jira_key, bugs.c.status, bugs.c.url)
                                .where(bugs.c.jira_key.in_(keys))):
            if bug.status:
                status[bug.jira_key] = str(bug.status)
            urls[bug.jira_key] = str(bug.url)
        if has_issues:
            for issue in conn.execute(sa.select(jira_issues.c.key, jira_issues.c.state,
                                                jira_issues.c.gone)
                                      .where(jira_issues.c.key.in_(keys))):
                state = issue.state if isinstance(issue.state, dict) else {}
                if issue.gone:
                    status[issue.key] = "deleted in Jira"
                elif state.get("status"):
                    status[issue.key] = str(state["status"])
    return tuple(BugRow(r.ref, int(r.recent), int(r.total), status.get(r.ref, "unknown"),
                        urls.get(r.ref) or r.url) for r in ranked)


def _resolution_targets(sla: Any) -> Callable[[str | None], timedelta | None] | None:
    """priority -> the resolution target ``sla.targets`` sets for it and any plan (snapshots do
    not hold the plan tier), or None without targets."""
    if sla is None or not getattr(sla, "targets", ()):
        return None

    def target(priority: str | None) -> timedelta | None:
        entry = sla.target_for("resolution", priority, None)
        value = entry.of("resolution") if entry is not None else None
        return value if isinstance(value, timedelta) else None

    return target


_PRIORITY_ORDER = {"urgent": 0, "high": 1, "normal": 2, "low": 3}


def _sla(conn: sa.Connection, period: Period, inspector: Any, sla: Any,
         tally: _Tally) -> SlaSection:
    watching = bool(getattr(sla, "enabled", False))
    has_alerts = inspector.has_table("sla_alerts")
    if has_alerts:
        rows, warned, breached = _alerts(conn, period)
        if rows:
            return SlaSection(rows, warned, breached, "")
    if watching and has_alerts:
        return SlaSection((), 0, 0, "no SLA warnings or breaches in the period")
    if tally.targets is not None:
        solved = tuple(SolvedRow(priority, int(target.total_seconds() // 60), n, within)
                       for (priority, target), (n, within) in sorted(
                           tally.resolved.items(),
                           key=lambda item: (_PRIORITY_ORDER.get(item[0][0], 9), item[0][0])))
        note = ("the SLA watch is off (sla.enabled): solved tickets against the configured "
                "resolution targets instead, solve time estimated as last update − creation; "
                "first-reply targets and plan-tier targets cannot be checked from snapshots")
        if not solved:
            note = "no solved ticket in the period has a resolution target (sla.targets)"
        return SlaSection((), 0, 0, note, solved)
    if not has_alerts:
        return SlaSection((), 0, 0, "no SLA data (this store has no SLA alerts table)")
    return SlaSection((), 0, 0, "no SLA data (the SLA watch is off and sla.targets is empty)")


def _alerts(conn: sa.Connection, period: Period) -> tuple[tuple[SlaRow, ...], int, int]:
    alerts = sla_alerts
    fired = sa.and_(alerts.c.fired_at >= period.since, alerts.c.fired_at < period.until)
    grouped = conn.execute(
        sa.select(alerts.c.target, alerts.c.plan, alerts.c.kind,
                  sa.func.count(sa.distinct(alerts.c.ticket_id)).label("tickets"))
        .where(fired).group_by(alerts.c.target, alerts.c.plan, alerts.c.kind)).all()
    totals = {row[0]: int(row[1]) for row in conn.execute(
        sa.select(alerts.c.kind, sa.func.count(sa.distinct(alerts.c.ticket_id)))
        .where(fired).group_by(alerts.c.kind))}
    cells: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for row in grouped:
        cells[(str(row.target), str(row.plan or "any"))][_kind(row.kind)] = int(row.tickets)
    rows = tuple(SlaRow(target, tier, c.get("warning", 0), c.get("breached", 0))
                 for (target, tier), c in sorted(cells.items()))
    warned = sum(v for k, v in totals.items() if _kind(k) == "warning")
    breached = sum(v for k, v in totals.items() if _kind(k) == "breached")
    return rows, warned, breached


def _kind(kind: Any) -> str:
    """``sla.warning`` / ``warning`` -> ``warning``; ``sla.breached`` / ``breach`` ->
    ``breached``."""
    text = str(kind or "").lower().removeprefix("sla.")
    return "breached" if text.startswith("breach") else "warning" if text.startswith("warn") \
        else text

