from __future__ import annotations

from rules import FieldRegistry, resolve

from .helpers import CUSTOM_FIELDS, load_text, make_ctx

RULES = """\
rules:
  - id: bug
    on: [ticket.updated]
    if:
      all:
        - {field: ticket.tags, op: contains, value: bug_confirmed}
        - {field: links.jira, op: exists}
    then:
      - zendesk.update: {note: "{{ ticket.fields.error_code }} / {{ ticket.subject | upper }}"}
  - id: created
    on: [ticket.created]
    if: {field: ticket.priority, op: equals, value: urgent}
    then:
      - jira.create_or_link_bug: {project: SUP, summary: "{{ ticket.fields.product_area }}"}
  - id: disabled
    mode: off
    on: [ticket.updated]
    if: {field: ticket.assignee_id, op: exists}
    then:
      - zendesk.update: {note: "{{ ticket.group_id }}"}
"""


def test_fields_used_includes_condition_and_template_fields_per_event() -> None:
    rules = load_text(RULES)
    assert rules.fields_used("ticket.updated") == {
        "ticket.tags", "ticket.fields.error_code", "ticket.subject"}


def test_fields_used_includes_the_default_description_template() -> None:
    rules = load_text(RULES)
    assert rules.fields_used("ticket.created") == {
        "ticket.priority", "ticket.fields.product_area",
        # the default description: configured custom fields it reads, and the impact section
        "ticket.fields.steps_to_reproduce", "ticket.id", "ticket.url",
        "ticket.organization_id", "ticket.requester_id", "ticket.description",
    }


def test_fields_used_for_all_events_skips_off_rules() -> None:
    used = load_text(RULES).fields_used()
    assert "ticket.assignee_id" not in used and "ticket.group_id" not in used
    assert {"ticket.tags", "ticket.priority"} <= used


def test_whole_ticket_or_dynamic_access_counts_every_field() -> None:
    rules = load_text("""\
        rules:
          - id: dump
            on: [ticket.updated]
            then: [{zendesk.update: {note: "{{ ticket.fields[changes.keys() | first] }}"}}]
          - id: everything
            on: [ticket.created]
            then: [{zendesk.update: {note: "{{ ticket | tojson }}"}}]
        """)
    assert rules.fields_used("ticket.updated") == {f"ticket.fields.{n}" for n in CUSTOM_FIELDS}
    assert rules.fields_used("ticket.created") == FieldRegistry(CUSTOM_FIELDS).ticket_paths


def test_resolve_reads_ticket_custom_link_and_event_fields() -> None:
    ctx = make_ctx(links={"jira": ("SUP-1",)})
    assert resolve("ticket.subject", ctx) == "Checkout fails"
    assert resolve("ticket.fields.error_code", ctx) == "E42"
    assert resolve("ticket.fields.product_area", ctx) is None
    assert resolve("links.jira", ctx) == ("SUP-1",)
    assert resolve("event.type", ctx) == "ticket.updated"
    assert resolve("event.source", ctx) == "webhook"
