"""Jira issue events as rules see them: ``issue.*`` read from a webhook event, and a rule on
them may only use actions that need no single ticket."""

from __future__ import annotations

from datetime import UTC, datetime
from textwrap import dedent

import pytest

from connectors.jira_webhooks import FieldChange, FixVersion, JiraEvent
from rules import ProblemsError, load_rules
from rules.source import load_yaml
from sync.jira_events import issue_fields


def _event(**values: object) -> JiraEvent:
    base: dict[str, object] = {"event_type": "jira:issue_updated", "issue_id": "10077",
                               "issue_key": "SUP-77",
                               "timestamp": datetime(2026, 11, 27, 10, tzinfo=UTC)}
    base.update(values)
    return JiraEvent(**base)  # type: ignore[arg-type]


def test_issue_fields_name_the_change_the_status_before_and_the_release() -> None:
    event = _event(status="Done", resolution="Fixed", priority="High",
                   fix_versions=(FixVersion("2.4.1", "1", True), FixVersion("2.5", "2", False)),
                   changes=(FieldChange("status", "3", "In Progress", "4", "Done"),
                            FieldChange("resolution", None, None, "1", "Fixed"),
                            FieldChange("fixVersions", None, None, "1", "2.4.1"),
                            FieldChange("fixVersions", None, None, "2", "2.5")),
                   user_name="Priya Natarajan")
    assert issue_fields(event, 12, "https://acme.atlassian.net/browse/SUP-77") == {
        "key": "SUP-77", "id": "10077", "url": "https://acme.atlassian.net/browse/SUP-77",
        "status": "Done", "previous_status": "In Progress", "resolution": "Fixed",
        "priority": "High", "fix_versions": ["2.4.1", "2.5"], "released": True,
        "changed": ["status", "resolution", "fixVersions"], "agent": "Priya Natarajan",
        "tickets": 12}


def test_issue_fields_without_a_status_change_or_release_information() -> None:
    event = _event(status="In Progress", changes=(FieldChange("priority", "3", "Low", "2",
                                                              "High"),),
                   fix_versions=(FixVersion("2.6"),))
    fields = issue_fields(event, 1, None)
    assert (fields["previous_status"], fields["released"], fields["changed"]) == (
        None, None, ["priority"])
    assert issue_fields(_event(), 0, None)["fix_versions"] == []


def _load(text: str) -> object:
    return load_rules([load_yaml(dedent(text), "a.yaml")], custom_fields=())


def test_a_rule_on_jira_issue_events_may_only_use_actions_that_need_no_ticket() -> None:
    with pytest.raises(ProblemsError) as info:
        _load("""\
            rules:
              - id: bug-done
                on: [jira.issue.updated]
                if: {field: issue.status, op: equals, value: Done}
                then: [{zendesk.update: {note: fixed}}]
            """)
    assert "zendesk.update acts on one ticket, and jira.issue.updated events carry none" \
        in str(info.value)
    assert "zendesk.update_linked" in str(info.value)


def test_a_rule_on_jira_issue_events_cannot_read_a_ticket_field() -> None:
    with pytest.raises(ProblemsError) as info:
        _load("""\
            rules:
              - id: bug-done
                on: [jira.issue.updated]
                if: {field: ticket.priority, op: equals, value: urgent}
                then: [{zendesk.update_linked: {issue: "{{ issue.key }}", note: fixed}}]
            """)
    assert "'ticket.priority' is not carried by jira.issue.updated" in str(info.value)


def test_a_rule_on_jira_issue_events_with_update_linked_loads() -> None:
    rules = _load("""\
        rules:
          - id: bug-done
            on: [jira.issue.updated, jira.issue.deleted]
            if: {field: issue.changed, op: contains, value: status}
            then:
              - zendesk.update_linked:
                  issue: "{{ issue.key }}"
                  note: "{{ issue.key }} is {{ issue.status }} (was {{ issue.previous_status }})"
        """)
    assert [r.id for r in rules] == ["bug-done"]  # type: ignore[attr-defined]


def test_a_reply_names_each_tickets_requester_and_subject_and_nothing_else() -> None:
    rules = _load("""\
        rules:
          - id: fix-shipped
            on: [jira.issue.updated]
            if: {field: issue.released, op: equals, value: true}
            then:
              - zendesk.update_linked:
                  issue: "{{ issue.key }}"
                  reply: "Hi {{ requester.name }}, '{{ ticket.subject }}' is fixed."
                  reply_mode: send
        """)
    assert [r.id for r in rules] == ["fix-shipped"]  # type: ignore[attr-defined]
    problems = []
    for params in ('{issue: "{{ issue.key }}", note: "{{ ticket.subject }} is fixed"}',
                   '{issue: "{{ issue.key }}", reply: "Hi {{ organization.name }}"}',
                   '{issue: "{{ issue.key }}", note: fixed, reply: Hi}'):
        with pytest.raises(ProblemsError) as info:
            _load("rules:\n  - id: fix-shipped\n    on: [jira.issue.updated]\n"
                  f"    then:\n      - zendesk.update_linked: {params}\n")
        problems.append(str(info.value))
    assert "'ticket.subject' is not carried by jira.issue.updated" in problems[0]
    assert "'organization.name' is not carried by jira.issue.updated" in problems[1]
    assert "a note or a reply, not both" in problems[2]
