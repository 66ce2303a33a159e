"""The Jira reconciliation poll end to end: the real hub and Jira connector against the
sandbox's stand-in. A change whose webhook never came is caught by the next poll and reaches the
linked tickets once; a change reported by both a webhook and a poll is processed once; a deleted
issue is found out (Jira refuses a search naming it) without losing the others."""

from __future__ import annotations

import json
import time
from pathlib import Path

import requests
from pydantic import SecretStr

from connectors.jira import parse_jira_time
from connectors.jira_webhooks import sign
from sandbox import Sandbox
from sync.links import add_link
from sync.schema import jira_issues
from tests.e2e.conftest import config_with, decisions, inbox, outbox, rows

SECRET = "jira-e2e-whsec-8f2c61d0b3a4"
RULE = """\
  - id: bug-status-to-tickets
    on: [jira.issue.updated, jira.issue.deleted]
    if: {field: issue.changed, op: contains, value: status}
    then:
      - zendesk.update_linked:
          issue: "{{ issue.key }}"
          note: "{{ issue.key }} is now {{ issue.status }} (was {{ issue.previous_status }})."
"""


def _issue(sb: Sandbox, summary: str) -> str:
    return str(sb.jira.create_issue({"project": {"key": "SUP"}, "issuetype": {"name": "Bug"},
                                     "summary": summary})["key"])


def _hub(sb, make_hub, tmp_path):
    return make_hub(config_with(tmp_path, RULE),
                    receiver={"jira_signing_secrets": (SecretStr(SECRET),)})


def _link(hub, sb: Sandbox, key: str, n: int) -> list[int]:
    tickets = [int(sb.zendesk.create_ticket({"subject": f"{key} ({i})", "description": "d"})
                   ["id"]) for i in range(n)]
    with hub.store.write() as conn:
        for ticket in tickets:
            add_link(conn, ticket, "jira", key, None)
    return tickets


def _searchable() -> None:
    """Jira's search lags its writes; so does the stand-in's (0.2 s in these tests)."""
    time.sleep(0.3)


def _notes(sb: Sandbox, ticket: int, text: str) -> int:
    return [c["body"] for c in sb.zendesk.comments(ticket)].count(text)


def test_a_change_whose_webhook_never_came_is_caught_by_the_next_poll(sb, make_hub, tmp_path):
    hub = _hub(sb, make_hub, tmp_path)
    key = _issue(sb, "Import fails")
    tickets = _link(hub, sb, key, 3)
    _searchable()
    assert hub.poll_jira_now() == 0  # first sight: recorded, not news
    sb.jira.transition(key, "In Progress", "indeterminate")  # no webhook is sent
    _searchable()
    assert hub.poll_jira_now() == 1
    assert hub.wait_idle(30)
    note = f"{key} is now In Progress (was To Do)."
    assert all(_notes(sb, t, note) == 1 for t in tickets)
    assert hub.poll_jira_now() == 0  # nothing new: the next poll reports nothing
    [decision] = rows(hub, decisions, decisions.c.matched)
    assert decision.event_type == "jira.issue.updated"
    assert not rows(hub, outbox, outbox.c.status.in_(["dead", "pending"]))


def test_a_change_reported_by_a_webhook_and_a_poll_reaches_the_tickets_once(
        sb, make_hub, tmp_path):
    hub = _hub(sb, make_hub, tmp_path)
    key = _issue(sb, "Export hangs")
    tickets = _link(hub, sb, key, 2)
    _searchable()
    assert hub.poll_jira_now() == 0
    issue = sb.jira.transition(key, "In Progress", "indeterminate")
    # The webhook arrives first (shaped like the fixture, for this issue and change).
    event = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "jira" /
                        "webhook_issue_updated_status.json").read_text(encoding="utf-8"))
    event["issue"]["id"], event["issue"]["key"] = issue["id"], key
    changed = parse_jira_time(issue["fields"]["updated"])
    assert changed is not None
    event["timestamp"] = int(changed.timestamp() * 1000)  # when Jira says the change happened
    body = json.dumps(event).encode()
    answer = requests.post(f"{hub.url}/webhooks/jira", data=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Hub-Signature": sign(SECRET, body)})
    assert answer.status_code == 202
    assert hub.wait_idle(30)
    _searchable()
    assert hub.poll_jira_now() == 0  # the poll finds the state already processed
    assert hub.wait_idle(30)
    note = f"{key} is now In Progress (was To Do)."
    assert all(_notes(sb, t, note) == 1 for t in tickets)
    assert len(rows(hub, outbox, outbox.c.action == "zendesk.update_linked")) == 1


def test_a_deleted_issue_is_found_out_and_the_others_are_still_polled(sb, make_hub, tmp_path):
    hub = _hub(sb, make_hub, tmp_path)
    keys = [_issue(sb, f"Bug {n}") for n in range(5)]
    tickets = {key: _link(hub, sb, key, 1) for key in keys}
    _searchable()
    assert hub.poll_jira_now() == 0
    sb.jira.delete_issue(keys[1])
    sb.jira.transition(keys[3], "Done", "done")
    _searchable()
    assert hub.poll_jira_now() == 2  # keys[3] changed, keys[1] is gone
    assert hub.wait_idle(30)
    assert _notes(sb, tickets[keys[3]][0], f"{keys[3]} is now Done (was To Do).") == 1
    outcomes = [r.outcome for r in rows(hub, inbox, inbox.c.source == "jira")]
    assert any(f"jira.issue.deleted {keys[1]}" in o for o in outcomes), outcomes
    with hub.store.read() as conn:
        gone = [r.key for r in conn.execute(jira_issues.select().where(jira_issues.c.gone))]
    assert gone == [keys[1]]
    searches = sb.requests.count("jira", method="GET", path_regex=r"search/jql") + \
        sb.requests.count("jira", method="POST", path_regex=r"search/jql")
    sb.requests.clear()
    assert hub.poll_jira_now() == 0  # the gone issue is no longer searched: one search
    assert sb.requests.count("jira", path_regex=r"search/jql") == 1
    assert searches > 2  # the poll that found it halved the keys


def test_a_newly_linked_issue_is_recorded_at_the_next_poll_so_its_first_change_is_caught(
        sb, make_hub, tmp_path):
    hub = _hub(sb, make_hub, tmp_path)
    old = _issue(sb, "Old bug")
    _link(hub, sb, old, 1)
    _searchable()
    assert hub.poll_jira_now() == 0
    newer = _issue(sb, "New bug")  # linked after the first poll; not changed since
    tickets = _link(hub, sb, newer, 1)
    _searchable()
    assert hub.poll_jira_now() == 0  # recorded now, although not updated since the last poll
    sb.jira.transition(newer, "In Progress", "indeterminate")  # its webhook is lost
    _searchable()
    assert hub.poll_jira_now() == 1
    assert hub.wait_idle(30)
    assert _notes(sb, tickets[0], f"{newer} is now In Progress (was To Do).") == 1


def test_a_webhook_after_the_poll_reported_the_same_change_runs_no_rule(sb, make_hub, tmp_path):
    hub = _hub(sb, make_hub, tmp_path)
    key = _issue(sb, "Export hangs")
    tickets = _link(hub, sb, key, 1)
    _searchable()
    assert hub.poll_jira_now() == 0
    issue = sb.jira.transition(key, "In Progress", "indeterminate")
    _searchable()
    assert hub.poll_jira_now() == 1  # the poll saw it first
    assert hub.wait_idle(30)
    event = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "jira" /
                        "webhook_issue_updated_status.json").read_text(encoding="utf-8"))
    event["issue"]["id"], event["issue"]["key"] = issue["id"], key
    event["issue"]["fields"] = issue["fields"]  # the issue as Jira has it now
    changed = parse_jira_time(issue["fields"]["updated"])
    assert changed is not None
    event["timestamp"] = int(changed.timestamp() * 1000) + 40  # fired a little after
    body = json.dumps(event).encode()
    assert requests.post(f"{hub.url}/webhooks/jira", data=body, timeout=10, headers={
        "Content-Type": "application/json",
        "X-Hub-Signature": sign(SECRET, body)}).status_code == 202
    assert hub.wait_idle(30)
    assert _notes(sb, tickets[0], f"{key} is now In Progress (was To Do).") == 1
    [late] = [r for r in rows(hub, inbox, inbox.c.source == "jira") if r.kind != "poll:"
              "jira:issue_updated"]
    assert "no newer state than already processed" in late.outcome


def test_a_key_the_search_refuses_but_that_still_exists_is_not_reported_deleted(
        sb, make_hub, tmp_path, monkeypatch):
    hub = _hub(sb, make_hub, tmp_path)
    keys = [_issue(sb, f"Bug {n}") for n in range(2)]
    for key in keys:
        _link(hub, sb, key, 1)
    _searchable()
    real = sb.jira.search

    def refuses(query_text, **kwargs):  # as Jira does for an issue the account cannot see
        if keys[0] in query_text:
            from sandbox.jira import JiraError, errors
            raise JiraError(400, errors(f"An issue with key '{keys[0]}' does not exist for "
                                        "field 'key'."))
        return real(query_text, **kwargs)

    monkeypatch.setattr(sb.jira, "search", refuses)
    assert hub.poll_jira_now() == 0  # keys[0] still reads fine: not deleted
    assert hub.wait_idle(30)
    assert not [r for r in rows(hub, inbox, inbox.c.source == "jira")
                if "deleted" in (r.kind or "")]
    with hub.store.read() as conn:
        assert not list(conn.execute(jira_issues.select().where(jira_issues.c.gone)))
