"""The bug's priority follows its impact up, end to end: the shipped bug rule's ``jira.impact``
with ``raise_priority`` raises a bug an enterprise customer reports to Highest — once — and that
change, Switchboard's own, does not come back as an engineering change (webhook or poll), while
an engineer's later change of the priority still does."""

from __future__ import annotations

import json
import time

import requests
from pydantic import SecretStr

from connectors.jira_webhooks import sign
from sandbox import Sandbox
from tests.e2e.conftest import bug_ticket, config_with, inbox, outbox, rows

SECRET = "jira-e2e-whsec-priority-9d2e"
ISSUE = r"^/rest/api/2/issue/SUP-\d+$"
RULE = """\
  - id: bug-priority-to-tickets
    on: [jira.issue.updated]
    if: {field: issue.changed, op: contains, value: priority}
    then:
      - zendesk.update_linked:
          issue: "{{ issue.key }}"
          note: "Engineering set {{ issue.key }} to {{ issue.priority }}."
"""
SHIPPED_IMPACT = '      - jira.impact:\n          issue: "{{ jira.key }}"\n'
RAISING_IMPACT = SHIPPED_IMPACT + (
    "          raise_priority:\n"
    "            - {tickets: 10, to: High}\n"
    "            - {tier: enterprise, to: Highest}\n")


def _post(hub, payload: dict) -> None:
    body = json.dumps(payload).encode()
    answer = requests.post(f"{hub.url}/webhooks/jira", data=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Hub-Signature": sign(SECRET, body)})
    assert answer.status_code == 202, answer.text


def _notes(sb: Sandbox, ticket: int, text: str) -> int:
    return [c["body"] for c in sb.zendesk.comments(ticket)].count(text)


def test_an_enterprise_report_raises_the_bug_once_and_the_raise_does_not_echo(
        sb, make_hub, tmp_path):
    sb.zendesk.create_organization({"id": 501, "name": "Acme Logistics",
                                    "organization_fields": {"plan_tier": "enterprise"}})
    path = config_with(tmp_path, RULE)
    text = path.read_text(encoding="utf-8")
    assert text.count(SHIPPED_IMPACT) == 1
    path.write_text(text.replace(SHIPPED_IMPACT, RAISING_IMPACT), encoding="utf-8")
    hub = make_hub(path, receiver={"jira_signing_secrets": (SecretStr(SECRET),)})

    ticket = bug_ticket(sb, error_code="E4400")  # organization 501: enterprise
    sb.zendesk.deliver(ticket, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(30)
    [issue] = sb.jira.issues()
    key = str(issue["key"])
    assert issue["fields"]["priority"]["name"] == "Highest"
    assert sb.requests.count("jira", method="PUT", path_regex=ISSUE) == 1
    [impact] = rows(hub, outbox, outbox.c.action == "jira.impact")
    assert impact.result["priority"]["raised"] is True

    # Jira's webhook of the raise names Switchboard's account; the poll sees it too.
    _post(hub, sb.jira.issue_updated_webhook(key))
    assert hub.wait_idle(30)
    assert "Switchboard's own change (priority)" in rows(hub, inbox, inbox.c.source == "jira")[
        -1].outcome
    time.sleep(0.3)  # Jira's search lags its writes
    assert hub.poll_jira_now() == 0
    assert hub.wait_idle(30)
    assert _notes(sb, ticket, f"Engineering set {key} to Highest.") == 0

    # A second ticket from the same customer: the crossing is recorded, nothing is written.
    again = bug_ticket(sb, error_code="E4400", subject="Import fails again with E4400")
    sb.zendesk.deliver(again, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(30)
    assert sb.requests.count("jira", method="PUT", path_regex=ISSUE) == 1

    # An engineer lowers it: that is engineering's change, and it is heard — and kept.
    sb.jira.edit_issue(key, {"priority": {"name": "Medium"}})
    _post(hub, sb.jira.issue_updated_webhook(key))
    assert hub.wait_idle(30)
    for linked in (ticket, again):
        assert _notes(sb, linked, f"Engineering set {key} to Medium.") == 1
    assert sb.jira.issue(key)["fields"]["priority"]["name"] == "Medium"
    assert not rows(hub, outbox, outbox.c.status.in_(["dead", "pending"]))
