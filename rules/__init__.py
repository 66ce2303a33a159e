"""The rule language: YAML rules -> validated RuleSet -> evaluation with a trace -> action intents.

Load with :func:`load_rule_files` (every problem reported at once, with ``file:line``), pick the
rules for an event with :meth:`RuleSet.for_event`, decide with :func:`evaluate` (an
:class:`Evaluation` that explains itself), and turn a match into intents with :func:`plan`; the
dispatcher renders their params with :func:`render_params`. No I/O beyond reading rule files.

For throughput, :func:`matches` is ``evaluate(...).matched`` without the trace (rules compiled
once), and :meth:`RuleSet.matching` decides every rule of an event at once, checking only the rules
the event can match (:mod:`rules.compiled`).
"""

from __future__ import annotations

from .actions import ACTIONS, DEFAULT_BUG_DESCRIPTION, ActionSpec
from .compiled import CompiledRule, compile_rule, matches
from .context import Change, EvalContext
from .evaluator import ConditionResult, Evaluation, GroupResult, evaluate
from .events import EVENT_TYPES, EventType
from .fields import FieldKind, FieldRegistry, FieldSpec, resolve
from .loader import load_rule_files, load_rules
from .model import (
    ActionCall,
    All,
    Any_,
    Condition,
    FieldCondition,
    FrozenDict,
    Mode,
    Not,
    Rule,
    RuleSet,
    thaw,
)
from .operators import OPERATORS, Op, OperatorError, OperatorSpec
from .planner import ActionIntent, idempotency_key, plan, render_params
from .source import Positions, Problem, ProblemsError, load_yaml
from .templating import (
    TemplateRenderError,
    compile_template,
    render,
    template_refs,
    template_roots,
)

__all__ = [
    "ACTIONS",
    "DEFAULT_BUG_DESCRIPTION",
    "EVENT_TYPES",
    "OPERATORS",
    "ActionCall",
    "ActionIntent",
    "ActionSpec",
    "All",
    "Any_",
    "Change",
    "CompiledRule",
    "Condition",
    "ConditionResult",
    "EvalContext",
    "Evaluation",
    "EventType",
    "FieldCondition",
    "FieldKind",
    "FieldRegistry",
    "FieldSpec",
    "FrozenDict",
    "GroupResult",
    "Mode",
    "Not",
    "Op",
    "OperatorError",
    "OperatorSpec",
    "Positions",
    "Problem",
    "ProblemsError",
    "Rule",
    "RuleSet",
    "TemplateRenderError",
    "compile_rule",
    "compile_template",
    "evaluate",
    "idempotency_key",
    "load_rule_files",
    "load_rules",
    "load_yaml",
    "matches",
    "plan",
    "render",
    "render_params",
    "resolve",
    "template_refs",
    "template_roots",
    "thaw",
]
