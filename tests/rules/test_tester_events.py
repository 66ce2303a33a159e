"""`switchboard test` with the new event types and roots: requester, organization, comment and
change-set fields in event files, and one file standing for several event types as in the hub."""

from __future__ import annotations

from textwrap import dedent
from typing import Any

import pytest

from rules import load_rules, load_yaml
from rules.tester import EventFileError, parse_event, render_report, run_test

CUSTOM = ("error_code",)
USER = ("seats",)
ORG = ("plan_tier",)

RULES = dedent("""\
    rules:
      - id: enterprise-solved
        on: [ticket.solved]
        if: {field: organization.fields.plan_tier, op: equals, value: enterprise}
        then:
          - zendesk.update: {note: "Solved for {{ organization.name }} ({{ requester.email }})"}
      - id: back-from-pending
        on: [ticket.updated, ticket.solved]
        if: {field: changes.status.from, op: equals, value: pending}
        then: [{zendesk.update: {add_tags: [was_pending]}}]
      - id: customer-replied
        on: [ticket.comment_added]
        if:
          all:
            - {field: comment.public, op: equals, value: true}
            - {field: requester.fields.seats, op: gte, value: 100}
        then: [{zendesk.update: {note: "Big customer wrote: {{ comment.body }}"}}]
    """)


def rules():  # type: ignore[no-untyped-def]
    return load_rules([load_yaml(RULES, "r.yaml")], custom_fields=CUSTOM, user_fields=USER,
                      organization_fields=ORG)


def event(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "ticket.updated",
        "ticket": {"id": 4012, "subject": "Import fails", "status": "solved",
                   "updated_at": "2026-11-27T10:05:00Z"},
        "changes": {"status": {"from": "pending", "to": "solved"}},
        "requester": {"id": 7, "name": "Dana", "email": "dana@globex.example",
                      "tags": ["vip"], "fields": {"seats": 250}},
        "organization": {"id": 70, "name": "Globex", "fields": {"plan_tier": "enterprise"}},
        "comment": {"id": 99, "body": "Thanks, works now!", "public": True, "author_id": 7,
                    "created_at": "2026-11-27T10:05:00Z"},
    }
    data.update(overrides)
    return data


def parse(data: dict[str, Any]):  # type: ignore[no-untyped-def]
    return parse_event(data, custom_fields=CUSTOM, user_fields=USER, organization_fields=ORG)


def test_one_update_that_solves_and_comments_runs_all_three_kinds_of_rules_once() -> None:
    report = run_test(rules(), parse(event()))
    assert report.event_types == ("ticket.updated", "ticket.solved", "ticket.comment_added")
    assert [(o.rule.id, o.evaluation.event_type if o.evaluation else None, o.matched)
            for o in report.outcomes] == [
        ("enterprise-solved", "ticket.solved", True),
        ("back-from-pending", "ticket.updated", True),
        ("customer-replied", "ticket.comment_added", True),
    ]
    text = render_report(report)
    assert text.startswith("Event ticket.updated (also ticket.solved, ticket.comment_added)")
    assert "comment (public reply by 7): 'Thanks, works now!'" in text
    assert "note: 'Solved for Globex (dana@globex.example)'" in text
    assert "note: 'Big customer wrote: Thanks, works now!'" in text


def test_without_a_comment_or_a_solve_only_the_update_runs() -> None:
    data = event(changes={"status": {"from": "pending", "to": "open"}})
    del data["comment"]
    report = run_test(rules(), parse(data))
    assert report.event_types == ("ticket.updated",)
    assert [o.rule.id for o in report.outcomes] == ["back-from-pending"]


def test_people_the_file_leaves_out_read_as_unset() -> None:
    data = event(type="ticket.solved")
    for key in ("requester", "organization", "comment"):
        del data[key]
    ctx = parse(data)
    assert ctx.requester == {"id": None, "name": None, "email": None, "tags": [],
                             "organization_id": None, "fields": {"seats": None}}
    report = run_test(rules(), ctx)
    assert not report.outcomes[0].matched  # enterprise-solved: plan_tier is null


@pytest.mark.parametrize(("change", "problem"), [
    pytest.param({"type": "ticket.comment_added", "comment": None},
                 "comment: missing (a ticket.comment_added event carries the comment",
                 id="comment-missing"),
    pytest.param({"type": "ticket.created"}, "comment: a ticket.created event adds no comment",
                 id="comment-on-created"),
    pytest.param({"comment": {"body": "x", "public": "yes"}},
                 "comment.public: must be true or false, not 'yes'", id="public-not-bool"),
    pytest.param({"comment": {"body": "x"}}, "comment.public: missing", id="public-missing"),
    pytest.param({"comment": {"body": "x", "public": True, "mood": "happy"}},
                 "comment.mood: unknown key", id="comment-unknown-key"),
    pytest.param({"requester": {"fields": {"vip": True}}},
                 "requester.fields.vip: not configured in connectors.zendesk.user_fields "
                 "(configured: seats)", id="user-field-not-configured"),
    pytest.param({"requester": {"tags": "vip"}}, "requester.tags: must be a list of strings",
                 id="tags-not-a-list"),
    pytest.param({"organization": {"id": "70"}}, "organization.id: must be an integer or null",
                 id="org-id-text"),
    pytest.param({"organization": ["Globex"]}, "'organization' must be an object",
                 id="org-not-an-object"),
    pytest.param({"requester": {"phone": "1"}}, "requester.phone: unknown key",
                 id="requester-unknown-key"),
])
def test_bad_people_and_comments_are_refused(change: dict[str, Any], problem: str) -> None:
    data = {k: v for k, v in event(**change).items() if v is not None}
    with pytest.raises(EventFileError) as info:
        parse(data)
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_an_event_file_of_type_comment_added_runs_comment_rules_only() -> None:
    data = event(type="ticket.comment_added", changes={})
    report = run_test(rules(), parse(data))
    assert report.event_types == ("ticket.comment_added",)
    assert [o.rule.id for o in report.matched] == ["customer-replied"]
