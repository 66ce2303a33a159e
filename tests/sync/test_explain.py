"""`switchboard explain`: a ticket's history read back from a decision log the real processor
wrote (events, rule decisions with their first failure, intents with status / error / result)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sync import inbox, outbox
from sync.config import load_config
from sync.explain import StoreUnavailableError, explain_ticket, read_history, render_history
from sync.processor import EventProcessor
from sync.retry import RetryPolicy
from sync.store import Store

ROOT = Path(__file__).resolve().parents[2]
TICKET = 4012


class FakeZendesk:
    """What the processor asks of Zendesk when every payload is complete: the ticket's URL."""

    def ticket_url(self, ticket_id: int) -> str:
        return f"https://sandbox.zendesk.com/agent/tickets/{ticket_id}"


def ticket_fields(updated_at: str, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": TICKET, "updated_at": updated_at, "created_at": "2026-11-27T10:00:00Z",
        "subject": "Import fails with E1042", "description": "d", "status": "open",
        "priority": "normal", "type": "incident", "tags": ["routing"], "requester_id": 1,
        "organization_id": 2, "assignee_id": None, "group_id": None,
        "fields": {"error_code": "E1042"},
    }
    fields.update(overrides)
    return fields


def feed(store: Store, proc: EventProcessor, hint: str, fields: dict[str, Any]) -> None:
    inbox.accept(store, source="zendesk", kind=f"trigger:{hint}",
                 entity_key=f"zendesk:ticket:{fields['id']}",
                 change_key=f"{fields['id']}:{fields['updated_at']}",
                 payload={"style": "trigger", "hint": hint, "complete": True, "fields": fields})
    for item in inbox.acquire(store, "test/w", 10, 60):
        proc.process(item)


@pytest.fixture
def logged(tmp_path: Path) -> tuple[Path, str]:
    """A config whose store holds a real decision log for ticket 4012: created (no match),
    updated to high + bug_confirmed (match, Jira bug done, note failed), then an echo."""
    config_path = tmp_path / "config.yaml"
    db = tmp_path / "store.db"
    # The shipped config with its first rule only (the cookbook's rules would read people).
    text = (ROOT / "config.yaml").read_text(encoding="utf-8").split("  # The cookbook")[0]
    config_path.write_text(text.replace("sqlite:///var/switchboard.db", f"sqlite:///{db}"),
                           encoding="utf-8")
    config = load_config(config_path, env={})
    store = Store(config.store_url()).open()
    try:
        proc = EventProcessor(store, config.rules, FakeZendesk(), retry=RetryPolicy(3),
                              custom_fields=tuple(config.app.connectors.zendesk.custom_fields))
        feed(store, proc, "ticket.created", ticket_fields("2026-11-27T10:00:00Z"))
        feed(store, proc, "ticket.updated", ticket_fields(
            "2026-11-27T10:05:00Z", priority="high", tags=["routing", "bug_confirmed"]))
        # Play the dispatcher: the bug is created, the Zendesk note fails for good.
        intents = outbox.acquire(store, "test/d", 10, 60)
        with store.write() as conn:
            for item in intents:
                if item.action == "jira.create_or_link_bug":
                    outbox.finish(conn, item.id, "done", result={
                        "id": "10001", "key": "SUP-7",
                        "url": "https://sandbox.atlassian.net/browse/SUP-7"})
        intents = outbox.acquire(store, "test/d", 10, 60)
        with store.write() as conn:
            for item in intents:
                if item.action == "zendesk.update":
                    outbox.finish(conn, item.id, "dead", error="zendesk 422: field is read-only")
                else:  # the bug's impact roll-up
                    outbox.finish(conn, item.id, "done", result={"issue": "SUP-7",
                                                                 "comment": "10100"})
        # The same state again: a redelivery, dropped before any rule runs.
        inbox.accept(store, source="zendesk", kind="trigger:ticket.updated",
                     entity_key=f"zendesk:ticket:{TICKET}", delivery_id="again",
                     payload={"style": "trigger", "hint": "ticket.updated", "complete": True,
                              "fields": ticket_fields("2026-11-27T10:05:00Z", priority="high",
                                                      tags=["routing", "bug_confirmed"])})
        for item in inbox.acquire(store, "test/w", 10, 60):
            proc.process(item)
    finally:
        store.close()
    return config_path, config.store_url()


def test_history_lists_every_event_with_decisions_and_intents(logged):
    _, url = logged
    events = explain_ticket(url, TICKET)
    assert [e.event_type for e in events] == ["ticket.created", "ticket.updated", None]
    created, updated, redelivery = events

    [decision] = created.decisions
    assert not decision.matched
    failure = decision.first_failure
    assert failure is not None
    assert failure["field"] == "ticket.tags" and failure["actual"] == ["routing"]
    assert created.intents == ()

    [decision] = updated.decisions
    assert decision.matched and decision.first_failure is None
    bug, note, impact = updated.intents
    assert (impact.action, impact.status) == ("jira.impact", "done")
    assert (bug.action, bug.status, bug.result["key"]) == ("jira.create_or_link_bug", "done",
                                                           "SUP-7")
    assert (note.action, note.status) == ("zendesk.update", "dead")
    assert note.last_error == "zendesk 422: field is read-only"

    assert redelivery.decisions == () and redelivery.intents == ()
    assert "no newer state" in (redelivery.outcome or "")


def test_render_names_first_failure_seen_value_and_results(logged):
    _, url = logged
    text = render_history(TICKET, explain_ticket(url, TICKET))
    assert text.startswith(f"Ticket {TICKET}: 3 event(s)")
    assert "✗ confirmed-bug-to-jira: did not match" in text
    assert "first failure: ticket.tags contains 'bug_confirmed' (saw ['routing'])" in text
    assert "✓ confirmed-bug-to-jira: matched" in text
    assert ("→ jira.create_or_link_bug (rule confirmed-bug-to-jira): done after 1 attempt(s) "
            "— result: SUP-7 https://sandbox.atlassian.net/browse/SUP-7") in text
    assert "→ zendesk.update (rule confirmed-bug-to-jira): dead" in text
    assert "last error: zendesk 422: field is read-only" in text
    assert "no newer state than already processed" in text


def test_unknown_ticket_has_no_history_and_other_tickets_are_left_out(logged):
    _, url = logged
    assert explain_ticket(url, 999) == []
    store = Store(url)
    try:
        with store.read() as conn:
            assert all(e.id for e in read_history(conn, TICKET))
    finally:
        store.engine.dispose()


def test_explain_reads_beside_a_hub_that_holds_the_lock(logged):
    _, url = logged
    store = Store(url).open()  # the single-process lock, as a running hub holds it
    try:
        assert len(explain_ticket(url, TICKET)) == 3
    finally:
        store.close()


def test_a_missing_store_is_reported_and_not_created(tmp_path):
    url = f"sqlite:///{tmp_path}/nothing/here.db"
    with pytest.raises(StoreUnavailableError, match="no such store"):
        explain_ticket(url, 1)
    assert not (tmp_path / "nothing").exists()


def test_a_store_without_tables_is_reported(tmp_path):
    (tmp_path / "empty.db").write_bytes(b"")
    with pytest.raises(StoreUnavailableError, match="cannot read the decision log"):
        explain_ticket(f"sqlite:///{tmp_path}/empty.db", 1)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def test_cli_explain_prints_the_history(logged):
    config_path, _ = logged
    done = run_cli("explain", str(TICKET), "--config", str(config_path))
    assert done.returncode == 0, done.stderr
    assert f"Ticket {TICKET}: 3 event(s)" in done.stdout
    assert "first failure: ticket.tags contains 'bug_confirmed' (saw ['routing'])" in done.stdout
    assert "result: SUP-7" in done.stdout


def test_cli_explain_without_events_exits_1(logged):
    config_path, _ = logged
    done = run_cli("explain", "999", "--config", str(config_path))
    assert done.returncode == 1
    assert "ticket 999: no events" in done.stderr


def test_cli_explain_without_a_store_exits_1(tmp_path):
    config_path = tmp_path / "config.yaml"
    # The shipped config with its first rule only (the cookbook's rules would read people).
    text = (ROOT / "config.yaml").read_text(encoding="utf-8").split("  # The cookbook")[0]
    config_path.write_text(text.replace("sqlite:///var/switchboard.db",
                                        f"sqlite:///{tmp_path}/none.db"), encoding="utf-8")
    done = run_cli("explain", "1", "--config", str(config_path))
    assert done.returncode == 1
    assert "no such store" in done.stderr
    assert not (tmp_path / "none.db").exists()


def test_cli_explain_reads_another_store_given_with_store(logged):
    _, url = logged
    # The shipped config names var/switchboard.db; --store points at the logged one instead.
    done = run_cli("explain", str(TICKET), "--store", url.removeprefix("sqlite:///"))
    assert done.returncode == 0, done.stderr
    assert f"Ticket {TICKET}: 3 event(s)" in done.stdout
