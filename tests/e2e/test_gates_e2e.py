"""Shadow mode and windows end to end: the real hub, connectors and sandbox over HTTP."""

from __future__ import annotations

import time

from sync.rulestate import enqueue_quiet_ticks
from sync.store import utcnow

from .conftest import bug_ticket, calls, config_with, decisions, internal_notes, outbox, rows

SHADOW = """
  - id: outage-shadow
    mode: shadow
    on: [ticket.created]
    if: {field: ticket.tags, op: contains, value: outage}
    then:
      - jira.create_or_link_bug: {project: SUP, summary: "Outage {{ ticket.subject }}"}
      - zendesk.update: {note: "Escalated as {{ jira.key }}", add_tags: [escalated]}
"""

SPIKE = """
  - id: spike
    on: [ticket.created]
    if: {field: ticket.tags, op: contains, value: outage}
    window: {count: 3, within: 10m, group_by: ticket.fields.error_code, quiet_for: 2s}
    then:
      - zendesk.update:
          note: "Spike: {{ window.count }} tickets with {{ window.group }}: {{ window.tickets }}"
    after_quiet:
      - zendesk.update: {note: "Spike over after {{ window.count }} tickets"}
"""


def test_a_shadow_rule_decides_and_records_but_never_calls_a_vendor(sb, make_hub, tmp_path):
    hub = make_hub(config_with(tmp_path, SHADOW))
    sb.requests.clear()
    ticket_id = bug_ticket(sb, tags=("outage",), priority="low")
    assert sb.zendesk.deliver(ticket_id, style="trigger").status_code == 200
    assert hub.wait_idle(10)
    [decision] = rows(hub, decisions, decisions.c.rule_id == "outage-shadow")
    assert decision.matched and decision.mode == "shadow"
    planned = rows(hub, outbox, outbox.c.rule_id == "outage-shadow")
    assert [r.status for r in planned] == ["shadow", "shadow"]
    assert calls(sb, "jira", "POST", r".*") == 0
    assert calls(sb, "zendesk", "PUT", r".*") == 0
    assert sb.jira.issues() == [] and internal_notes(sb, ticket_id) == []


def test_a_window_fires_once_for_a_burst_and_its_follow_up_runs_after_the_quiet(
        sb, make_hub, tmp_path):
    hub = make_hub(config_with(tmp_path, SPIKE))
    ids = []
    for n in range(4):
        ids.append(bug_ticket(sb, tags=("outage",), priority="low", error_code="E503",
                              subject=f"Down {n}"))
        assert sb.zendesk.deliver(ids[-1], style="trigger").status_code == 200
        assert hub.wait_idle(10)
    notes = {t: [n["body"] for n in internal_notes(sb, t)] for t in ids}
    assert notes[ids[0]] == [] and notes[ids[1]] == [] and notes[ids[3]] == []
    assert notes[ids[2]] == [f"Spike: 3 tickets with E503: {ids[:3]}"]

    time.sleep(2.1)  # the quiet period; the hub's own job checks every few seconds
    enqueue_quiet_ticks(hub.store, hub.processor.rules, utcnow())
    assert hub.wait_idle(10)
    assert [n["body"] for n in internal_notes(sb, ids[3])] == ["Spike over after 4 tickets"]
    [quiet] = rows(hub, decisions, decisions.c.event_type == "window.quiet")
    assert quiet.rule_id == "spike" and quiet.ticket_id == ids[3]
