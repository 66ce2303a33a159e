"""What a backtest found, per rule — and the same as a terminal table, Markdown and CSV.

:class:`Tally` consumes replayed events (one rule set's side) and keeps counters only, so its
memory does not grow with the history: per rule, the events it was evaluated on, how many matched,
fired, or were held back by a gate (window or throttle), the actions that would have run by type,
the window episodes that would have opened and ended (``after_quiet``), and the first few tickets
as examples.
"""

from __future__ import annotations

__all__ = ["BacktestSummary", "RuleTally", "Tally", "render_csv", "render_markdown",
           "render_table"]

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from rich.table import Table

from connectors.models import format_time
from rules import RuleSet
from rules.engine import Outcome
from rules.model import Mode

from .records import ProblemLog
from .replay import ReplayEvent, SideResult, Skip

#: Example tickets kept per rule.
EXAMPLES = 5


@dataclass
class RuleTally:
    """Counters for one rule over the whole history."""

    rule_id: str
    mode: str
    events: tuple[str, ...]
    has_window: bool = False
    evaluated: int = 0
    matched: int = 0
    fired: int = 0
    held_window: int = 0
    held_throttle: int = 0
    held_other: int = 0
    errors: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    windows_fired: int = 0
    windows_ended: int = 0
    after_quiet_actions: Counter[str] = field(default_factory=Counter)
    examples: list[int] = field(default_factory=list)
    matched_examples: list[int] = field(default_factory=list)
    first_error: str | None = None

    @property
    def held(self) -> int:
        return self.held_window + self.held_throttle + self.held_other

    @property
    def label(self) -> str:
        return self.rule_id + (" (shadow)" if self.mode == Mode.SHADOW else
                               " (off)" if self.mode == Mode.OFF else "")

    def example_text(self) -> str:
        tickets = self.examples or self.matched_examples
        if not tickets:
            return ""
        text = ", ".join(str(t) for t in tickets)
        return text if self.examples else f"{text} (matched, held)"


def _note(examples: list[int], ticket_id: int | None) -> None:
    if ticket_id is not None and len(examples) < EXAMPLES and ticket_id not in examples:
        examples.append(ticket_id)


def _actions_text(actions: Counter[str]) -> str:
    return ", ".join(f"{name} × {count}" for name, count in sorted(actions.items()))


class Tally:
    """Per-rule counters for one rule set, fed event by event."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = {rule.id: RuleTally(rule.id, rule.mode.value, rule.on,
                                          rule.window is not None) for rule in rules}

    def outcome(self, outcome: Outcome, ticket_id: int | None) -> None:
        tally = self.rules[outcome.rule.id]
        tally.evaluated += 1
        error = outcome.evaluation.error or outcome.error
        if error:
            tally.errors += 1
            tally.first_error = tally.first_error or error
        if not outcome.matched:
            return
        tally.matched += 1
        _note(tally.matched_examples, ticket_id)
        if outcome.fired:
            tally.fired += 1
            _note(tally.examples, ticket_id)
            tally.actions.update(intent.action for intent in outcome.intents)
            if outcome.window is not None:
                tally.windows_fired += 1
            return
        # A match that joined a window's open episode runs the rule's while_open actions.
        tally.actions.update(intent.action for intent in outcome.intents)
        gate = outcome.gate or ""
        if "throttled:" in gate:
            tally.held_throttle += 1
        elif gate.startswith("window"):
            tally.held_window += 1
        else:
            tally.held_other += 1

    def side(self, ticket_id: int, side: SideResult) -> None:
        for follow in side.follow_ups:
            tally = self.rules.get(follow.rule.id)
            if tally is None:
                continue
            tally.windows_ended += 1
            tally.after_quiet_actions.update(intent.action for intent in follow.intents)
        rules = self.rules
        for outcome in side.outcomes:
            evaluation = outcome.evaluation
            if evaluation.matched or evaluation.error or outcome.error:
                self.outcome(outcome, ticket_id)
            else:  # most of them: evaluated, nothing else to count
                rules[outcome.rule.id].evaluated += 1


@dataclass
class BacktestSummary:
    """Everything a backtest reports; ``complete`` is false when reading stopped early."""

    rules_source: str
    history_source: str
    tally: Tally
    records: int = 0
    events: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    problems: ProblemLog = field(default_factory=ProblemLog)
    out_of_order: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    open_episodes: int = 0
    complete: bool = True
    stopped: str | None = None
    seconds: float = 0.0

    def record(self, result: ReplayEvent | Skip, at: datetime) -> None:
        """Count one record's result (``at``: its ``updated_at``)."""
        self.records += 1
        if self.last_at is not None and at < self.last_at:
            self.out_of_order += 1
        else:
            self.last_at = at
        if self.first_at is None:
            self.first_at = at
        if isinstance(result, Skip):
            self.skipped[result.reason] += 1
            return
        self.events[result.event_type] += 1
        self.tally.side(result.ticket_id, result.sides[0])

    @property
    def event_count(self) -> int:
        return sum(self.events.values())

    def headline(self) -> list[str]:
        """Plain-text lines: what was read, what it made, and whether it is complete."""
        span = (f" from {format_time(self.first_at)} to {format_time(self.last_at)}"
                if self.first_at and self.last_at else "")
        lines = [
            f"History: {self.history_source}{span}",
            f"Rules: {self.rules_source}",
            f"{self.records:,} record(s) read -> {self.event_count:,} event(s) ("
            + (", ".join(f"{n:,} {kind}" for kind, n in sorted(self.events.items())) or "none")
            + f"); skipped {self.skipped.get('stale', 0):,} not newer than the ticket's "
            f"previous record, {self.skipped.get('unchanged', 0):,} with no field changed",
        ]
        if self.problems.count:
            kinds = ", ".join(f"{n:,} {kind}" for kind, n in self.problems.kinds.most_common())
            lines.append(f"{self.problems.count:,} malformed record(s) skipped ({kinds}); first: "
                         + "; ".join(str(p) for p in self.problems.kept[:3]))
        if self.out_of_order:
            lines.append(f"warning: {self.out_of_order:,} record(s) are older than a record "
                         "before them: the history is not in time order, so windows and "
                         "throttles may not decide as live did (sort the export by updated_at)")
        if self.open_episodes:
            lines.append(f"{self.open_episodes} window episode(s) still open at the end "
                         "(their quiet period had not passed)")
        if not self.complete:
            lines.append(f"INCOMPLETE: {self.stopped} — the figures cover only the "
                         "history read before that")
        return lines


COLUMNS = ("rule", "mode", "events evaluated", "matched", "fired", "held by window",
           "held by throttle", "errors", "actions that would run", "windows fired",
           "window episodes ended", "after_quiet actions", "example tickets")


def _row(tally: RuleTally) -> list[str]:
    return [tally.rule_id, tally.mode, f"{tally.evaluated}", f"{tally.matched}",
            f"{tally.fired}", f"{tally.held_window}", f"{tally.held_throttle + tally.held_other}",
            f"{tally.errors}", _actions_text(tally.actions), f"{tally.windows_fired}",
            f"{tally.windows_ended}", _actions_text(tally.after_quiet_actions),
            tally.example_text()]


def _rows(summary: BacktestSummary) -> Iterable[list[str]]:
    return (_row(t) for t in summary.tally.rules.values())


def render_table(summary: BacktestSummary) -> Table:
    """A rich table, one row per rule (shadow rules labelled); the report files have more."""
    title = "Backtest, per rule" + ("" if summary.complete else " — INCOMPLETE")
    table = Table(title=title)
    table.add_column("rule", no_wrap=True)
    for column in ("evaluated", "matched", "fired", "held: window / throttle", "errors"):
        table.add_column(column, justify="right")
    table.add_column("actions that would run")
    table.add_column("windows fired / ended", justify="right")
    table.add_column("example tickets")
    for t in summary.tally.rules.values():
        actions = _actions_text(t.actions)
        if t.after_quiet_actions:
            actions += f"; after_quiet: {_actions_text(t.after_quiet_actions)}"
        table.add_row(t.label, f"{t.evaluated:,}", f"{t.matched:,}", f"{t.fired:,}",
                      f"{t.held_window:,} / {t.held_throttle + t.held_other:,}",
                      f"{t.errors:,}", actions,
                      f"{t.windows_fired:,} / {t.windows_ended:,}" if t.has_window else "-",
                      t.example_text())
    return table


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(summary: BacktestSummary) -> str:
    """The report file: the headline, the per-rule table, the first problems and errors."""
    out = ["# Switchboard backtest" + ("" if summary.complete else " (INCOMPLETE)"), ""]
    out += [f"- {_md(line)}" for line in summary.headline()]
    out += [f"- took {summary.seconds:.1f} s", "",
            "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in _rows(summary)]
    errors = [t for t in summary.tally.rules.values() if t.first_error]
    if errors:
        out += ["", "## Rule errors", ""]
        out += [f"- `{t.rule_id}`: {t.errors} error(s); first: {_md(t.first_error or '')}"
                for t in errors]
    if summary.problems.count:
        out += ["", f"## Malformed records ({summary.problems.count}, first "
                    f"{len(summary.problems.kept)})", ""]
        out += [f"- {_md(str(p))}" for p in summary.problems.kept]
    return "\n".join(out) + "\n"


def render_csv(summary: BacktestSummary) -> str:
    """One row per rule, the table's columns (``complete`` says whether the run finished)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*COLUMNS, "complete"])
    for row in _rows(summary):
        writer.writerow([*row, "yes" if summary.complete else "no"])
    return buffer.getvalue()
