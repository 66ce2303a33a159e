"""Deciding one event: evaluate, gate (window, throttle), plan — one code path, live and backtest.

A rule whose conditions match *fires* unless a gate holds it back:

- **window** (``window: {count, within, group_by, quiet_for}``): each match is counted for its
  group (the ``group_by`` field's value; one group when absent). When ``count`` distinct tickets
  have matched within the sliding ``within``, the rule fires once for the group and an *episode*
  opens; later matches extend it without firing again — each such *join* runs the rule's
  ``while_open`` actions, if any (an outage thread's count kept current). The episode ends once
  the group has had no match for ``quiet_for`` (default: ``within``); the rule's ``after_quiet``
  actions then run once, and the next burst can fire again. A match whose ``group_by`` value is
  empty is not counted.
- **throttle** (``once_until_resolved`` and/or ``at_most: {count, per, by}``): checked after the
  window. ``once_until_resolved`` lets the rule fire once per ticket until that ticket's status
  changes to solved or closed; ``at_most`` caps fires per ``per`` for each value of ``by``.

Time is the event's time (:attr:`EvalContext.event_time`: when it reached Switchboard), never the
wall clock, so a backtest over history decides as live processing did. Gate state lives behind
:class:`RuleState`: the store implements it for live processing (``sync.rulestate``), in the same
transaction as the decision; :class:`MemoryRuleState` serves backtests and ``switchboard test``.
The semantics live here, once; a state only stores and fetches.

Live processing evaluates outside its write transaction and calls :func:`settle_event` inside
it (end quiet episodes, gate each rule, release ``once_until_resolved`` on resolution);
:func:`decide` evaluates and settles in one call (backtest, ``switchboard test``).
"""

from __future__ import annotations

__all__ = [
    "Episode",
    "FollowUp",
    "MemoryRuleState",
    "Outcome",
    "RESOLVED_STATUSES",
    "RuleState",
    "decide",
    "format_duration",
    "settle",
    "settle_event",
    "sweep",
]

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from .context import EvalContext
from .evaluator import Evaluation, evaluate
from .fields import resolve
from .model import Mode, Rule, RuleSet, Window
from .planner import ActionIntent, plan

#: Statuses that count as resolved for ``once_until_resolved``.
RESOLVED_STATUSES = frozenset({"solved", "closed"})
#: At most this many ticket ids are kept per window episode (the count keeps counting).
MAX_EPISODE_TICKETS = 200
ALL = "*"


@dataclass(frozen=True, slots=True)
class Episode:
    """A window group that fired and has not been quiet for ``quiet_for`` yet.

    ``tickets`` are the distinct tickets that matched during the episode (first
    :data:`MAX_EPISODE_TICKETS`), ``count`` how many there were; ``context`` is the template
    namespace of the latest match (what ``after_quiet`` actions render against).
    """

    rule_id: str
    group: str
    opened_at: datetime
    last_match_at: datetime
    count: int
    tickets: tuple[int, ...]
    context: Mapping[str, Any] = field(default_factory=dict)


class RuleState(Protocol):
    """Where window and throttle state is kept. Storage only: no decisions are made here."""

    def window_matches(self, rule_id: str, group: str,
                       since: datetime) -> list[tuple[int, datetime]]:
        """``(ticket_id, at)`` of the group's matches later than ``since``."""

    def add_window_match(self, rule_id: str, group: str, ticket_id: int, at: datetime) -> None:
        """Record one match; may forget this group's matches older than the window."""

    def forget_window_matches(self, rule_id: str, before: datetime) -> None:
        """Drop the rule's matches (every group) at or before ``before``."""

    def episode(self, rule_id: str, group: str) -> Episode | None: ...

    def save_episode(self, episode: Episode) -> None: ...

    def end_episode(self, rule_id: str, group: str) -> None: ...

    def open_episodes(self) -> list[Episode]: ...

    def fire_count(self, rule_id: str, scope: str, since: datetime | None) -> int:
        """Fires of the rule for ``scope`` later than ``since`` (ever, when ``None``)."""

    def add_fire(self, rule_id: str, scope: str, at: datetime) -> None: ...

    def forget_fires(self, rule_id: str, scope: str, before: datetime | None) -> None:
        """Drop the rule's fires for ``scope`` at or before ``before`` (all, when ``None``)."""

    def forget_scope(self, scope: str) -> None:
        """Drop every rule's fires for ``scope`` (a ticket was resolved)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one rule for one event.

    ``fired`` is ``matched`` minus what a gate held back (``gate`` says why, in plain language,
    whether it fired or not); ``namespace`` is what the intents' templates render against
    (the event's, plus ``window`` when a window fired); ``error`` is a planning failure.
    """

    rule: Rule
    evaluation: Evaluation
    fired: bool
    gate: str | None = None
    window: Mapping[str, Any] | None = None
    intents: tuple[ActionIntent, ...] = ()
    namespace: Mapping[str, Any] | None = None
    error: str | None = None

    @property
    def matched(self) -> bool:
        return self.evaluation.matched

    def trace(self) -> dict[str, Any]:
        """The decision log's trace: the evaluation's, plus the gate's verdict."""
        out = self.evaluation.to_json()
        out["fired"] = self.fired
        if self.gate:
            out["gate"] = self.gate
        if self.window is not None:
            out["window"] = dict(self.window)
        if self.error:
            out["error"] = self.error
        return out


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A window episode that ended: its ``after_quiet`` intents (none if the rule has none)."""

    rule: Rule
    episode: Episode
    at: datetime
    namespace: Mapping[str, Any]
    intents: tuple[ActionIntent, ...]
    reason: str

    @property
    def ticket_id(self) -> int | None:
        return self.episode.tickets[-1] if self.episode.tickets else None

    @property
    def event_key(self) -> str:
        return _quiet_key(self.episode)

    def trace(self) -> dict[str, Any]:
        return {"rule_id": self.rule.id, "event_type": "window.quiet", "mode": self.rule.mode,
                "matched": True, "fired": bool(self.intents), "gate": self.reason,
                "window": dict(self.namespace.get("window", {})), "conditions": []}


def format_duration(delta: timedelta) -> str:
    """``timedelta(minutes=15)`` -> ``15m``: the largest unit that divides it (w, d, h, m, s)."""
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _quiet_key(episode: Episode) -> str:
    return f"window-quiet:{episode.rule_id}:{episode.group}:{_iso(episode.opened_at)}"


def _group(window: Window, ctx: EvalContext) -> str | None:
    if window.group_by is None:
        return ALL
    value = resolve(window.group_by, ctx)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, list | tuple):
        return ",".join(sorted(str(v) for v in value)) or None
    return str(value).strip()


def window_namespace(rule: Rule, episode: Episode) -> dict[str, Any]:
    """What templates see as ``window`` (``count``, ``group``, ``tickets``, ...)."""
    assert rule.window is not None
    return {
        "count": episode.count, "group": None if episode.group == ALL else episode.group,
        "tickets": list(episode.tickets), "within": format_duration(rule.window.within),
        "quiet_for": format_duration(rule.window.quiet), "opened_at": _iso(episode.opened_at),
        "last_match_at": _iso(episode.last_match_at),
    }


def _ticket_id(ctx: EvalContext) -> int | None:
    value = ctx.ticket.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def sweep(rules: RuleSet | Sequence[Rule], state: RuleState, at: datetime) -> list[FollowUp]:
    """End every episode that has been quiet long enough by ``at``; plan their follow-ups.

    Also forgets window matches too old to count. Episodes of rules that no longer exist (or
    lost their window) are ended without follow-up. Off rules' episodes are ended too.
    """
    by_id = {rule.id: rule for rule in rules}
    done: list[FollowUp] = []
    for rule in by_id.values():
        if rule.window is not None:
            state.forget_window_matches(rule.id, at - rule.window.within)
    for episode in sorted(state.open_episodes(), key=lambda e: (e.last_match_at, e.rule_id)):
        owner = by_id.get(episode.rule_id)
        if owner is None or owner.window is None:
            state.end_episode(episode.rule_id, episode.group)
            continue
        rule = owner
        assert rule.window is not None
        quiet = rule.window.quiet
        if episode.last_match_at + quiet > at:
            continue
        state.end_episode(episode.rule_id, episode.group)
        window = window_namespace(rule, episode)
        namespace = {**dict(episode.context), "window": window}
        intents: tuple[ActionIntent, ...] = ()
        if rule.after_quiet and rule.mode is not Mode.OFF:
            intents = plan(dataclasses.replace(rule, actions=rule.after_quiet),
                           _quiet_key(episode))
        reason = (f"window group {window['group'] or '(all)'} quiet for "
                  f"{format_duration(quiet)} since {window['last_match_at']}: episode over "
                  f"after {episode.count} ticket(s)")
        done.append(FollowUp(rule, episode, episode.last_match_at + quiet, namespace, intents,
                             reason))
    return done


def settle_event(rules: RuleSet | Sequence[Rule],
                 evaluations: Sequence[tuple[Rule, Evaluation]], ctx: EvalContext,
                 state: RuleState, event_key: str,
                 namespace: Mapping[str, Any] | None = None, *,
                 contexts: Mapping[str, tuple[EvalContext, Mapping[str, Any]]] | None = None,
                 ) -> tuple[list[FollowUp], list[Outcome]]:
    """Gate one event's evaluated rules, in order, updating ``state``.

    First the episodes that were quiet by the event's time end (their follow-ups come first);
    then each rule is settled; last, if the event resolved the ticket (status changed to solved
    or closed), its ``once_until_resolved`` throttles are released — for the events after this
    one, so a rule that matches the resolving event itself is still held.

    ``contexts`` (context and namespace by event type) serves a change that is several event
    types at once (``rules.occurrence``): each evaluation is settled with those of its
    ``event_type``, falling back to ``ctx`` and ``namespace``.
    """
    at = ctx.event_time
    follow_ups = sweep(rules, state, at) if at is not None else []
    namespace = ctx.namespace() if namespace is None else namespace
    by_type = contexts or {}
    outcomes = []
    for rule, evaluation in evaluations:
        rule_ctx, rule_namespace = by_type.get(evaluation.event_type, (ctx, namespace))
        outcomes.append(settle(rule, evaluation, rule_ctx, state, event_key, rule_namespace))
    status = ctx.changes.get("status")
    ticket_id = _ticket_id(ctx)
    if status is not None and status.to in RESOLVED_STATUSES and ticket_id is not None:
        state.forget_scope(f"ticket:{ticket_id}")
    return follow_ups, outcomes


def _window_gate(rule: Rule, ctx: EvalContext, state: RuleState, at: datetime,
                 namespace: Mapping[str, Any]) -> tuple[bool, str, Episode | None, Episode | None]:
    """Count this match; ``(would_fire, reason, episode_to_open, episode_joined)``."""
    window = rule.window
    assert window is not None
    group = _group(window, ctx)
    if group is None:
        return (False, f"window: {window.group_by} is empty, so the match is not counted", None,
                None)
    ticket_id = _ticket_id(ctx) or 0
    state.add_window_match(rule.id, group, ticket_id, at)
    matches = state.window_matches(rule.id, group, at - window.within)
    tickets = list(dict.fromkeys(t for t, _ in sorted(matches, key=lambda m: m[1])))
    label = "(all)" if group == ALL else repr(group)
    episode = state.episode(rule.id, group)
    if episode is not None:
        known = ticket_id in episode.tickets
        grown = Episode(rule.id, group, episode.opened_at, at,
                        episode.count + (0 if known else 1),
                        episode.tickets if known or len(episode.tickets) >= MAX_EPISODE_TICKETS
                        else (*episode.tickets, ticket_id), namespace)
        state.save_episode(grown)
        return False, (f"window group {label} already fired at {_iso(episode.opened_at)}; "
                       f"this match extends it ({grown.count} ticket(s) so far)"), None, grown
    count = len(tickets)
    if count < window.count:
        return False, (f"window group {label}: {count} of {window.count} tickets within "
                       f"{format_duration(window.within)}; not fired yet"), None, None
    opened = Episode(rule.id, group, at, at, count, tuple(tickets[:MAX_EPISODE_TICKETS]),
                     namespace)
    return True, (f"window group {label}: {count} tickets within {format_duration(window.within)} "
                  f"(threshold {window.count}); fired"), opened, None


def _throttle_scopes(rule: Rule, ctx: EvalContext) -> tuple[str | None, str | None]:
    throttle = rule.throttle
    assert throttle is not None
    ticket_id = _ticket_id(ctx)
    once = f"ticket:{ticket_id}" if throttle.once_until_resolved and ticket_id is not None \
        else None
    at_most = None
    if throttle.at_most is not None:
        by = throttle.at_most.by
        value = resolve(by, ctx) if by else None
        at_most = f"{by}={value}" if by else ALL
    return once, at_most


def _throttle_gate(rule: Rule, ctx: EvalContext, state: RuleState,
                   at: datetime) -> str | None:
    """Why the throttle holds this fire back, or ``None`` when it may fire."""
    throttle = rule.throttle
    assert throttle is not None
    once, at_most = _throttle_scopes(rule, ctx)
    if once is not None and state.fire_count(rule.id, once, None):
        return (f"throttled: already fired for ticket {once.split(':', 1)[1]}; fires again "
                "after the ticket is solved or closed (once_until_resolved)")
    if at_most is not None and throttle.at_most is not None:
        limit = throttle.at_most
        since = at - limit.per
        state.forget_fires(rule.id, at_most, since)
        fired = state.fire_count(rule.id, at_most, since)
        if fired >= limit.count:
            scope = "" if at_most == ALL else f" for {at_most}"
            per = format_duration(limit.per)
            return (f"throttled: fired {fired} time(s) in the last {per}{scope} "
                    f"(at_most {limit.count} per {per})")
    return None


def _record_fire(rule: Rule, ctx: EvalContext, state: RuleState, at: datetime) -> None:
    if rule.throttle is None:
        return
    for scope in _throttle_scopes(rule, ctx):
        if scope is not None:
            state.add_fire(rule.id, scope, at)


def settle(rule: Rule, evaluation: Evaluation, ctx: EvalContext, state: RuleState,
           event_key: str, namespace: Mapping[str, Any] | None = None) -> Outcome:
    """Gate one evaluated rule and plan its intents if it fires (shadow rules plan too: the
    caller records their intents as never to run). Updates ``state``."""
    if not evaluation.matched:
        return Outcome(rule, evaluation, False)
    namespace = ctx.namespace() if namespace is None else namespace
    at = ctx.event_time
    gate: str | None = None
    window: dict[str, Any] | None = None
    opened: Episode | None = None
    if (rule.window is not None or rule.throttle is not None) and at is None:
        return Outcome(rule, evaluation, False,
                       gate="the event has no time, so its window/throttle cannot be judged")
    assert at is not None or (rule.window is None and rule.throttle is None)
    if rule.window is not None and at is not None:
        fires, gate, opened, joined = _window_gate(rule, ctx, state, at, namespace)
        if not fires:
            if joined is not None and rule.while_open:
                return _join(rule, evaluation, joined, gate, event_key, namespace)
            return Outcome(rule, evaluation, False, gate=gate)
    if rule.throttle is not None and at is not None:
        held = _throttle_gate(rule, ctx, state, at)
        if held is not None:
            return Outcome(rule, evaluation, False, gate=f"{gate}; {held}" if gate else held)
    if opened is not None:
        state.save_episode(opened)
        window = window_namespace(rule, opened)
        namespace = {**namespace, "window": window}
    if at is not None:
        _record_fire(rule, ctx, state, at)
    try:
        intents = plan(rule, event_key)
    except Exception as exc:  # a rule error, reported in the trace, never a crash
        return Outcome(rule, evaluation, True, gate, window, (), namespace,
                       f"planning failed: {exc}")
    return Outcome(rule, evaluation, True, gate, window, intents, namespace)


def _join(rule: Rule, evaluation: Evaluation, episode: Episode, gate: str, event_key: str,
          namespace: Mapping[str, Any]) -> Outcome:
    """A match that joined an open episode: the rule does not fire, its ``while_open`` runs."""
    window = window_namespace(rule, episode)
    namespace = {**namespace, "window": window}
    gate = f"{gate}; while_open actions run"
    try:
        intents = plan(dataclasses.replace(rule, actions=rule.while_open), event_key)
    except Exception as exc:  # a rule error, reported in the trace, never a crash
        return Outcome(rule, evaluation, False, gate, window, (), namespace,
                       f"planning failed: {exc}")
    return Outcome(rule, evaluation, False, gate, window, intents, namespace)


def decide(rules: RuleSet, ctx: EvalContext, state: RuleState,
           event_key: str) -> tuple[list[FollowUp], list[Outcome]]:
    """The whole decision for one event: follow-ups of episodes that ended by the event's time,
    then one outcome per non-off rule listening to ``ctx.event_type``, in file order."""
    evaluations = [(rule, evaluate(rule, ctx)) for rule in rules.for_event(ctx.event_type)]
    return settle_event(rules, evaluations, ctx, state, event_key)


class MemoryRuleState:
    """:class:`RuleState` in memory, for backtests and ``switchboard test``.

    Memory stays bounded by what is live: old matches and fires are dropped as time moves on.
    """

    def __init__(self) -> None:
        self._matches: dict[tuple[str, str], list[tuple[int, datetime]]] = {}
        self._pruned: dict[str, datetime] = {}
        self._episodes: dict[tuple[str, str], Episode] = {}
        self._fires: dict[tuple[str, str], list[datetime]] = {}
        self._scopes: dict[str, set[str]] = {}

    def window_matches(self, rule_id: str, group: str,
                       since: datetime) -> list[tuple[int, datetime]]:
        return [m for m in self._matches.get((rule_id, group), ()) if m[1] > since]

    def add_window_match(self, rule_id: str, group: str, ticket_id: int, at: datetime) -> None:
        self._matches.setdefault((rule_id, group), []).append((ticket_id, at))

    def forget_window_matches(self, rule_id: str, before: datetime) -> None:
        # A full pass costs one step per group, so it runs at most once per simulated minute
        # per rule: matches are filtered by time when read, so pruning late is harmless.
        last = self._pruned.get(rule_id)
        if last is not None and before - last < timedelta(minutes=1):
            return
        self._pruned[rule_id] = before
        for key in [k for k in self._matches if k[0] == rule_id]:
            kept = [m for m in self._matches[key] if m[1] > before]
            if kept:
                self._matches[key] = kept
            else:
                del self._matches[key]

    def episode(self, rule_id: str, group: str) -> Episode | None:
        return self._episodes.get((rule_id, group))

    def save_episode(self, episode: Episode) -> None:
        self._episodes[(episode.rule_id, episode.group)] = episode

    def end_episode(self, rule_id: str, group: str) -> None:
        self._episodes.pop((rule_id, group), None)

    def open_episodes(self) -> list[Episode]:
        return list(self._episodes.values())

    def fire_count(self, rule_id: str, scope: str, since: datetime | None) -> int:
        fires = self._fires.get((rule_id, scope), ())
        return len(fires) if since is None else sum(1 for at in fires if at > since)

    def add_fire(self, rule_id: str, scope: str, at: datetime) -> None:
        self._fires.setdefault((rule_id, scope), []).append(at)
        self._scopes.setdefault(scope, set()).add(rule_id)

    def forget_fires(self, rule_id: str, scope: str, before: datetime | None) -> None:
        fires = self._fires.get((rule_id, scope))
        if fires is None:
            return
        kept = [] if before is None else [at for at in fires if at > before]
        if kept:
            self._fires[(rule_id, scope)] = kept
        else:
            del self._fires[(rule_id, scope)]
            rules = self._scopes.get(scope)
            if rules is not None:
                rules.discard(rule_id)
                if not rules:
                    del self._scopes[scope]

    def forget_scope(self, scope: str) -> None:
        for rule_id in self._scopes.pop(scope, set()):
            self._fires.pop((rule_id, scope), None)
