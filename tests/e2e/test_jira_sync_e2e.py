"""Jira -> Zendesk end to end: a signed Jira webhook about a bug many tickets are linked to
reaches the rules as ``jira.issue.updated``, and every linked ticket hears it in bulk — one note
each, ceil(N / 100) ``update_many`` calls, nothing more on a redelivery."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import requests
from pydantic import SecretStr

from connectors.jira_webhooks import sign
from sync.links import add_link
from tests.e2e.conftest import config_with, decisions, inbox, outbox, rows

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "jira" / \
    "webhook_issue_updated_status.json"
SECRET = "jira-e2e-whsec-5d1e3b7a9c20"
RULE = """\
  - id: bug-status-to-tickets
    description: Every ticket linked to a bug hears when engineering starts on it or finishes.
    on: [jira.issue.updated]
    if:
      all:
        - {field: issue.changed, op: contains, value: status}
        - {field: issue.status, op: in, value: [In Progress, Done]}
    then:
      - zendesk.update_linked:
          issue: "{{ issue.key }}"
          note: >-
            Engineering moved {{ issue.key }} from {{ issue.previous_status }}
            to {{ issue.status }}.
          add_tags: [bug_followed]
"""


def _post(hub, payload: dict, delivery: str) -> requests.Response:
    body = json.dumps(payload).encode()
    return requests.post(f"{hub.url}/webhooks/jira", data=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Hub-Signature": sign(SECRET, body),
        "X-Atlassian-Webhook-Identifier": delivery})


def test_a_bug_moving_reaches_every_linked_ticket_once_in_bulk(sb, make_hub, tmp_path):
    hub = make_hub(config_with(tmp_path, RULE),
                   receiver={"jira_signing_secrets": (SecretStr(SECRET),)})
    tickets = [sb.zendesk.create_ticket({"subject": f"Import fails ({n})", "description": "d"})
               ["id"] for n in range(150)]
    unrelated = sb.zendesk.create_ticket({"subject": "Other", "description": "d"})["id"]
    with hub.store.write() as conn:
        for ticket in tickets:
            add_link(conn, ticket, "jira", "SUP-77", None)
        add_link(conn, unrelated, "jira", "SUP-1", None)
    event = json.loads(FIXTURE.read_text(encoding="utf-8"))  # SUP-77: To Do -> In Progress
    sb.requests.clear()

    assert _post(hub, event, "d-1").status_code == 202
    assert _post(hub, event, "d-2").json()["status"] == "duplicate"  # same event, redelivered
    assert hub.wait_idle(60)
    note = "Engineering moved SUP-77 from To Do to In Progress."
    for ticket in tickets:
        assert [c["body"] for c in sb.zendesk.comments(ticket)].count(note) == 1
        assert "bug_followed" in sb.zendesk.ticket(ticket)["tags"]
    assert "bug_followed" not in sb.zendesk.ticket(unrelated)["tags"]
    assert sb.requests.count("zendesk", method="PUT", path_regex=r"update_many") == 2
    assert sb.requests.count("zendesk", method="PUT", path_regex=r"^/api/v2/tickets/\d+") == 0
    [decision] = rows(hub, decisions, decisions.c.matched)
    assert decision.event_type == "jira.issue.updated" and decision.ticket_id is None
    [row] = rows(hub, inbox, inbox.c.source == "jira")
    assert "SUP-77 (150 linked ticket(s)); matched: bug-status-to-tickets; 1 intent(s) planned" \
        in row.outcome

    # Done: a second change of the same issue, a second fan-out.
    done = copy.deepcopy(event)
    done["timestamp"] += 60_000
    done["changelog"]["id"] = str(int(done["changelog"]["id"]) + 1)
    done["changelog"]["items"][0].update(fromString="In Progress", toString="Done")
    done["issue"]["fields"]["status"]["name"] = "Done"
    assert _post(hub, done, "d-3").status_code == 202
    assert hub.wait_idle(60)
    finished = "Engineering moved SUP-77 from In Progress to Done."
    assert all([c["body"] for c in sb.zendesk.comments(t)].count(finished) == 1 for t in tickets)
    assert sb.requests.count("zendesk", method="PUT", path_regex=r"update_many") == 4
    assert not rows(hub, outbox, outbox.c.status.in_(["dead", "pending"]))


def test_an_issue_no_ticket_is_linked_to_and_an_untracked_change_run_no_rule(
        sb, make_hub, tmp_path):
    hub = make_hub(config_with(tmp_path, RULE),
                   receiver={"jira_signing_secrets": (SecretStr(SECRET),)})
    event = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert _post(hub, event, "d-1").status_code == 202
    ticket = sb.zendesk.create_ticket({"subject": "S", "description": "d"})["id"]
    with hub.store.write() as conn:
        add_link(conn, ticket, "jira", "SUP-78", None)
    summary_only = copy.deepcopy(event)
    summary_only["issue"]["key"], summary_only["issue"]["id"] = "SUP-78", "11443"
    summary_only["changelog"]["items"] = [{"field": "summary", "fieldtype": "jira",
                                           "fieldId": "summary", "from": None,
                                           "fromString": "a", "to": None, "toString": "b"}]
    assert _post(hub, summary_only, "d-2").status_code == 202
    assert hub.wait_idle(30)
    outcomes = [r.outcome for r in rows(hub, inbox, inbox.c.source == "jira")]
    assert "no ticket is linked to it" in outcomes[0]
    assert "none of status, resolution, priority, fix versions changed" in outcomes[1]
    assert not rows(hub, decisions)
