"""Replaying a history of ticket records through the rules: events in, decisions out.

Each record is one ticket's state. :class:`Replay` turns the stream into the events live
processing would have made of it, and decides each one with :mod:`rules.engine` — the code live
processing uses — against one or more rule sets, each with its own :class:`MemoryRuleState` (so
windows, throttles and shadow mode behave as live) and its own simulated links:

- a ticket's first record is ``ticket.created`` when its ``created_at`` is at or after the start
  of the history (``--since``, or the first record's ``updated_at``), or equals its
  ``updated_at`` — the poller's rule —, otherwise ``ticket.updated`` diffed against nothing (as
  live does for a ticket it has no snapshot of);
- a later record of the same ticket is ``ticket.updated``, diffed against the previous record
  (``sync.processor.diff_tickets``); a record not newer than the previous one is skipped, and so
  is one in which no field changed (as live does: rules react to changes);
- the event's time (``ctx.now``) is the record's ``updated_at``; its source is ``poll`` (the
  export is what the poller reads) and its key the poller's change key, so intents get the
  idempotency keys live would give them;
- a fired *live* rule's ``jira.create_or_link_bug`` intent makes the ticket count as linked
  (``links.jira`` = ``pending:<key[:12]>``) for its later events, as the processor's pending
  outbox rows do; shadow rules' intents never run, so they link nothing.

Nothing is written anywhere but the history's temporary file.
"""

from __future__ import annotations

__all__ = ["Replay", "ReplayEvent", "SideResult", "Skip"]

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.models import Ticket, format_time
from rules import EvalContext, Evaluation, RuleSet
from rules.engine import FollowUp, MemoryRuleState, Outcome, settle_event
from rules.model import Mode, Rule
from rules.occurrence import contexts, evaluate_once, event_types
from sync.actions import MARKER_PREFIX
from sync.planning import CREATE_BUG
from sync.processor import diff_tickets, subtract_own, ticket_context

from .history import TicketEntry, TicketHistory
from .quick import QuickEvaluator, is_untraced

#: ``event.source`` of replayed events: the export is what the poller reads.
SOURCE = "poll"

Matcher = Callable[[Rule, EvalContext], Evaluation]


@dataclass(frozen=True, slots=True)
class Skip:
    """A record that made no event, and why (``stale`` or ``unchanged``)."""

    ticket_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class SideResult:
    """One rule set's decision for one event."""

    ctx: EvalContext
    follow_ups: tuple[FollowUp, ...]
    outcomes: tuple[Outcome, ...]


@dataclass(frozen=True, slots=True)
class ReplayEvent:
    """One event and, per rule set (in the order given to :class:`Replay`), its decision."""

    ticket_id: int
    event_type: str
    at: datetime
    event_key: str
    sides: tuple[SideResult, ...]


def _pending_links(rule: Rule, intents: Sequence[Any]) -> list[str]:
    if rule.mode is not Mode.LIVE:
        return []
    return [f"pending:{i.idempotency_key[:12]}" for i in intents if i.action == CREATE_BUG]


def _with_links(links: tuple[str, ...], pending: list[str]) -> tuple[str, ...]:
    if not pending:
        return links
    return (*links, *(key for key in pending if key not in links))


class _Namespace(Mapping[str, Any]):
    """``ctx.namespace()``, built when first read.

    What the templates of a matched rule's intents render against. A backtest plans intents but
    renders none, so most namespaces are never read, and building one costs more than deciding
    every rule of the event; a diff, a window's ``after_quiet`` or a test that reads it gets
    exactly ``ctx.namespace()``.
    """

    __slots__ = ("_ctx", "_data")

    def __init__(self, ctx: EvalContext) -> None:
        self._ctx = ctx
        self._data: dict[str, Any] | None = None

    def _built(self) -> dict[str, Any]:
        if self._data is None:
            self._data = self._ctx.namespace()
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._built()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._built())

    def __repr__(self) -> str:
        return repr(self._built())


class Replay:
    """Feed records in history order with :meth:`feed`; each returns the event or why not.

    ``rule_sets`` are decided side by side on the same events (one for a backtest, two for a
    diff). ``start`` is the start of the history (``None``: the first record's ``updated_at``).
    ``evaluator`` evaluates one rule (default: a :class:`~.quick.QuickEvaluator`, which gives
    not-matched evaluations without their trace; :func:`rules.evaluate` traces them all).
    """

    def __init__(self, rule_sets: Sequence[RuleSet], *, custom_fields: Sequence[str],
                 history: TicketHistory, start: datetime | None = None,
                 evaluator: Matcher | None = None) -> None:
        self.rule_sets = tuple(rule_sets)
        self.states = tuple(MemoryRuleState() for _ in self.rule_sets)
        self.custom_fields = tuple(custom_fields)
        self.history = history
        self.start = start
        self.evaluate = evaluator if evaluator is not None else QuickEvaluator()
        self._quick = self.evaluate if isinstance(self.evaluate, QuickEvaluator) else None
        self._no_links: tuple[tuple[str, ...], ...] = tuple(() for _ in self.rule_sets)
        self._for_event: list[dict[str, tuple[Rule, ...]]] = [{} for _ in self.rule_sets]
        #: Not-fired outcomes of shared (untraced) not-matched evaluations, by their id.
        self._outcomes: dict[int, Outcome] = {}

    def _event_type(self, ticket: Ticket, previous: TicketEntry | None) -> str:
        if previous is not None:
            return "ticket.updated"
        created = ticket.created_at
        if created is None:
            return "ticket.updated"
        assert self.start is not None
        return "ticket.created" if created == ticket.updated_at or created >= self.start \
            else "ticket.updated"

    def _rules_for(self, side: int, event_type: str) -> tuple[Rule, ...]:
        cache = self._for_event[side]
        rules = cache.get(event_type)
        if rules is None:
            rules = cache[event_type] = self.rule_sets[side].for_event(event_type)
        return rules

    def feed(self, ticket: Ticket) -> ReplayEvent | Skip:
        """Decide the event one record makes (or say why it makes none)."""
        if self.start is None:
            self.start = ticket.updated_at
        previous = self.history.get(ticket.id)
        before = previous.ticket if previous is not None else None
        if before is not None and before.updated_at >= ticket.updated_at:
            return Skip(ticket.id, "stale")
        links = previous.links if previous is not None else self._no_links
        changes = diff_tickets(before, ticket)
        new_markers = [t for t in ticket.tags if t.startswith(MARKER_PREFIX)
                       and (before is None or t not in before.tags)]
        if new_markers:
            # Live subtracts what Switchboard wrote; with no outbox to ask, it knows only the
            # marker tag itself (the processor's fallback when it finds no recorded delta).
            changes = subtract_own(changes, [{"add_tags": [t]} for t in new_markers])
        if before is not None and not changes:
            self.history.put(ticket.id, TicketEntry(ticket, links))
            return Skip(ticket.id, "unchanged")
        event_type = self._event_type(ticket, previous)
        # Like live: the change is also ticket.solved when the status became solved (an export
        # carries no comments, so never ticket.comment_added).
        types = event_types(event_type, changes, comment=False)
        event_key = f"zendesk:ticket:{ticket.id}:{format_time(ticket.updated_at)}"
        sides: list[SideResult] = []
        new_links: list[tuple[str, ...]] = []
        for side, rule_set in enumerate(self.rule_sets):
            ctx = ticket_context(ticket, event_type, changes,
                                 {"jira": links[side]} if links[side] else {},
                                 source=SOURCE, now=ticket.updated_at,
                                 custom_fields=self.custom_fields)
            if len(types) == 1:
                rules = self._rules_for(side, event_type)
                evaluations = (self._quick.each(rules, ctx) if self._quick is not None else
                               [(rule, self.evaluate(rule, ctx)) for rule in rules])
                by_type = None
            else:
                per_type = contexts(ctx, types)
                evaluations = evaluate_once(rule_set, per_type, evaluator=self.evaluate)
                by_type = {t: (c, _Namespace(c)) for t, c in per_type.items()}
            follow_ups, outcomes = self._settle(side, evaluations, ctx, event_key, by_type)
            pending: list[str] = []
            for follow in follow_ups:  # live writes follow-ups' intents first
                keys = _pending_links(follow.rule, follow.intents)
                if not keys or follow.ticket_id is None:
                    continue
                if follow.ticket_id == ticket.id:
                    pending += keys
                else:
                    self._link_other(follow.ticket_id, side, keys)
            for outcome in outcomes:
                if outcome.fired:
                    pending += _pending_links(outcome.rule, outcome.intents)
            new_links.append(_with_links(links[side], pending))
            sides.append(SideResult(ctx, tuple(follow_ups), tuple(outcomes)))
        self.history.put(ticket.id, TicketEntry(ticket, tuple(new_links)))
        return ReplayEvent(ticket.id, event_type, ticket.updated_at, event_key, tuple(sides))

    def _settle(self, side: int, evaluations: list[tuple[Rule, Evaluation]], ctx: EvalContext,
                event_key: str, by_type: dict[str, tuple[EvalContext, _Namespace]] | None,
                ) -> tuple[list[FollowUp], list[Outcome]]:
        """``settle_event`` of the event's evaluations, in order.

        Only the matched evaluations go through it: one that did not match settles as a
        not-fired :class:`Outcome` and touches no state (``rules.engine.settle``), so for the
        shared not-matched evaluations of the quick evaluator that outcome is made once.
        """
        matched = [pair for pair in evaluations if pair[1].matched]
        follow_ups, settled = settle_event(self.rule_sets[side], matched, ctx, self.states[side],
                                           event_key, _Namespace(ctx), contexts=by_type)
        if len(matched) == len(evaluations):
            return follow_ups, settled
        fired, cache = iter(settled), self._outcomes
        outcomes = []
        for rule, evaluation in evaluations:
            if evaluation.matched:
                outcomes.append(next(fired))
                continue
            outcome = cache.get(id(evaluation))
            if outcome is None or outcome.evaluation is not evaluation:
                outcome = self._unmatched(rule, evaluation)
            outcomes.append(outcome)
        return follow_ups, outcomes

    def _unmatched(self, rule: Rule, evaluation: Evaluation) -> Outcome:
        if not is_untraced(rule, evaluation):
            return Outcome(rule, evaluation, False)
        cached = self._outcomes.get(id(evaluation))
        if cached is None or cached.evaluation is not evaluation:
            if len(self._outcomes) >= 4096:  # another evaluator's fresh evaluations
                self._outcomes.clear()
            cached = self._outcomes[id(evaluation)] = Outcome(rule, evaluation, False)
        return cached

    def _link_other(self, ticket_id: int, side: int, keys: list[str]) -> None:
        """A window follow-up planned a bug for the episode's last ticket, not this one."""
        entry = self.history.get(ticket_id)
        if entry is None:
            return
        links = list(entry.links)
        links[side] = _with_links(links[side], keys)
        self.history.put(ticket_id, TicketEntry(entry.ticket, tuple(links)))

    def open_episodes(self, side: int = 0) -> int:
        """Window episodes still open at the end (their quiet period had not passed)."""
        return len(self.states[side].open_episodes())
