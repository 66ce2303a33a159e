"""Races between Switchboard's writes and everyone else's: nothing of theirs is lost to the rules,
nothing of Switchboard's own comes back as a change, and a closed bug is never joined."""

from __future__ import annotations

import json

from sandbox import trigger_payload

from .conftest import bug_ticket, config_with, internal_notes, outbox, rows

CREATE = r"^/rest/api/2/issue$"
TICKET = r"^/api/v2/tickets/\d+\.json$"

AGENT_RULE = """
  - id: agent-tag-seen
    on: [ticket.updated]
    if: {field: ticket.tags, op: changed_to, value: agent_tag}
    then:
      - zendesk.update: {note: "agent tag seen"}
"""

LOOP_RULE = """
  - id: on-linked
    on: [ticket.updated]
    if: {field: ticket.tags, op: contains, value: jira_linked}
    then:
      - zendesk.update: {note: "linked seen"}
"""


def notes(sb, ticket_id: int) -> list[str]:
    return [c["body"] for c in internal_notes(sb, ticket_id)]


def race_agent_edit_with_the_write_back(sb, hub) -> tuple[int, dict]:
    """An agent adds a tag while the Jira bug is being created; returns the agent's state."""
    hold = sb.faults.add("jira", "POST", CREATE, kind="hold", phase="before")
    ticket_id = bug_ticket(sb)
    sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.created")
    assert hold.wait_reached(10)
    agent_state = sb.zendesk.update_ticket(ticket_id,
                                           {"tags": ["bug_confirmed", "routing", "agent_tag"]})
    hold.release()
    assert hub.wait_idle(15)
    assert [e.status for e in sb.requests.entries("zendesk", "PUT", TICKET)] == [409, 200]
    return ticket_id, agent_state


def test_an_agent_edit_that_races_the_write_back_still_reaches_the_rules_via_the_poll(
        sb, make_hub, tmp_path):
    hub = make_hub(config_with(tmp_path, AGENT_RULE))
    ticket_id, _ = race_agent_edit_with_the_write_back(sb, hub)
    hub.poll_now()  # sees the agent's tag and Switchboard's write together
    assert hub.wait_idle(15)
    assert "agent tag seen" in notes(sb, ticket_id)
    assert sum(n.startswith("Linked to") for n in notes(sb, ticket_id)) == 1


def test_an_agent_edit_whose_webhook_arrives_after_the_write_back_reaches_the_rules(
        sb, make_hub, tmp_path):
    hub = make_hub(config_with(tmp_path, AGENT_RULE))
    ticket_id, agent_state = race_agent_edit_with_the_write_back(sb, hub)
    late = json.dumps(trigger_payload(agent_state, "ticket.updated")).encode()
    assert sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.updated",
                              body_override=late).status_code == 200
    assert hub.wait_idle(15)
    assert "agent tag seen" in notes(sb, ticket_id)


def test_the_echo_of_a_write_whose_answer_was_lost_runs_no_rule(sb, make_hub, tmp_path):
    hub = make_hub(config_with(tmp_path, LOOP_RULE), dispatcher={"backoff_base_seconds": 1.5})
    # The update lands but its answer is lost: the intent waits for its retry...
    sb.faults.add("zendesk", "PUT", TICKET, kind="reset_after_commit")
    ticket_id = bug_ticket(sb)
    sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.created")
    # ...while Zendesk announces the state that write produced.
    for _ in range(50):
        if any(t.startswith("switchboard_") for t in sb.zendesk.ticket(ticket_id)["tags"]):
            break
        hub.wait_idle(0.1)
    sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.updated")
    assert hub.wait_idle(20)
    hub.poll_now()
    assert hub.wait_idle(15)
    assert notes(sb, ticket_id) == [n for n in notes(sb, ticket_id) if n.startswith("Linked to")]
    assert len(notes(sb, ticket_id)) == 1
    [update] = rows(hub, outbox, outbox.c.action == "zendesk.update")
    assert update.status == "done" and update.result["confirmed_by"] == "re-read"


def test_a_ticket_whose_bug_was_closed_gets_a_new_bug_not_the_closed_one(sb, make_hub):
    hub = make_hub()
    first = bug_ticket(sb)
    sb.zendesk.deliver(first, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(15)
    [old] = sb.jira.issues()
    sb.jira.transition(old["key"], "Done", "done")
    second = bug_ticket(sb, subject="E1042 is back")
    sb.zendesk.deliver(second, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(15)
    keys = sorted(i["key"] for i in sb.jira.issues())
    assert len(keys) == 2 and old["key"] in keys
    new_key = next(k for k in keys if k != old["key"])
    assert new_key in notes(sb, second)[0]
    assert len(sb.jira.remote_links(old["key"])) == 1


def test_a_ticket_whose_bug_was_deleted_gets_a_new_bug(sb, make_hub):
    hub = make_hub()
    first = bug_ticket(sb)
    sb.zendesk.deliver(first, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(15)
    [old] = sb.jira.issues()
    # Deleted in Jira (or no longer visible to Switchboard's account): it answers 404.
    sb.faults.add("jira", "GET", rf"^/rest/api/2/issue/{old['key']}$", kind="status",
                  status=404, times=None)
    second = bug_ticket(sb, subject="E1042 again")
    sb.zendesk.deliver(second, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(15)
    assert len(sb.jira.issues()) == 2
    assert all(r.status == "done" for r in rows(hub, outbox))
    assert old["key"] not in notes(sb, second)[0]


MIXED_CASE_RULES = """
  - id: escalate-mixed-case
    on: [ticket.updated]
    if: {field: ticket.tags, op: contains, value: please_escalate}
    then:
      - zendesk.update:
          note: "escalated"
          add_tags: [Escalated_To_Eng]
          remove_tags: [Please_Escalate]
  - id: on-escalated
    on: [ticket.updated]
    if: {field: ticket.tags, op: contains, value: escalated_to_eng}
    then:
      - zendesk.update: {note: "escalated seen"}
"""


def test_tags_written_in_mixed_case_are_applied_and_their_echo_runs_no_rule(
        sb, make_hub, tmp_path):
    hub = make_hub(config_with(tmp_path, MIXED_CASE_RULES))
    ticket_id = bug_ticket(sb, tags=("billing",))
    sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(15)
    sb.zendesk.update_ticket(ticket_id, {"tags": ["billing", "please_escalate"]})
    sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.updated")
    assert hub.wait_idle(15)
    hub.poll_now()  # the echo of the write
    assert hub.wait_idle(15)
    tags = sb.zendesk.ticket(ticket_id)["tags"]
    assert "escalated_to_eng" in tags and "please_escalate" not in tags
    assert notes(sb, ticket_id) == ["escalated"]
