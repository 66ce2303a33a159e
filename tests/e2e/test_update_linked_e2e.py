"""``zendesk.update_linked`` in the running hub: a rule tells every ticket linked to a bug, in
bulk, and the webhooks of those updates run no rule (Switchboard's own writes)."""

from __future__ import annotations

from .conftest import bug_ticket, config_with, decisions, inbox, outbox, rows

ANNOUNCE = """\
  - id: fix-shipped-tell-linked
    description: When one ticket says the fix shipped, every ticket linked to its bug hears it.
    on: [ticket.updated]
    if:
      all:
        - {field: links.jira, op: exists}
        - {field: ticket.tags, op: contains, value: fix_shipped}
    then:
      - zendesk.update_linked:
          issue: "{{ links.jira[0] }}"
          note: "The fix for {{ links.jira[0] }} has shipped."
          add_tags: [fix_announced]
"""


def test_a_rule_updates_every_linked_ticket_in_bulk_and_the_echo_runs_no_rule(
        sb, make_hub, tmp_path):
    hub = make_hub(config_with(tmp_path, ANNOUNCE))
    tickets = [bug_ticket(sb, subject=f"Import fails ({n})") for n in range(12)]
    for ticket in tickets:
        sb.zendesk.deliver(ticket, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(60)
    [issue] = sb.jira.issues()  # one bug, twelve tickets linked to it

    sb.zendesk.update_ticket(tickets[0], {"additional_tags": ["fix_shipped"]})
    sb.requests.clear()
    sb.zendesk.deliver(tickets[0], style="trigger", event_type="ticket.updated")
    assert hub.wait_idle(60)
    note = f"The fix for {issue['key']} has shipped."
    for ticket in tickets:
        assert [c["body"] for c in sb.zendesk.comments(ticket)].count(note) == 1
        assert "fix_announced" in sb.zendesk.ticket(ticket)["tags"]
    assert sb.requests.count("zendesk", method="PUT", path_regex=r"update_many") == 1
    [fan_out] = rows(hub, outbox, outbox.c.action == "zendesk.update_linked")
    assert fan_out.status == "done" and fan_out.result["tickets"] == 12

    # Zendesk's webhooks for those twelve updates: Switchboard's own, no rule runs.
    matched = len(rows(hub, decisions, decisions.c.matched))
    for ticket in tickets:
        sb.zendesk.deliver(ticket, style="trigger", event_type="ticket.updated")
    assert hub.wait_idle(60)
    assert len(rows(hub, decisions, decisions.c.matched)) == matched
    outcomes = [r.outcome for r in rows(hub, inbox)][-len(tickets):]
    assert all("own write" in o for o in outcomes), outcomes
    assert not rows(hub, outbox, outbox.c.status.in_(["dead", "pending"]))
