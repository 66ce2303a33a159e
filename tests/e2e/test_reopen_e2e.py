"""Regressions reopen the Done bug, end to end: a new ticket whose error code's bug is Done
reopens it (one transition, through Jira's workflow) and joins it — and the reopen, Switchboard's
own change, never comes back as a ``jira.issue.updated`` that fans out to the linked tickets as if
engineering had moved the bug: not through its webhook, not through the reconciliation poll."""

from __future__ import annotations

import json
import time

import requests
from pydantic import SecretStr

from connectors.jira_webhooks import sign
from sandbox import Sandbox
from tests.e2e.conftest import bug_ticket, config_with, decisions, inbox, outbox, rows

SECRET = "jira-e2e-whsec-reopen-41c7"
TRANSITIONS = r"^/rest/api/2/issue/[^/]+/transitions$"
RULE = """\
  - id: bug-status-to-tickets
    on: [jira.issue.updated]
    if: {field: issue.changed, op: contains, value: status}
    then:
      - zendesk.update_linked:
          issue: "{{ issue.key }}"
          note: "Engineering moved {{ issue.key }} to {{ issue.status }}."
"""


def _hub(sb: Sandbox, make_hub, tmp_path):
    path = config_with(tmp_path, RULE)
    text = path.read_text(encoding="utf-8")
    assert "when_done: regression" in text
    path.write_text(text.replace("when_done: regression",
                                 "when_done: reopen\n          reopen_status: Reopened", 1),
                    encoding="utf-8")
    return make_hub(path, receiver={"jira_signing_secrets": (SecretStr(SECRET),)})


def _post(hub, payload: dict) -> str:
    body = json.dumps(payload).encode()
    answer = requests.post(f"{hub.url}/webhooks/jira", data=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Hub-Signature": sign(SECRET, body)})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["status"])


def _notes(sb: Sandbox, ticket: int, text: str) -> int:
    return [c["body"] for c in sb.zendesk.comments(ticket)].count(text)


def _done_bug_with_a_ticket(sb: Sandbox, hub) -> tuple[str, int]:
    first = bug_ticket(sb, error_code="E7001")
    sb.zendesk.deliver(first, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(30)
    [issue] = sb.jira.issues()
    key = str(issue["key"])
    time.sleep(0.3)  # Jira's search lags its writes (0.2 s in the stand-in)
    assert hub.poll_jira_now() == 0  # the poll records the bug's state
    sb.jira.transition(key, "Done", "done")  # an engineer finishes it, and Jira says so
    _post(hub, sb.jira.issue_updated_webhook(key))
    assert hub.wait_idle(30)
    assert _notes(sb, first, f"Engineering moved {key} to Done.") == 1
    return key, first


def test_a_regression_reopens_the_done_bug_and_its_webhook_is_not_an_engineering_change(
        sb, make_hub, tmp_path):
    hub = _hub(sb, make_hub, tmp_path)
    key, first = _done_bug_with_a_ticket(sb, hub)
    sb.requests.clear()

    second = bug_ticket(sb, error_code="E7001", subject="Import fails again with E7001")
    sb.zendesk.deliver(second, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(30)
    assert len(sb.jira.issues()) == 1  # no new bug: the Done one is back
    assert sb.jira.issue(key)["fields"]["status"]["name"] == "Reopened"
    assert sb.requests.count("jira", method="POST", path_regex=TRANSITIONS) == 1
    assert len(sb.jira.remote_links(key)) == 2
    [create] = rows(hub, outbox, outbox.c.action == "jira.create_or_link_bug",
                    outbox.c.ticket_id == second)
    assert create.result["reopened"] is True and create.result["key"] == key

    # Jira's webhook for the reopen names Switchboard's account: no rule runs on it.
    webhook = sb.jira.issue_updated_webhook(key)
    assert webhook["user"]["accountId"] == sb.jira.account_id
    _post(hub, webhook)
    assert hub.wait_idle(30)
    [row] = rows(hub, inbox, inbox.c.source == "jira", inbox.c.id == sa_max_id(hub))
    assert "Switchboard's own change (status); no rule runs" in row.outcome
    time.sleep(0.3)
    assert hub.poll_jira_now() == 0  # nor does the poll report it
    assert hub.wait_idle(30)
    for ticket in (first, second):
        assert _notes(sb, ticket, f"Engineering moved {key} to Reopened.") == 0
    assert len([d for d in rows(hub, decisions, decisions.c.matched)
                if d.event_type == "jira.issue.updated"]) == 1  # the Done only

    # An engineer's own later change still fans out.
    sb.jira.transition(key, "In Progress", "indeterminate")
    _post(hub, sb.jira.issue_updated_webhook(key))
    assert hub.wait_idle(30)
    for ticket in (first, second):
        assert _notes(sb, ticket, f"Engineering moved {key} to In Progress.") == 1
    assert not rows(hub, outbox, outbox.c.status.in_(["dead", "pending"]))


def test_a_reopen_whose_webhook_is_lost_is_not_reported_by_the_poll(sb, make_hub, tmp_path):
    hub = _hub(sb, make_hub, tmp_path)
    key, first = _done_bug_with_a_ticket(sb, hub)
    second = bug_ticket(sb, error_code="E7001", subject="Import fails again with E7001")
    sb.zendesk.deliver(second, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(30)
    assert sb.jira.issue(key)["fields"]["status"]["name"] == "Reopened"
    time.sleep(0.3)
    assert hub.poll_jira_now() == 0  # Switchboard's own change: recorded, not reported
    sb.jira.transition(key, "Done", "done")  # engineering closes it again; the webhook is lost
    time.sleep(0.3)
    assert hub.poll_jira_now() == 1
    assert hub.wait_idle(30)
    for ticket in (first, second):
        assert _notes(sb, ticket, f"Engineering moved {key} to Reopened.") == 0
    assert _notes(sb, second, f"Engineering moved {key} to Done.") == 1


def sa_max_id(hub) -> int:
    return max(r.id for r in rows(hub, inbox, inbox.c.source == "jira"))
