"""Signed webhook in -> Jira bug in the sandbox -> note, tag and field on the ticket, end to end
through the real receiver, workers and connectors over HTTP."""

from __future__ import annotations

import json
import os
import signal
import time

from sandbox import trigger_payload
from sandbox.demo import zendesk_ticket
from tests.support.hubproc import receiver_pids

from .conftest import (
    FIELD_IDS,
    bug_ticket,
    calls,
    decisions,
    inbox,
    internal_notes,
    outbox,
    rows,
)

CREATE = r"^/rest/api/2/issue$"
REMOTE = r"^/rest/api/2/issue/[^/]+/remotelink$"
TICKET = r"^/api/v2/tickets/\d+\.json$"


def test_signed_trigger_webhook_becomes_a_jira_bug_with_note_tag_and_field(sb, make_hub):
    hub = make_hub()
    ticket_id = bug_ticket(sb)
    answer = sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.created")
    assert answer.status_code == 200
    assert hub.wait_idle(15)

    [issue] = sb.jira.issues()
    fields = issue["fields"]
    assert fields["summary"] == "[E1042] Import fails with E1042"
    assert "from-zendesk" in fields["labels"]
    assert any(label.startswith("switchboard-") for label in fields["labels"])
    assert "Upload depots.csv" in fields["description"]  # steps to reproduce from the ticket
    [link] = sb.jira.remote_links(issue["key"])
    assert link["globalId"].startswith("switchboard:")
    assert link["object"]["url"].endswith(f"/agent/tickets/{ticket_id}")

    ticket = sb.zendesk.ticket(ticket_id)
    [note] = internal_notes(sb, ticket_id)
    assert issue["key"] in note["body"]
    assert "jira_linked" in ticket["tags"]
    assert sum(t.startswith("switchboard_") for t in ticket["tags"]) == 1
    key_field = {f["id"]: f["value"] for f in ticket["custom_fields"]}[FIELD_IDS["jira_key"]]
    assert key_field == issue["key"]

    # Calls spent: 1 create + 1 remote link + 1 update, no read (the trigger body is complete).
    assert calls(sb, "jira", "POST", CREATE) == 1
    assert calls(sb, "jira", "POST", REMOTE) == 1
    assert calls(sb, "zendesk", "PUT", TICKET) == 1
    assert calls(sb, "zendesk", "GET", TICKET) == 0


def test_second_ticket_with_the_same_error_code_joins_the_same_bug(sb, make_hub):
    hub = make_hub()
    first, second = bug_ticket(sb), bug_ticket(sb, subject="Same E1042 here")
    sb.zendesk.deliver(first, style="trigger", event_type="ticket.created")
    sb.zendesk.deliver(second, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(15)

    [issue] = sb.jira.issues()
    assert len(sb.jira.remote_links(issue["key"])) == 2
    for ticket_id in (first, second):
        [note] = internal_notes(sb, ticket_id)
        assert issue["key"] in note["body"]
    results = [r.result for r in rows(hub, outbox, outbox.c.action == "jira.create_or_link_bug")]
    assert sorted(r["created"] for r in results) == [False, True]


def test_tickets_without_an_error_code_never_share_a_bug(sb, make_hub):
    hub = make_hub()
    for _ in range(2):
        sb.zendesk.deliver(bug_ticket(sb, error_code=None), style="trigger",
                           event_type="ticket.created")
    assert hub.wait_idle(15)
    assert len(sb.jira.issues()) == 2


def test_a_ticket_no_webhook_announced_is_caught_by_the_poller(sb, make_hub):
    hub = make_hub()
    ticket_id = bug_ticket(sb)
    hub.poll_now()
    assert hub.wait_idle(15)
    assert len(sb.jira.issues()) == 1
    assert len(internal_notes(sb, ticket_id)) == 1


def test_backfill_stores_history_and_fires_no_rules(sb, make_hub):
    old = bug_ticket(sb)  # already in Zendesk when Switchboard connects
    hub = make_hub()
    hub.poll_now()
    assert hub.wait_idle(10)
    assert sb.jira.issues() == []
    assert internal_notes(sb, old) == []
    assert rows(hub, decisions) == []


def test_webhook_and_poll_of_one_change_make_one_event_and_one_bug(sb, make_hub):
    hub = make_hub()
    ticket_id = bug_ticket(sb)
    sb.zendesk.deliver(ticket_id, style="event", event_type="ticket.created")
    hub.poll_now()
    sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(15)
    change_rows = [r for r in rows(hub, inbox) if r.entity_key == f"zendesk:ticket:{ticket_id}"]
    first_change = [r for r in change_rows if r.outcome and "matched" in r.outcome]
    assert len(first_change) == 1
    assert len(sb.jira.issues()) == 1


def test_switchboards_own_write_comes_back_as_a_no_op(sb, make_hub):
    hub = make_hub()
    ticket_id = bug_ticket(sb)
    sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.updated")
    assert hub.wait_idle(15)
    decisions_before = len(rows(hub, decisions))
    # The write bumped updated_at; both the webhook and the poll now report that state.
    sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.updated")
    hub.poll_now()
    assert hub.wait_idle(15)
    echoes = [r for r in rows(hub, inbox) if r.outcome == "echo of Switchboard's own write"]
    assert len(echoes) == 1
    assert len(rows(hub, decisions)) == decisions_before
    assert len(rows(hub, outbox)) == 3  # the bug, the note, the bug's impact roll-up


def test_event_subscription_reads_the_ticket_only_when_a_matching_rule_needs_a_field(sb, make_hub):
    hub = make_hub()
    quiet = int(sb.zendesk.create_ticket(zendesk_ticket(
        {"subject": "How do I export?", "priority": "low", "tags": ["how_to"],
         "fields": {}}, FIELD_IDS))["id"])
    sb.zendesk.deliver(quiet, style="event", event_type="ticket.created")
    assert hub.wait_idle(15)
    assert calls(sb, "zendesk", "GET", TICKET) == 0

    bug = bug_ticket(sb)
    sb.zendesk.deliver(bug, style="event", event_type="ticket.created")
    assert hub.wait_idle(15)
    assert calls(sb, "zendesk", "GET", TICKET) == 1  # the error code is not in the event
    [issue] = sb.jira.issues()
    assert issue["fields"]["summary"].startswith("[E1042]")
    [event] = [r for r in rows(hub, inbox) if r.entity_key == f"zendesk:ticket:{bug}"]
    assert "read the ticket" in event.outcome and "ticket.fields.error_code" in event.outcome


def test_an_agent_edit_racing_the_write_back_is_kept(sb, make_hub):
    hub = make_hub()
    hold = sb.faults.add("jira", "POST", CREATE, kind="hold", phase="before")
    ticket_id = bug_ticket(sb)
    sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.created")
    assert hold.wait_reached(10)
    sb.zendesk.update_ticket(ticket_id, {"tags": ["bug_confirmed", "routing", "agent_tag"]})
    hold.release()
    assert hub.wait_idle(15)

    ticket = sb.zendesk.ticket(ticket_id)
    assert "agent_tag" in ticket["tags"] and "jira_linked" in ticket["tags"]
    assert len(internal_notes(sb, ticket_id)) == 1
    puts = sb.requests.entries("zendesk", method="PUT", path_regex=TICKET)
    assert [p.status for p in puts] == [409, 200]
    [update] = rows(hub, outbox, outbox.c.action == "zendesk.update")
    assert update.status == "done" and update.result["conflicts"] == 1


def test_jira_5xx_is_retried_without_creating_a_second_issue(sb, make_hub):
    hub = make_hub()
    sb.faults.add("jira", "POST", CREATE, kind="status", status=503)
    ticket_id = bug_ticket(sb)
    sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(20)
    assert len(sb.jira.issues()) == 1
    assert len(internal_notes(sb, ticket_id)) == 1
    # The 503 was ambiguous: the label was searched for before creating again.
    assert calls(sb, "jira", "GET", r"^/rest/api/2/search/jql$") + \
        calls(sb, "jira", "POST", r"^/rest/api/2/search/jql$") >= 1


def test_jira_429_is_retried_no_sooner_than_retry_after(sb, make_hub):
    hub = make_hub()
    sb.faults.add("jira", "POST", CREATE, kind="status", status=429,
                  headers={"Retry-After": "1"})
    sb.zendesk.deliver(bug_ticket(sb), style="trigger", event_type="ticket.created")
    assert hub.wait_idle(20)
    first, second = sb.requests.entries("jira", method="POST", path_regex=CREATE)
    assert first.status == 429 and second.status == 201
    assert second.time - first.time >= 1.0
    assert len(sb.jira.issues()) == 1


def test_a_commit_then_reset_create_with_lagging_search_still_makes_one_issue(sb, make_hub):
    hub = make_hub()
    sb.jira.set_search_lag(0.3)
    sb.faults.add("jira", "POST", CREATE, kind="reset_after_commit")
    ticket_id = bug_ticket(sb)
    sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(20)
    assert len(sb.jira.issues()) == 1
    assert calls(sb, "jira", "POST", CREATE) == 1
    [note] = internal_notes(sb, ticket_id)
    assert sb.jira.issues()[0]["key"] in note["body"]


def test_a_fatal_jira_error_dead_letters_the_intent_and_its_dependant(sb, make_hub):
    hub = make_hub()
    sb.faults.add("jira", "POST", CREATE, kind="status", status=400, times=None,
                  body={"errorMessages": [], "errors": {"project": "valid project is required"}})
    ticket_id = bug_ticket(sb)
    sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(15)
    create, update, impact = rows(hub, outbox)
    assert create.status == "dead" and "valid project is required" in create.last_error
    assert update.status == "dead" and "depends on" in update.last_error
    assert impact.status == "dead" and "depends on" in impact.last_error
    assert calls(sb, "jira", "POST", CREATE) == 1  # a 4xx is not retried
    assert internal_notes(sb, ticket_id) == []


def test_a_persistent_5xx_is_dead_lettered_after_max_attempts_with_the_reason(sb, make_hub):
    hub = make_hub(dispatcher={"max_attempts": 3})
    sb.faults.add("jira", "POST", CREATE, kind="status", status=502, times=None)
    sb.zendesk.deliver(bug_ticket(sb), style="trigger", event_type="ticket.created")
    assert hub.wait_idle(20)
    create = rows(hub, outbox)[0]
    assert create.status == "dead"
    assert "gave up after 3 attempts" in create.last_error and "502" in create.last_error
    assert calls(sb, "jira", "POST", CREATE) == 3


def test_every_rule_decision_is_logged_with_its_trace(sb, make_hub):
    hub = make_hub()
    ticket_id = bug_ticket(sb, priority="low")
    sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(15)
    [decision] = rows(hub, decisions, decisions.c.ticket_id == ticket_id)
    assert decision.matched is False
    assert "ticket.priority" in str(decision.trace)
    assert sb.jira.issues() == []


def test_a_burst_of_tickets_is_processed_once_each(sb, make_hub):
    hub = make_hub()
    ids = [bug_ticket(sb, error_code=f"E{n}") for n in range(8)]
    started = time.monotonic()
    for ticket_id in ids:
        sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(30), f"not idle after {time.monotonic() - started:.1f}s"
    assert len(sb.jira.issues()) == 8
    assert all(len(internal_notes(sb, t)) == 1 for t in ids)


def test_a_minute_precision_trigger_stamp_and_the_precise_poll_run_the_rule_once(sb, make_hub):
    hub = make_hub()
    ticket_id = bug_ticket(sb)
    body = trigger_payload(sb.zendesk.ticket(ticket_id), "ticket.created")
    body["ticket"]["updated_at"] = body["ticket"]["updated_at"][:16] + "Z"  # 2026-11-27T10:05Z
    answer = sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.created",
                                body_override=json.dumps(body).encode())
    assert answer.status_code == 200
    assert hub.wait_idle(15)
    hub.poll_now()  # the same change, with its precise stamp, plus the echo of our write
    assert hub.wait_idle(15)
    assert len(sb.jira.issues()) == 1
    assert len(internal_notes(sb, ticket_id)) == 1
    assert len([d for d in rows(hub, decisions) if d.matched]) == 1


def test_zendesk_writes_waiting_on_their_rate_limit_do_not_hold_up_jira_creates(sb, make_hub):
    hub = make_hub()
    # Every Zendesk update is held; Jira work must go on meanwhile (its own worker pool).
    hold = sb.faults.add("zendesk", "PUT", TICKET, kind="hold", phase="before", times=None)
    try:
        for n in range(6):  # more tickets than there are dispatcher workers in all
            sb.zendesk.deliver(bug_ticket(sb, error_code=f"E9{n}"), style="trigger",
                               event_type="ticket.created")
        assert hold.wait_reached(10)
        for _ in range(100):
            if len(sb.jira.issues()) == 6:
                break
            time.sleep(0.1)
        assert len(sb.jira.issues()) == 6
    finally:
        hold.release()
    assert hub.wait_idle(20)


def test_a_restarted_receiver_keeps_the_port_and_no_webhook_is_refused(sb, make_hub):
    hub = make_hub()
    url = hub.url
    [receiver] = receiver_pids(os.getpid())
    os.kill(receiver, signal.SIGKILL)
    ticket_id = bug_ticket(sb)
    # Sent while no receiver runs: it waits in the hub's listening socket for the new one.
    answer = sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.created")
    assert answer.status_code == 200 and answer.json()["status"] == "accepted"
    assert hub.url == url
    assert hub.wait_idle(15)
    assert len(sb.jira.issues()) == 1
