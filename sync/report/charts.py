"""The report's charts, as PNG files drawn with matplotlib's Agg renderer.

Every chart is ``WIDTH`` x ``HEIGHT`` pixels (figure size in inches x ``DPI``, never trimmed by
``bbox_inches``), drawn on its own ``Figure`` (no pyplot global state: safe in the hub's
scheduler thread) and saved without the "Software" metadata, so the same report gives the same
bytes. With no data a chart still exists and says so.
"""

from __future__ import annotations

__all__ = ["CHARTS", "DPI", "HEIGHT", "MAIN_CHART", "WIDTH", "render_charts"]

from collections.abc import Callable
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sync.report.model import CountRow, TrendReport

WIDTH, HEIGHT, DPI = 1200, 600, 100
CURRENT, PREVIOUS = "#2f6db5", "#b8c7dc"
#: Chart name -> what it shows; the first is the one posted to Slack.
CHARTS = {
    "volume-by-tag": "Tickets by tag, this period and the previous one",
    "volume-by-category": "Tickets by feedback category, this period and the previous one",
    "volume-over-time": "Tickets created per day (per hour under 3 days)",
}
MAIN_CHART = "volume-by-tag"


def render_charts(report: TrendReport, directory: Path, stem: str) -> dict[str, Path]:
    """Draw every chart of :data:`CHARTS` into ``directory`` as ``<stem>-<name>.png``;
    returns name -> path."""
    directory.mkdir(parents=True, exist_ok=True)
    draw: dict[str, Callable[[Axes, TrendReport], None]] = {
        "volume-by-tag": _by_tag, "volume-by-category": _by_category,
        "volume-over-time": _over_time,
    }
    out: dict[str, Path] = {}
    for name, title in CHARTS.items():
        figure = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        draw[name](axes, report)
        axes.set_title(f"{title}\n{report.period.label()}", fontsize=12)
        figure.subplots_adjust(left=0.2, right=0.97, top=0.86, bottom=0.14)
        path = directory / f"{stem}-{name}.png"
        figure.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
        out[name] = path
    return out


def _empty(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", fontsize=14, color="#666666",
              transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def _paired_bars(axes: Axes, rows: tuple[CountRow, ...], empty: str) -> None:
    if not rows:
        _empty(axes, empty)
        return
    rows = rows[::-1]  # largest on top
    positions = range(len(rows))
    height = 0.4
    axes.barh([p + height / 2 for p in positions], [r.current for r in rows], height,
              color=CURRENT, label="this period")
    axes.barh([p - height / 2 for p in positions], [r.previous for r in rows], height,
              color=PREVIOUS, label="previous period")
    # Tags and category values are data, not mathtext: "$...$" is drawn as written.
    axes.set_yticks(list(positions), [r.name for r in rows], parse_math=False)
    axes.set_xlabel("tickets")
    axes.legend(loc="lower right")
    axes.grid(axis="x", color="#e5e5e5")
    axes.set_axisbelow(True)


def _by_tag(axes: Axes, report: TrendReport) -> None:
    _paired_bars(axes, report.top_tags, "no tagged tickets in the period")


def _by_category(axes: Axes, report: TrendReport) -> None:
    if report.category_field is None:
        _empty(axes, "no feedback category field configured (report.category_field)")
        return
    _paired_bars(axes, report.categories[:15], "no tickets in the period")


def _over_time(axes: Axes, report: TrendReport) -> None:
    if not report.tickets and not report.tickets_previous:
        _empty(axes, "no tickets in either period")
        return
    labels = [b[0] for b in report.buckets]
    positions = list(range(len(labels)))
    axes.plot(positions, [b[1] for b in report.buckets], marker="o", color=CURRENT,
              label="this period")
    axes.plot(positions, [b[2] for b in report.buckets], marker="o", color=PREVIOUS,
              linestyle="--", label="previous period (same offset)")
    step = max(1, len(labels) // 12)
    axes.set_xticks(positions[::step], labels[::step], rotation=30, ha="right")
    axes.set_ylabel("tickets")
    axes.set_ylim(bottom=0)
    axes.legend(loc="upper left")
    axes.grid(color="#e5e5e5")
    axes.set_axisbelow(True)
