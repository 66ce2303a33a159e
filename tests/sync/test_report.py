"""The trend report's numbers, files and command, over the hand-computed fixture
``tests/fixtures/report/store.json``.

The period is ``--since 7d --until 2026-11-30T09:00`` in Europe/Berlin (UTC+1 in November):
this period = [2026-11-23T08:00Z, 2026-11-30T08:00Z), previous = [2026-11-16T08:00Z,
2026-11-23T08:00Z). Options: category field ``feedback_category``, article field
``kb_article``, article tag ``kb_linked``, ignored tag ``spam``, top 5, risers from 3 tickets,
doc gaps from 2 tickets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from sync.report.charts import CHARTS, HEIGHT, WIDTH, render_charts
from sync.report.data import ReportOptions, build_report, has_article_link
from sync.report.model import (
    BugRow,
    CountRow,
    DocGapRow,
    FeatureRow,
    RiserRow,
    SlaRow,
    SolvedRow,
)
from sync.report.period import parse_duration, resolve_period
from sync.report.render import SECTIONS, render_html, render_markdown, slack_summary
from sync.state import set_cursor
from sync.store import Store
from tests.sync.report_support import load_fixture

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 30, 8, 30, tzinfo=UTC)
OPTIONS = ReportOptions(category_field="feedback_category", article_field="kb_article",
                        article_tags=("kb_linked",), ignore_tags=("spam",), top=5,
                        riser_min_count=3, doc_gap_min_tickets=2)


@dataclass(frozen=True)
class Entry:
    """An ``sla.targets`` entry as the report reads it (``sync.sla_config.SlaTarget``)."""

    priority: str
    resolution: timedelta | None
    plan: str = "*"

    def of(self, target: str) -> timedelta | None:
        return self.resolution if target == "resolution" else None


@dataclass(frozen=True)
class SlaConfig:
    """The config's ``sla`` section as the report reads it (``sync.sla_config.SlaSettings``:
    ``enabled``, ``targets``, ``target_for(target, priority, plan)``, the most specific entry)."""

    enabled: bool
    targets: tuple[Entry, ...] = ()

    def target_for(self, target: str, priority: str | None, plan: str | None) -> Entry | None:
        fitting = [e for e in self.targets if e.of(target) is not None
                   and e.priority in ("*", priority) and (e.plan == "*" or e.plan == plan)]
        return max(fitting, key=lambda e: 2 * (e.priority != "*") + (e.plan != "*"),
                   default=None)


WATCHING = SlaConfig(enabled=True)


@pytest.fixture
def filled(store: Store) -> Store:
    load_fixture(store)
    return store


def period():  # type: ignore[no-untyped-def]
    return resolve_period("7d", "2026-11-30T09:00", BERLIN, NOW)


def report_of(store: Store, options: ReportOptions = OPTIONS):  # type: ignore[no-untyped-def]
    with store.read() as conn:
        return build_report(conn, period(), options, now=NOW, sla=WATCHING)


def test_the_period_and_the_previous_one_are_seven_berlin_days() -> None:
    p = period()
    assert (p.since, p.until) == (datetime(2026, 11, 23, 8, tzinfo=UTC),
                                  datetime(2026, 11, 30, 8, tzinfo=UTC))
    assert (p.previous.since, p.previous.until) == (datetime(2026, 11, 16, 8, tzinfo=UTC),
                                                    p.since)


def test_report_numbers_match_the_hand_computed_fixture(filled: Store) -> None:
    r = report_of(filled)

    # Tickets: this period 101..108 (101 at the first second counts, 109 at `until` does not);
    # previous 201..204 (205 is a second too early); 110 has no created_at.
    assert (r.tickets, r.tickets_previous, r.undated) == (8, 4, 1)

    # Tags of this period (switchboard_abc123 and spam never count):
    #   login 101 102 103 104 = 4 | export 103 105 106 = 3 | sso 101 108 = 2
    #   billing 107 = 1 | kb_linked 102 = 1
    # previous: login 201 = 1 | billing 202 203 = 2 | export 203 204 = 2
    # Ranked by count, then name (billing before kb_linked).
    assert r.top_tags == (CountRow("login", 4, 1), CountRow("export", 3, 2),
                          CountRow("sso", 2, 0), CountRow("billing", 1, 2),
                          CountRow("kb_linked", 1, 0))

    # Risers (>= 3 tickets and more than before): login (4-1)/1 = 3.0, export (3-2)/2 = 0.5;
    # sso grew too but has only 2 tickets.
    assert r.risers == (RiserRow("login", 4, 1, 3.0), RiserRow("export", 3, 2, 0.5))

    # Categories: usability 101 102 103 108 = 4 (103 is a multi-select: usability AND bug),
    # bug 103 104 = 2, feature_request 106 107 = 2, (none) 105 = 1.
    # Previous: bug 201, feature_request 203, (none) 202 and 204 ("" is empty).
    # Ranked by count, then previous count, then name; "(none)" last.
    assert r.categories == (CountRow("usability", 4, 0), CountRow("bug", 2, 1),
                            CountRow("feature_request", 2, 1), CountRow("(none)", 1, 2))

    # Features (notes created in the period; 201's feat-3 note is in the previous one):
    #   feat-2: notes 106 107 108 = 3; customers Initech, Hooli, Umbrella = 3
    #   feat-1: notes 101 102 103 104 = 4; customers acme (Acme, "ACME ", acme) and
    #           c@globex.com (no organization) = 2
    #   105's note has no feature: one row per tag, spam ignored -> export, feature_request.
    # Ranked by customers first: feat-2 beats feat-1 despite fewer notes.
    assert r.features == (FeatureRow("feature feat-2", "feat-2", 3, 3),
                          FeatureRow("feature feat-1", "feat-1", 4, 2),
                          FeatureRow("tag: export", None, 1, 1),
                          FeatureRow("tag: feature_request", None, 1, 1))

    # Bugs (Jira links made in the period): SUP-2 103 104 106 = 3 (3 ever); SUP-1 101 102 = 2
    # (3 ever, 201's link is older); SUP-4 105 and SUP-5 108 = 1 each (key order); SUP-3 only
    # has an old link; the Slack link is not a bug. Status: jira_issues beats bugs (SUP-2
    # Done, not To Do); SUP-4 only in bugs; SUP-5 nowhere.
    assert [(b.key, b.linked_in_period, b.linked_total, b.status) for b in r.bugs] == [
        ("SUP-2", 3, 3, "Done"), ("SUP-1", 2, 3, "In Progress"), ("SUP-4", 1, 1, "To Do"),
        ("SUP-5", 1, 1, "unknown")]
    assert r.bugs[0] == BugRow("SUP-2", 3, 3, "Done",
                               "https://sandbox.atlassian.net/browse/SUP-2")

    # Documentation gaps: solved/closed tickets 101 102 103 104 106 108. With an article:
    # 102 (kb_linked tag), 103 (an /hc/.../articles/ URL), 108 (kb_article set). Without:
    # 101 (login, sso), 104 (login; kb_article is ""), 106 (export; /hc/ but a request URL).
    # login: 2 without of 4 solved; sso and export have 1 each, under the minimum of 2.
    assert r.doc_gaps == (DocGapRow("login", 2, 4),)

    # SLA (alerts fired in the period): first_reply/enterprise warned 101 102, breached 101;
    # resolution/pro warned 103 (twice, one ticket); resolution without a plan breached 104.
    # 201's alert is in the previous period. Distinct tickets: warned 101 102 103, breached
    # 101 104.
    assert r.sla.rows == (SlaRow("first_reply", "enterprise", 2, 1),
                          SlaRow("resolution", "any", 0, 1), SlaRow("resolution", "pro", 1, 0))
    assert (r.sla.tickets_warned, r.sla.tickets_breached, r.sla.note) == (3, 2, "")

    # Per Berlin day from Monday 23rd 09:00: 107 (23:00Z on the 29th) is the 30th in Berlin.
    assert r.bucket_unit == "day"
    assert r.buckets == (("2026-11-23", 1, 1), ("2026-11-24", 1, 0), ("2026-11-25", 1, 0),
                         ("2026-11-26", 1, 0), ("2026-11-27", 1, 1), ("2026-11-28", 1, 0),
                         ("2026-11-29", 0, 1), ("2026-11-30", 2, 1))


def test_a_feature_is_named_as_the_productboard_poll_recorded_it(filled: Store) -> None:
    with filled.write() as conn:
        set_cursor(conn, "productboard-feature:feat-2",
                   {"id": "feat-2", "name": "XLSX export", "status": "planned", "url": None})
        set_cursor(conn, "productboard-feature:feat-9", {"id": "feat-9", "name": "Unused"})
    r = report_of(filled)
    assert [(f.label, f.feature_id) for f in r.features[:2]] == [
        ("XLSX export", "feat-2"), ("feature feat-1", "feat-1")]


def test_a_note_without_feature_or_topic_tag_is_still_counted(filled: Store) -> None:
    # 105's note carries export, feature_request and spam: with the first two named as no
    # topic (and spam ignored everywhere), it has nothing left to be grouped by.
    r = report_of(filled, replace(OPTIONS, note_ignore_tags=("export", "feature_request")))
    assert r.features[2:] == (FeatureRow("(no feature, no topic tag)", None, 1, 1),)


def test_doc_gaps_below_the_minimum_rank_by_tickets_then_tag(filled: Store) -> None:
    r = report_of(filled, replace(OPTIONS, doc_gap_min_tickets=1))
    assert r.doc_gaps == (DocGapRow("login", 2, 4), DocGapRow("export", 1, 2),
                          DocGapRow("sso", 1, 2))


def test_an_article_is_linked_by_tag_field_or_help_center_article_url() -> None:
    options = ReportOptions(article_field="kb_article", article_tags=("kb_linked",))
    assert has_article_link(["kb_linked"], None, None, options)
    assert has_article_link([], "https://x/hc/articles/1", None, options)
    assert has_article_link([], None, "see https://help.acme.io/hc/de/articles/123-Foo", options)
    assert has_article_link([], None, "https://acme.zendesk.com/hc/en-us/articles/9", options)
    assert not has_article_link([], "", "https://acme.zendesk.com/hc/en-us/requests/9", options)
    assert not has_article_link(["login"], None, "no link here", options)
    without_field = ReportOptions(article_tags=())
    assert not has_article_link(["kb_linked"], "set", None, without_field)


def test_a_store_without_notes_and_sla_tables_says_so_in_those_sections(filled: Store) -> None:
    with filled.write() as conn:
        conn.execute(sa.text("DROP TABLE productboard_notes"))
        conn.execute(sa.text("DROP TABLE sla_alerts"))
    r = report_of(filled)
    assert r.features == ()
    assert r.features_note == "no Productboard notes table in this store"
    assert r.sla.rows == () and r.sla.note.startswith("no SLA data")
    assert r.tickets == 8  # the rest is unchanged


def test_no_sla_alerts_in_the_period_reads_differently_with_and_without_the_watch(
    store: Store,
) -> None:
    with store.read() as conn:
        watched = build_report(conn, period(), OPTIONS, now=NOW, sla=WATCHING)
        unwatched = build_report(conn, period(), OPTIONS, now=NOW, sla=None)
    assert watched.sla.note == "no SLA warnings or breaches in the period"
    assert unwatched.sla.note.startswith("no SLA data")
    assert watched.tickets == 0 and watched.top_tags == () and watched.bugs == ()


def test_without_the_sla_watch_solved_tickets_are_held_against_the_configured_targets(
    filled: Store,
) -> None:
    with filled.write() as conn:
        conn.execute(sa.text("DELETE FROM sla_alerts"))
    sla = SlaConfig(enabled=False, targets=(
        Entry("urgent", timedelta(hours=4)), Entry("*", timedelta(days=2)),
        Entry("high", timedelta(hours=1), plan="enterprise")))
    with filled.read() as conn:
        r = build_report(conn, period(), OPTIONS, now=NOW, sla=sla)
    # Solved/closed this period, solve time = updated_at - created_at:
    #   101 urgent 6h > 4h | 102 urgent 2h <= 4h            -> urgent: 1 of 2
    #   103 high 3d: the high target is for enterprise only (snapshots hold no plan), so "*"
    #       2d applies                                       -> high: 0 of 1
    #   104, 108 normal 0s                                   -> normal: 2 of 2
    #   106 low 1d <= 2d                                     -> low: 1 of 1
    assert r.sla.rows == ()
    assert r.sla.solved == (SolvedRow("urgent", 240, 2, 1), SolvedRow("high", 2880, 1, 0),
                            SolvedRow("normal", 2880, 2, 2), SolvedRow("low", 2880, 1, 1))
    assert r.sla.note.startswith("the SLA watch is off")
    markdown = render_markdown(r, {})
    assert "| urgent | 4h | 2 | 1 | 50% |" in markdown
    assert "| high | 2d | 1 | 0 | 0% |" in markdown
    assert "• SLA (estimate, the SLA watch is off): 4 of 6 solved tickets within their " \
           "resolution target" in slack_summary(r)


def test_the_estimate_reads_the_real_sla_section_of_the_config(filled: Store) -> None:
    # The SLA watch's settings (issue 6): skipped on a tree that does not have them.
    sla_config = pytest.importorskip("sync.sla_config")
    SlaSettings = sla_config.SlaSettings  # noqa: N806

    with filled.write() as conn:
        conn.execute(sa.text("DELETE FROM sla_alerts"))
    sla = SlaSettings(enabled=False, targets=(
        {"priority": "urgent", "resolution": "4h"}, {"priority": "*", "resolution": "2d"},
        {"priority": "high", "plan": "enterprise", "resolution": "1h"}))
    with filled.read() as conn:
        r = build_report(conn, period(), OPTIONS, now=NOW, sla=sla)
    # The same targets as the test above, through sync.sla_config: the same figures.
    assert r.sla.solved == (SolvedRow("urgent", 240, 2, 1), SolvedRow("high", 2880, 1, 0),
                            SolvedRow("normal", 2880, 2, 2), SolvedRow("low", 2880, 1, 1))


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "PNG signature"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR"), "the first chunk is IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_charts_are_pngs_of_the_fixed_size_and_the_same_bytes_every_time(
    filled: Store, tmp_path: Path
) -> None:
    r = report_of(filled)
    first = render_charts(r, tmp_path / "a", "report-2026-11-30")
    second = render_charts(r, tmp_path / "b", "report-2026-11-30")
    assert list(first) == list(CHARTS)
    for name, path in first.items():
        assert path.name == f"report-2026-11-30-{name}.png"
        assert _png_size(path) == (WIDTH, HEIGHT) == (1200, 600)
        assert path.read_bytes() == second[name].read_bytes()


def test_charts_of_an_empty_period_still_exist(store: Store, tmp_path: Path) -> None:
    r = report_of(store, ReportOptions())
    for path in render_charts(r, tmp_path, "empty").values():
        assert _png_size(path) == (1200, 600)


def test_markdown_and_html_hold_every_section_table_and_definition(
    filled: Store, tmp_path: Path
) -> None:
    r = report_of(filled)
    charts = render_charts(r, tmp_path, "report-2026-11-30")
    markdown = render_markdown(r, charts)
    page = render_html(r, charts)
    for section in SECTIONS:
        assert f"## {section}\n" in markdown
        assert f"<h2>{section}</h2>" in page
    assert "| login | 4 | 1 | +3 (+300%) |" in markdown
    assert "| feature feat-2 | 3 | 3 |" in markdown
    assert "| SUP-2 | 3 | 3 | Done |" in markdown
    assert "| login | 2 | 4 |" in markdown
    assert "| first_reply | enterprise | 2 | 1 |" in markdown
    assert "![Tickets by tag, this period and the previous one]" \
           "(report-2026-11-30-volume-by-tag.png)" in markdown
    assert '<img src="report-2026-11-30-volume-by-tag.png"' in page
    assert "<td>login</td><td>4</td><td>1</td><td>+3 (+300%)</td>" in page
    assert "**Fastest risers**: tags with at least report.riser_min_count" in markdown
    assert "<dt>Documentation gaps</dt>" in page
    assert "8 tickets created in the period; 4 in the previous period (+4 (+100%))." \
        in markdown


def test_tag_text_is_escaped_in_html_and_markdown(store: Store, tmp_path: Path) -> None:
    load_fixture(store)
    with store.write() as conn:
        conn.execute(sa.text("UPDATE snapshots SET data = json_set(data, '$.tags', "
                             "json_array('<b>x</b>|y')) WHERE ticket_id = 101"))
    r = report_of(store)
    charts = render_charts(r, tmp_path, "x")
    assert "&lt;b&gt;x&lt;/b&gt;|y" in render_html(r, charts)
    assert "<b>x</b>\\|y" in render_markdown(r, charts)
    assert "&lt;b&gt;x&lt;/b&gt;|y" in slack_summary(r)


def test_dollar_signs_in_tags_and_categories_are_drawn_as_text(
    store: Store, tmp_path: Path
) -> None:
    # matplotlib reads text between two $ as mathtext: "$\foo$" would stop the chart with a
    # parse error and "$5-$10" would be drawn in italics as "5-10" without its dollars.
    load_fixture(store)
    with store.write() as conn:
        conn.execute(sa.text("UPDATE snapshots SET data = json_set(data, '$.tags', "
                             "json_array('cost_$\\foo$'), '$.fields.feedback_category', "
                             "'plan $5-$10') WHERE ticket_id = 101"))
    r = report_of(store)
    assert "cost_$\\foo$" in [row.name for row in r.top_tags]
    for path in render_charts(r, tmp_path, "x").values():
        assert _png_size(path) == (1200, 600)


def test_slack_summary_heads_each_section(filled: Store) -> None:
    text = slack_summary(report_of(filled), ["report-2026-11-30.md"])
    assert text.splitlines() == [
        "*Support trend report* 2026-11-23 09:00 – 2026-11-30 09:00 (Europe/Berlin)",
        "• *8* tickets (+4 (+100%) vs the previous period)",
        "• Top tags: login (4), export (3), sso (2), billing (1), kb_linked (1)",
        "• Rising: login 1→4 (+300%), export 2→3 (+50%)",
        "• Most requested: feature feat-2 (3 customers, 3 notes), feature feat-1 "
        "(2 customers, 4 notes), tag: export (1 customers, 1 notes)",
        "• Most linked bugs: SUP-2 (3 tickets, Done), SUP-1 (2 tickets, In Progress), "
        "SUP-4 (1 tickets, To Do)",
        "• Documentation gaps: login (2 solved without an article)",
        "• SLA: 2 breached, 3 warned",
        "Full report: `report-2026-11-30.md`",
    ]


# -- periods ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["7", "7x", "-1d", "0d", "", "7 days", "1.5h"])
def test_a_bad_duration_is_refused_with_examples(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration.*7d"):
        parse_duration(text)


def test_since_may_be_a_date_and_until_defaults_to_the_start_of_the_hour() -> None:
    p = resolve_period("2026-11-01", None, BERLIN, datetime(2026, 11, 30, 8, 47, 12, tzinfo=UTC))
    assert p.since == datetime(2026, 10, 31, 23, tzinfo=UTC)  # midnight in Berlin
    assert p.until == datetime(2026, 11, 30, 8, tzinfo=UTC)   # 09:47 Berlin -> 09:00
    assert p.previous.until == p.since
    assert p.previous.since == p.since - (p.until - p.since)


def test_a_week_across_daylight_saving_is_monday_to_monday_on_the_wall_clock() -> None:
    # Clocks went back on Sunday 2026-10-25 in Berlin: that week is 169 hours long.
    p = resolve_period("1w", "2026-10-26T09:00", BERLIN, NOW)
    assert p.since.astimezone(BERLIN).strftime("%a %H:%M") == "Mon 09:00"
    assert p.until - p.since == timedelta(hours=169)
    assert p.previous.since.astimezone(BERLIN).strftime("%F %H:%M") == "2026-10-12 09:00"


@pytest.mark.parametrize(("since", "until", "message"), [
    ("yesterday", None, "--since 'yesterday': write a duration"),
    ("7d", "30/11/2026", "not a date"),
    ("2026-12-01", "2026-11-30", "the period is empty"),
    # Out of datetime's range, for the period or the previous one it is compared with.
    ("999999999d", None, "too far back"),
    ("100000w", None, "too far back"),
    ("0001-01-01", None, "too far back"),
    ("7d", "0001-01-03", "too far back"),
])
def test_a_bad_period_says_what_to_write(since: str, until: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_period(since, until, BERLIN, NOW)
