"""``switchboard explain``: one ticket's history, read from the store's decision log.

For each inbound event of the ticket (``inbox``, in arrival order) it gathers what the processor
recorded: the outcome (processed, echo of Switchboard's own write, read the ticket, ...), one
decision per rule evaluated (``decisions``, with the trace of :meth:`rules.Evaluation.to_json`),
and the intents planned for it (``outbox``: status, last error, result such as the Jira key).

The store is only read: :func:`explain_ticket` does not take the single-process lock
(:meth:`sync.store.Store.open`) nor migrate, so it can run beside a live hub.
"""

from __future__ import annotations

__all__ = [
    "DecisionView",
    "EventView",
    "IntentView",
    "StoreUnavailableError",
    "explain_ticket",
    "read_history",
    "render_history",
]

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sync.schema import decisions, inbox, outbox
from sync.store import Store


class StoreUnavailableError(RuntimeError):
    """The store does not exist or does not hold Switchboard's tables."""


#: The event type of a window episode's end (``rules.engine.FollowUp``).
QUIET = "window.quiet"

@dataclass(frozen=True, slots=True)
class IntentView:
    """One planned action intent and how far it got."""

    id: int
    rule_id: str
    action: str
    status: str
    attempts: int
    last_error: str | None
    result: Any
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class DecisionView:
    """One rule's decision for one event; ``trace`` is ``Evaluation.to_json()``."""

    rule_id: str
    mode: str
    matched: bool
    trace: Mapping[str, Any]

    @property
    def error(self) -> str | None:
        """The evaluation or planning error recorded, if any."""
        return self.trace.get("error")

    @property
    def first_failure(self) -> Mapping[str, Any] | None:
        """The trace line of the first condition that failed (or errored), if the rule did not
        match."""
        if self.matched:
            return None
        lines = list(self.trace.get("trace") or ())
        path = self.trace.get("first_failure")
        found = next((line for line in lines if line.get("path") == path), None) if path else None
        if found is None:
            found = next((line for line in lines if line.get("error")), None)
        if found is None:
            found = next((line for line in lines if line.get("decisive")), None)
        return found


@dataclass(frozen=True, slots=True)
class EventView:
    """One inbound event of the ticket with everything the processor decided about it."""

    id: int
    source: str
    kind: str
    status: str
    outcome: str | None
    attempts: int
    received_at: datetime
    processed_at: datetime | None
    event_type: str | None
    decisions: tuple[DecisionView, ...]
    intents: tuple[IntentView, ...]


def read_history(conn: sa.Connection, ticket_id: int) -> list[EventView]:
    """Every event of ``ticket_id`` in arrival order, with its decisions and intents.

    An event belongs to the ticket when its inbox ``entity_key`` is the ticket's or when a
    decision for the ticket points at it.
    """
    entity = f"zendesk:ticket:{ticket_id}"
    decided = sa.select(decisions.c.inbox_id).where(decisions.c.ticket_id == ticket_id)
    events = conn.execute(
        sa.select(inbox).where(sa.or_(inbox.c.entity_key == entity, inbox.c.id.in_(decided)))
        .order_by(inbox.c.id)).all()
    if not events:
        return []
    ids = [row.id for row in events]
    by_event: dict[int, list[DecisionView]] = {i: [] for i in ids}
    types: dict[int, str] = {}
    for row in conn.execute(sa.select(decisions).where(decisions.c.inbox_id.in_(ids))
                            .order_by(decisions.c.id)):
        by_event[row.inbox_id].append(DecisionView(row.rule_id, row.mode, bool(row.matched),
                                                   dict(row.trace or {})))
        if row.event_type != QUIET:  # a follow-up decided along with the event is not its type
            types.setdefault(row.inbox_id, row.event_type)
        else:
            types.setdefault(-row.inbox_id, row.event_type)
    intents: dict[int, list[IntentView]] = {i: [] for i in ids}
    for row in conn.execute(sa.select(outbox).where(outbox.c.inbox_id.in_(ids))
                            .order_by(outbox.c.id)):
        intents[row.inbox_id].append(IntentView(
            row.id, row.rule_id, row.action, row.status, row.attempts, row.last_error,
            row.result, row.finished_at))
    return [EventView(row.id, row.source, row.kind, row.status, row.outcome, row.attempts,
                      row.received_at, row.processed_at, types.get(row.id, types.get(-row.id)),
                      tuple(by_event[row.id]), tuple(intents[row.id]))
            for row in events]


def _check_exists(url: str) -> None:
    if not url.startswith("sqlite"):
        return
    database = sa.engine.make_url(url).database
    if not database or database == ":memory:":
        raise StoreUnavailableError(f"{url}: not a store file")
    if not Path(database).is_file():
        raise StoreUnavailableError(f"{database}: no such store (has the hub run with this "
                                    "config?)")


def explain_ticket(url: str, ticket_id: int) -> list[EventView]:
    """Open the store at ``url`` read-only (no lock, no migration) and read the ticket's history.

    Raises :class:`StoreUnavailableError` when the store is missing or holds no Switchboard
    tables.
    """
    _check_exists(url)
    store = Store(url, checkpoints=False)
    try:
        with store.read() as conn:
            return read_history(conn, ticket_id)
    except sa.exc.OperationalError as exc:
        raise StoreUnavailableError(f"{url}: cannot read the decision log "
                                    f"({exc.orig or exc})") from exc
    finally:
        store.engine.dispose()


# -- plain text -------------------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def _condition(line: Mapping[str, Any]) -> str:
    """``ticket.priority is one of ['high', 'urgent'] (saw 'low')`` from a trace line."""
    text = f"{'not ' if line.get('negated') else ''}{line.get('field')} {line.get('op_label')}"
    expected = line.get("expected")
    if expected is not None:
        text += f" {expected!r}"
    actual = line.get("actual")
    if str(line.get("op", "")).startswith("changed"):
        seen = ("no change" if actual is None else
                f"{actual.get('from')!r} → {actual.get('to')!r}"
                if isinstance(actual, Mapping) else repr(actual))
    else:
        seen = repr(actual)
    text += f" (saw {seen})"
    if line.get("error"):
        text += f" — error: {line['error']}"
    return text


def _result(value: Any) -> str:
    """``SUP-12 https://...`` for a Jira result; ``name=value, ...`` for anything else."""
    if isinstance(value, Mapping):
        if value.get("key"):
            return " ".join(str(v) for v in (value["key"], value.get("url")) if v)
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _decision_lines(decision: DecisionView) -> list[str]:
    mode = "" if decision.mode == "live" else f" [{decision.mode}]"
    gate = decision.trace.get("gate")
    if decision.trace.get("event_type") == QUIET:
        return [f"    ◷ {decision.rule_id}{mode}: {gate}"]
    if decision.matched:
        held = decision.trace.get("fired") is False
        line = f"    {'⏸' if held else '✓'} {decision.rule_id}{mode}: matched"
        if gate:
            line += f", held back: {gate}" if held else f" ({gate})"
        if decision.error:
            line += f" — {decision.error}"
        return [line]
    if decision.trace.get("skipped"):
        return [f"    - {decision.rule_id}{mode}: skipped ({decision.trace['skipped']})"]
    failure = decision.first_failure
    line = f"    ✗ {decision.rule_id}{mode}: did not match"
    if decision.error:
        line += f" — error: {decision.error}"
    lines = [line]
    if failure is not None:
        lines.append(f"        first failure: {_condition(failure)}")
    return lines


def _intent_lines(intent: IntentView) -> list[str]:
    line = f"    → {intent.action} (rule {intent.rule_id}): {intent.status}"
    if intent.attempts:
        line += f" after {intent.attempts} attempt(s)"
    if intent.result:
        line += f" — result: {_result(intent.result)}"
    lines = [line]
    if intent.last_error:
        lines.append(f"        last error: {intent.last_error}")
    return lines


def render_history(ticket_id: int, events: list[EventView]) -> str:
    """The history as plain text: one block per event, its rules, then its intents."""
    lines = [f"Ticket {ticket_id}: {len(events)} event(s) in the decision log"]
    for event in events:
        what = (f"{event.event_type}  (from {event.source}: {event.kind})" if event.event_type
                else f"{event.kind}  (from {event.source})")
        lines += ["", f"#{event.id} {_when(event.received_at)}  {what}"]
        status = event.status if event.status != "done" else "processed"
        if event.processed_at:
            status += f" at {_when(event.processed_at)}"
        lines.append(f"  {status}: {event.outcome or 'not processed yet'}")
        if event.decisions:
            lines.append("  rules:")
            for decision in event.decisions:
                lines += _decision_lines(decision)
        elif event.status == "done":
            lines.append("  no rule was evaluated")
        if event.intents:
            lines.append("  actions planned:")
            for intent in event.intents:
                lines += _intent_lines(intent)
    return "\n".join(lines)
