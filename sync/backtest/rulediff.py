"""``switchboard diff``: replay one history through two rule sets; list the decisions that change.

Events are read once and decided by both sides, each with its own gate state and simulated links
(:class:`~.replay.Replay` with two rule sets). For every event and every rule present on both
sides, a decision *changes* when

- it fired on one side and not on the other (``not fired → fired``, ``fired → not fired``;
  matched-but-held and not-matched both count as not fired), or
- it fired on both sides with different actions or different rendered parameters — rendered as
  ``switchboard test`` does, with placeholders such as ``<jira.key>`` for results not known yet.

Window follow-ups (``after_quiet``, event type ``window.quiet``) are compared the same way.
Rules that exist on one side only are reported as added or removed, with what they did on their
side. Memory stays flat: changes stream to a callback; only the first few are kept.
"""

from __future__ import annotations

__all__ = ["DecisionChange", "DiffSummary", "RuleDiff", "diff_rules", "render_diff",
           "render_diff_markdown", "CHANGE_COLUMNS", "change_row"]

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.models import Ticket, format_time
from rules import EvalContext, render_params
from rules.engine import FollowUp, Outcome
from rules.planner import ActionIntent
from rules.templating import TemplateRenderError
from rules.tester import placeholder_namespace

from .history import TicketHistory
from .quick import traced
from .records import IncompleteHistory, ProblemLog
from .replay import Matcher, Replay, ReplayEvent, SideResult, Skip
from .rulesets import RuleSide
from .summary import Tally

#: Changes kept in memory for the terminal and the Markdown report (all go to ``on_change``).
KEEP_CHANGES = 200

NEWLY_FIRED = "not fired → fired"
NO_LONGER_FIRED = "fired → not fired"
ACTIONS_CHANGED = "fired, actions differ"


@dataclass(frozen=True, slots=True)
class DecisionChange:
    """One decision that differs: ``old`` / ``new`` describe each side in plain words."""

    ticket_id: int | None
    event_type: str
    at: datetime
    rule_id: str
    kind: str
    old: str
    new: str


@dataclass
class RuleDiff:
    """Per rule present on both sides: how often each kind of change happened."""

    rule_id: str
    newly_fired: int = 0
    no_longer_fired: int = 0
    actions_changed: int = 0
    tickets: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.newly_fired + self.no_longer_fired + self.actions_changed


@dataclass
class DiffSummary:
    """What ``diff`` found; ``complete`` is false when the history could not be read to the end."""

    old: RuleSide
    new: RuleSide
    history_source: str
    old_tally: Tally
    new_tally: Tally
    rules: dict[str, RuleDiff]
    added: list[str]
    removed: list[str]
    records: int = 0
    events: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    problems: ProblemLog = field(default_factory=ProblemLog)
    changes: list[DecisionChange] = field(default_factory=list)
    change_count: int = 0
    complete: bool = True
    stopped: str | None = None
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        """Whether any decision differs (an added or removed rule that fired counts)."""
        return bool(self.change_count or any(self.new_tally.rules[r].fired or
                                             self.new_tally.rules[r].windows_ended
                                             for r in self.added)
                    or any(self.old_tally.rules[r].fired or self.old_tally.rules[r].windows_ended
                           for r in self.removed))


def _param_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _rendered(intents: Sequence[ActionIntent], namespace: Mapping[str, Any]) -> tuple[str, ...]:
    """Each intent as ``action {params}``, rendered with placeholders for unknown results."""
    out = []
    for intent in intents:
        try:
            params = render_params(intent, intent.params, namespace)
            # Unset params (None, empty lists and mappings) are noise in a comparison.
            text = _param_text({k: v for k, v in params.items() if v not in (None, [], {})})
        except (TemplateRenderError, ValueError) as exc:
            text = f"(cannot render: {exc})"
        out.append(f"{intent.action} {text}")
    return tuple(out)


class _Namespaces:
    """The placeholder namespace of one side's event, built once and only if needed."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self._base: dict[str, Any] | None = None

    def get(self, extra: Mapping[str, Any] | None) -> dict[str, Any]:
        if self._base is None:
            self._base = placeholder_namespace(self.ctx)
        return {**self._base, **(extra or {})}


def _describe(outcome: Outcome | None, actions: tuple[str, ...] | None,
              ctx: EvalContext) -> str:
    if outcome is None:
        return "not evaluated (does not listen to this event, or off)"
    if outcome.fired:
        return "fired: " + ("; ".join(actions or ()) or "(no actions)")
    if outcome.matched:
        return f"matched, held: {outcome.gate}"
    if outcome.evaluation.error:
        return f"error: {outcome.evaluation.error}"
    # The replay leaves the trace out of not-matched evaluations; this one is read.
    first = traced(outcome.rule, outcome.evaluation, ctx).first_failure
    return f"did not match ({first.describe()})" if first else "did not match"


def _follow_text(follow: FollowUp | None, actions: tuple[str, ...] | None) -> str:
    if follow is None:
        return "no episode ended"
    return f"{follow.reason}: " + ("; ".join(actions or ()) or "(no after_quiet actions)")


class _Comparer:
    def __init__(self, summary: DiffSummary, on_change: Callable[[DecisionChange], None] | None,
                 common: set[str]) -> None:
        self.summary = summary
        self.on_change = on_change
        self.common = common

    def emit(self, change: DecisionChange) -> None:
        summary = self.summary
        summary.change_count += 1
        stats = summary.rules[change.rule_id]
        if change.kind == NEWLY_FIRED:
            stats.newly_fired += 1
        elif change.kind == NO_LONGER_FIRED:
            stats.no_longer_fired += 1
        else:
            stats.actions_changed += 1
        if change.ticket_id is not None and len(stats.tickets) < 5 \
                and change.ticket_id not in stats.tickets:
            stats.tickets.append(change.ticket_id)
        if len(summary.changes) < KEEP_CHANGES:
            summary.changes.append(change)
        if self.on_change is not None:
            self.on_change(change)

    def event(self, event: ReplayEvent) -> None:
        old, new = event.sides
        old_ns, new_ns = _Namespaces(old.ctx), _Namespaces(new.ctx)
        self._follow_ups(event, old, new, old_ns, new_ns)
        old_by = {o.rule.id: o for o in old.outcomes}
        new_by = {o.rule.id: o for o in new.outcomes}
        for rule_id in dict.fromkeys([*old_by, *new_by]):
            if rule_id not in self.common:
                continue
            a, b = old_by.get(rule_id), new_by.get(rule_id)
            fired_a, fired_b = bool(a and a.fired), bool(b and b.fired)
            if not fired_a and not fired_b:
                continue
            acts_a = _rendered(a.intents, old_ns.get(a.namespace)) if a and a.fired else None
            acts_b = _rendered(b.intents, new_ns.get(b.namespace)) if b and b.fired else None
            if fired_a and fired_b:
                if acts_a == acts_b:
                    continue
                kind = ACTIONS_CHANGED
            else:
                kind = NEWLY_FIRED if fired_b else NO_LONGER_FIRED
            # The event type the rule fired as (ticket.solved, when the change also solved).
            fired = b if fired_b and b is not None else a
            event_type = fired.evaluation.event_type if fired is not None else event.event_type
            self.emit(DecisionChange(event.ticket_id, event_type, event.at, rule_id,
                                     kind, _describe(a, acts_a, old.ctx),
                                     _describe(b, acts_b, new.ctx)))

    def _follow_ups(self, event: ReplayEvent, old: SideResult, new: SideResult,
                    old_ns: _Namespaces, new_ns: _Namespaces) -> None:
        if not old.follow_ups and not new.follow_ups:
            return
        old_by = {(f.rule.id, f.episode.group): f for f in old.follow_ups}
        new_by = {(f.rule.id, f.episode.group): f for f in new.follow_ups}
        for key in dict.fromkeys([*old_by, *new_by]):
            if key[0] not in self.common:
                continue
            a, b = old_by.get(key), new_by.get(key)
            acts_a = _rendered(a.intents, {**placeholder_namespace(old.ctx), **a.namespace}) \
                if a else None
            acts_b = _rendered(b.intents, {**placeholder_namespace(new.ctx), **b.namespace}) \
                if b else None
            if a and b and acts_a == acts_b:
                continue
            kind = ACTIONS_CHANGED if a and b else NEWLY_FIRED if b else NO_LONGER_FIRED
            either = b or a
            ticket = either.ticket_id if either is not None else None
            self.emit(DecisionChange(ticket, "window.quiet", event.at, key[0], kind,
                                     _follow_text(a, acts_a), _follow_text(b, acts_b)))


def diff_rules(old: RuleSide, new: RuleSide, tickets: Iterable[Ticket], *,
               custom_fields: Sequence[str], history_source: str,
               start: datetime | None = None, evaluator: Matcher | None = None,
               temp_dir: str | Path | None = None, problems: ProblemLog | None = None,
               on_change: Callable[[DecisionChange], None] | None = None) -> DiffSummary:
    """Decide every record of ``tickets`` with both sides and compare, event by event.

    ``on_change`` receives every change (the CSV). An :class:`IncompleteHistory` from
    ``tickets`` marks the summary incomplete.
    """
    old_ids = {rule.id for rule in old.rules}
    new_ids = {rule.id for rule in new.rules}
    summary = DiffSummary(
        old, new, history_source, Tally(old.rules), Tally(new.rules),
        {rule.id: RuleDiff(rule.id) for rule in new.rules if rule.id in old_ids},
        added=[rule.id for rule in new.rules if rule.id not in old_ids],
        removed=[rule.id for rule in old.rules if rule.id not in new_ids],
        problems=problems if problems is not None else ProblemLog())
    comparer = _Comparer(summary, on_change, old_ids & new_ids)
    began = time.perf_counter()
    extra = {} if evaluator is None else {"evaluator": evaluator}
    with TicketHistory(directory=temp_dir) as history:
        run = Replay([old.rules, new.rules], custom_fields=custom_fields, history=history,
                     start=start, **extra)
        try:
            for ticket in tickets:
                result = run.feed(ticket)
                summary.records += 1
                if isinstance(result, Skip):
                    summary.skipped[result.reason] += 1
                    continue
                summary.events[result.event_type] += 1
                summary.old_tally.side(result.ticket_id, result.sides[0])
                summary.new_tally.side(result.ticket_id, result.sides[1])
                comparer.event(result)
        except IncompleteHistory as exc:
            summary.complete = False
            summary.stopped = str(exc)
    summary.seconds = time.perf_counter() - began
    return summary


CHANGE_COLUMNS = ("ticket", "event", "time", "rule", "change", "old", "new")


def change_row(change: DecisionChange) -> list[str]:
    """A change as a CSV row (:data:`CHANGE_COLUMNS`)."""
    return ["" if change.ticket_id is None else str(change.ticket_id), change.event_type,
            format_time(change.at), change.rule_id, change.kind, change.old, change.new]


def _one_sided(summary: DiffSummary) -> list[str]:
    lines = []
    for rule_id in summary.added:
        t = summary.new_tally.rules[rule_id]
        lines.append(f"added rule {t.label}: matched {t.matched}, fired {t.fired}"
                     + (f" (e.g. tickets {t.example_text()})" if t.examples else ""))
    for rule_id in summary.removed:
        t = summary.old_tally.rules[rule_id]
        lines.append(f"removed rule {t.label}: matched {t.matched}, fired {t.fired} before"
                     + (f" (e.g. tickets {t.example_text()})" if t.examples else ""))
    return lines


def render_diff(summary: DiffSummary, *, limit: int = 20) -> str:
    """Plain text: the headline, the first ``limit`` changes, and the counts per rule."""
    events = sum(summary.events.values())
    lines = [f"diff {summary.old.label} → {summary.new.label}",
             f"History: {summary.history_source}: {summary.records:,} record(s) -> "
             f"{events:,} event(s)"]
    if summary.problems.count:
        lines.append(f"{summary.problems.count:,} malformed record(s) skipped; first: "
                     + "; ".join(str(p) for p in summary.problems.kept[:3]))
    if not summary.complete:
        lines.append(f"INCOMPLETE: {summary.stopped} — only the history read before that "
                     "was compared")
    lines.append("")
    shown = summary.changes[:limit]
    for change in shown:
        lines += [f"ticket {change.ticket_id} {change.event_type} at {format_time(change.at)} "
                  f"— rule {change.rule_id}: {change.kind}",
                  f"    old: {change.old}", f"    new: {change.new}"]
    if summary.change_count > len(shown):
        lines.append(f"... and {summary.change_count - len(shown):,} more change(s) "
                     "(--csv FILE lists them all)")
    if shown:
        lines.append("")
    lines.append(f"{summary.change_count:,} decision(s) changed" + (":" if summary.rules else ""))
    for stats in summary.rules.values():
        old_t = summary.old_tally.rules[stats.rule_id]
        new_t = summary.new_tally.rules[stats.rule_id]
        lines.append(f"  {new_t.label}: fired {old_t.fired} → {new_t.fired}; "
                     f"{stats.newly_fired} newly fired, {stats.no_longer_fired} no longer fired, "
                     f"{stats.actions_changed} with different actions"
                     + (f" (e.g. tickets {', '.join(map(str, stats.tickets))})"
                        if stats.tickets else ""))
    lines += [f"  {line}" for line in _one_sided(summary)]
    return "\n".join(lines)


def render_diff_markdown(summary: DiffSummary) -> str:
    """The Markdown report: the same as :func:`render_diff`, with every kept change."""
    def md(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    head, _, _ = render_diff(summary, limit=0).partition("\n\n")
    out = ["# Switchboard rule diff" + ("" if summary.complete else " (INCOMPLETE)"), ""]
    out += [f"- {md(line)}" for line in head.splitlines()]
    out += ["", "## Per rule", "", "| rule | fired before | fired after | newly fired | "
            "no longer fired | different actions |", "|---|---|---|---|---|---|"]
    for stats in summary.rules.values():
        out.append(f"| {stats.rule_id} | {summary.old_tally.rules[stats.rule_id].fired} | "
                   f"{summary.new_tally.rules[stats.rule_id].fired} | {stats.newly_fired} | "
                   f"{stats.no_longer_fired} | {stats.actions_changed} |")
    out += [f"- {md(line)}" for line in _one_sided(summary)]
    if summary.changes:
        out += ["", f"## Changed decisions ({summary.change_count}"
                    + (f", first {len(summary.changes)}" if summary.change_count >
                       len(summary.changes) else "") + ")", "",
                "| " + " | ".join(CHANGE_COLUMNS) + " |", "|" + "---|" * len(CHANGE_COLUMNS)]
        out += ["| " + " | ".join(md(c) for c in change_row(ch)) + " |"
                for ch in summary.changes]
    return "\n".join(out) + "\n"
