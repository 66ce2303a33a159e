from __future__ import annotations

from pathlib import Path

import pytest

from rules import (
    DEFAULT_BUG_DESCRIPTION,
    All,
    Any_,
    FieldCondition,
    Mode,
    Not,
    Op,
    ProblemsError,
    load_rule_files,
)

from .helpers import CUSTOM_FIELDS, load_text

VALID = """\
rules:
  - id: confirmed-bug-to-jira
    description: Tickets marked as confirmed bugs become (or join) a Jira bug.
    mode: live
    on: [ticket.created, ticket.updated]
    if:
      all:
        - {field: ticket.tags, op: contains, value: bug_confirmed}
        - {field: ticket.priority, op: in, value: [high, urgent]}
        - not: {field: links.jira, op: exists}
        - any:
            - {field: ticket.status, op: changed_to, value: open}
            - {field: ticket.fields.error_code, op: exists, case_sensitive: true}
    then:
      - jira.create_or_link_bug:
          project: SUP
          summary: "[{{ ticket.fields.error_code }}] {{ ticket.subject }}"
          dedupe_by: "{{ ticket.fields.error_code }}"
      - zendesk.update:
          note: "Linked to {{ jira.key }} ({{ jira.url }}) — engineering is on it."
          add_tags: [jira_escalated]
          fields: {jira_key: "{{ jira.key }}"}
  - id: quiet
    mode: off
    on: [ticket.created]
    then:
      - zendesk.update: {add_tags: [seen]}
"""


def problems_of(*texts: str, custom_fields: tuple[str, ...] = CUSTOM_FIELDS) -> list[str]:
    with pytest.raises(ProblemsError) as info:
        load_text(*texts, custom_fields=custom_fields)
    return [str(p) for p in info.value.problems]


def test_valid_file_loads_into_rules_with_conditions_actions_and_lines() -> None:
    rules = load_text(VALID)
    bug, quiet = rules.rules
    assert bug.id == "confirmed-bug-to-jira"
    assert (bug.file, bug.line) == ("a.yaml", 2)
    assert bug.mode is Mode.LIVE
    assert bug.on == ("ticket.created", "ticket.updated")
    assert isinstance(bug.condition, All)
    tags, priority, no_link, either = bug.condition.conditions
    assert tags == FieldCondition("ticket.tags", Op.CONTAINS, "bug_confirmed", False,
                                  "if.all[0]", 8)
    assert priority.value == ("high", "urgent")
    assert isinstance(no_link, Not) and isinstance(either, Any_)
    assert either.conditions[1].case_sensitive is True
    jira, update = bug.actions
    assert jira.name == "jira.create_or_link_bug" and jira.line == 15
    assert jira.params["description"] == DEFAULT_BUG_DESCRIPTION
    assert jira.params["issue_type"] == "Bug"
    assert update.uses == {"jira"}
    assert quiet.mode is Mode.OFF  # `off` is a YAML 1.1 boolean; the loader reads it as the mode


def test_for_event_excludes_off_rules_and_other_events() -> None:
    rules = load_text(VALID)
    assert [r.id for r in rules.for_event("ticket.updated")] == ["confirmed-bug-to-jira"]
    assert [r.id for r in rules.for_event("ticket.created")] == ["confirmed-bug-to-jira"]
    assert rules.get("quiet") is not None


def test_a_top_level_list_of_rules_is_accepted() -> None:
    rules = load_text("""\
        - id: one
          on: [ticket.created]
          then: [{zendesk.update: {add_tags: [one]}}]
        """)
    assert [r.id for r in rules] == ["one"]


MANY_ERRORS = """\
rules:
  - id: Bad Id
    on: [ticket.creatd]
    colour: red
    if:
      all:
        - {field: ticket.priorty, op: equals, value: high}
        - {field: ticket.tags, op: contians, value: x}
        - {field: ticket.status, op: in, value: open}
        - {field: ticket.status, op: equals}
        - {field: ticket.fields.nope, op: exists}
        - {field: ticket.priority, op: equals, value: hgih}
        - {field: ticket.tags, op: equals, value: x}
        - {field: links.jira, op: changed}
    then:
      - zendesk.update:
          note: "{{ jira.key }} {{ ticket.subject"
          fields: {nope: x}
      - jira.create_or_lnk_bug: {project: SUP}
      - jira.create_or_link_bug:
          project: sup
          labels: [has space]
          colour: red
          summary: "{{ tikcet.subject }}"
  - description: no id, no on, no then
    mode: sometimes
"""


def test_file_with_many_errors_reports_all_of_them_with_their_lines() -> None:
    problems = problems_of(MANY_ERRORS)
    expected = [
        ("a.yaml:2:", "rules[0].id: bad id 'Bad Id'"),
        ("a.yaml:3:", "rules[0].on[0]: unknown event type 'ticket.creatd'"),
        ("a.yaml:4:", "rules[0].colour: unknown key 'colour'"),
        ("a.yaml:7:", "rules[0].if.all[0].field: unknown field 'ticket.priorty'"),
        ("a.yaml:8:", "rules[0].if.all[1].op: unknown operator 'contians'"),
        ("a.yaml:9:", "rules[0].if.all[2].value: 'in' needs a non-empty list"),
        ("a.yaml:10:", "rules[0].if.all[3]: 'equals' needs a value"),
        ("a.yaml:11:", "rules[0].if.all[4].field: custom field 'nope' is not configured"),
        ("a.yaml:12:", "rules[0].if.all[5].value: 'hgih' is not a ticket.priority value"),
        ("a.yaml:13:", "rules[0].if.all[6].op: 'equals' does not apply to ticket.tags"),
        ("a.yaml:14:", "rules[0].if.all[7].op: 'changed' needs a ticket field"),
        ("a.yaml:17:", "note: template syntax error"),
        ("a.yaml:18:", "fields.nope: custom field 'nope' is not configured"),
        ("a.yaml:19:", "unknown action 'jira.create_or_lnk_bug'"),
        ("a.yaml:21:", "project: must be a Jira project key"),
        ("a.yaml:22:", "labels[0]: must be a single word"),
        ("a.yaml:23:", "unknown parameter 'colour' for jira.create_or_link_bug"),
        ("a.yaml:25:", "rules[1]: missing 'id'"),
        ("a.yaml:25:", "rules[1]: missing 'on'"),
        ("a.yaml:25:", "rules[1]: missing 'then'"),
        ("a.yaml:26:", "rules[1].mode: unknown mode 'sometimes'"),
    ]
    for where, text in expected:
        assert any(p.startswith(where) and text in p for p in problems), (where, text, problems)
    assert len(problems) == len(expected), "\n".join(problems)


def test_problems_carry_hints_for_close_matches() -> None:
    problems = "\n".join(problems_of(MANY_ERRORS))
    assert "did you mean 'contains'" in problems
    assert "did you mean ticket.priority" in problems
    assert "did you mean 'jira.create_or_link_bug'" in problems
    assert "did you mean 'ticket.created'" in problems
    assert "did you mean 'high'" in problems


def test_unknown_operator_hint_names_the_closest_operator() -> None:
    (problem,) = problems_of("""\
        rules:
          - id: r
            on: [ticket.created]
            if: {field: ticket.tags, op: contains_nay, value: [a]}
            then: [{zendesk.update: {add_tags: [x]}}]
        """)
    assert problem.startswith("a.yaml:4: rules[0].if.op: unknown operator 'contains_nay'")
    assert "did you mean 'contains_any'" in problem


def test_template_syntax_error_is_reported_at_the_param_line() -> None:
    (problem,) = problems_of("""\
        rules:
          - id: r
            on: [ticket.created]
            then:
              - zendesk.update:
                  add_tags: [x]
                  note: |
                    Hello
                    {% if ticket.subject %}unclosed
        """)
    assert problem.startswith("a.yaml:7: rules[0].then[0].zendesk.update.note: template syntax")


def test_result_name_used_before_its_producer_is_a_problem() -> None:
    (problem,) = problems_of("""\
        rules:
          - id: r
            on: [ticket.created]
            then:
              - zendesk.update: {note: "Linked to {{ jira.key }}"}
              - jira.create_or_link_bug: {project: SUP}
        """)
    assert problem.startswith("a.yaml:5: rules[0].then[0].zendesk.update.note:")
    assert "'jira.key' is used before any action produces 'jira'" in problem
    assert "put jira.create_or_link_bug before this action" in problem


def test_unknown_template_names_and_attributes_are_problems() -> None:
    problems = problems_of("""\
        rules:
          - id: r
            on: [ticket.created]
            then:
              - jira.create_or_link_bug:
                  project: SUP
                  summary: "{{ tikcet.subject }}"
                  priority: "{{ ticket.priorty }}"
                  dedupe_by: "{{ ticket.fields.erorr_code }}"
              - zendesk.update: {note: "{{ jira.kye }}"}
        """)
    assert len(problems) == 4, problems
    assert "a.yaml:7:" in problems[0] and "unknown name 'tikcet'" in problems[0]
    assert "a.yaml:8:" in problems[1] and "'ticket' has no 'priorty'" in problems[1]
    assert "did you mean 'priority'" in problems[1]
    assert "a.yaml:9:" in problems[2] and "custom field 'erorr_code' is not configured" in (
        problems[2])
    assert "a.yaml:10:" in problems[3] and "'jira' has no 'kye'" in problems[3]


def test_underscore_attributes_in_templates_are_refused_at_load() -> None:
    (problem,) = problems_of("""\
        rules:
          - id: r
            on: [ticket.created]
            then: [{zendesk.update: {note: "{{ ''.__class__.__mro__ }}"}}]
        """)
    assert "names starting with '_' are not allowed" in problem


def test_duplicate_ids_across_files_report_both_locations() -> None:
    first = """\
        rules:
          - id: same
            on: [ticket.created]
            then: [{zendesk.update: {add_tags: [a]}}]
        """
    second = """\
        rules:
          - id: other
            on: [ticket.created]
            then: [{zendesk.update: {add_tags: [b]}}]
          - id: same
            on: [ticket.created]
            then: [{zendesk.update: {add_tags: [c]}}]
        """
    problems = problems_of(first, second)
    assert problems == [
        "a.yaml:2: rules[0].id: duplicate rule id 'same' (hint: also defined at b.yaml:5)",
        "b.yaml:5: rules[1].id: duplicate rule id 'same' (hint: also defined at a.yaml:2)",
    ]


def test_zendesk_update_needs_something_to_do_and_public_needs_a_note() -> None:
    problems = problems_of("""\
        rules:
          - id: r
            on: [ticket.created]
            then:
              - zendesk.update: {}
              - zendesk.update: {public: true, add_tags: [x]}
              - zendesk.update: {status: closed}
              - zendesk.update: {add_tags: [x], remove_tags: [x]}
        """)
    assert len(problems) == 4, problems
    assert "a.yaml:5:" in problems[0] and "needs at least one of" in problems[0]
    assert "a.yaml:6:" in problems[1] and "public: true needs a note" in problems[1]
    assert problems[2].startswith("a.yaml:7: rules[0].then[2].zendesk.update.status:")
    assert "a.yaml:8:" in problems[3] and "tags both added and removed: x" in problems[3]


def test_action_param_types_are_strict() -> None:
    problems = problems_of("""\
        rules:
          - id: r
            on: [ticket.created]
            then:
              - zendesk.update: {note: hi, public: "yes"}
              - jira.create_or_link_bug: {summary: "x"}
        """)
    assert len(problems) == 2, problems
    assert "a.yaml:5:" in problems[0] and "public" in problems[0]
    assert "a.yaml:6:" in problems[1] and "missing required parameter 'project'" in problems[1]


def test_conditions_must_be_well_formed_groups() -> None:
    problems = problems_of("""\
        rules:
          - id: r
            on: [ticket.created]
            if:
              all: []
              any: [{field: ticket.tags, op: exists}]
          - id: s
            on: [ticket.created]
            if:
              any: []
            then: [{zendesk.update: {add_tags: [x]}}]
          - id: t
            on: []
            if: just text
            then: []
        """)
    assert problems == [
        "a.yaml:2: rules[0]: missing 'then' (hint: list at least one action)",
        "a.yaml:4: rules[0].if: 'all' cannot be combined with any "
        "(hint: nest them: a group condition has exactly one key)",
        "a.yaml:10: rules[1].if.any: 'any' needs a non-empty list of conditions",
        "a.yaml:13: rules[2].on: 'on' must be a non-empty list of event types "
        "(hint: e.g. on: [ticket.created, ticket.updated])",
        "a.yaml:14: rules[2].if: a condition is a mapping: {field, op, value} or all/any/not",
        "a.yaml:15: rules[2].then: 'then' must be a non-empty list of actions "
        "(hint: e.g. then: [{zendesk.update: {add_tags: [seen]}}])",
    ]


def test_load_rule_files_reads_a_directory_sorted_and_reports_yaml_errors(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text(
        "rules:\n  - id: two\n    on: [ticket.created]\n"
        "    then: [{zendesk.update: {add_tags: [b]}}]\n")
    (tmp_path / "a.yaml").write_text(
        "rules:\n  - id: one\n    on: [ticket.created]\n"
        "    then: [{zendesk.update: {add_tags: [a]}}]\n")
    (tmp_path / "notes.txt").write_text("not rules")
    rules = load_rule_files([tmp_path], custom_fields=CUSTOM_FIELDS)
    assert [r.id for r in rules] == ["one", "two"]

    (tmp_path / "c.yaml").write_text("rules:\n  - id: [unclosed\n")
    with pytest.raises(ProblemsError) as info:
        load_rule_files([tmp_path, tmp_path / "missing.yaml"], custom_fields=CUSTOM_FIELDS)
    files = [p.file for p in info.value.problems]
    assert files == [str(tmp_path / "c.yaml"), str(tmp_path / "missing.yaml")]
    assert "YAML syntax error" in info.value.problems[0].message


def test_empty_if_is_a_problem_rather_than_a_silent_always_true() -> None:
    (problem,) = problems_of("""\
        rules:
          - id: r
            on: [ticket.created]
            if:
            then: [{zendesk.update: {add_tags: [x]}}]
        """)
    assert problem == "a.yaml:4: rules[0].if: 'if' is empty (hint: remove it to match every event)"


def test_a_clean_file_gives_no_problems_and_wrong_things_only_are_listed() -> None:
    problems = problems_of(VALID.replace("op: in, value: [high, urgent]", "op: in, value: high"))
    assert problems == [
        "a.yaml:9: rules[0].if.all[1].value: 'in' needs a non-empty list of values "
        "(hint: write value: ['high'])",
    ]


OPERATOR_VALUE_ERRORS = """\
rules:
  - id: r
    on: [ticket.updated]
    if:
      all:
        - {field: ticket.subject, op: matches, value: '(ab'}
        - field: ticket.description
          op: matches
          value: '[a-'
        - {field: ticket.subject, op: matches, value: [a, b]}
        - {field: ticket.created_at, op: older_than, value: 2x}
        - {field: ticket.updated_at, op: within, value: 15}
        - {field: ticket.id, op: gt, value: high}
        - {field: ticket.tags, op: older_than, value: 2h}
        - {field: ticket.created_at, op: within}
        - {field: ticket.subject, op: matches, value: '^ok$'}
        - {field: ticket.id, op: lte, value: '2026-01-05T10:00:00Z'}
    then: [{zendesk.update: {add_tags: [x]}}]
"""


def test_bad_regex_duration_and_comparison_values_are_load_problems_at_their_lines() -> None:
    problems = problems_of(OPERATOR_VALUE_ERRORS)
    expected = [
        ("a.yaml:6:", "rules[0].if.all[0].value: 'matches': bad regular expression '(ab': "
                      "missing )"),
        ("a.yaml:9:", "rules[0].if.all[1].value: 'matches': bad regular expression '[a-'"),
        ("a.yaml:10:", "rules[0].if.all[2].value: 'matches': needs a regular expression"),
        ("a.yaml:11:", "rules[0].if.all[3].value: 'older_than': bad duration '2x'"),
        ("a.yaml:12:", "rules[0].if.all[4].value: 'within': bad duration 15"),
        ("a.yaml:13:", "rules[0].if.all[5].value: 'gt': needs a number or an ISO-8601 time"),
        ("a.yaml:14:", "rules[0].if.all[6].op: 'older_than' does not apply to ticket.tags"),
        ("a.yaml:15:", "rules[0].if.all[7]: 'within' needs a value: a duration"),
    ]
    for where, text in expected:
        assert any(p.startswith(where) and text in p for p in problems), (where, text, problems)
    assert len(problems) == len(expected), "\n".join(problems)
    joined = "\n".join(problems)
    assert "hint: add a unit: '15m' or '15h'" in joined
    assert "90s, 15m, 2h, 3d, 1w" in joined


def test_bad_regex_in_a_rules_file_reports_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - id: r\n    on: [ticket.created]\n    if:\n"
                    "      field: ticket.subject\n      op: matches\n      value: '(?P<x'\n"
                    "    then: [{zendesk.update: {add_tags: [x]}}]\n", encoding="utf-8")
    with pytest.raises(ProblemsError) as info:
        load_rule_files([path], custom_fields=CUSTOM_FIELDS)
    (problem,) = info.value.problems
    assert str(problem).startswith(f"{path}:7: rules[0].if.value: 'matches': bad regular "
                                   "expression '(?P<x'")
