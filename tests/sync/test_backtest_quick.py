"""The backtest's quick evaluator decides, counts errors and reports exactly as ``evaluate``.

It leaves the trace out of evaluations that neither match nor fail; everything a backtest or a
diff reports must stay the same: matches, errors (with their messages), the per-rule tally, and
the reasons ``diff`` gives for a rule that did not match.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from bench.rules import events, load_bench_rules
from rules import EvalContext, evaluate, load_rules, load_yaml
from sync.backtest import ProblemLog, backtest, read_export
from sync.backtest.quick import QuickEvaluator, is_untraced, traced
from sync.backtest.rulediff import diff_rules
from sync.backtest.rulesets import RuleSide

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sandbox" / "data" / "sample_export.jsonl"
RULES = ROOT / "tests" / "fixtures" / "backtest" / "rules.yaml"
FIELD_IDS = {"error_code": 360001, "product_area": 360002, "steps_to_reproduce": 360003,
             "expected_result": 360004, "actual_result": 360005, "environment": 360006,
             "jira_key": 360007}
# Rules whose operators raise on some of the sample's values (a number compared with text, an
# age of text that is no time, a regex on a list...) in every position, next to ones that match.
ERRING = """
rules:
  - id: code-above
    on: [ticket.created, ticket.updated]
    if: {field: ticket.fields.error_code, op: gt, value: 5}
    then: [{zendesk.update: {add_tags: [a]}}]
  - id: vip-or-code-above
    on: [ticket.created, ticket.updated]
    if:
      any:
        - {field: ticket.tags, op: contains, value: vip}
        - {field: ticket.fields.error_code, op: gte, value: 100}
    then: [{zendesk.update: {add_tags: [b]}}]
  - id: bug-and-area-old
    on: [ticket.updated, ticket.solved]
    if:
      all:
        - {field: ticket.tags, op: contains, value: bug_confirmed}
        - {field: ticket.fields.product_area, op: older_than, value: 1d}
    then: [{zendesk.update: {add_tags: [c]}}]
  - id: not-high-or-code-above
    on: [ticket.updated, ticket.solved]
    if:
      not:
        all:
          - {field: ticket.priority, op: in, value: [high, urgent]}
          - {field: ticket.fields.error_code, op: lt, value: 3}
    then: [{zendesk.update: {add_tags: [d]}}]
  - id: billing-pattern
    on: [ticket.created]
    if:
      all:
        - {field: ticket.tags, op: contains, value: billing}
        - {field: ticket.subject, op: matches, value: 'invoice|charge'}
    then: [{zendesk.update: {add_tags: [e]}}]
"""


def _rules() -> Any:
    sources = [load_yaml(RULES.read_text(encoding="utf-8"), str(RULES)),
               load_yaml(ERRING, "erring.yaml")]
    return load_rules(sources, custom_fields=tuple(FIELD_IDS))


def _tickets() -> list[Any]:
    return list(read_export(SAMPLE, field_ids=FIELD_IDS, agent_url_base="https://x.zendesk.com",
                            problems=ProblemLog()))


def _same(quick: Any, full: Any) -> None:
    """Alike but for the trace, which only a not-matched, error-free evaluation may lack."""
    assert (quick.matched, quick.error, quick.event_type, quick.mode, quick.rule_id) == (
        full.matched, full.error, full.event_type, full.mode, full.rule_id)
    if quick.trace or quick.matched or quick.error:
        assert quick == full


def test_generated_rules_and_events_evaluate_alike():
    rules = load_bench_rules(120, seed=9)
    quick = QuickEvaluator()
    seen = {"matched": 0, "untraced": 0}
    for ctx in events(300, seed=4):
        for rule in rules:
            full = evaluate(rule, ctx)
            got = quick(rule, ctx)
            _same(got, full)
            assert traced(rule, got, ctx) == full
            seen["matched"] += full.matched
            seen["untraced"] += is_untraced(rule, got)
    assert seen["matched"] > 50 and seen["untraced"] > 10_000


def test_a_tuple_of_rules_is_decided_alike_by_one_generated_survey():
    rules = load_bench_rules(120, seed=9)
    everyone = tuple(rules)  # other event types, off rules: evaluated as evaluate() says
    quick = QuickEvaluator()
    matched = 0
    for ctx in events(300, seed=4):
        for batch in (rules.for_event(ctx.event_type), everyone):
            got = quick.each(batch, ctx)
            assert [rule for rule, _ in got] == list(batch)
            for rule, evaluation in got:
                full = evaluate(rule, ctx)
                _same(evaluation, full)
                matched += full.matched
    assert matched > 100


def test_erring_rules_evaluate_alike_on_the_sample_events():
    rules = _rules()
    everyone = tuple(rules)
    quick = QuickEvaluator()
    outcomes = {"error": 0, "matched": 0}
    contexts: list[EvalContext] = []

    def collect(event: Any) -> None:
        contexts.append(event.sides[0].ctx)

    backtest(rules, _tickets(), custom_fields=tuple(FIELD_IDS), rules_source="r",
             history_source="h", on_event=collect)
    for ctx in contexts:
        for event_type in (ctx.event_type, "ticket.solved"):
            typed = dataclasses.replace(ctx, event_type=event_type)
            together = quick.each(everyone, typed)
            for rule, (same_rule, evaluation) in zip(rules, together, strict=True):
                full = evaluate(rule, typed)
                _same(quick(rule, typed), full)
                assert same_rule is rule
                _same(evaluation, full)
                outcomes["error"] += full.error is not None
                outcomes["matched"] += full.matched
    assert outcomes["error"] > 100 and outcomes["matched"] > 100


def _tally(summary: Any) -> dict[str, Any]:
    return {rule_id: dataclasses.asdict(t) for rule_id, t in summary.tally.rules.items()}


def _rows(events: list[Any]) -> list[Any]:
    return [(e.ticket_id, e.event_type, e.event_key,
             [(o.rule.id, o.matched, o.fired, o.gate, o.evaluation.error, o.intents,
               o.namespace) for o in e.sides[0].outcomes],
             [(f.rule.id, f.intents, f.reason) for f in e.sides[0].follow_ups])
            for e in events]


def test_a_backtest_reports_the_same_with_the_quick_evaluator_as_with_evaluate():
    rules = _rules()
    tickets = _tickets()
    runs = []
    for evaluator in (None, evaluate):
        seen: list[Any] = []
        summary = backtest(rules, tickets, custom_fields=tuple(FIELD_IDS), rules_source="r",
                           history_source="h", on_event=seen.append, evaluator=evaluator)
        runs.append((_tally(summary), _rows(seen), summary.events, summary.skipped))
    assert runs[0] == runs[1]
    tally = runs[0][0]
    assert tally["code-above"]["errors"] > 0 and tally["code-above"]["first_error"]
    assert tally["bug-and-area-old"]["errors"] > 0
    assert tally["confirmed-bug-to-jira"]["fired"] == 7


def test_a_diff_gives_the_same_changes_and_reasons_with_the_quick_evaluator():
    text = RULES.read_text(encoding="utf-8")
    changed = text.replace("{field: ticket.priority, op: in, value: [high, urgent]}",
                           "{field: ticket.priority, op: in, value: [normal, high, urgent]}")
    assert changed != text
    old = RuleSide("old", load_rules([load_yaml(text, "old.yaml")],
                                     custom_fields=tuple(FIELD_IDS)))
    new = RuleSide("new", _rules())
    newer = RuleSide("newer", load_rules([load_yaml(changed, "new.yaml"),
                                          load_yaml(ERRING, "erring.yaml")],
                                         custom_fields=tuple(FIELD_IDS)))
    tickets = _tickets()
    for a, b in ((old, newer), (newer, old), (new, newer)):
        found = []
        for evaluator in (None, evaluate):
            summary = diff_rules(a, b, tickets, custom_fields=tuple(FIELD_IDS),
                                 history_source="h", evaluator=evaluator)
            found.append(([dataclasses.astuple(c) for c in summary.changes],
                          {k: dataclasses.asdict(v) for k, v in summary.rules.items()}))
        assert found[0] == found[1]
        reasons = [c[5] for c in found[0][0]] + [c[6] for c in found[0][0]]
        assert any(r.startswith("did not match (") for r in reasons), reasons
