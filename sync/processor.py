"""Turning one inbox event into decisions and action intents.

For a ticket event the processor

1. drops it if the stored snapshot is as new or newer (a redelivery, a stale event, or the echo of
   Switchboard's own write — invariant 5, no loops);
2. builds the ticket's state: the payload itself when it is complete, the payload over the
   snapshot when the rules need nothing the payload lacks, otherwise ONE read of the ticket;
3. diffs it against the snapshot (``changes``), picks the event type, evaluates every rule for it
   and plans intents for the ones that matched;
4. commits decisions (with traces), intents, the new snapshot and the inbox outcome in ONE
   transaction — so a crash leaves either none of it or all of it (invariant 2).
"""

from __future__ import annotations

__all__ = ["EventProcessor", "diff_tickets", "subtract_own", "ticket_context"]

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from connectors.errors import SwitchboardError
from connectors.models import Ticket, format_time, parse_time
from rules import Change, EvalContext, RuleSet, evaluate, render_params
from rules.engine import FollowUp, Outcome, settle_event, sweep
from rules.model import Condition, FieldCondition, Mode, Not, Rule, thaw
from rules.planner import ActionIntent
from sync import inbox as inbox_mod
from sync.actions import MARKER_PREFIX
from sync.leases import LeaseLost
from sync.links import links_for_ticket
from sync.outbox import add_intent
from sync.retry import RetryPolicy
from sync.rulestate import StoreRuleState
from sync.schema import decisions, outbox
from sync.state import get_snapshot, is_own_write, put_snapshot
from sync.store import Store, utcnow

log = logging.getLogger("switchboard.processor")

CREATE_BUG = "jira.create_or_link_bug"
#: ``payload.style`` of the scheduler's tick events (window quiet periods).
TICK = "tick"
# Built once: these run for every event.
_PENDING_BUGS = sa.select(outbox.c.idem_key).where(
    outbox.c.ticket_id == sa.bindparam("b_id"), outbox.c.action == CREATE_BUG,
    outbox.c.status == "pending")
_DECISION = sa.insert(decisions)
_DIFF_IGNORE = ("updated_at", "url")


def _norm(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return sorted(str(v) for v in value)
    return value


def _plain_tags(tags: Any) -> list[str]:
    """Tags without Switchboard's marker tags, which mean nothing to rules."""
    return [t for t in (tags or ()) if not str(t).startswith(MARKER_PREFIX)]


def diff_tickets(before: Ticket | None, after: Ticket) -> dict[str, Change]:
    """Changed fields, keyed like ``status``, ``tags`` or ``fields.error_code``."""
    old = before.to_dict() if before else {}
    new = after.to_dict()
    changes: dict[str, Change] = {}
    for key, value in new.items():
        if key in _DIFF_IGNORE or key == "fields":
            continue
        was = old.get(key)
        if key == "tags":
            was, value = (_plain_tags(was) if was is not None else None, _plain_tags(value))
        if _norm(was) != _norm(value):
            changes[key] = Change(was, value)
    old_fields = old.get("fields") or {}
    for name in sorted(set(old_fields) | set(new["fields"])):
        if _norm(old_fields.get(name)) != _norm(new["fields"].get(name)):
            changes[f"fields.{name}"] = Change(old_fields.get(name), new["fields"].get(name))
    return changes


def ticket_context(ticket: Ticket, event_type: str, changes: Mapping[str, Change],
                   links: Mapping[str, tuple[str, ...]], *, source: str,
                   now: datetime | None, custom_fields: Iterable[str]) -> EvalContext:
    """The context rules see for one ticket event, built here only, for live processing and
    for backtests (``sync.backtest``) alike, so that both decide on the same input."""
    ticket_dict = ticket.to_dict()
    # Every configured custom field is present (None when unset), so rules and templates
    # can test it without tripping over a missing key.
    ticket_dict["fields"] = {**dict.fromkeys(custom_fields), **ticket_dict["fields"]}
    return EvalContext(event_type=event_type, event_source=source, ticket=ticket_dict,
                       changes=changes, links=links,
                       # Durations (older_than / within) count back from when the event
                       # reached Switchboard, so a replay or backtest decides the same.
                       now=now)


def _condition_fields(condition: Condition | None) -> set[str]:
    if condition is None:
        return set()
    if isinstance(condition, FieldCondition):
        return {condition.field}
    if isinstance(condition, Not):
        return _condition_fields(condition.condition)
    return set().union(*(_condition_fields(c) for c in condition.conditions))


def _has_field(fields: Mapping[str, Any], path: str) -> bool:
    parts = path.split(".")
    if parts[0] != "ticket" or len(parts) < 2:
        return True  # not a ticket field: links.*, event.*, changes.* come from elsewhere
    if parts[1] == "fields":
        custom = fields.get("fields")
        return custom is not None and (len(parts) < 3 or parts[2] in custom)
    if parts[1] == "url":
        return True
    return parts[1] in fields


def _own_deltas(conn: sa.Connection, snapshot: Ticket | None,
                ticket: Ticket) -> list[Mapping[str, Any]]:
    """What Switchboard's writes changed, for each of its marker tags new on this ticket.

    The delta is recorded in the intent's progress before the write is sent, so a write's echo
    is recognised even while the intent that made it is still waiting to be marked done.
    """
    seen = set(snapshot.tags) if snapshot else set()
    deltas: list[Mapping[str, Any]] = []
    for tag in ticket.tags:
        if not tag.startswith(MARKER_PREFIX) or tag in seen:
            continue
        row = conn.execute(
            sa.select(outbox.c.progress).where(
                outbox.c.ticket_id == ticket.id, outbox.c.action == "zendesk.update",
                outbox.c.idem_key.like(f"{tag[len(MARKER_PREFIX):]}%"))
        ).first()
        delta = (row.progress or {}).get("delta") if row else None
        deltas.append(delta or {"add_tags": [tag]})
    return deltas


def subtract_own(changes: dict[str, Change], deltas: list[Mapping[str, Any]]) -> dict[str, Change]:
    """The changes left once Switchboard's own writes (``deltas``) are taken out."""
    if not deltas:
        return changes
    added = {t for d in deltas for t in d.get("add_tags", ())}
    removed = {t for d in deltas for t in d.get("remove_tags", ())}
    fields = {k: v for d in deltas for k, v in (d.get("fields") or {}).items()}
    statuses = {d.get("status") for d in deltas if d.get("status")}
    out = dict(changes)
    if "tags" in out:
        before = list(out["tags"].from_ or ())
        after = list(out["tags"].to or ())
        others = [t for t in after if t in before or t not in added]
        others += [t for t in before if t in removed and t not in after]
        if set(others) == set(before):
            del out["tags"]
        else:
            out["tags"] = Change(before, others)
    for name, value in fields.items():
        key = f"fields.{name}"
        if key in out and str(out[key].to) == str(value):
            del out[key]
    if "status" in out and out["status"].to in statuses:
        del out["status"]
    return out


class EventProcessor:
    """Processes claimed inbox events; one instance is shared by the inbox worker threads."""

    def __init__(self, store: Store, rules: RuleSet, zendesk: Any, *, retry: RetryPolicy,
                 custom_fields: tuple[str, ...] = ()) -> None:
        self.store = store
        self.custom_fields = custom_fields
        self.rules = rules
        self.zendesk = zendesk
        self.retry = retry

    # -- public -------------------------------------------------------------------------------

    def process(self, item: inbox_mod.InboxItem) -> str:
        """Handle one claimed event end to end; returns the outcome recorded for it."""
        try:
            return self._process(item)
        except LeaseLost:
            log.warning("event %s: lease lost to another worker; leaving it to that one", item.id)
            return "lease lost"
        except Exception as exc:
            if not isinstance(exc, SwitchboardError):
                log.exception("event %s raised unexpectedly", item.id)
            verdict = self.retry.judge(exc, item.attempts)
        if verdict.kind == "retry":
            with self.store.write() as conn:
                inbox_mod.release(conn, item.id, "pending", f"retrying: {verdict.reason}",
                                  retry_in=verdict.retry_in, owner=item.owner)
            return f"retry in {verdict.retry_in:.1f}s: {verdict.reason}"
        return self._finish(item, "done" if verdict.kind == "skip" else "failed", verdict.reason)

    def _finish(self, item: inbox_mod.InboxItem, status: str, outcome: str) -> str:
        with self.store.write() as conn:
            inbox_mod.release(conn, item.id, status, outcome, owner=item.owner)
        return outcome

    # -- steps --------------------------------------------------------------------------------

    def _process(self, item: inbox_mod.InboxItem) -> str:
        payload = item.payload
        if payload.get("style") == TICK:
            return self._tick(item)
        fields: dict[str, Any] = dict(payload["fields"])
        ticket_id = int(fields["id"])
        updated_at = parse_time(fields["updated_at"])
        assert updated_at is not None
        with self.store.read() as conn:
            snapshot = get_snapshot(conn, ticket_id)
            own = is_own_write(conn, "zendesk", ticket_id, format_time(updated_at))
        if snapshot is not None and snapshot.updated_at >= updated_at:
            why = ("echo of Switchboard's own write" if own
                   else "no newer state than already processed (redelivery or stale event)")
            return self._finish(item, "done", why)

        event_type = (payload.get("hint") or "ticket.updated") if snapshot is None \
            else "ticket.updated"
        ticket, read_reason = self._current_state(item, event_type, fields, snapshot,
                                                  bool(payload.get("complete")))
        if snapshot is not None and snapshot.updated_at >= ticket.updated_at:
            return self._finish(item, "done", "no newer state than already processed")
        deltas: list[Mapping[str, Any]] = []
        if any(t.startswith(MARKER_PREFIX) for t in ticket.tags):
            with self.store.read() as conn:
                deltas = _own_deltas(conn, snapshot, ticket)
        changes = subtract_own(diff_tickets(snapshot, ticket), deltas)
        if snapshot is not None and not changes:
            # Nothing changed but what Switchboard wrote (its echo), or the same state under a
            # newer stamp (a comment; one change reported with stamps of different precision):
            # rules react to changes, so none runs.
            why = "echo of Switchboard's own write" if deltas or own \
                else "no field changed; no rule run"
            with self.store.write() as conn:
                put_snapshot(conn, ticket)
                inbox_mod.release(conn, item.id, "done", why, owner=item.owner)
            return why
        return self._decide(item, ticket, event_type, changes, read_reason)

    def _current_state(self, item: inbox_mod.InboxItem, event_type: str, fields: dict[str, Any],
                       snapshot: Ticket | None, complete: bool) -> tuple[Ticket, str | None]:
        """The ticket's state for this event, reading it only when a rule needs a missing field.

        Conditions come first: if they need a field the payload lacks, read. Otherwise evaluate
        them on the payload (over the snapshot); only if a rule matches whose actions use a
        missing field, read. A ticket no rule cares about costs no read.
        """
        ticket_id = int(fields["id"])
        if not fields.get("url"):
            fields["url"] = self.zendesk.ticket_url(ticket_id)
        if complete:
            return Ticket.from_dict(fields), None
        base = snapshot.to_dict() if snapshot else {}
        merged = Ticket.from_dict({**base, **fields, "fields": {**base.get("fields", {}),
                                                                **fields.get("fields", {})}})
        rules = self.rules.for_event(event_type)
        missing = sorted({f for r in rules for f in _condition_fields(r.condition)
                          if not _has_field(fields, f)})
        why = "conditions use"
        if not missing:
            with self.store.read() as conn:
                ctx = self._context(conn, merged, event_type, diff_tickets(snapshot, merged),
                                    item)
            matched = [r for r in rules if evaluate(r, ctx).matched]
            missing = sorted({f for r in matched for f in r.fields_used
                              if not _has_field(fields, f)})
            why = f"matched rule {', '.join(r.id for r in matched)} uses"
        if not missing:
            return merged, None
        return (self.zendesk.get_ticket(ticket_id),
                f"read the ticket: {why} {', '.join(missing)}, which the event lacks")

    def _context(self, conn: sa.Connection, ticket: Ticket, event_type: str,
                 changes: dict[str, Change], item: inbox_mod.InboxItem) -> EvalContext:
        return ticket_context(ticket, event_type, changes, self._links(conn, ticket.id),
                              source=str(item.payload.get("style", item.source)),
                              now=item.received_at, custom_fields=self.custom_fields)

    def _links(self, conn: sa.Connection, ticket_id: int) -> dict[str, tuple[str, ...]]:
        links = dict(links_for_ticket(conn, ticket_id))
        pending = conn.execute(_PENDING_BUGS, {"b_id": ticket_id}).all()
        if pending:
            # A bug is being created or linked for this ticket: rules must see it as linked,
            # or a second update could plan a second bug before the first one lands.
            links["jira"] = (*links.get("jira", ()),
                             *(f"pending:{r.idem_key[:12]}" for r in pending))
        return links

    def _order_key(self, action: str, params: Mapping[str, Any], namespace: Mapping[str, Any],
                   ticket_id: int | None) -> str:
        if action == CREATE_BUG and params.get("dedupe_by"):
            dedupe = render_params(action, {"dedupe_by": params["dedupe_by"]},
                                  namespace).get("dedupe_by", "")
            if str(dedupe).strip():
                return f"jira-bug:{params.get('project')}:{str(dedupe).strip()}"
        return f"zendesk:ticket:{ticket_id}"

    def _intent_rows(self, item: inbox_mod.InboxItem, rule: Rule,
                     intents: tuple[ActionIntent, ...], namespace: Mapping[str, Any],
                     ticket_id: int | None) -> list[dict[str, Any]]:
        context = thaw(namespace)
        return [dict(
            idem_key=intent.idempotency_key, inbox_id=item.id, rule_id=rule.id,
            action=intent.action, ticket_id=ticket_id,
            order_key=self._order_key(intent.action, intent.params, namespace, ticket_id),
            depends_on=intent.depends_on, params=thaw(intent.params), context=context,
            status="pending" if rule.mode is Mode.LIVE else "shadow")
            for intent in intents]

    def _follow_up_rows(self, item: inbox_mod.InboxItem, follow_ups: list[FollowUp],
                        now: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        decision_rows: list[dict[str, Any]] = []
        intent_rows: list[dict[str, Any]] = []
        for follow in follow_ups:
            decision_rows.append({
                "inbox_id": item.id, "ticket_id": follow.ticket_id,
                "event_type": "window.quiet", "rule_id": follow.rule.id,
                "mode": follow.rule.mode, "matched": True, "trace": follow.trace(),
                "created_at": now})
            intent_rows += self._intent_rows(item, follow.rule, follow.intents,
                                             follow.namespace, follow.ticket_id)
        return decision_rows, intent_rows

    def _tick(self, item: inbox_mod.InboxItem) -> str:
        """A scheduler tick: end the window episodes quiet by then, run their follow-ups."""
        rules = self.rules
        now = utcnow()
        with self.store.write() as conn:
            follow_ups = sweep(rules, StoreRuleState(conn), item.received_at)
            decision_rows, intent_rows = self._follow_up_rows(item, follow_ups, now)
            if decision_rows:
                conn.execute(_DECISION, decision_rows)
            planned = sum(add_intent(conn, **row) for row in intent_rows)
            outcome = (f"window.quiet: {len(follow_ups)} episode(s) ended "
                       f"({', '.join(f.rule.id for f in follow_ups) or 'none due'}); "
                       f"{planned} intent(s) planned")
            inbox_mod.release(conn, item.id, "done", outcome, owner=item.owner)
        return outcome

    def _decide(self, item: inbox_mod.InboxItem, ticket: Ticket, event_type: str,
                changes: dict[str, Change], read_reason: str | None) -> str:
        # Evaluate outside the write transaction, so that the store's write lock (which the
        # receiver needs for every webhook) is held only for the gates and the inserts. Reading
        # the links first is safe: no other worker processes this ticket meanwhile (order per
        # entity). Window and throttle state is read and written inside the transaction, as it
        # is shared across tickets.
        rules = self.rules  # one rule set for the whole event, even if a reload swaps it
        with self.store.read() as conn:
            ctx = self._context(conn, ticket, event_type, changes, item)
        namespace = ctx.namespace()
        evaluations = [(rule, evaluate(rule, ctx)) for rule in rules.for_event(event_type)]
        event_key = item.change_key or f"inbox:{item.id}"
        now = utcnow()
        with self.store.write() as conn:
            follow_ups, outcomes = settle_event(rules, evaluations, ctx, StoreRuleState(conn),
                                                event_key, namespace)
            decision_rows, intent_rows = self._follow_up_rows(item, follow_ups, now)
            for outcome in outcomes:
                decision_rows.append({
                    "inbox_id": item.id, "ticket_id": ticket.id, "event_type": event_type,
                    "rule_id": outcome.rule.id, "mode": outcome.rule.mode,
                    "matched": outcome.matched, "trace": outcome.trace(), "created_at": now})
                intent_rows += self._intent_rows(item, outcome.rule, outcome.intents,
                                                 outcome.namespace or namespace, ticket.id)
            if decision_rows:
                conn.execute(_DECISION, decision_rows)
            planned = sum(add_intent(conn, **row) for row in intent_rows)
            put_snapshot(conn, ticket)
            parts = [event_type]
            if read_reason:
                parts.append(read_reason)
            parts.append(_summary(outcomes))
            if follow_ups:
                parts.append(f"window episode(s) ended: "
                             f"{', '.join(f.rule.id for f in follow_ups)}")
            parts.append(f"{planned} intent(s) planned")
            summary = "; ".join(parts)
            inbox_mod.release(conn, item.id, "done", summary, owner=item.owner)
        log.info("event %s ticket %s: %s", item.id, ticket.id, summary)
        return summary


def _summary(outcomes: list[Outcome]) -> str:
    """``matched: a, b (shadow), c (held: window ...)`` or ``no rule matched``."""
    names = []
    for outcome in outcomes:
        if not outcome.matched:
            continue
        name = outcome.rule.id + (" (shadow)" if outcome.rule.mode is Mode.SHADOW else "")
        if not outcome.fired:
            name += f" (held: {outcome.gate})"
        names.append(name)
    return f"matched: {', '.join(names)}" if names else "no rule matched"
