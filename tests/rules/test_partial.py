"""Three-valued judgement: may a rule match once fields the event lacks are known?"""

from __future__ import annotations

from textwrap import dedent

import pytest

from rules import evaluate, load_rules, load_yaml
from rules.partial import could_match, judge

from .helpers import make_ctx


def rule(condition: str):
    text = dedent(f"""\
        rules:
          - id: r
            on: [ticket.updated]
            if: {condition}
            then: [{{zendesk.update: {{note: x}}}}]
        """)
    [loaded] = load_rules([load_yaml(text, "a.yaml")], custom_fields=("error_code", "jira_key"),
                          organization_fields=("plan_tier",)).rules
    return loaded


def unknown(path: str) -> bool:
    return path.startswith("organization.") or path == "ticket.fields.error_code"


TIER = "{field: organization.fields.plan_tier, op: equals, value: enterprise}"


@pytest.mark.parametrize(("condition", "priority", "possible"), [
    (f"{{all: [{{field: ticket.priority, op: equals, value: urgent}}, {TIER}]}}", "urgent", True),
    (f"{{all: [{{field: ticket.priority, op: equals, value: urgent}}, {TIER}]}}", "low", False),
    (f"{{any: [{{field: ticket.priority, op: equals, value: urgent}}, {TIER}]}}", "low", True),
    (f"{{all: [{{field: ticket.priority, op: equals, value: urgent}}, {{not: {TIER}}}]}}",
     "low", False),
    (f"{{not: {{all: [{{field: ticket.priority, op: equals, value: low}}, {TIER}]}}}}",
     "high", True),   # the inner all is false, so the rule matches whatever the tier
    (f"{{not: {{any: [{{field: ticket.priority, op: equals, value: low}}, {TIER}]}}}}",
     "low", False),   # the inner any is true, so the rule cannot match
    ("{field: ticket.fields.error_code, op: exists}", "low", True),
    ("{field: ticket.priority, op: in, value: [high, urgent]}", "low", False),
])
def test_a_rule_needs_the_missing_fields_only_if_it_can_still_match(condition, priority,
                                                                     possible):
    r = rule(condition)
    ctx = make_ctx(priority=priority)
    assert could_match(r, evaluate(r, ctx), unknown) is possible


def test_a_match_without_unknown_fields_is_possible_and_an_error_on_a_known_field_is_not():
    r = rule("{field: ticket.tags, op: contains, value: billing}")
    assert could_match(r, evaluate(r, make_ctx()), unknown)
    bad = rule("{field: ticket.fields.jira_key, op: gt, value: 3}")
    evaluation = evaluate(bad, make_ctx(custom_fields={"jira_key": "SUP-1"}))
    assert evaluation.trace[0].error  # text against a number
    assert not could_match(bad, evaluation, unknown)


def test_null_standing_in_for_an_unknown_field_is_not_trusted():
    r = rule("{not: {field: organization.fields.plan_tier, op: exists}}")
    evaluation = evaluate(r, make_ctx())
    assert evaluation.matched  # the tier reads as null while it is unknown...
    assert judge(r, evaluation, unknown) is None  # ...so whether it matches is not known yet
    assert judge(r, evaluation, lambda path: False) is True
