"""Could a rule still match once fields the event lacks are known? (Three-valued logic.)

The hub reads a ticket, its requester or its organization only for rules that can fire. A rule
evaluated without those fields says, leaf by leaf, what it saw; a leaf on a field that is not
known yet is *unknown*, and ``all`` / ``any`` / ``not`` combine the rest as usual: ``all`` with a
false leaf is false whatever the unknowns turn out to be, ``any`` with a true leaf is true. Only a
rule whose outcome is not already false needs the read.
"""

from __future__ import annotations

__all__ = ["could_match", "judge"]

from collections.abc import Callable, Mapping

from .evaluator import ConditionResult, Evaluation
from .model import All, Any_, Condition, FieldCondition, Not, Rule


def _value(condition: Condition, leaves: Mapping[str, ConditionResult],
           unknown: Callable[[str], bool]) -> bool | None:
    if isinstance(condition, FieldCondition):
        if unknown(condition.field):
            return None
        leaf = leaves.get(condition.path)
        return bool(leaf.result) if leaf is not None and leaf.error is None else False
    if isinstance(condition, Not):
        inner = _value(condition.condition, leaves, unknown)
        return None if inner is None else not inner
    values = [_value(c, leaves, unknown) for c in condition.conditions]
    if isinstance(condition, All):
        return False if False in values else None if None in values else True
    assert isinstance(condition, Any_)
    return True if True in values else None if None in values else False


def judge(rule: Rule, evaluation: Evaluation, unknown: Callable[[str], bool]) -> bool | None:
    """``True`` if ``rule`` matches whatever the fields for which ``unknown(path)`` is true turn
    out to be, ``False`` if it cannot match, ``None`` if it depends on them.

    ``evaluation`` is the rule evaluated without them (they read as null, which is not trusted:
    ``not exists`` on an unknown field is unknown, not true). A leaf that errored on a known field
    is false, as in evaluation.
    """
    if rule.condition is None:
        return True
    leaves = {leaf.path: leaf for leaf in evaluation.trace}
    return _value(rule.condition, leaves, unknown)


def could_match(rule: Rule, evaluation: Evaluation, unknown: Callable[[str], bool]) -> bool:
    """Whether ``rule`` may match once the unknown fields are known (:func:`judge` is not
    ``False``)."""
    return judge(rule, evaluation, unknown) is not False
