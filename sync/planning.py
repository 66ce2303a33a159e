"""From decided outcomes to store rows: decisions (the explain log), intents (the outbox) and the
members of escalations — shared by every kind of event the processor handles.

An intent's ``order_key`` says what it must wait for: a Jira bug with a dedupe key waits for the
other intents of that key (two tickets must not both create "the" bug); an escalation action
waits for the other actions of its escalation (one outage, one thread); everything else waits for
its ticket's earlier intents.
"""

from __future__ import annotations

__all__ = ["CREATE_BUG", "PlannedRows", "decide_in", "follow_up_rows", "intent_rows",
           "matched_summary", "order_key"]

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from rules import EvalContext, RuleSet, evaluate, render_params
from rules.actions import ESCALATION_ACTIONS
from rules.engine import FollowUp, settle_event
from rules.model import Mode, Rule, thaw
from rules.planner import ActionIntent
from sync import escalations
from sync.outbox import add_intent
from sync.rulestate import StoreRuleState
from sync.schema import decisions
from sync.state import get_snapshot
from sync.store import utcnow

log = logging.getLogger("switchboard.processor")

CREATE_BUG = "jira.create_or_link_bug"
UPDATE_LINKED = "zendesk.update_linked"
IMPACT = "jira.impact"
JIRA_COMMENT = "jira.comment"
_DECISION = sa.insert(decisions)


def _escalation_key(rule_id: str, action: str, params: Mapping[str, Any],
                    namespace: Mapping[str, Any]) -> str | None:
    incident = params.get("incident")
    if incident:
        try:  # every escalation action renders ``incident`` as a template
            incident = render_params(action, {"incident": incident}, namespace).get("incident")
        except Exception:  # it uses an earlier action's result: known only at dispatch
            return None
    return escalations.escalation_key(rule_id, incident, namespace)


def order_key(rule_id: str, action: str, params: Mapping[str, Any],
              namespace: Mapping[str, Any], ticket_id: int | None) -> str | None:
    """What the intent runs in order with (see the module docstring); ``None`` when that
    depends on an earlier action's result, known only at dispatch."""
    if action == CREATE_BUG and params.get("dedupe_by"):
        dedupe = render_params(action, {"dedupe_by": params["dedupe_by"]},
                               namespace).get("dedupe_by", "")
        if str(dedupe).strip():
            return f"jira-bug:{params.get('project')}:{str(dedupe).strip()}"
    if action == UPDATE_LINKED and params.get("feature"):
        try:
            feature = str(render_params(action, {"feature": params["feature"]},
                                        namespace).get("feature", "")).strip()
        except Exception:  # it uses an earlier action's result: see intent_rows
            return None
        if feature:  # fan-outs to a feature's tickets run one at a time
            return f"productboard-linked:{feature}"
    if action in (UPDATE_LINKED, IMPACT, JIRA_COMMENT):
        try:
            issue = str(render_params(action, {"issue": params.get("issue", "")},
                                      namespace).get("issue", "")).strip()
        except Exception:  # it uses an earlier action's result (jira.key): see intent_rows
            return None
        if issue:  # fan-outs to an issue's tickets, and its roll-up, run one at a time
            return f"jira-linked:{issue}"
    if action in ESCALATION_ACTIONS:
        key = _escalation_key(rule_id, action, params, namespace)
        if key is not None:
            return f"escalation:{key}"
    return f"zendesk:ticket:{ticket_id}"


def intent_rows(inbox_id: int, rule: Rule, intents: tuple[ActionIntent, ...],
                namespace: Mapping[str, Any], ticket_id: int | None) -> list[dict[str, Any]]:
    """Outbox rows for one rule's intents (``shadow`` rows for a shadow rule: never run)."""
    context = thaw(namespace)
    rows: list[dict[str, Any]] = []
    keys: dict[str, str] = {}
    for intent in intents:
        key = order_key(rule.id, intent.action, intent.params, namespace, ticket_id)
        if key is None:
            # Named by the result of the intent it depends on (``{{ jira.key }}``): it runs in
            # that intent's order (the bug's dedupe key), after it.
            key = keys.get(intent.depends_on or "") or f"zendesk:ticket:{ticket_id}"
        keys[intent.idempotency_key] = key
        rows.append(dict(
            idem_key=intent.idempotency_key, inbox_id=inbox_id, rule_id=rule.id,
            action=intent.action, ticket_id=ticket_id, order_key=key,
            depends_on=intent.depends_on, params=thaw(intent.params), context=context,
            status="pending" if rule.mode is Mode.LIVE else "shadow"))
    return rows


def _member(conn: sa.Connection, ticket_id: int,
            namespace: Mapping[str, Any]) -> escalations.Member:
    ticket = namespace.get("ticket") or {}
    if ticket.get("id") == ticket_id:
        organization = namespace.get("organization") or {}
        org_id = ticket.get("organization_id")
        name = organization.get("name") if organization.get("id") == org_id else None
        return escalations.Member(ticket_id, org_id, name)
    snapshot = get_snapshot(conn, ticket_id)
    return escalations.Member(ticket_id, snapshot.organization_id if snapshot else None, None)


def _members_of(conn: sa.Connection, rule: Rule, intents: tuple[ActionIntent, ...],
                namespace: Mapping[str, Any]) -> None:
    """Record the tickets a live rule's escalation actions bring into their escalation: the
    window's tickets when it fired or was joined, else the event's ticket."""
    if rule.mode is not Mode.LIVE:
        return
    window = namespace.get("window") or {}
    ticket = namespace.get("ticket") or {}
    tickets = [t for t in (window.get("tickets") or [ticket.get("id")]) if isinstance(t, int)]
    if isinstance(ticket.get("id"), int) and ticket["id"] not in tickets:
        tickets.append(ticket["id"])
    keys = {_escalation_key(rule.id, i.action, i.params, namespace) for i in intents
            if i.action in ESCALATION_ACTIONS}
    for key in sorted(k for k in keys if k is not None):
        escalations.add_members(conn, key, [_member(conn, t, namespace) for t in tickets])


@dataclass
class PlannedRows:
    """Decision and intent rows of one event, written in its transaction by :meth:`commit`."""

    inbox_id: int
    now: datetime
    decisions: list[dict[str, Any]] = field(default_factory=list)
    intents: list[dict[str, Any]] = field(default_factory=list)
    _escalated: list[tuple[Rule, tuple[ActionIntent, ...], Mapping[str, Any]]] = field(
        default_factory=list)

    def decision(self, ticket_id: int | None, event_type: str, rule: Rule, matched: bool,
                 trace: Mapping[str, Any]) -> None:
        self.decisions.append({
            "inbox_id": self.inbox_id, "ticket_id": ticket_id, "event_type": event_type,
            "rule_id": rule.id, "mode": rule.mode, "matched": matched, "trace": dict(trace),
            "created_at": self.now})

    def plan(self, rule: Rule, intents: tuple[ActionIntent, ...], namespace: Mapping[str, Any],
             ticket_id: int | None) -> None:
        self.intents += intent_rows(self.inbox_id, rule, intents, namespace, ticket_id)
        if any(i.action in ESCALATION_ACTIONS for i in intents):
            self._escalated.append((rule, intents, namespace))

    def follow_ups(self, follow_ups: list[FollowUp]) -> None:
        for follow in follow_ups:
            self.decision(follow.ticket_id, "window.quiet", follow.rule, True, follow.trace())
            self.plan(follow.rule, follow.intents, follow.namespace, follow.ticket_id)

    def commit(self, conn: sa.Connection) -> int:
        """Insert everything in the caller's transaction; returns how many intents are new."""
        if self.decisions:
            conn.execute(_DECISION, self.decisions)
        for rule, intents, namespace in self._escalated:
            _members_of(conn, rule, intents, namespace)
        return sum(add_intent(conn, **row) for row in self.intents)


def follow_up_rows(inbox_id: int, follow_ups: list[FollowUp], now: datetime) -> PlannedRows:
    """The rows of window episodes that ended (``window.quiet`` decisions, ``after_quiet``)."""
    rows = PlannedRows(inbox_id, now)
    rows.follow_ups(follow_ups)
    return rows


def decide_in(conn: sa.Connection, rules: RuleSet, ctx: EvalContext,
              namespace: Mapping[str, Any], inbox_id: int, event_key: str,
              ticket_id: int | None) -> tuple[int, list[str]]:
    """Evaluate, gate and plan one event whose context has a single event type (a PagerDuty
    or Jira event), in the caller's transaction: decisions, intents and gate state together.
    Returns (intents new, ids of the rules that matched)."""
    event_type = ctx.event_type
    evaluations = [(rule, evaluate(rule, ctx)) for rule in rules.for_event(event_type)]
    follow_ups, outcomes = settle_event(rules, evaluations, ctx, StoreRuleState(conn),
                                        event_key, namespace)
    rows = follow_up_rows(inbox_id, follow_ups, utcnow())
    for outcome in outcomes:
        rows.decision(ticket_id, event_type, outcome.rule, outcome.matched, outcome.trace())
        rows.plan(outcome.rule, outcome.intents, outcome.namespace or namespace, ticket_id)
    return rows.commit(conn), [o.rule.id for o in outcomes if o.matched]


def matched_summary(matched: list[str], planned: int) -> str:
    """``matched: a, b; 2 intent(s) planned`` (or ``no rule matched; ...``)."""
    return (f"{'matched: ' + ', '.join(matched) if matched else 'no rule matched'}; "
            f"{planned} intent(s) planned")
