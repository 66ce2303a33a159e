"""JiraConnector over the real jira client, with HTTP faked at the transport."""

from __future__ import annotations

import base64
import json
import logging
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import urllib3.exceptions

from connectors import CONNECTORS
from connectors.errors import (
    AuthError,
    ConfigurationError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    RetriableError,
)
from connectors.jira import JiraConnector
from connectors.models import BugDraft, IssueRef, RemoteLink
from connectors.pagerduty import PagerDutyConnector
from connectors.productboard import ProductboardConnector
from connectors.slack import SlackConnector
from connectors.zendesk import ZendeskConnector
from tests.connectors.support import JIRA, JIRA_TOKEN, jira_settings, load

SERVER_INFO = f"{JIRA}/rest/api/2/serverInfo"
FIELDS = f"{JIRA}/rest/api/2/field"
CREATE = f"{JIRA}/rest/api/2/issue"
SEARCH = f"{JIRA}/rest/api/2/search/jql"
ISSUE = f"{JIRA}/rest/api/2/issue/SUP-77"
REMOTE_LINK = f"{JIRA}/rest/api/2/issue/SUP-77/remotelink"
APPLINKS = f"{JIRA}/rest/applinks/latest/listApplicationlinks"

DRAFT = BugDraft(
    project="SUP",
    summary="Checkout fails with E4012",
    description="h3. Steps to reproduce\n# Enter a card\n\nExpected: paid. Actual: E4012.",
    labels=("switchboard-3f9c2a", "zendesk"),
    priority="High",
)


@pytest.fixture
def cloud(rsps: responses.RequestsMock) -> responses.RequestsMock:
    """A fake Jira Cloud that answers serverInfo and the field list."""
    rsps.get(SERVER_INFO, json=load("jira", "server_info_cloud"))
    rsps.get(FIELDS, json=load("jira", "fields"))
    return rsps


def calls_to(rsps: responses.RequestsMock, url: str) -> list[Any]:
    return [c for c in rsps.calls if c.request.url.split("?")[0] == url]


def test_registry_names_every_connector_by_its_name() -> None:
    assert {"zendesk": ZendeskConnector, "jira": JiraConnector,
            "pagerduty": PagerDutyConnector, "slack": SlackConnector,
            "productboard": ProductboardConnector} == CONNECTORS
    assert all(name == cls.name for name, cls in CONNECTORS.items())


# --- lazy client ------------------------------------------------------------------------------


def test_construction_makes_no_request_and_server_info_is_fetched_once(
    cloud: responses.RequestsMock,
) -> None:
    cloud.get(ISSUE, json=load("jira", "issue"))
    jira = JiraConnector(jira_settings())
    assert len(cloud.calls) == 0
    jira.get_issue("SUP-77")
    jira.get_issue("SUP-77")
    assert len(calls_to(cloud, SERVER_INFO)) == 1
    assert len(calls_to(cloud, ISSUE)) == 2
    expected = base64.b64encode(f"bot@acme.example:{JIRA_TOKEN}".encode()).decode()
    assert cloud.calls[0].request.headers["Authorization"] == f"Basic {expected}"


def test_the_client_is_created_once_under_concurrent_first_use(
    cloud: responses.RequestsMock,
) -> None:
    cloud.get(ISSUE, json=load("jira", "issue"))
    jira = JiraConnector(jira_settings())
    threads = [threading.Thread(target=jira.get_issue, args=("SUP-77",)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls_to(cloud, SERVER_INFO)) == 1
    assert len(calls_to(cloud, ISSUE)) == 6


def test_jira_down_at_first_use_raises_retriable_and_the_next_call_connects(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(SERVER_INFO, status=503)
    jira = JiraConnector(jira_settings())
    with pytest.raises(RetriableError):
        jira.get_issue("SUP-77")
    assert len(calls_to(rsps, SERVER_INFO)) == 3  # our bounded read retries, nothing more

    rsps.replace(responses.GET, SERVER_INFO, json=load("jira", "server_info_cloud"))
    rsps.get(ISSUE, json=load("jira", "issue"))
    assert jira.get_issue("SUP-77").status == "Done"


# --- create_issue -----------------------------------------------------------------------------


def test_create_issue_sends_exactly_one_post_with_the_fields(
    cloud: responses.RequestsMock,
) -> None:
    cloud.post(CREATE, json=load("jira", "create_issue_response"), status=201)
    ref = JiraConnector(jira_settings()).create_issue(DRAFT)
    assert ref == IssueRef(id="10077", key="SUP-77", url=f"{JIRA}/browse/SUP-77")
    assert [(c.request.method, c.request.url) for c in cloud.calls] == [
        ("GET", SERVER_INFO),
        ("POST", CREATE),
    ]
    assert json.loads(cloud.calls[1].request.body) == {
        "fields": {
            "project": {"key": "SUP"},
            "issuetype": {"name": "Bug"},
            "summary": "Checkout fails with E4012",
            "description": DRAFT.description,
            "labels": ["switchboard-3f9c2a", "zendesk"],
            "priority": {"name": "High"},
        }
    }


def test_create_issue_without_priority_omits_it(cloud: responses.RequestsMock) -> None:
    cloud.post(CREATE, json=load("jira", "create_issue_response"), status=201)
    JiraConnector(jira_settings()).create_issue(
        BugDraft(project="SUP", summary="s", description="d", issue_type="Task")
    )
    fields = json.loads(calls_to(cloud, CREATE)[0].request.body)["fields"]
    assert "priority" not in fields
    assert fields["issuetype"] == {"name": "Task"}
    assert fields["labels"] == []


@pytest.mark.parametrize(
    ("status", "fixture", "expected"),
    [
        (400, "error_bad_request", InvalidRequestError),
        (401, "error_unauthorized", AuthError),
        (404, "error_not_found", NotFoundError),
    ],
)
def test_create_issue_client_errors_are_fatal_and_sent_once(
    cloud: responses.RequestsMock, status: int, fixture: str, expected: type[Exception]
) -> None:
    cloud.post(CREATE, json=load("jira", fixture), status=status)
    with pytest.raises(expected):
        JiraConnector(jira_settings()).create_issue(DRAFT)
    assert len(calls_to(cloud, CREATE)) == 1


def test_create_issue_rate_limited_is_not_retried_by_the_client(
    cloud: responses.RequestsMock,
) -> None:
    cloud.post(
        CREATE, json=load("jira", "error_rate_limited"), status=429, headers={"Retry-After": "7"}
    )
    with pytest.raises(RateLimitedError) as info:
        JiraConnector(jira_settings()).create_issue(DRAFT)
    assert info.value.retry_after == 7
    assert len(calls_to(cloud, CREATE)) == 1


@pytest.mark.parametrize("status", [500, 503])
def test_create_issue_5xx_is_ambiguous_and_sent_once(
    cloud: responses.RequestsMock, status: int
) -> None:
    cloud.post(CREATE, body="Service Unavailable", status=status, headers={"Retry-After": "1"})
    with pytest.raises(RetriableError) as info:
        JiraConnector(jira_settings()).create_issue(DRAFT)
    assert info.value.ambiguous is True
    assert len(calls_to(cloud, CREATE)) == 1


def test_create_issue_read_timeout_is_ambiguous(cloud: responses.RequestsMock) -> None:
    cloud.post(CREATE, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(RetriableError) as info:
        JiraConnector(jira_settings()).create_issue(DRAFT)
    assert info.value.ambiguous is True
    assert len(calls_to(cloud, CREATE)) == 1


def test_create_issue_refused_connection_is_not_ambiguous_and_not_retried(
    cloud: responses.RequestsMock,
) -> None:
    reason = urllib3.exceptions.NewConnectionError(
        None, "Failed to establish a new connection: [Errno 111] Connection refused"
    )
    cloud.post(CREATE, body=requests.exceptions.ConnectionError(reason))
    with pytest.raises(RetriableError) as info:
        JiraConnector(jira_settings()).create_issue(DRAFT)
    assert info.value.ambiguous is False
    assert len(calls_to(cloud, CREATE)) == 1


def test_create_issue_refuses_a_label_with_spaces_before_any_request(
    rsps: responses.RequestsMock,
) -> None:
    draft = BugDraft(project="SUP", summary="s", description="d", labels=("two words",))
    with pytest.raises(InvalidRequestError):
        JiraConnector(jira_settings()).create_issue(draft)
    assert len(rsps.calls) == 0


# --- find_issue_by_label ----------------------------------------------------------------------


def test_find_issue_by_label_found(cloud: responses.RequestsMock) -> None:
    cloud.get(SEARCH, json=load("jira", "search_found"))
    ref = JiraConnector(jira_settings()).find_issue_by_label("switchboard-3f9c2a")
    assert ref == IssueRef(
        id="10077", key="SUP-77", url=f"{JIRA}/browse/SUP-77", status="In Progress",
        status_category="indeterminate",
    )
    search = calls_to(cloud, SEARCH)
    assert len(search) == 1
    assert parse_qs(urlsplit(search[0].request.url).query) == {
        "jql": ['labels = "switchboard-3f9c2a" ORDER BY created ASC'],
        "fields": ["status"],
        "maxResults": ["2"],
    }


def test_find_issue_by_label_none_and_the_field_list_is_fetched_once(
    cloud: responses.RequestsMock,
) -> None:
    cloud.get(SEARCH, json=load("jira", "search_empty"))
    jira = JiraConnector(jira_settings())
    assert jira.find_issue_by_label("switchboard-3f9c2a") is None
    assert jira.find_issue_by_label("switchboard-3f9c2a") is None
    assert len(calls_to(cloud, FIELDS)) == 1
    assert len(calls_to(cloud, SEARCH)) == 2
    assert len(calls_to(cloud, SERVER_INFO)) == 1


def test_find_issue_by_label_escapes_quotes(cloud: responses.RequestsMock) -> None:
    cloud.get(SEARCH, json=load("jira", "search_empty"))
    JiraConnector(jira_settings()).find_issue_by_label('a"b\\c')
    jql = parse_qs(urlsplit(calls_to(cloud, SEARCH)[0].request.url).query)["jql"][0]
    assert jql == 'labels = "a\\"b\\\\c" ORDER BY created ASC'


@pytest.mark.parametrize("label", ["", "two words", "tab\there", "x" * 256])
def test_find_issue_by_label_refuses_invalid_labels(
    rsps: responses.RequestsMock, label: str
) -> None:
    with pytest.raises(InvalidRequestError):
        JiraConnector(jira_settings()).find_issue_by_label(label)
    assert len(rsps.calls) == 0


def test_find_issue_by_label_off_cloud_is_a_configuration_error(
    rsps: responses.RequestsMock,
) -> None:
    # The client's @cloud_api returns None off Cloud; that must never read as "not found".
    rsps.get(SERVER_INFO, json=load("jira", "server_info_datacenter"))
    with pytest.raises(ConfigurationError):
        JiraConnector(jira_settings()).find_issue_by_label("switchboard-3f9c2a")
    assert len(calls_to(rsps, SEARCH)) == 0


def test_find_issue_by_label_search_gone_is_not_found(cloud: responses.RequestsMock) -> None:
    cloud.get(
        SEARCH,
        status=410,
        json={"errorMessages": ["The requested API has been removed."], "errors": {}},
    )
    with pytest.raises(NotFoundError):
        JiraConnector(jira_settings()).find_issue_by_label("switchboard-3f9c2a")


# --- upsert_remote_link -----------------------------------------------------------------------


def test_upsert_remote_link_posts_once_with_the_global_id(cloud: responses.RequestsMock) -> None:
    cloud.post(REMOTE_LINK, json=load("jira", "remote_link_response"))
    cloud.get(APPLINKS, json={"list": []})
    JiraConnector(jira_settings()).upsert_remote_link(
        "SUP-77",
        RemoteLink(
            global_id="zendesk:acme:ticket:4012",
            url="https://acme.zendesk.com/agent/tickets/4012",
            title="#4012 Checkout fails with E4012",
            summary="high · Acme Corp",
        ),
    )
    assert [(c.request.method, c.request.url) for c in cloud.calls] == [
        ("GET", SERVER_INFO),
        ("POST", REMOTE_LINK),
    ]
    assert json.loads(cloud.calls[1].request.body) == {
        "globalId": "zendesk:acme:ticket:4012",
        "application": {"type": "com.zendesk", "name": "Zendesk"},
        "relationship": "Zendesk ticket",
        "object": {
            "url": "https://acme.zendesk.com/agent/tickets/4012",
            "title": "#4012 Checkout fails with E4012",
            "summary": "high · Acme Corp",
        },
    }


def test_upsert_remote_link_errors_are_mapped(cloud: responses.RequestsMock) -> None:
    cloud.post(REMOTE_LINK, json=load("jira", "error_not_found"), status=404)
    with pytest.raises(NotFoundError):
        JiraConnector(jira_settings()).upsert_remote_link(
            "SUP-77", RemoteLink(global_id="g", url="u", title="t")
        )
    assert len(calls_to(cloud, REMOTE_LINK)) == 1


def test_upsert_remote_link_refuses_a_malformed_issue_key(rsps: responses.RequestsMock) -> None:
    with pytest.raises(InvalidRequestError):
        JiraConnector(jira_settings()).upsert_remote_link(
            "../../admin", RemoteLink(global_id="g", url="u", title="t")
        )
    assert len(rsps.calls) == 0


# --- get_issue / browse_url -------------------------------------------------------------------


def test_get_issue_returns_the_status(cloud: responses.RequestsMock) -> None:
    cloud.get(ISSUE, json=load("jira", "issue"))
    ref = JiraConnector(jira_settings()).get_issue("SUP-77")
    assert ref == IssueRef(id="10077", key="SUP-77", url=f"{JIRA}/browse/SUP-77", status="Done",
                           status_category="done")
    assert ref.is_done
    assert calls_to(cloud, ISSUE)[0].request.url == f"{ISSUE}?fields=status"


def test_get_issue_not_found(cloud: responses.RequestsMock) -> None:
    cloud.get(ISSUE, json=load("jira", "error_not_found"), status=404)
    with pytest.raises(NotFoundError) as info:
        JiraConnector(jira_settings()).get_issue("SUP-77")
    assert "does not exist" in info.value.detail
    assert len(calls_to(cloud, ISSUE)) == 1


def test_get_issue_rate_limited_beyond_the_cap_is_raised_after_one_request(
    cloud: responses.RequestsMock,
) -> None:
    cloud.get(ISSUE, status=429, headers={"Retry-After": "120"})
    with pytest.raises(RateLimitedError) as info:
        JiraConnector(jira_settings()).get_issue("SUP-77")
    assert info.value.retry_after == 120
    assert len(calls_to(cloud, ISSUE)) == 1


def test_get_issue_5xx_reads_are_retried_a_bounded_number_of_times(
    cloud: responses.RequestsMock,
) -> None:
    cloud.get(ISSUE, status=503, body="unavailable")
    with pytest.raises(RetriableError):
        JiraConnector(jira_settings()).get_issue("SUP-77")
    assert len(calls_to(cloud, ISSUE)) == 3


def test_browse_url() -> None:
    assert JiraConnector(jira_settings()).browse_url("SUP-77") == f"{JIRA}/browse/SUP-77"


# --- secrets ----------------------------------------------------------------------------------


def test_the_token_never_reaches_logs_or_errors(
    cloud: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    basic = base64.b64encode(f"bot@acme.example:{JIRA_TOKEN}".encode()).decode()
    cloud.post(CREATE, status=401, body=f"denied for Basic {basic} ({JIRA_TOKEN})")
    jira = JiraConnector(jira_settings())
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as info:
        jira.create_issue(DRAFT)
    for text in (str(info.value), repr(info.value), caplog.text, repr(jira.settings)):
        assert JIRA_TOKEN not in text
        assert basic not in text
    assert "switchboard.http" in {r.name for r in caplog.records}
