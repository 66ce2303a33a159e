"""Rules that reopen Done bugs or raise a bug's priority load only when their parameters make
sense; every problem is reported with its line."""

from __future__ import annotations

from textwrap import dedent

import pytest

from rules import ProblemsError, load_rules
from rules.source import load_yaml

BUG_RULE = """\
rules:
  - id: bugs
    on: [ticket.created]
    then:
      - jira.create_or_link_bug:
          project: SUP
          dedupe_by: "{{{{ ticket.fields.error_code or '' }}}}"
{params}
"""
IMPACT_RULE = """\
rules:
  - id: impact
    on: [ticket.updated]
    if: {{field: links.jira, op: exists}}
    then:
      - jira.impact:
          issue: "{{{{ links.jira[0] }}}}"
{params}
"""


def _load(template: str, params: str) -> list[object]:
    text = template.format(params=dedent(params).rstrip().replace("\n", "\n          ")
                           .join(["          ", ""]))
    return list(load_rules([load_yaml(text, "r.yaml")], custom_fields=("error_code",),
                           organization_fields=("plan_tier",)))


def _problems(template: str, params: str) -> str:
    with pytest.raises(ProblemsError) as info:
        _load(template, params)
    return str(info.value)


def test_reopen_loads_with_a_status_and_a_fallback() -> None:
    assert len(_load(BUG_RULE, """\
        when_done: reopen
        reopen_status: Reopened
        reopen_fallback: regression""")) == 1


def test_reopen_without_a_status_or_settings_without_reopen_are_refused() -> None:
    assert "when_done: reopen needs reopen_status" in _problems(BUG_RULE, "when_done: reopen")
    message = _problems(BUG_RULE, """\
        when_done: regression
        reopen_status: Reopened""")
    assert "reopen_status only apply with when_done: reopen" in message
    assert "r.yaml:5" in message
    assert "reopen_fallback" in _problems(BUG_RULE, """\
        when_done: reopen
        reopen_status: Reopened
        reopen_fallback: retry""")


def test_raise_priority_loads_with_counts_and_tiers() -> None:
    assert len(_load(IMPACT_RULE, """\
        raise_priority:
          - {tickets: 10, to: High}
          - {tier: enterprise, to: Highest}""")) == 1
    assert len(_load(IMPACT_RULE, """\
        raise_priority: [{tickets: 3, to: P1}]
        priority_order: [P0, P1, P2, P3]""")) == 1


@pytest.mark.parametrize(("params", "expected"), [
    ("raise_priority: [{tickets: 10, tier: enterprise, to: High}]",
     "a threshold names tickets (a count) or tier (a plan tier), and not both"),
    ("raise_priority: [{to: High}]", "a threshold names tickets"),
    ("raise_priority: [{tickets: 0, to: High}]", "greater than or equal to 1"),
    ("raise_priority: [{tickets: '10', to: High}]", "valid integer"),
    ("raise_priority: [{tickets: 10, to: Hihg}]",
     "'Hihg' is not in priority_order (Highest, High, Medium, Low, Lowest)"),
    ("raise_priority: [{tickets: 10, to: High}, {tickets: 10, to: Highest}]",
     "the threshold tickets>=10 is given more than once"),
    ("raise_priority: [{tickets: 10, to: High, when: always}]", "'when'"),
    ("priority_order: [P1, P2]", "priority_order only applies with raise_priority"),
    ("raise_priority: [{tickets: 2, to: P1}]\npriority_order: [P1, p1]",
     "priority_order names P1, p1 more than once"),
])
def test_bad_thresholds_are_refused_with_a_clear_error(params: str, expected: str) -> None:
    message = _problems(IMPACT_RULE, params)
    assert expected in message, message
    assert "r.yaml:" in message
