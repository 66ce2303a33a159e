from __future__ import annotations

import copy
import json

import pytest

from rules import ActionIntent, TemplateRenderError, idempotency_key, plan, render_params

from .helpers import load_text, make_ctx

RULES = """\
rules:
  - id: bug
    on: [ticket.updated]
    then:
      - zendesk.update: {add_tags: [seen]}
      - jira.create_or_link_bug:
          project: SUP
          summary: "[{{ ticket.fields.error_code }}] {{ ticket.subject }}"
          dedupe_by: "{{ ticket.fields.error_code }}"
      - zendesk.update:
          note: "Linked to {{ jira.key }} ({{ jira.url }})"
          fields: {jira_key: "{{ jira.key }}"}
      - jira.create_or_link_bug: {project: OPS, labels: [second]}
      - zendesk.update: {note: "Second: {{ jira.key }}"}
  - id: other
    on: [ticket.updated]
    then:
      - zendesk.update: {add_tags: [seen]}
"""

JIRA = {"key": "SUP-9", "id": "10009", "url": "https://jira.example/browse/SUP-9", "created": True}


def test_plan_gives_deterministic_keys() -> None:
    rule = load_text(RULES).rules[0]
    first = plan(rule, "zendesk:4012:2026-01-05T10:00:00Z")
    again = plan(load_text(RULES).rules[0], "zendesk:4012:2026-01-05T10:00:00Z")
    assert [i.idempotency_key for i in first] == [i.idempotency_key for i in again]
    assert all(len(i.idempotency_key) == 64 for i in first)
    assert first[0].idempotency_key == idempotency_key("bug", 0, "zendesk.update",
                                                       "zendesk:4012:2026-01-05T10:00:00Z")


def test_keys_differ_per_event_rule_and_index() -> None:
    bug, other = load_text(RULES).rules
    keys = {i.idempotency_key for i in plan(bug, "e1")}
    keys |= {i.idempotency_key for i in plan(bug, "e2")}
    keys |= {i.idempotency_key for i in plan(other, "e1")}
    assert len(keys) == 5 + 5 + 1


def test_depends_on_points_at_the_latest_earlier_producer() -> None:
    intents = plan(load_text(RULES).rules[0], "e1")
    tags, jira, note, jira2, note2 = intents
    assert tags.depends_on is None and jira.depends_on is None
    assert jira.produces == "jira" and tags.produces is None
    assert note.depends_on == jira.idempotency_key
    assert jira2.depends_on is None
    assert note2.depends_on == jira2.idempotency_key


def test_intent_params_are_raw_and_round_trip_through_json() -> None:
    intent = plan(load_text(RULES).rules[0], "e1")[2]
    data = json.loads(json.dumps(intent.to_json()))
    assert data["params"]["note"] == "Linked to {{ jira.key }} ({{ jira.url }})"
    assert ActionIntent.from_json(data) == intent


def test_render_params_uses_the_context_and_dependency_results() -> None:
    intents = plan(load_text(RULES).rules[0], "e1")
    ns = make_ctx().namespace() | {"jira": JIRA}
    assert render_params(intents[2], intents[2].params, ns) == {
        "note": "Linked to SUP-9 (https://jira.example/browse/SUP-9)",
        "public": False,
        "add_tags": [],
        "remove_tags": [],
        "fields": {"jira_key": "SUP-9"},
        "status": None,
    }
    bug = render_params("jira.create_or_link_bug", intents[1].params, ns)
    assert bug["summary"] == "[E42] Checkout fails"
    assert bug["dedupe_by"] == "E42"
    assert bug["priority"] is None
    assert "h3. Steps to reproduce" in bug["description"]


def test_render_params_without_the_dependency_result_is_a_clear_error() -> None:
    intent = plan(load_text(RULES).rules[0], "e1")[2]
    with pytest.raises(TemplateRenderError, match=r"^zendesk\.update\.fields\.jira_key: "
                                                  r"undefined in template: 'jira' is undefined$"):
        render_params(intent, intent.params, make_ctx().namespace())


def test_render_params_does_not_touch_non_template_params() -> None:
    ns = make_ctx().namespace()
    out = render_params("zendesk.update", {"add_tags": ["{{ x }}"], "note": "hi"}, ns)
    assert out["add_tags"] == ["{{ x }}"]


def test_intent_params_are_read_only_yet_json_serialisable_as_is() -> None:
    intent = plan(load_text(RULES).rules[0], "e1")[2]
    with pytest.raises(TypeError):
        intent.params["note"] = "changed"  # type: ignore[index]
    with pytest.raises(TypeError):
        intent.params["fields"]["jira_key"] = "x"
    assert json.loads(json.dumps(dict(intent.params)))["fields"] == {"jira_key": "{{ jira.key }}"}
    assert copy.deepcopy(intent) == intent
