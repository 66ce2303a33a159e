"""The Jira stand-in's workflow: the transitions an issue offers depend on its status, a
transition it does not offer is a 400, and every status or priority change is in the changelog
with the account that made it (from which tests build Jira's webhook)."""

from __future__ import annotations

import requests

from sandbox import Sandbox
from sandbox.jira import ENGINEER
from sandbox.jira_workflow import WorkflowTransition


def _bug(sb: Sandbox) -> str:
    return str(sb.jira.create_issue({"project": {"key": "SUP"}, "issuetype": {"name": "Bug"},
                                     "summary": "Import fails"})["key"])


def _transitions(sb: Sandbox, jr: requests.Session, key: str, **query: str) -> list[dict]:
    answer = jr.get(f"{sb.jira_url}/rest/api/2/issue/{key}/transitions", params=query)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["transitions"])


def test_the_transitions_offered_follow_the_status(sb: Sandbox, jr: requests.Session) -> None:
    key = _bug(sb)
    offered = _transitions(sb, jr, key)
    assert [(t["id"], t["name"], t["to"]["name"]) for t in offered] == [
        ("21", "Start Progress", "In Progress"), ("31", "Done", "Done")]
    assert offered[1]["to"]["statusCategory"]["key"] == "done"
    sb.jira.transition(key, "Done", "done")
    [reopen] = _transitions(sb, jr, key)
    assert (reopen["id"], reopen["name"], reopen["to"]["name"]) == ("41", "Reopen", "Reopened")
    assert reopen["to"]["statusCategory"]["key"] == "new" and reopen["hasScreen"] is False
    assert _transitions(sb, jr, key, transitionId="41")[0]["id"] == "41"
    assert _transitions(sb, jr, key, transitionId="21") == []  # not offered from Done


def test_a_transition_moves_the_issue_as_the_api_user(sb: Sandbox, jr: requests.Session) -> None:
    key = _bug(sb)
    sb.jira.transition(key, "Done", "done")
    answer = jr.post(f"{sb.jira_url}/rest/api/2/issue/{key}/transitions",
                     json={"transition": {"id": "41"}})
    assert answer.status_code == 204 and answer.content == b""
    fields = sb.jira.issue(key)["fields"]
    assert fields["status"]["name"] == "Reopened" and fields["resolution"] is None
    engineer, api = sb.jira.changelog(key)
    assert engineer["accountId"] == ENGINEER
    assert api["accountId"] == sb.jira.account_id
    assert api["items"] == [{"field": "status", "fieldtype": "jira", "fieldId": "status",
                             "from": api["items"][0]["from"], "fromString": "Done",
                             "to": api["items"][0]["to"], "toString": "Reopened"}]


def test_a_transition_the_status_does_not_offer_is_refused(
        sb: Sandbox, jr: requests.Session) -> None:
    key = _bug(sb)
    url = f"{sb.jira_url}/rest/api/2/issue/{key}/transitions"
    refused = jr.post(url, json={"transition": {"id": 41}})  # Reopen, from To Do
    assert refused.status_code == 400
    assert refused.json() == {"errorMessages": ["Transition id '41' is not valid for this issue."],
                              "errors": {}}
    assert jr.post(url, json={}).status_code == 400  # no transition named
    with_field = jr.post(url, json={"transition": {"id": "31"},
                                    "fields": {"resolution": {"name": "Fixed"}}})
    assert with_field.status_code == 400 and "resolution" in with_field.json()["errors"]
    missing = jr.post(f"{sb.jira_url}/rest/api/2/issue/SUP-999/transitions",
                      json={"transition": {"id": "31"}})
    assert missing.status_code == 404
    assert sb.jira.issue(key)["fields"]["status"]["name"] == "To Do"
    assert sb.jira.changelog(key) == []


def test_a_workflow_can_be_replaced(sb: Sandbox, jr: requests.Session) -> None:
    sb.jira.set_workflow((WorkflowTransition("51", "Back to backlog", "Backlog", "new",
                                             ("Done",)),))
    key = _bug(sb)
    sb.jira.transition(key, "Done", "done")
    assert [t["to"]["name"] for t in _transitions(sb, jr, key)] == ["Backlog"]


def test_a_priority_edit_is_in_the_changelog_and_its_webhook(
        sb: Sandbox, jr: requests.Session) -> None:
    key = _bug(sb)
    answer = jr.put(f"{sb.jira_url}/rest/api/2/issue/{key}",
                    json={"fields": {"priority": {"name": "Highest"}}})
    assert answer.status_code == 204
    [change] = sb.jira.changelog(key)
    assert change["accountId"] == sb.jira.account_id
    assert [(i["field"], i["fromString"], i["toString"], i["to"]) for i in change["items"]] == [
        ("priority", "Medium", "Highest", "1")]
    webhook = sb.jira.issue_updated_webhook(key)
    assert webhook["webhookEvent"] == "jira:issue_updated"
    assert webhook["user"]["accountId"] == sb.jira.account_id
    assert webhook["issue"]["key"] == key
    assert webhook["issue"]["fields"]["priority"]["name"] == "Highest"
    assert webhook["changelog"] == {"id": change["id"], "items": change["items"]}
    sb.jira.edit_issue(key, {"summary": "Import fails on big files"})  # no tracked change
    assert len(sb.jira.changelog(key)) == 1
