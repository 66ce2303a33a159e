"""One inbound change, several event types: which ones it is, and each rule decided once.

A Zendesk ticket update is ``ticket.updated`` (``ticket.created`` for a ticket never seen); it is
also ``ticket.solved`` when its status changed to solved, and ``ticket.comment_added`` when it
added a comment. A rule listening to several of them fires at most once for the change: it is
evaluated against each of its event types in the order of :func:`event_types` until one matches.
The hub (``sync.processor``) and ``switchboard test`` both decide through here.
"""

from __future__ import annotations

__all__ = ["SOLVED", "became_solved", "contexts", "evaluate_once", "event_types"]

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .context import Change, EvalContext
from .evaluator import Evaluation, evaluate
from .model import Mode, Rule

SOLVED = "solved"
COMMENT_ADDED = "ticket.comment_added"
SOLVED_EVENT = "ticket.solved"


def became_solved(changes: Mapping[str, Change]) -> bool:
    """Whether the status changed to solved in this change set (case-insensitively)."""
    change = changes.get("status")
    if change is None:
        return False
    before, after = (str(v).casefold() if v is not None else None
                     for v in (change.from_, change.to))
    return after == SOLVED and before != SOLVED


def event_types(base: str, changes: Mapping[str, Change], *,
                comment: bool) -> tuple[str, ...]:
    """The event types one ticket change represents, in evaluation order.

    ``base`` is ``ticket.created`` or ``ticket.updated``; ``ticket.solved`` follows when the
    status became solved, ``ticket.comment_added`` when ``comment`` (a new comment came). A
    ticket's first comment is its ``description``, so ``ticket.created`` never adds
    ``ticket.comment_added``.
    """
    types = [base]
    if became_solved(changes):
        types.append(SOLVED_EVENT)
    if comment and base != "ticket.created":
        types.append(COMMENT_ADDED)
    return tuple(types)


def contexts(base: EvalContext, types: Iterable[str],
             comment: Mapping[str, Any] | None = None) -> dict[str, EvalContext]:
    """One context per event type: ``base`` with ``event_type`` set, and ``comment`` on the
    ``ticket.comment_added`` one only (with ``from_requester`` worked out from its author and
    the ticket's requester when it does not say)."""
    out: dict[str, EvalContext] = {}
    if comment is not None and "from_requester" not in comment:
        author = comment.get("author_id")
        comment = {**comment, "from_requester":
                   author is not None and author == base.ticket.get("requester_id")}
    for event_type in types:
        out[event_type] = dataclasses.replace(
            base, event_type=event_type,
            comment=comment if event_type == COMMENT_ADDED else None)
    return out


def evaluate_once(rules: Iterable[Rule], by_type: Mapping[str, EvalContext], *,
                  evaluator: Callable[[Rule, EvalContext], Evaluation] = evaluate,
                  ) -> list[tuple[Rule, Evaluation]]:
    """Evaluate each non-off rule that listens to any of the event types in ``by_type``, once.

    A rule is tried against its event types in ``by_type`` order and stops at the first match;
    the :class:`Evaluation` returned is that match (its ``event_type`` says which), or the last
    one tried. Rules keep their (file) order.
    """
    out: list[tuple[Rule, Evaluation]] = []
    for rule in rules:
        if rule.mode is Mode.OFF:
            continue
        evaluation: Evaluation | None = None
        for event_type, ctx in by_type.items():
            if event_type not in rule.on:
                continue
            evaluation = evaluator(rule, ctx)
            if evaluation.matched:
                break
        if evaluation is not None:
            out.append((rule, evaluation))
    return out
