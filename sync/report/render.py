"""A trend report as Markdown, as HTML and as a Slack summary.

Markdown and HTML hold the same sections in the same order (:data:`SECTIONS`), each table
followed by nothing the footer does not define: the footer repeats
:data:`~sync.report.model.DEFINITIONS`. Ticket text never reaches the report (tags, category
values, feature labels and Jira keys do, escaped for the format).
"""

from __future__ import annotations

__all__ = ["SECTIONS", "render_html", "render_markdown", "slack_summary"]

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

from sync.report.charts import CHARTS
from sync.report.model import DEFINITIONS, TrendReport

SECTIONS = ("Volume", "Top tags", "Fastest risers", "Most requested features",
            "Most linked Jira bugs", "Documentation gaps", "SLA performance", "Charts",
            "How these numbers are computed")

Table = tuple[tuple[str, ...], list[tuple[str, ...]]]


def _change(current: int, previous: int) -> str:
    diff = current - previous
    if previous == 0:
        return f"+{diff}" if diff else "0"
    return f"{diff:+d} ({diff / previous:+.0%})"


def _growth(value: float, previous: int) -> str:
    return "new" if previous == 0 else f"{value:+.0%}"


def _tables(report: TrendReport) -> dict[str, tuple[list[str], Table | None]]:
    """Each section's lines of prose and its table (header, rows), format-neutral."""
    p = report
    out: dict[str, tuple[list[str], Table | None]] = {}
    volume = [f"{p.tickets} tickets created in the period; {p.tickets_previous} in the previous "
              f"period ({_change(p.tickets, p.tickets_previous)})."]
    if p.undated:
        volume.append(f"{p.undated} stored ticket(s) have no creation time and are not counted.")
    if p.category_field is None:
        volume.append("No feedback category: set report.category_field to a custom field name.")
        out["Volume"] = (volume, None)
    else:
        volume.append(f"By feedback category (custom field {p.category_field}):")
        out["Volume"] = (volume, (("category", "tickets", "previous", "change"), [
            (r.name, str(r.current), str(r.previous), _change(r.current, r.previous))
            for r in p.categories]))
    out["Top tags"] = (
        [] if p.top_tags else ["No tagged tickets in the period."],
        (("tag", "tickets", "previous", "change"), [
            (r.name, str(r.current), str(r.previous), _change(r.current, r.previous))
            for r in p.top_tags]) if p.top_tags else None)
    out["Fastest risers"] = (
        [f"Tags with at least {p.riser_min_count} tickets that grew."]
        + ([] if p.risers else ["None this period."]),
        (("tag", "tickets", "previous", "growth"), [
            (r.tag, str(r.current), str(r.previous), _growth(r.growth, r.previous))
            for r in p.risers]) if p.risers else None)
    out["Most requested features"] = (
        [p.features_note] if p.features_note else [],
        (("feature", "customers", "notes"), [
            (r.label, str(r.customers), str(r.notes)) for r in p.features])
        if p.features else None)
    out["Most linked Jira bugs"] = (
        [] if p.bugs else ["No ticket was linked to a Jira issue in the period."],
        (("issue", "tickets linked in period", "all linked tickets", "status"), [
            (r.key, str(r.linked_in_period), str(r.linked_total), r.status) for r in p.bugs])
        if p.bugs else None)
    out["Documentation gaps"] = (
        [f"Tags of at least {p.doc_gap_min_tickets} solved tickets with no help-center "
         f"article linked; {p.article_rule}."] + ([] if p.doc_gaps else ["None this period."]),
        (("tag", "solved without article", "solved"), [
            (r.tag, str(r.without_article), str(r.solved)) for r in p.doc_gaps])
        if p.doc_gaps else None)
    sla = p.sla
    if sla.solved:
        out["SLA performance"] = ([sla.note], (
            ("priority", "resolution target", "solved", "within target", "share"), [
                (r.priority, _minutes(r.target_minutes), str(r.solved), str(r.within),
                 f"{r.within / r.solved:.0%}") for r in sla.solved]))
    else:
        out["SLA performance"] = (
            [sla.note] if sla.note else
            [f"{sla.tickets_warned} ticket(s) warned, {sla.tickets_breached} breached."],
            (("target", "plan tier", "tickets warned", "tickets breached"), [
                (r.target, r.tier, str(r.warned), str(r.breached)) for r in sla.rows])
            if sla.rows else None)
    return out


def _minutes(value: int) -> str:
    """``90`` -> ``1h 30m``; ``2880`` -> ``2d``."""
    days, rest = divmod(value, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return " ".join(parts) or "0m"


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(report: TrendReport, charts: Mapping[str, Path]) -> str:
    """The report as GitHub-flavoured Markdown; chart images linked by file name."""
    lines = [f"# Support trend report: {report.period.label()}", "",
             f"Compared with {report.previous.label()}. Generated "
             f"{report.generated_at:%Y-%m-%d %H:%M} UTC from Switchboard's store.", ""]
    for title, (prose, table) in _tables(report).items():
        lines += [f"## {title}", ""]
        for line in prose:
            lines += [_md_cell(line), ""]
        if table is not None:
            header, rows = table
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "|".join("---" if i == 0 else "---:"
                                        for i in range(len(header))) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            lines.append("")
    lines += ["## Charts", ""]
    for name, path in charts.items():
        lines += [f"![{CHARTS.get(name, name)}]({path.name})", ""]
    lines += ["## How these numbers are computed", ""]
    lines += [f"- **{term}**: {_md_cell(text)}" for term, text in DEFINITIONS]
    lines += [f"- **Article rule**: {report.article_rule}.", ""]
    return "\n".join(lines)


def _html_table(table: Table) -> str:
    header, rows = table
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = ("body{font-family:system-ui,sans-serif;max-width:1240px;margin:2em auto;color:#222}"
          "table{border-collapse:collapse;margin:.5em 0 1.5em}"
          "th,td{border:1px solid #ddd;padding:4px 10px}td+td,th+th{text-align:right}"
          "th{background:#f3f5f8}img{max-width:100%}dt{font-weight:600}dd{margin:0 0 .6em 1em}")


def render_html(report: TrendReport, charts: Mapping[str, Path]) -> str:
    """The report as one HTML page (inline style; chart images linked by file name)."""
    title = html.escape(f"Support trend report: {report.period.label()}")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{title}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{title}</h1>",
             f"<p>Compared with {html.escape(report.previous.label())}. Generated "
             f"{report.generated_at:%Y-%m-%d %H:%M} UTC from Switchboard's store.</p>"]
    for section, (prose, table) in _tables(report).items():
        parts.append(f"<h2>{html.escape(section)}</h2>")
        parts += [f"<p>{html.escape(line)}</p>" for line in prose]
        if table is not None:
            parts.append(_html_table(table))
    parts.append("<h2>Charts</h2>")
    parts += [f'<p><img src="{html.escape(path.name)}" alt="{html.escape(CHARTS.get(n, n))}" '
              'width="1200" height="600"></p>' for n, path in charts.items()]
    parts.append("<h2>How these numbers are computed</h2><dl>")
    parts += [f"<dt>{html.escape(term)}</dt><dd>{html.escape(text)}</dd>"
              for term, text in DEFINITIONS]
    parts.append(f"<dt>Article rule</dt><dd>{html.escape(report.article_rule)}.</dd></dl>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _mrkdwn(text: str) -> str:
    """Slack escapes only these three characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _join(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "none"


def slack_summary(report: TrendReport, files: Sequence[str] = ()) -> str:
    """A short mrkdwn summary: the period, volume and the head of each section."""
    p = report
    lines = [f"*Support trend report* {_mrkdwn(p.period.label())}",
             f"• *{p.tickets}* tickets ({_change(p.tickets, p.tickets_previous)} vs the "
             f"previous period)",
             "• Top tags: " + _join([f"{_mrkdwn(r.name)} ({r.current})" for r in p.top_tags[:5]]),
             "• Rising: " + _join([f"{_mrkdwn(r.tag)} {r.previous}→{r.current} "
                                   f"({_growth(r.growth, r.previous)})" for r in p.risers[:3]]),
             "• Most requested: " + _join([f"{_mrkdwn(r.label)} ({r.customers} customers, "
                                           f"{r.notes} notes)" for r in p.features[:3]]),
             "• Most linked bugs: " + _join([f"{_mrkdwn(r.key)} ({r.linked_in_period} tickets, "
                                             f"{_mrkdwn(r.status)})" for r in p.bugs[:3]]),
             "• Documentation gaps: " + _join([f"{_mrkdwn(r.tag)} ({r.without_article} solved "
                                               "without an article)" for r in p.doc_gaps[:3]])]
    sla = p.sla
    if sla.solved:
        solved = sum(r.solved for r in sla.solved)
        within = sum(r.within for r in sla.solved)
        lines.append(f"• SLA (estimate, the SLA watch is off): {within} of {solved} solved "
                     "tickets within their resolution target")
    else:
        lines.append("• SLA: " + (_mrkdwn(sla.note) if sla.note else
                                  f"{sla.tickets_breached} breached, {sla.tickets_warned} warned"))
    if files:
        lines.append("Full report: " + ", ".join(f"`{_mrkdwn(name)}`" for name in files))
    return "\n".join(lines)
