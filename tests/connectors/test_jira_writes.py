"""JiraConnector's workflow and field writes over the real jira client, HTTP faked at the
transport: listing transitions, performing one, setting a priority, reading an issue's state."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from connectors.errors import (
    AuthError,
    FatalError,
    InvalidRequestError,
    NotFoundError,
    RetriableError,
)
from connectors.jira import JiraConnector
from connectors.models import Transition
from tests.connectors.support import JIRA, jira_settings, load

SERVER_INFO = f"{JIRA}/rest/api/2/serverInfo"
ISSUE = f"{JIRA}/rest/api/2/issue/SUP-77"
TRANSITIONS = f"{ISSUE}/transitions"
#: Shaped after Atlassian's "Get transitions" example (a transition, its target status and
#: that status's category).
OFFERED = {"expand": "transitions", "transitions": [
    {"id": "41", "name": "Reopen Issue", "hasScreen": False, "isGlobal": False,
     "isInitial": False, "isAvailable": True, "isConditional": False,
     "to": {"self": f"{JIRA}/rest/api/2/status/4", "description": "", "iconUrl": "",
            "name": "Reopened", "id": "4",
            "statusCategory": {"self": f"{JIRA}/rest/api/2/statuscategory/2", "id": 2,
                               "key": "new", "colorName": "blue-gray", "name": "To Do"}}},
    {"id": "51", "name": "Close", "to": {"name": "Closed", "id": "6",
                                         "statusCategory": {"key": "done"}}},
]}
REFUSED = {"errorMessages": ["Transition id '21' is not valid for this issue."], "errors": {}}


@pytest.fixture
def cloud(rsps: responses.RequestsMock) -> responses.RequestsMock:
    rsps.get(SERVER_INFO, json=load("jira", "server_info_cloud"))
    return rsps


def _calls(rsps: responses.RequestsMock, method: str, url: str) -> list[responses.Call]:
    return [c for c in rsps.calls
            if c.request.method == method and c.request.url.split("?")[0] == url]


def test_transitions_lists_what_jira_offers_from_the_current_status(cloud) -> None:
    cloud.get(TRANSITIONS, json=OFFERED)
    assert JiraConnector(jira_settings()).transitions("SUP-77") == [
        Transition(id="41", name="Reopen Issue", to_status="Reopened", to_category="new"),
        Transition(id="51", name="Close", to_status="Closed", to_category="done")]
    assert len(_calls(cloud, "GET", TRANSITIONS)) == 1


def test_transitions_without_a_list_is_fatal(cloud) -> None:
    cloud.get(TRANSITIONS, json={"expand": "transitions"})
    with pytest.raises(FatalError):
        JiraConnector(jira_settings()).transitions("SUP-77")


def test_transition_issue_posts_the_id_once_and_no_name_lookup(cloud) -> None:
    cloud.post(TRANSITIONS, status=204)
    JiraConnector(jira_settings()).transition_issue("SUP-77", "41")
    [call] = _calls(cloud, "POST", TRANSITIONS)
    body = json.loads(call.request.body)
    assert body["transition"] == {"id": 41}  # the client sends the id as a number
    assert not body.get("fields") and "update" not in body
    assert _calls(cloud, "GET", TRANSITIONS) == []


@pytest.mark.parametrize(("status", "body", "expected"), [
    (400, REFUSED, InvalidRequestError),
    (403, {"errorMessages": ["You do not have permission to transition this issue."],
           "errors": {}}, AuthError),
    (404, {"errorMessages": ["Issue does not exist or you do not have permission to see it."],
           "errors": {}}, NotFoundError),
])
def test_a_refused_transition_is_fatal_and_sent_once(cloud, status, body, expected) -> None:
    cloud.post(TRANSITIONS, status=status, json=body)
    with pytest.raises(expected) as info:
        JiraConnector(jira_settings()).transition_issue("SUP-77", "21")
    if status == 400:
        assert "is not valid for this issue" in str(info.value)
    assert len(_calls(cloud, "POST", TRANSITIONS)) == 1


@pytest.mark.parametrize("answer", [503, requests.exceptions.ReadTimeout("read timed out")])
def test_a_transition_without_a_clean_answer_is_ambiguous_and_sent_once(cloud, answer) -> None:
    if isinstance(answer, int):
        cloud.post(TRANSITIONS, status=answer, body="unavailable")
    else:
        cloud.post(TRANSITIONS, body=answer)
    with pytest.raises(RetriableError) as info:
        JiraConnector(jira_settings()).transition_issue("SUP-77", "41")
    assert info.value.ambiguous is True
    assert len(_calls(cloud, "POST", TRANSITIONS)) == 1


def test_a_transition_id_that_is_not_a_number_is_refused_before_any_request(rsps) -> None:
    with pytest.raises(InvalidRequestError):
        JiraConnector(jira_settings()).transition_issue("SUP-77", "Reopen; DROP")
    with pytest.raises(InvalidRequestError):
        JiraConnector(jira_settings()).transitions("../admin")
    assert len(rsps.calls) == 0


def test_set_priority_puts_the_name_once(cloud) -> None:
    cloud.put(ISSUE, status=204)
    JiraConnector(jira_settings()).set_priority("SUP-77", "Highest")
    [call] = _calls(cloud, "PUT", ISSUE)
    assert json.loads(call.request.body) == {"fields": {"priority": {"name": "Highest"}}}


def test_set_priority_errors(cloud) -> None:
    cloud.put(ISSUE, status=400, json={"errorMessages": [],
                                       "errors": {"priority": "The priority selected is invalid."}})
    jira = JiraConnector(jira_settings())
    with pytest.raises(InvalidRequestError) as info:
        jira.set_priority("SUP-77", "Blocker")
    assert "priority selected is invalid" in str(info.value)
    with pytest.raises(InvalidRequestError):
        jira.set_priority("SUP-77", " ")
    assert len(_calls(cloud, "PUT", ISSUE)) == 1
    cloud.replace(responses.PUT, ISSUE, status=502, body="bad gateway")
    with pytest.raises(RetriableError):
        jira.set_priority("SUP-77", "High")


def test_read_state_asks_for_the_followed_fields(cloud) -> None:
    issue = load("jira", "issue")
    issue["fields"]["updated"] = "2026-11-27T10:15:22.169+0000"
    cloud.get(ISSUE, json=issue)
    state = JiraConnector(jira_settings()).read_state("SUP-77")
    assert (state.key, state.status) == ("SUP-77", "Done")
    assert state.updated == datetime(2026, 11, 27, 10, 15, 22, 169000, tzinfo=UTC)
    [call] = _calls(cloud, "GET", ISSUE)
    assert parse_qs(urlsplit(call.request.url).query)["fields"] == [
        "status,resolution,priority,fixVersions,updated"]
