"""The Jira stand-in's HTTP contract, exercised with plain requests and with the jira client."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from jira import JIRA

from sandbox import Sandbox
from sandbox.jira_api import REMOVED_SEARCH_BODY


def _create(sb: Sandbox, jr: requests.Session, **fields: Any) -> requests.Response:
    body = {"project": {"key": "SUP"}, "issuetype": {"name": "Bug"}, "summary": "Login broken",
            "description": "Steps...", "labels": ["switchboard"], "priority": {"name": "High"}}
    body.update(fields)
    return jr.post(f"{sb.jira_url}/rest/api/2/issue", json={"fields": body})


def _search(sb: Sandbox, jr: requests.Session, **body: Any) -> dict[str, Any]:
    response = jr.post(f"{sb.jira_url}/rest/api/2/search/jql", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_request_without_auth_is_refused_with_401(sb: Sandbox) -> None:
    with requests.Session() as anonymous:
        response = anonymous.get(f"{sb.jira_url}/rest/api/2/issue/SUP-1")
        info = anonymous.get(f"{sb.jira_url}/rest/api/2/serverInfo")
    assert response.status_code == 401
    assert response.json()["errorMessages"][0].startswith("You are not authenticated")
    assert info.json()["deploymentType"] == "Cloud"
    assert info.json()["baseUrl"] == sb.jira_url


def test_create_returns_key_and_new_issue_is_to_do(sb: Sandbox, jr: requests.Session) -> None:
    response = _create(sb, jr)
    assert response.status_code == 201
    assert response.json() == {"id": "10001", "key": "SUP-1",
                               "self": f"{sb.jira_url}/rest/api/2/issue/10001"}  # fmt: skip
    issue = jr.get(f"{sb.jira_url}/rest/api/2/issue/SUP-1").json()
    fields = issue["fields"]
    assert fields["status"]["name"] == "To Do"
    assert fields["status"]["statusCategory"]["key"] == "new"
    assert fields["priority"]["name"] == "High" and fields["labels"] == ["switchboard"]
    assert fields["created"].endswith("+0000") and len(fields["created"]) == 28


def test_create_refuses_unknown_project_missing_summary_and_spaced_labels(
    sb: Sandbox, jr: requests.Session
) -> None:
    bad = _create(sb, jr, project={"key": "NOPE"}, summary="", labels=["has space"])
    assert bad.status_code == 400
    assert bad.json()["errors"] == {
        "project": "valid project is required",
        "summary": "You must specify a summary of the issue.",
        "labels": "The label 'has space' contains spaces which is invalid.",
    }
    assert sb.jira.issues() == []


def test_unknown_issue_is_404(sb: Sandbox, jr: requests.Session) -> None:
    response = jr.get(f"{sb.jira_url}/rest/api/2/issue/SUP-99")
    assert response.status_code == 404
    assert response.json() == {
        "errorMessages": ["Issue does not exist or you do not have permission to see it."],
        "errors": {},
    }


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("version", ["2", "3", "latest"])
def test_removed_search_endpoint_answers_410(
    sb: Sandbox, jr: requests.Session, method: str, version: str
) -> None:
    response = jr.request(method, f"{sb.jira_url}/rest/api/{version}/search",
                          params={"jql": "project = SUP"})  # fmt: skip
    assert response.status_code == 410
    assert response.json() == REMOVED_SEARCH_BODY


def test_search_lag_hides_new_writes_until_it_passes_except_reconciled(
    sb: Sandbox, jr: requests.Session
) -> None:
    sb.jira.search_lag = 0.3
    issue_id = _create(sb, jr, labels=["sb-key-1"]).json()["id"]
    query = 'labels = "sb-key-1"'
    assert _search(sb, jr, jql=query)["issues"] == []
    reconciled = _search(sb, jr, jql=query, reconcileIssues=[int(issue_id)])
    assert [i["id"] for i in reconciled["issues"]] == [issue_id]
    time.sleep(0.35)
    assert [i["id"] for i in _search(sb, jr, jql=query)["issues"]] == [issue_id]
    sb.jira.transition("SUP-1", "Done", "done")  # the update lags too
    assert _search(sb, jr, jql="project = SUP AND statusCategory = done")["issues"] == []
    time.sleep(0.35)
    assert len(_search(sb, jr, jql="project = SUP AND statusCategory = done")["issues"]) == 1


def test_search_without_fields_returns_ids_only_and_pages_with_tokens(
    sb: Sandbox, jr: requests.Session
) -> None:
    for n in range(5):
        _create(sb, jr, summary=f"bug {n}")
    first = _search(sb, jr, jql="project = SUP ORDER BY key DESC", maxResults=2)
    assert first["issues"] == [{"id": "10005"}, {"id": "10004"}]
    assert first["isLast"] is False and "total" not in first
    pages, page = [first], first
    while not page["isLast"]:
        page = _search(sb, jr, jql="project = SUP ORDER BY key DESC", maxResults=2,
                       nextPageToken=page["nextPageToken"], fields=["summary"])  # fmt: skip
        pages.append(page)
    assert len(pages) == 3 and "nextPageToken" not in pages[-1]
    assert pages[-1]["issues"][0]["fields"] == {"summary": "bug 0"}


def test_get_search_accepts_comma_fields_and_date_clauses(
    sb: Sandbox, jr: requests.Session
) -> None:
    _create(sb, jr)
    response = jr.get(f"{sb.jira_url}/rest/api/2/search/jql", params={
        "jql": 'project = SUP AND updated >= "2000/01/01 00:00" AND created < -0m '
               "AND status in ('To Do', Done) AND key != SUP-9",
        "fields": "summary,status"})  # fmt: skip
    assert response.status_code == 200, response.text
    assert set(response.json()["issues"][0]["fields"]) == {"summary", "status"}


@pytest.mark.parametrize(
    "jql",
    ["", "ORDER BY updated", "assignee = bob", "labels = a OR labels = b",
     'updated >= "yesterday"', "labels > a", "project = NOPE", "labels = "],
)  # fmt: skip
def test_unsupported_or_invalid_jql_is_400(sb: Sandbox, jr: requests.Session, jql: str) -> None:
    response = jr.post(f"{sb.jira_url}/rest/api/2/search/jql", json={"jql": jql})
    assert response.status_code == 400
    assert response.json()["errorMessages"]


def test_remote_link_upserts_by_global_id(sb: Sandbox, jr: requests.Session) -> None:
    _create(sb, jr)
    url = f"{sb.jira_url}/rest/api/2/issue/SUP-1/remotelink"
    link = {"globalId": "zendesk:ticket:1001", "application": {"name": "Zendesk"},
            "relationship": "support ticket",
            "object": {"url": "https://x.zendesk.com/agent/tickets/1001", "title": "#1001",
                       "summary": "first"}}  # fmt: skip
    created = jr.post(url, json=link)
    link["object"] = {"url": link["object"]["url"], "title": "#1001 (solved)"}
    updated = jr.post(url, json=link)
    assert (created.status_code, updated.status_code) == (201, 200)
    assert created.json()["id"] == updated.json()["id"]
    assert created.json()["self"].endswith(f"/remotelink/{created.json()['id']}")
    links = jr.get(url).json()
    assert len(links) == 1
    assert links[0]["object"]["title"] == "#1001 (solved)"
    assert links[0]["object"]["summary"] is None


def test_comments_and_edits_bump_updated(sb: Sandbox, jr: requests.Session) -> None:
    _create(sb, jr)
    before = sb.jira.issue("SUP-1")["fields"]["updated"]
    comment = jr.post(f"{sb.jira_url}/rest/api/2/issue/SUP-1/comment", json={"body": "hi"})
    edit = jr.put(f"{sb.jira_url}/rest/api/2/issue/SUP-1",
                  json={"fields": {"priority": {"name": "Highest"}}})  # fmt: skip
    assert (comment.status_code, edit.status_code) == (201, 204)
    assert sb.jira.comments("SUP-1")[0]["body"] == "hi"
    issue = sb.jira.issue("SUP-1")
    assert issue["fields"]["priority"]["name"] == "Highest"
    assert issue["fields"]["updated"] > before


def test_jira_client_creates_and_finds_by_label(sb: Sandbox) -> None:
    client = JIRA(server=sb.jira_url, basic_auth=("bot@example.com", "jira-token"), max_retries=0)
    try:
        issue = client.create_issue(fields={
            "project": {"key": "SUP"}, "issuetype": {"name": "Bug"}, "summary": "From client",
            "labels": ["sb-abc123"]})  # fmt: skip
        assert issue.key == "SUP-1"
        found = client.enhanced_search_issues('labels = "sb-abc123"', fields=["summary"])
        assert [i.key for i in found] == ["SUP-1"]
        assert found[0].fields.summary == "From client"
        client.add_remote_link(issue, {"url": "https://z/1001", "title": "#1001"},
                               globalId="zendesk:1001")  # fmt: skip
        client.add_remote_link(issue, {"url": "https://z/1001", "title": "#1001 again"},
                               globalId="zendesk:1001")  # fmt: skip
    finally:
        client.close()
    assert [link["object"]["title"] for link in sb.jira.remote_links("SUP-1")] == ["#1001 again"]
