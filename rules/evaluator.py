"""Evaluate one rule against one :class:`~rules.context.EvalContext`, with a full trace.

Every leaf condition is evaluated — ``all``/``any`` do not short-circuit — so the trace explains
the whole rule, not just the part that decided it; the boolean is still computed exactly. An
operator that raises makes the evaluation an error: the rule does not match, and the trace and
:attr:`Evaluation.error` say why.
"""

from __future__ import annotations

__all__ = ["ConditionResult", "Evaluation", "GroupResult", "evaluate"]

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from .context import EvalContext
from .fields import change_of, resolve
from .model import All, Any_, Condition, FieldCondition, Not, Rule
from .operators import OPERATORS, Op, Reads, Timed, ValueShape

PASS, FAIL, ERROR = "✓", "✗", "!"


def _plain(value: Any) -> Any:
    """JSON-shaped copy: tuples become lists; values JSON cannot hold become text."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


@dataclass(frozen=True, slots=True)
class ConditionResult:
    """One leaf condition's outcome.

    ``result`` is the condition as written (``None`` on error); ``negated`` is set when the leaf
    sits directly under ``not``. ``actual`` is the value seen — for change operators
    ``{"from": ..., "to": ...}``, or ``None`` when the field did not change. ``decisive`` marks
    leaves whose outcome made the rule not match.
    """

    path: str
    field: str
    op: str
    op_label: str
    expected: Any
    actual: Any
    result: bool | None
    error: str | None = None
    negated: bool = False
    case_sensitive: bool = False
    depth: int = 0
    decisive: bool = False

    @property
    def holds(self) -> bool:
        """Whether the line as shown (with its ``not``) is true."""
        return self.result is not None and self.result != self.negated

    def describe(self) -> str:
        """``ticket.priority is one of ['high', 'urgent'] (saw 'low')``."""
        spec = OPERATORS[Op(self.op)]
        text = f"{'not ' if self.negated else ''}{self.field} {self.op_label}"
        if spec.value is not ValueShape.NONE:
            text += f" {self.expected!r}"
        if self.case_sensitive:
            text += " (case-sensitive)"
        if spec.reads is Reads.CHANGE:
            seen = ("no change" if self.actual is None
                    else f"{self.actual['from']!r} → {self.actual['to']!r}")
        else:
            seen = repr(self.actual)
        text += f" (saw {seen})"
        if self.error:
            text += f" — error: {self.error}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path, "field": self.field, "op": self.op, "op_label": self.op_label,
            "expected": _plain(self.expected), "actual": _plain(self.actual),
            "result": self.result, "error": self.error, "negated": self.negated,
            "case_sensitive": self.case_sensitive, "decisive": self.decisive,
        }


@dataclass(frozen=True, slots=True)
class GroupResult:
    """An ``all``/``any`` group: its outcome and where its lines start in the trace."""

    path: str
    kind: str
    result: bool | None
    negated: bool
    depth: int
    first_leaf: int

    @property
    def holds(self) -> bool:
        return self.result is not None and self.result != self.negated


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The decision for one rule and one event, explainable in plain language."""

    rule_id: str
    matched: bool
    trace: tuple[ConditionResult, ...]
    error: str | None = None
    event_type: str = ""
    mode: str = "live"
    groups: tuple[GroupResult, ...] = field(default=())
    skipped: str | None = None

    @property
    def first_failure(self) -> ConditionResult | None:
        """The first leaf (in file order) that errored or that made the rule not match."""
        if self.matched:
            return None
        errors = [r for r in self.trace if r.error]
        if errors:
            return errors[0]
        return next((r for r in self.trace if r.decisive), None)

    def explain(self) -> str:
        """One line per condition, e.g. ``✓ ticket.tags contains 'bug' (saw ['bug'])``."""
        verdict = ("matched" if self.matched else
                   f"error: {self.error}" if self.error else
                   f"skipped: {self.skipped}" if self.skipped else "did not match")
        mark = PASS if self.matched else ERROR if self.error else FAIL
        lines = [f"{mark} rule {self.rule_id} {verdict} ({self.event_type}, mode {self.mode})"]
        if not self.trace and not self.skipped:
            lines.append("  (no conditions: always matches)")
        first = self.first_failure
        groups = sorted(self.groups, key=lambda g: (g.first_leaf, g.depth))
        for index, leaf in enumerate(self.trace):
            for group in (g for g in groups if g.first_leaf == index):
                g_mark = ERROR if group.result is None else PASS if group.holds else FAIL
                words = "all of" if group.kind == "all" else "any of"
                prefix = "not " if group.negated else ""
                lines.append(f"{'  ' * (group.depth + 1)}{g_mark} {prefix}{words}:")
            l_mark = ERROR if leaf.error else PASS if leaf.holds else FAIL
            note = "   ← first failure" if leaf is first else ""
            lines.append(f"{'  ' * (leaf.depth + 1)}{l_mark} {leaf.describe()}{note}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """JSON-able form for the decision log."""
        first = self.first_failure
        return {
            "rule_id": self.rule_id, "event_type": self.event_type, "mode": self.mode,
            "matched": self.matched, "error": self.error, "skipped": self.skipped,
            "first_failure": first.path if first else None,
            "trace": [r.to_json() for r in self.trace],
            "groups": [{"path": g.path, "kind": g.kind, "result": g.result,
                        "negated": g.negated} for g in self.groups],
        }


class _Run:
    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.trace: list[ConditionResult] = []
        self.groups: list[GroupResult] = []
        self.values: dict[int, bool | None] = {}
        self.leaf_index: dict[int, int] = {}
        self._event_time: tuple[datetime | None] | None = None

    @property
    def event_time(self) -> datetime | None:
        """The context's event time, parsed once per evaluation."""
        if self._event_time is None:
            self._event_time = (self.ctx.event_time,)
        return self._event_time[0]

    def run(self, cond: Condition, depth: int, negated: bool) -> bool | None:
        if isinstance(cond, Not):
            value = self.run(cond.condition, depth, not negated)
            result = None if value is None else not value
        elif isinstance(cond, All | Any_):
            start = len(self.trace)
            self.groups.append(GroupResult(cond.path, "", None, negated, depth, start))
            slot = len(self.groups) - 1
            values = [self.run(child, depth + 1, False) for child in cond.conditions]
            result = None if None in values else (all(values) if isinstance(cond, All)
                                                  else any(values))
            kind = "all" if isinstance(cond, All) else "any"
            self.groups[slot] = GroupResult(cond.path, kind, result, negated, depth, start)
        else:
            result = self.leaf(cond, depth, negated)
        self.values[id(cond)] = result
        return result

    def leaf(self, cond: FieldCondition, depth: int, negated: bool) -> bool | None:
        spec = OPERATORS[cond.op]
        error: str | None = None
        result: bool | None = None
        actual: Any = None
        try:
            if spec.reads is Reads.CHANGE:
                change = change_of(cond.field, self.ctx)
                actual = change.to_json() if change is not None else None
                result = bool(spec.fn(change, cond.value, cond.case_sensitive))
            elif spec.reads is Reads.TIMED:
                actual = resolve(cond.field, self.ctx)
                timed = Timed(actual, self.event_time)
                result = bool(spec.fn(timed, cond.value, cond.case_sensitive))
            else:
                actual = resolve(cond.field, self.ctx)
                result = bool(spec.fn(actual, cond.value, cond.case_sensitive))
        except Exception as exc:  # an operator that raises is a rule error, never "no match"
            error = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
            result = None
        self.leaf_index[id(cond)] = len(self.trace)
        self.trace.append(ConditionResult(
            cond.path, cond.field, cond.op.value, spec.label, _plain(cond.value), _plain(actual),
            result, error, negated, cond.case_sensitive, depth,
        ))
        return result

    def blame(self, cond: Condition, want: bool) -> None:
        """Mark the leaves that made ``cond`` differ from ``want``."""
        value = self.values[id(cond)]
        if value is None or value == want:
            return
        if isinstance(cond, Not):
            self.blame(cond.condition, not want)
        elif isinstance(cond, All | Any_):
            # all() wanted true, or any() wanted false: the children that disagree are to blame;
            # otherwise every child shares the blame.
            disagreeing = (isinstance(cond, All)) == want
            for child in cond.conditions:
                if not disagreeing or self.values[id(child)] != want:
                    self.blame(child, want)
        else:
            index = self.leaf_index[id(cond)]
            self.trace[index] = replace(self.trace[index], decisive=True)


def evaluate(rule: Rule, ctx: EvalContext) -> Evaluation:
    """Decide whether ``rule`` matches ``ctx``; never raises for operator failures.

    A rule that does not listen to ``ctx.event_type`` is reported as skipped (not matched).
    """
    if ctx.event_type not in rule.on:
        return Evaluation(rule.id, False, (), event_type=ctx.event_type, mode=rule.mode.value,
                          skipped=f"listens to {', '.join(rule.on)}, not {ctx.event_type}")
    if rule.condition is None:
        return Evaluation(rule.id, True, (), event_type=ctx.event_type, mode=rule.mode.value)
    run = _Run(ctx)
    value = run.run(rule.condition, 0, False)
    errors = [f"{r.path}: {r.error}" for r in run.trace if r.error]
    if value is not None:
        run.blame(rule.condition, True)
    return Evaluation(
        rule.id,
        matched=value is True and not errors,
        trace=tuple(run.trace),
        error="; ".join(errors) or None,
        event_type=ctx.event_type,
        mode=rule.mode.value,
        groups=tuple(run.groups),
    )
