"""Evaluating rules over millions of events: the trace only where someone reads it.

:func:`rules.evaluate` explains every leaf of a rule, which costs as much as the rest of a
backtest's work per event, and almost every evaluation of a backtest is a rule that does not
match, whose trace nobody reads. :class:`QuickEvaluator` decides with the compiled rules
(:mod:`rules.compiled`) and builds the full :class:`~rules.Evaluation` only when it matters:

- the rule matches: :func:`rules.evaluate` (the outcome, its namespace and the reports use it);
- an operator raises on this event: :func:`rules.evaluate` (the error and its message are
  counted and reported, as live records them);
- otherwise: a not-matched :class:`~rules.Evaluation` without a trace, made once per rule and
  event type. :func:`traced` gives the full one back when a report wants to say why a rule did
  not match (``switchboard diff``).

Exact, not approximate: a rule's compiled *steps* are the checks that must all hold for it to
match, each raising what its operators raise, and together they test every leaf of the rule once
(a group that cannot be split is tested whole). All of them run — not only up to the first that
fails — so an operator that raises anywhere in the rule is seen, as :func:`rules.evaluate` sees
it. Leaves spelled alike in several rules are computed once per event (the compiled memo).
"""

from __future__ import annotations

__all__ = ["QuickEvaluator", "is_untraced", "traced"]

from collections.abc import Callable, Iterable
from typing import Any

from rules import EvalContext, Evaluation, compile_rule, evaluate
from rules.codegen import Survey, exhaustive
from rules.compiled import compiled
from rules.model import Rule
from rules.occurrence import contexts

Step = Callable[[EvalContext, dict[int, Any]], bool]
_Batch = tuple[tuple[Rule, ...], Survey, tuple[tuple[Rule, Evaluation], ...]]


class QuickEvaluator:
    """A drop-in for :func:`rules.evaluate` in a replay: ``evaluator(rule, ctx)``.

    Same ``matched`` and ``error`` as :func:`rules.evaluate` for every rule and context; the
    trace is left out of evaluations that neither match nor fail. One instance per replay (it
    keeps each rule's compiled steps, and the memo of the context it last saw).
    """

    def __init__(self) -> None:
        #: Per rule and event type: the rule, its steps and its not-matched evaluation.
        self._plans: dict[tuple[int, str], tuple[Rule, tuple[Step, ...], Evaluation]] = {}
        #: Per tuple of rules and event type: the tuple, its survey, the not-matched pairs.
        self._batches: dict[tuple[int, str], _Batch] = {}
        self._ctx: EvalContext | None = None
        self._memo: dict[int, Any] = {}

    def __call__(self, rule: Rule, ctx: EvalContext) -> Evaluation:
        return self._stepwise((rule,), ctx)[0][1]

    def each(self, rules: Iterable[Rule], ctx: EvalContext) -> list[tuple[Rule, Evaluation]]:
        """``[(rule, evaluator(rule, ctx)) for rule in rules]``, in one call.

        A tuple of rules (a rule set's ``for_event``) is decided by one generated function
        (:func:`rules.codegen.exhaustive`): every step of every rule, with each field read once.
        """
        if type(rules) is not tuple:
            return self._stepwise(rules, ctx)
        batch = self._batches.get((id(rules), ctx.event_type))
        if batch is None or batch[0] is not rules:
            batch = self._batch(rules, ctx.event_type)
        out = list(batch[2])
        for position in batch[1](ctx):  # the rules that match or raise: evaluate() says how
            rule = rules[position]
            out[position] = (rule, evaluate(rule, ctx))
        return out

    def _batch(self, rules: tuple[Rule, ...], event_type: str) -> _Batch:
        if len(self._batches) >= 64:  # rule sets reloaded many times
            self._batches.clear()
        batch = (rules,
                 exhaustive([compiled(rule) for rule in rules],
                            tuple(event_type in rule.on for rule in rules)),
                 tuple((rule, Evaluation(rule.id, False, (), event_type=event_type,
                                         mode=rule.mode.value)) for rule in rules))
        self._batches[(id(rules), event_type)] = batch  # holds the tuple: its id is not reused
        return batch

    def _stepwise(self, rules: Iterable[Rule], ctx: EvalContext
                  ) -> list[tuple[Rule, Evaluation]]:
        """``each``, one rule's compiled steps after another."""
        if ctx is not self._ctx:  # the memo is valid for one context only
            self._ctx = ctx
            self._memo = {}
        memo, plans, event_type = self._memo, self._plans, ctx.event_type
        out = []
        for rule in rules:
            plan = plans.get((id(rule), event_type))
            if plan is None or plan[0] is not rule:
                if rule.condition is None or event_type not in rule.on:
                    out.append((rule, evaluate(rule, ctx)))  # no leaves to skip
                    continue
                plan = self._plan(rule, event_type)
            matched = True
            try:
                for step in plan[1]:
                    if not step(ctx, memo):
                        matched = False  # the later steps still run: one of them may raise
            except Exception:  # an operator error: evaluate() says which, and how
                matched = True
            out.append((rule, evaluate(rule, ctx) if matched else plan[2]))
        return out

    def _plan(self, rule: Rule, event_type: str) -> tuple[Rule, tuple[Step, ...], Evaluation]:
        plan = (rule, compile_rule(rule).steps,
                Evaluation(rule.id, False, (), event_type=event_type, mode=rule.mode.value))
        self._plans[(id(rule), event_type)] = plan  # holds the rule: its id is not reused
        return plan


def is_untraced(rule: Rule, evaluation: Evaluation) -> bool:
    """Whether ``evaluation`` is a :class:`QuickEvaluator` not-matched one, without a trace
    (:func:`rules.evaluate` traces every leaf of a rule that has conditions)."""
    return (not evaluation.trace and rule.condition is not None and not evaluation.matched
            and evaluation.error is None and evaluation.skipped is None)


def traced(rule: Rule, evaluation: Evaluation, ctx: EvalContext) -> Evaluation:
    """``evaluation`` with its trace: evaluated again when it was left out.

    ``ctx`` is the event's context; the evaluation may be for another of the event's types
    (``ticket.solved``), whose context is made as :func:`rules.occurrence.contexts` makes it.
    """
    if not is_untraced(rule, evaluation):
        return evaluation
    if ctx.event_type != evaluation.event_type:
        ctx = contexts(ctx, [evaluation.event_type])[evaluation.event_type]
    return evaluate(rule, ctx)
