from __future__ import annotations

import json

from rules import Change, Rule, evaluate

from .helpers import load_text, make_ctx

NESTED = """\
rules:
  - id: bug
    on: [ticket.created, ticket.updated]
    if:
      all:
        - {field: ticket.tags, op: contains, value: bug_confirmed}
        - {field: ticket.priority, op: in, value: [high, urgent]}
        - not: {field: links.jira, op: exists}
        - any:
            - {field: ticket.status, op: changed_to, value: open}
            - {field: ticket.fields.error_code, op: exists}
    then: [{zendesk.update: {add_tags: [x]}}]
"""


def rule(text: str = NESTED) -> Rule:
    return load_text(text).rules[0]


def test_nested_all_any_not_match_when_every_branch_holds() -> None:
    result = evaluate(rule(), make_ctx(changes={"status": Change("new", "open")}))
    assert result.matched and result.error is None and result.first_failure is None


def test_any_branch_matches_through_its_second_leaf() -> None:
    result = evaluate(rule(), make_ctx())  # no status change, but error_code exists
    assert result.matched


def test_not_inverts_its_condition() -> None:
    result = evaluate(rule(), make_ctx(links={"jira": ("SUP-1",)}))
    assert not result.matched
    assert result.first_failure is not None
    assert result.first_failure.path == "if.all[2].not"
    assert result.first_failure.negated and result.first_failure.result is True


def test_any_fails_only_when_every_branch_fails_and_blames_them_all() -> None:
    result = evaluate(rule(), make_ctx(custom_fields={}))
    assert not result.matched
    decisive = [r.path for r in result.trace if r.decisive]
    assert decisive == ["if.all[3].any[0]", "if.all[3].any[1]"]


def test_trace_lists_every_leaf_with_actual_values_even_after_a_failure() -> None:
    result = evaluate(rule(), make_ctx(tags=("billing",), priority="low"))
    assert not result.matched
    assert [(r.path, r.field, r.actual, r.result) for r in result.trace] == [
        ("if.all[0]", "ticket.tags", ["billing"], False),
        ("if.all[1]", "ticket.priority", "low", False),
        ("if.all[2].not", "links.jira", None, False),
        ("if.all[3].any[0]", "ticket.status", None, False),
        ("if.all[3].any[1]", "ticket.fields.error_code", "E42", True),
    ]
    assert result.first_failure is not None and result.first_failure.path == "if.all[0]"


def test_explain_prints_one_plain_line_per_condition() -> None:
    result = evaluate(rule(), make_ctx(priority="low", changes={"status": Change("new", "open")}))
    assert result.explain() == "\n".join([
        "✗ rule bug did not match (ticket.updated, mode live)",
        "  ✗ all of:",
        "    ✓ ticket.tags contains 'bug_confirmed' (saw ['bug_confirmed', 'billing'])",
        "    ✗ ticket.priority is one of ['high', 'urgent'] (saw 'low')   ← first failure",
        "    ✓ not links.jira exists (saw None)",
        "    ✓ any of:",
        "      ✓ ticket.status changed to 'open' (saw 'new' → 'open')",
        "      ✓ ticket.fields.error_code exists (saw 'E42')",
    ])


def test_operator_error_is_a_rule_error_shown_in_the_trace_not_a_silent_no_match() -> None:
    text = """\
        rules:
          - id: code
            on: [ticket.updated]
            if:
              any:
                - {field: ticket.tags, op: contains, value: billing}
                - {field: ticket.fields.error_code, op: equals, value: E42}
            then: [{zendesk.update: {add_tags: [x]}}]
        """
    result = evaluate(load_text(text).rules[0], make_ctx(custom_fields={"error_code": ["E42"]}))
    assert not result.matched  # even though the other branch of `any` holds
    assert result.error is not None and result.error.startswith("if.any[1]: 'equals' compares")
    failing = result.first_failure
    assert failing is not None and failing.result is None and failing.error
    assert "! ticket.fields.error_code is 'E42' (saw ['E42']) — error:" in result.explain()


def test_rule_without_conditions_always_matches() -> None:
    text = """\
        rules:
          - id: always
            on: [ticket.created]
            then: [{zendesk.update: {add_tags: [x]}}]
        """
    result = evaluate(load_text(text).rules[0], make_ctx("ticket.created"))
    assert result.matched and result.trace == ()


def test_rule_not_listening_to_the_event_is_skipped() -> None:
    text = """\
        rules:
          - id: created-only
            on: [ticket.created]
            then: [{zendesk.update: {add_tags: [x]}}]
        """
    result = evaluate(load_text(text).rules[0], make_ctx("ticket.updated"))
    assert not result.matched
    assert result.skipped == "listens to ticket.created, not ticket.updated"


def test_case_sensitive_conditions_say_so_in_the_explanation() -> None:
    text = """\
        rules:
          - id: cs
            on: [ticket.updated]
            if: {field: ticket.subject, op: contains, value: checkout, case_sensitive: true}
            then: [{zendesk.update: {add_tags: [x]}}]
        """
    result = evaluate(load_text(text).rules[0], make_ctx())
    assert not result.matched
    assert ("✗ ticket.subject contains 'checkout' (case-sensitive) (saw 'Checkout fails')"
            in result.explain())


def test_to_json_is_json_serialisable_for_the_decision_log() -> None:
    result = evaluate(rule(), make_ctx(links={"jira": ("SUP-1",)},
                                       changes={"status": Change("new", "open")}))
    data = json.loads(json.dumps(result.to_json()))
    assert data["rule_id"] == "bug" and data["matched"] is False
    assert data["first_failure"] == "if.all[2].not"
    assert data["trace"][2]["actual"] == ["SUP-1"]
    assert data["trace"][3]["actual"] == {"from": "new", "to": "open"}


def test_not_around_a_group_reads_as_not_any_of() -> None:
    text = """\
        rules:
          - id: not-vip
            on: [ticket.updated]
            if:
              not:
                any:
                  - {field: ticket.tags, op: contains_any, value: [vip, enterprise]}
                  - {field: links.jira, op: contains, value: sup-1}
            then: [{zendesk.update: {add_tags: [x]}}]
        """
    result = evaluate(load_text(text).rules[0], make_ctx(links={"jira": ("SUP-1", "SUP-2")}))
    assert not result.matched
    assert result.explain().splitlines()[1:] == [
        "  ✗ not any of:",
        "    ✗ ticket.tags contains any of ['vip', 'enterprise']"
        " (saw ['bug_confirmed', 'billing'])",
        "    ✓ links.jira contains 'sup-1' (saw ['SUP-1', 'SUP-2'])   ← first failure",
    ]
