"""A ticket whose dedupe key's bug is Done: a new bug, a regression bug linked to the Done one
(``when_done: regression``), or the Done bug reopened (``when_done: reopen``) — once, whatever
fails. The real Jira connector against the stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.errors import AuthError, ConfigurationError, RetriableError
from connectors.jira import JiraConnector
from connectors.settings import JiraSettings
from rules.planner import idempotency_key
from sandbox import Sandbox
from sandbox.jira_workflow import WorkflowTransition
from sync import outbox
from sync.actions import ActionContext, create_or_link_bug
from sync.links import BugRecord, record_bug
from sync.retry import RetryPolicy
from sync.state import get_cursor
from sync.store import Store
from tests.support.intents import run_queued

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


# --- when_done: reopen ------------------------------------------------------------------------

TRANSITIONS = r"^/rest/api/2/issue/[^/]+/transitions$"


class Reopen:
    """One ``when_done: reopen`` intent, run (and re-run, as the dispatcher retries it) with the
    real connector against the stand-in."""

    def __init__(self, sb: Sandbox, store: Store, **extra: Any) -> None:
        self.sb, self.store = sb, store
        self.params = {"project": "SUP", "summary": "[E1042] Import fails again",
                       "description": "d", "dedupe_by": "E1042", "when_done": "reopen",
                       "reopen_status": "Reopened", **extra}
        key = idempotency_key("bugs", 0, "jira.create_or_link_bug", "ticket-reopen")
        with store.write() as conn:
            outbox.add_intent(conn, idem_key=key, inbox_id=1, rule_id="bugs",
                              action="jira.create_or_link_bug", ticket_id=2001,
                              order_key="jira-bug:SUP:E1042", depends_on=None,
                              params=self.params,
                              context={"ticket": {"id": 2001, "subject": "Import fails again",
                                                  "url": "https://z.example/agent/tickets/2001"}})
        self.jira = JiraConnector(JiraSettings(url=sb.jira_url, email="hub@example.com",
                                               api_token="sandbox-token"))

    def run(self) -> dict[str, Any]:
        return run_queued(self.store, create_or_link_bug, params=self.params, zendesk=None,
                          jira=self.jira)


def _transitions_posted(sb: Sandbox) -> int:
    return sb.requests.count("jira", method="POST", path_regex=TRANSITIONS)


def test_reopen_moves_the_done_bug_back_and_links_the_ticket_to_it(sb, store):
    done = _done_bug(sb, store)
    sb.requests.clear()
    result = Reopen(sb, store).run()
    assert (result["key"], result["created"], result["reopened"]) == (done, False, True)
    assert result["status"] == "Reopened"
    fields = sb.jira.issue(done)["fields"]
    assert fields["status"]["name"] == "Reopened" and fields["resolution"] is None
    assert [link["object"]["url"] for link in sb.jira.remote_links(done)] == [
        "https://z.example/agent/tickets/2001"]
    assert len(sb.jira.issues()) == 1  # no new bug
    assert _transitions_posted(sb) == 1
    assert sb.requests.count("jira", method="POST", path_regex=CREATE) == 0
    # The write was announced, so that the poll takes it for Switchboard's own.
    with store.read() as conn:
        assert get_cursor(conn, f"jira-own:{done}")["status"]["to"] == "Reopened"


def test_reopen_by_transition_name_case_insensitively(sb, store):
    done = _done_bug(sb, store)
    result = Reopen(sb, store, reopen_status="reopen").run()
    assert result["reopened"] is True
    assert sb.jira.issue(done)["fields"]["status"]["name"] == "Reopened"


def test_a_reopen_whose_answer_was_lost_is_not_sent_again(sb, store):
    done = _done_bug(sb, store)
    rig = Reopen(sb, store)
    sb.faults.add("jira", "POST", TRANSITIONS, kind="reset_after_commit")
    with pytest.raises(RetriableError):
        rig.run()
    assert sb.jira.issue(done)["fields"]["status"]["name"] == "Reopened"  # it landed
    result = rig.run()  # the retry reads the bug again: open, so it joins it
    assert (result["key"], result["reopened"], result["created"]) == (done, True, False)
    assert _transitions_posted(sb) == 1
    assert len(sb.jira.changelog(done)) == 2  # Done (engineer), Reopened (once)
    assert len(sb.jira.remote_links(done)) == 1


def test_a_bug_an_engineer_reopened_meanwhile_is_joined_not_transitioned(sb, store):
    done = _done_bug(sb, store)
    rig = Reopen(sb, store)
    # Jira is down when the transitions are listed; meanwhile an engineer reopens the bug.
    sb.faults.add("jira", "GET", TRANSITIONS, kind="status", status=503, times=3)
    with pytest.raises(RetriableError):
        rig.run()
    sb.jira.transition(done, "In Progress", "indeterminate")
    result = rig.run()
    assert (result["key"], result["status"], result["created"]) == (done, "In Progress", False)
    assert _transitions_posted(sb) == 0


def _no_reopen_workflow(sb: Sandbox) -> None:
    sb.jira.set_workflow((WorkflowTransition("61", "Archive", "Archived", "done", ("Done",)),
                          WorkflowTransition("71", "Back to backlog", "Backlog", "new",
                                             ("Done",))))


def test_no_transition_to_the_status_dead_letters_naming_the_offered_ones(sb, store):
    done = _done_bug(sb, store)
    _no_reopen_workflow(sb)
    with pytest.raises(ConfigurationError) as info:
        Reopen(sb, store).run()
    message = str(info.value)
    assert f"cannot reopen {done} to 'Reopened': no such transition" in message
    assert "'Archive' (id 61) -> Archived" in message
    assert "'Back to backlog' (id 71) -> Backlog" in message
    assert RetryPolicy(max_attempts=5).judge(info.value, 1).kind == "fatal"
    assert len(sb.jira.issues()) == 1 and _transitions_posted(sb) == 0


def test_a_transition_to_a_done_status_is_refused_too(sb, store):
    _done_bug(sb, store)
    _no_reopen_workflow(sb)
    with pytest.raises(ConfigurationError) as info:
        Reopen(sb, store, reopen_status="Archived").run()
    assert "leads to a Done status" in str(info.value)
    assert _transitions_posted(sb) == 0


def test_reopen_fallback_opens_a_regression_bug_instead(sb, store):
    done = _done_bug(sb, store)
    _no_reopen_workflow(sb)
    result = Reopen(sb, store, reopen_fallback="regression").run()
    assert result["created"] is True and result["key"] != done
    assert (result["regression_of"], result["reopened"]) == (done, False)
    assert "no such transition" in result["reopen_failed"]
    assert "regression" in sb.jira.issue(result["key"])["fields"]["labels"]
    assert sb.jira.issue_links(done) == [{"type": "Relates", "inward": result["key"],
                                          "outward": done}]


def test_jira_refusing_the_transition_itself_is_a_clear_error(sb, store):
    done = _done_bug(sb, store)
    # The workflow changed between the list and the transition: Jira answers 400.
    sb.faults.add("jira", "POST", TRANSITIONS, kind="status", status=400, body={
        "errorMessages": ["Transition id '41' is not valid for this issue."], "errors": {}})
    with pytest.raises(ConfigurationError) as info:
        Reopen(sb, store).run()
    assert "Jira refused 'Reopen' (id 41)" in str(info.value)
    assert sb.jira.issue(done)["fields"]["status"]["name"] == "Done"
    with store.read() as conn:  # the announcement is withdrawn
        assert get_cursor(conn, f"jira-own:{done}") is None


def test_a_forbidden_transition_is_fatal(sb, store):
    _done_bug(sb, store)
    sb.faults.add("jira", "POST", TRANSITIONS, kind="status", status=403, body={
        "errorMessages": ["You do not have permission to transition this issue."],
        "errors": {}})
    with pytest.raises(AuthError):
        Reopen(sb, store).run()
