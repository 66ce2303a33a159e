"""A ticket whose dedupe key's bug is Done: a new bug, or (``when_done: regression``) a
regression bug linked to the Done one. The real Jira connector against the stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.jira import JiraConnector
from connectors.settings import JiraSettings
from rules.planner import idempotency_key
from sandbox import Sandbox
from sync import outbox
from sync.actions import ActionContext, create_or_link_bug
from sync.links import BugRecord, record_bug
from sync.store import Store

CREATE = r"^/rest/api/2/issue$"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def _done_bug(sb: Sandbox, store: Store) -> str:
    created = sb.jira.create_issue({"project": {"key": "SUP"}, "issuetype": {"name": "Bug"},
                                    "summary": "[E1042] Import fails"})
    sb.jira.transition(created["key"], "Done", "done")
    with store.write() as conn:
        record_bug(conn, BugRecord("SUP", "E1042", created["key"], created["id"],
                                   f"{sb.jira_url}/browse/{created['key']}", "Done"))
    return str(created["key"])


def _run(sb: Sandbox, store: Store, when_done: str, attempt: int = 0) -> dict[str, Any]:
    params = {"project": "SUP", "summary": "[E1042] Import fails again",
              "description": "d", "dedupe_by": "E1042", "when_done": when_done}
    key = idempotency_key("bugs", 0, "jira.create_or_link_bug", f"ticket-{when_done}")
    with store.write() as conn:
        outbox.add_intent(conn, idem_key=key, inbox_id=1, rule_id="bugs",
                          action="jira.create_or_link_bug", ticket_id=2001,
                          order_key="jira-bug:SUP:E1042", depends_on=None, params=params,
                          context={"ticket": {"id": 2001, "subject": "Import fails again",
                                              "url": "https://z.example/agent/tickets/2001"}})
    (item,) = outbox.acquire(store, "w", 1, 60)
    jira = JiraConnector(JiraSettings(url=sb.jira_url, email="hub@example.com",
                                      api_token="sandbox-token"))
    ctx = ActionContext(store=store, item=item, params=params, zendesk=None, jira=jira,
                        progress=dict(item.progress))
    outcome = create_or_link_bug(ctx)
    with store.write() as conn:
        outbox.finish(conn, item.id, "done", result=outcome.result, owner=item.owner)
    return dict(outcome.result)


def test_a_regression_opens_a_new_bug_linked_to_the_done_one(sb, store):
    done = _done_bug(sb, store)
    result = _run(sb, store, "regression")
    assert result["created"] is True and result["key"] != done
    assert result["regression_of"] == done
    new = sb.jira.issue(result["key"])
    assert "regression" in new["fields"]["labels"]
    assert sb.jira.issue_links(done) == [{"type": "Relates", "inward": result["key"],
                                          "outward": done}]
    assert sb.jira.remote_links(result["key"])  # the ticket is linked to the new bug


def test_by_default_a_done_bug_gets_a_new_bug_without_a_link(sb, store):
    done = _done_bug(sb, store)
    result = _run(sb, store, "new")
    assert result["created"] is True and "regression_of" not in result
    assert "regression" not in sb.jira.issue(result["key"])["fields"]["labels"]
    assert sb.jira.issue_links(done) == []
