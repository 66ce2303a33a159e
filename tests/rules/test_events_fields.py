"""The event registry and the fields rules can read: validation against what each event carries,
change-set fields (``changes.status.from``), requester / organization / comment fields, and the
reference in docs/rules.md kept complete."""

from __future__ import annotations

import re
from pathlib import Path
from textwrap import dedent

import pytest

from rules import EVENT_TYPES, Change, EvalContext, FieldRegistry, ProblemsError, evaluate, resolve
from rules.actions import ACTIONS
from rules.events import carried_by
from rules.occurrence import became_solved, contexts, evaluate_once, event_types

from .helpers import CUSTOM_FIELDS, make_ctx, make_ticket

ROOT = Path(__file__).resolve().parents[2]
USER_FIELDS = ("seats", "account_manager")
ORG_FIELDS = ("plan_tier",)


def load(text: str):  # type: ignore[no-untyped-def]
    from rules import load_rules, load_yaml
    return load_rules([load_yaml(dedent(text), "a.yaml")], custom_fields=CUSTOM_FIELDS,
                      user_fields=USER_FIELDS, organization_fields=ORG_FIELDS)


def problems(text: str) -> list[str]:
    with pytest.raises(ProblemsError) as info:
        load(text)
    return [str(p) for p in info.value.problems]


# --- the registry ---------------------------------------------------------------------------


def test_every_event_type_declares_fields_and_only_comment_added_carries_the_comment() -> None:
    ticket_events = ["ticket.created", "ticket.updated", "ticket.solved", "ticket.comment_added"]
    incident_events = ["pagerduty.incident.acknowledged", "pagerduty.incident.resolved",
                       "pagerduty.incident.annotated"]
    issue_events = ["jira.issue.updated", "jira.issue.deleted"]
    sla_events = ["sla.warning", "sla.breached"]
    feature_events = ["productboard.feature.updated"]
    assert list(EVENT_TYPES) == ticket_events + incident_events + issue_events + [
        "jira.comment.added"] + sla_events + feature_events
    assert carried_by("jira_comment.body") == ["jira.comment.added"]
    assert carried_by("comment.body") == ["ticket.comment_added"]
    assert carried_by("requester.name") == ticket_events + sla_events
    assert carried_by("incident.agent") == incident_events
    # An incident event carries the escalated ticket and its links, but no change set.
    assert carried_by("ticket.subject") == ticket_events + incident_events + sla_events
    assert carried_by("links.pagerduty") == [*ticket_events, *incident_events, *issue_events,
                                             "jira.comment.added", *sla_events, *feature_events]
    # A Productboard feature event is about the feature: no single ticket either.
    assert carried_by("feature.status") == feature_events
    assert EVENT_TYPES["productboard.feature.updated"].roots == {"feature", "links", "event"}
    # An SLA event carries the ticket as stored, its people and the target: no change set.
    assert carried_by("sla.minutes_left") == sla_events
    assert EVENT_TYPES["sla.warning"].roots == {
        "ticket", "links", "event", "requester", "organization", "sla"}
    assert carried_by("changes.status.to") == ticket_events
    # A Jira issue event is about the issue: no single ticket.
    assert carried_by("issue.status") == [*issue_events, "jira.comment.added"]
    assert EVENT_TYPES["jira.issue.updated"].roots == {"issue", "links", "event"}
    assert EVENT_TYPES["ticket.comment_added"].roots == {
        "ticket", "changes", "links", "event", "requester", "organization", "comment"}


def test_registry_lists_the_fields_an_event_carries() -> None:
    registry = FieldRegistry(CUSTOM_FIELDS, user_fields=USER_FIELDS,
                             organization_fields=ORG_FIELDS)
    updated = {spec.path for spec in registry.for_event("ticket.updated")}
    comment = {spec.path for spec in registry.for_event("ticket.comment_added")}
    assert comment - updated == {"comment.id", "comment.body", "comment.public",
                                 "comment.author_id", "comment.from_requester",
                                 "comment.created_at"}
    assert {"changes.status.from", "changes.status.to", "changes.fields.error_code.to",
            "requester.fields.seats", "organization.fields.plan_tier",
            "organization.name"} <= updated
    assert "changes.updated_at.from" not in updated  # it changes with every event


def test_change_fields_inherit_kind_and_enum_values_of_their_ticket_field() -> None:
    registry = FieldRegistry(CUSTOM_FIELDS)
    spec = registry.get("changes.status.from")
    assert spec is not None and spec.kind == "enum" and "pending" in spec.values
    assert spec.ticket_field == "ticket.status" and spec.doc_path == "changes.<field>.from"


# --- validation: what the rule's events carry ------------------------------------------------


def test_a_field_the_event_does_not_carry_is_a_load_error_with_line_and_hint() -> None:
    found = problems("""\
        rules:
          - id: comment-on-create
            on: [ticket.created]
            if: {field: comment.body, op: contains, value: refund}
            then: [{zendesk.update: {add_tags: [refund]}}]
        """)
    assert found == [
        "a.yaml:4: rules[0].if.field: 'comment.body' is not carried by ticket.created "
        "(hint: only ticket.comment_added carries it; a rule reads only fields that every "
        "event in its 'on' carries)"]


def test_a_rule_on_several_events_reads_only_what_all_of_them_carry() -> None:
    found = problems("""\
        rules:
          - id: mixed
            on: [ticket.updated, ticket.comment_added]
            if: {field: comment.public, op: equals, value: true}
            then: [{zendesk.update: {note: "{{ comment.body }}"}}]
        """)
    assert "a.yaml:4:" in found[0] and "'comment.public' is not carried by ticket.updated" \
        in found[0]
    assert "a.yaml:5:" in found[1] and "'comment.body' is not carried by ticket.updated" \
        in found[1] and "only ticket.comment_added carries it" in found[1]


def test_comment_fields_load_for_comment_added() -> None:
    rules = load("""\
        rules:
          - id: customer-replied
            on: [ticket.comment_added]
            if:
              all:
                - {field: comment.public, op: equals, value: true}
                - {field: comment.author_id, op: equals, value: 7}
                - {field: comment.body, op: matches, value: '(?i)refund'}
            then: [{zendesk.update: {note: "Customer wrote: {{ comment.body }}"}}]
        """)
    assert rules.rules[0].on == ("ticket.comment_added",)
    assert {"comment.public", "comment.author_id", "comment.body"} <= rules.rules[0].fields_used


def test_change_set_fields_are_validated_against_the_registry() -> None:
    found = problems("""\
        rules:
          - id: changes
            on: [ticket.updated]
            if:
              all:
                - {field: changes.status.from, op: equals, value: pendng}
                - {field: changes.status, op: exists}
                - {field: changes.fields.nope.to, op: exists}
                - {field: changes.status.from, op: changed}
            then: [{zendesk.update: {add_tags: [x]}}]
        """)
    assert "a.yaml:6:" in found[0] and "'pendng' is not a changes.status.from value" in found[0]
    assert "did you mean 'pending'" in found[0]
    assert "a.yaml:7:" in found[1] and "unknown field 'changes.status'" in found[1]
    assert "changes.<field>.from or changes.<field>.to" in found[1]
    assert "a.yaml:8:" in found[2] and "unknown field 'changes.fields.nope.to'" in found[2]
    assert "a.yaml:9:" in found[3] and "'changed' needs a ticket field" in found[3]


def test_change_set_conditions_load_and_record_the_ticket_field_they_read() -> None:
    rules = load("""\
        rules:
          - id: back-from-pending
            on: [ticket.updated]
            if:
              all:
                - {field: changes.status.from, op: equals, value: pending}
                - {field: changes.fields.error_code.to, op: exists}
            then: [{zendesk.update: {note: "was {{ changes.status.from }}"}}]
        """)
    assert {"ticket.status", "ticket.fields.error_code"} <= rules.rules[0].fields_used


def test_user_and_organization_fields_must_be_configured() -> None:
    found = problems("""\
        rules:
          - id: tiers
            on: [ticket.created]
            if:
              all:
                - {field: organization.fields.plan_tire, op: equals, value: enterprise}
                - {field: requester.fields.vip, op: exists}
            then:
              - zendesk.update: {note: "{{ organization.fields.region }}"}
        """)
    assert "a.yaml:6:" in found[0] and "organization field 'plan_tire' is not configured" \
        in found[0] and "did you mean organization.fields.plan_tier?" in found[0]
    assert "a.yaml:7:" in found[1] and "user field 'vip' is not configured" in found[1]
    assert "connectors.zendesk.user_fields" in found[1]
    assert "a.yaml:9:" in found[2] and "organization field 'region' is not configured" \
        in found[2]


def test_requester_and_organization_fields_load_and_count_as_read() -> None:
    rules = load("""\
        rules:
          - id: enterprise-urgent
            on: [ticket.created, ticket.updated, ticket.solved]
            if:
              all:
                - {field: organization.fields.plan_tier, op: equals, value: enterprise}
                - {field: requester.tags, op: contains, value: vip}
            then:
              - zendesk.update: {note: "{{ requester.name }} <{{ requester.email }}>"}
        """)
    assert {"organization.fields.plan_tier", "requester.tags", "requester.name",
            "requester.email"} <= rules.rules[0].fields_used


def test_whole_requester_in_a_template_counts_every_requester_field() -> None:
    rules = load("""\
        rules:
          - id: dump
            on: [ticket.updated]
            then: [{zendesk.update: {note: "{{ requester | tojson }}"}}]
        """)
    assert {"requester.name", "requester.fields.seats", "requester.fields.account_manager"} \
        <= rules.rules[0].fields_used


# --- reading values ---------------------------------------------------------------------------


def test_resolve_reads_change_sides_and_null_when_unchanged() -> None:
    ctx = make_ctx(changes={"status": Change("pending", "open"),
                            "fields.error_code": Change(None, "E42")})
    assert resolve("changes.status.from", ctx) == "pending"
    assert resolve("changes.status.to", ctx) == "open"
    assert resolve("changes.fields.error_code.to", ctx) == "E42"
    assert resolve("changes.priority.from", ctx) is None


def test_resolve_reads_people_and_null_when_nobody_read_them() -> None:
    ticket = make_ticket()
    read = EvalContext.for_ticket(
        ticket, event_type="ticket.updated", event_source="poll",
        requester={"name": "Dana", "tags": ["vip"], "fields": {"seats": 250}},
        organization={"name": "Globex", "fields": {"plan_tier": "enterprise"}})
    assert resolve("requester.fields.seats", read) == 250
    assert resolve("organization.fields.plan_tier", read) == "enterprise"
    unread = make_ctx()
    assert resolve("requester.name", unread) is None
    assert resolve("organization.fields.plan_tier", unread) is None
    assert unread.namespace()["requester"]["fields"] == {}
    assert "comment" not in unread.namespace()


def test_change_set_condition_decides_and_explains_itself() -> None:
    rules = load("""\
        rules:
          - id: back-from-pending
            on: [ticket.updated]
            if: {field: changes.status.from, op: equals, value: pending}
            then: [{zendesk.update: {add_tags: [back]}}]
        """)
    rule = rules.rules[0]
    hit = evaluate(rule, make_ctx(changes={"status": Change("pending", "open")}))
    miss = evaluate(rule, make_ctx(changes={"priority": Change("low", "high")}))
    assert hit.matched and not miss.matched
    assert "changes.status.from is 'pending' (saw None)" in miss.explain()


# --- one change, several event types ----------------------------------------------------------


def test_a_change_to_solved_is_also_ticket_solved_and_a_comment_is_comment_added() -> None:
    solved = {"status": Change("open", "solved")}
    assert became_solved(solved) and not became_solved({"status": Change("solved", "closed")})
    assert event_types("ticket.updated", solved, comment=True) == (
        "ticket.updated", "ticket.solved", "ticket.comment_added")
    assert event_types("ticket.updated", {}, comment=False) == ("ticket.updated",)
    assert event_types("ticket.created", {"status": Change(None, "solved")}, comment=True) == (
        "ticket.created", "ticket.solved")


def test_a_rule_listening_to_several_types_of_one_change_is_decided_once() -> None:
    rules = load("""\
        rules:
          - id: both
            on: [ticket.updated, ticket.solved]
            if: {field: event.type, op: equals, value: ticket.solved}
            then: [{zendesk.update: {add_tags: [a]}}]
          - id: solved-only
            on: [ticket.solved]
            then: [{zendesk.update: {add_tags: [b]}}]
          - id: comment
            on: [ticket.comment_added]
            if: {field: comment.public, op: equals, value: false}
            then: [{zendesk.update: {add_tags: [c]}}]
          - id: never
            mode: off
            on: [ticket.solved]
            then: [{zendesk.update: {add_tags: [d]}}]
        """)
    base = make_ctx(changes={"status": Change("open", "solved")})
    types = event_types("ticket.updated", base.changes, comment=True)
    note = {"id": 1, "body": "internal", "public": False, "author_id": 9, "created_at": None}
    decided = evaluate_once(rules, contexts(base, types, note))
    assert [(r.id, e.event_type, e.matched) for r, e in decided] == [
        ("both", "ticket.solved", True),
        ("solved-only", "ticket.solved", True),
        ("comment", "ticket.comment_added", True),
    ]


# --- the reference stays complete --------------------------------------------------------------


def test_docs_rules_md_lists_every_event_type_and_every_field() -> None:
    reference = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([^`\s]+)`", reference))
    registry = FieldRegistry(("some_field",), user_fields=("some_key",),
                             organization_fields=("other_key",))
    missing_events = [name for name in EVENT_TYPES if name not in documented]
    missing_fields = sorted({spec.doc_path for spec in registry} - documented)
    assert missing_events == []
    assert missing_fields == []


def test_docs_rules_md_documents_every_action_and_its_params() -> None:
    reference = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^#{3,4} (.+)$", reference, flags=re.M))
    documented_actions = {name for h in headings for name in re.findall(r"`([a-z_.]+)`", h)}
    assert sorted(set(ACTIONS) - documented_actions) == []
    for name, spec in ACTIONS.items():
        # The action's section: from its heading to the next heading of any level.
        start = next(m.end() for m in re.finditer(r"^#{3,4} .*$", reference, flags=re.M)
                     if f"`{name}`" in m.group(0))
        end = re.compile(r"^#", re.M).search(reference, start)
        section = reference[start:end.start() if end else len(reference)]
        rows = set(re.findall(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)?", section, flags=re.M))
        params = {p for row in rows for p in row if p}
        if not params and "(param: `incident`)" in section:
            params = {"incident"}
        assert sorted(set(spec.params.model_fields) - params) == [], name


# --- Productboard: the customer's words, and feature events --------------------------------


@pytest.mark.parametrize(("author", "expected"), [(7501, True), (900002, False), (None, False)])
def test_a_comment_is_from_the_requester_only_when_the_requester_wrote_it(author, expected):
    ctx = make_ctx("ticket.comment_added", requester_id=7501)
    comment = {"id": 1, "body": "more", "public": True, "author_id": author,
               "created_at": None}
    by_type = contexts(ctx, ["ticket.comment_added"], comment)
    assert resolve("comment.from_requester", by_type["ticket.comment_added"]) is expected


def test_a_feature_event_takes_only_actions_that_need_no_ticket() -> None:
    found = problems("""
        rules:
          - id: released
            on: [productboard.feature.updated]
            if: {field: feature.status, op: equals, value: Released}
            then:
              - zendesk.update: {note: "{{ feature.name }} shipped"}
        """)
    assert len(found) == 1
    assert "zendesk.update acts on one ticket" in found[0]
    assert "productboard.feature.updated events carry none" in found[0]
    rules = load("""
        rules:
          - id: released
            on: [productboard.feature.updated]
            if: {field: feature.status, op: equals, value: Released}
            then:
              - zendesk.update_linked: {feature: "{{ feature.id }}", note: "{{ feature.name }}"}
        """)
    ctx = EvalContext("productboard.feature.updated", "productboard", {}, {},
                      {"productboard": ("f-1",)},
                      feature={"id": "f-1", "name": "CSV export", "status": "released",
                               "previous_status": "Planned", "url": None, "tickets": 3})
    assert evaluate(rules.rules[0], ctx).matched  # case-insensitive by default


@pytest.mark.parametrize("params", [
    '{note: "x"}',                                    # neither issue nor feature
    '{issue: "SUP-1", feature: "f-1", note: "x"}',    # both
])
def test_update_linked_names_an_issue_or_a_feature_exactly(params: str) -> None:
    found = problems(f"""
        rules:
          - id: r
            on: [jira.issue.updated]
            then:
              - zendesk.update_linked: {params}
        """)
    assert any("issue" in p and "feature" in p and "one of them" in p for p in found), found
