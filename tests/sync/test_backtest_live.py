"""A backtest of the shipped sample export decides exactly as live processing of the same tickets.

The live side is the real :class:`EventProcessor` on a temporary store: each record arrives as an
inbox poll event (``complete: True``, the poller's hint, received at the record's ``updated_at``
so that durations and windows count the same), with a fake Zendesk that only answers
``ticket_url``. Both sides run the same rules, which exercise every gate.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.models import Ticket, format_time
from rules import load_rule_files
from rules.model import thaw
from sync import inbox
from sync.backtest import ProblemLog, ReplayEvent, backtest, read_export
from sync.processor import EventProcessor
from sync.retry import RetryPolicy
from sync.schema import decisions, outbox
from sync.store import Store

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sandbox" / "data" / "sample_export.jsonl"
RULES = ROOT / "tests" / "fixtures" / "backtest" / "rules.yaml"
FIELD_IDS = {"error_code": 360001, "product_area": 360002, "steps_to_reproduce": 360003,
             "expected_result": 360004, "actual_result": 360005, "environment": 360006,
             "jira_key": 360007}
AGENT = "https://sandbox.zendesk.com"

Row = tuple[Any, ...]


class Zendesk:
    """Live processing of complete poll events needs no vendor call but the ticket's URL."""

    def ticket_url(self, ticket_id: int) -> str:
        return f"{AGENT}/agent/tickets/{ticket_id}"

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"live processing called Zendesk {name}; it must not need to")


def _records() -> list[Ticket]:
    problems = ProblemLog()
    tickets = list(read_export(SAMPLE, field_ids=FIELD_IDS, agent_url_base=AGENT,
                               problems=problems))
    assert problems.count == 0
    return tickets


def _backtest(rules: Any, tickets: list[Ticket]) -> tuple[list[Row], dict[str, Any], Any]:
    rows: list[Row] = []
    contexts: dict[str, Any] = {}

    def on_event(event: ReplayEvent) -> None:
        side = event.sides[0]
        for follow in side.follow_ups:
            rows.append((follow.ticket_id, "window.quiet", follow.rule.id, True,
                         bool(follow.intents), follow.reason,
                         tuple((i.action, i.idempotency_key) for i in follow.intents)))
            for intent in follow.intents:
                contexts[intent.idempotency_key] = thaw(follow.namespace)
        for outcome in side.outcomes:
            rows.append((event.ticket_id, outcome.evaluation.event_type, outcome.rule.id,
                         outcome.matched,
                         outcome.fired, outcome.gate,
                         tuple((i.action, i.idempotency_key) for i in outcome.intents)))
            for intent in outcome.intents:
                contexts[intent.idempotency_key] = thaw(outcome.namespace)

    summary = backtest(rules, tickets, custom_fields=tuple(FIELD_IDS), rules_source="rules",
                       history_source="sample", on_event=on_event)
    return rows, contexts, summary


def _live(rules: Any, tickets: list[Ticket], db: Path) -> tuple[list[Row], dict[str, Any]]:
    store = Store(f"sqlite:///{db}").open()
    try:
        proc = EventProcessor(store, rules, Zendesk(), retry=RetryPolicy(3),
                              custom_fields=tuple(FIELD_IDS))
        start = tickets[0].updated_at
        for ticket in tickets:
            created = ticket.created_at is not None and (
                ticket.created_at == ticket.updated_at or ticket.created_at >= start)
            stamp = format_time(ticket.updated_at)
            result = inbox.accept(
                store, source="zendesk", kind="poll", entity_key=f"zendesk:ticket:{ticket.id}",
                change_key=f"zendesk:ticket:{ticket.id}:{stamp}",
                payload={"style": "poll", "complete": True, "fields": ticket.to_dict(),
                         "hint": "ticket.created" if created else "ticket.updated"})
            if not result.accepted:
                continue  # the inbox dedupes a redelivered record
            with store.write() as conn:
                conn.execute(sa.update(inbox.inbox).where(inbox.inbox.c.id == result.inbox_id)
                             .values(received_at=ticket.updated_at))
            [item] = inbox.acquire(store, "test/w", 1, 60)
            proc.process(item)
        with store.read() as conn:
            logged = conn.execute(sa.select(decisions).order_by(decisions.c.id)).all()
            planned = conn.execute(sa.select(outbox).order_by(outbox.c.id)).all()
    finally:
        store.close()
    by_event: dict[tuple[int, str], list[Row]] = {}
    contexts: dict[str, Any] = {}
    for intent in planned:
        by_event.setdefault((intent.inbox_id, intent.rule_id), []).append(
            (intent.action, intent.idem_key))
        contexts[intent.idem_key] = intent.context
    rows: list[Row] = []
    taken: set[tuple[int, str]] = set()
    for row in logged:
        # An event's intents for one rule, listed with its first decision for that rule.
        key = (row.inbox_id, row.rule_id)
        actions = tuple(by_event.get(key, ())) if key not in taken else ()
        taken.add(key)
        rows.append((row.ticket_id, row.event_type, row.rule_id, row.matched,
                     row.trace["fired"], row.trace.get("gate"), actions))
    return rows, contexts


def _merge_actions(rows: list[Row]) -> list[Row]:
    """Backtest rows with an event's intents for one rule listed on its first row, as above."""
    out: list[Row] = []
    pending: dict[tuple[Any, ...], int] = {}
    for row in rows:
        ticket_id, event_type, rule_id = row[0], row[1], row[2]
        event = (ticket_id if event_type != "window.quiet" else None, rule_id)
        if row[6] and event in pending:
            first = out[pending[event]]
            out[pending[event]] = (*first[:6], first[6] + row[6])
            out.append((*row[:6], ()))
            continue
        out.append(row)
        pending.setdefault(event, len(out) - 1)
    return out


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    rules = load_rule_files([RULES], custom_fields=tuple(FIELD_IDS))
    tickets = _records()
    rows, contexts, summary = _backtest(rules, tickets)
    live_rows, live_contexts = _live(rules, tickets, tmp_path_factory.mktemp("live") / "hub.db")
    return {"rows": rows, "contexts": contexts, "summary": summary, "live_rows": live_rows,
            "live_contexts": live_contexts}


def test_backtest_of_the_sample_export_decides_exactly_as_live_processing(both):
    live = both["live_rows"]
    assert len(live) > 500
    # Same decisions, in the same order: ticket, event type, rule, matched, fired, the gate's
    # verdict, and the intents planned (action and idempotency key).
    ours = both["rows"]
    assert [r[:6] for r in ours] == [r[:6] for r in live]
    assert sorted(a for r in ours for a in r[6]) == sorted(a for r in live for a in r[6])
    # And every intent would render against the same namespace (links, window, changes).
    assert both["contexts"] == both["live_contexts"]


def test_the_sample_exercises_every_gate_links_and_shadow_mode(both):
    summary = both["summary"]
    rules = summary.tally.rules
    assert summary.complete and summary.problems.count == 0
    assert summary.skipped["stale"] == 1 and summary.skipped["unchanged"] >= 5
    assert summary.events["ticket.created"] >= 90 and summary.events["ticket.updated"] >= 100
    bug = rules["confirmed-bug-to-jira"]
    # 7 confirmed bugs with high priority; the later updates of each see the pending link.
    assert bug.fired == 7 and bug.matched == 7
    assert bug.actions == Counter({"jira.create_or_link_bug": 7, "zendesk.update": 7})
    outage = rules["login-outage"]
    assert outage.windows_fired == 2 and outage.fired == 2
    # 7 tickets: 4 below the threshold, 1 fires, 2 extend; 5 tickets: 4 + 1; 3 never reach it.
    assert outage.held_window == (4 + 2) + 4 + 3
    assert outage.windows_ended >= 1 and outage.after_quiet_actions["zendesk.update"] >= 1
    vip = rules["vip-urgent"]
    assert vip.fired == 5 and vip.held_throttle >= 3  # once per ticket, again after reopening
    billing = rules["billing-heads-up"]
    assert billing.held_throttle >= 4 and billing.fired >= 2
    shadow = rules["feature-requests"]
    assert shadow.mode == "shadow" and shadow.fired > 0
    assert rules["stale-follow-up"].fired >= 1


def test_a_change_that_solves_a_ticket_is_decided_as_ticket_solved_in_both(both):
    solved = [r for r in both["live_rows"] if r[1] == "ticket.solved"]
    assert solved and all(r[2] == "solved-high-priority" for r in solved)
    assert sum(r[4] for r in solved) == both["summary"].tally.rules["solved-high-priority"].fired
    assert [r for r in both["rows"] if r[1] == "ticket.solved"] == solved
