from __future__ import annotations

import pytest
from jinja2 import TemplateSyntaxError

from rules import (
    DEFAULT_BUG_DESCRIPTION,
    TemplateRenderError,
    compile_template,
    render,
    template_roots,
)
from rules.templating import template_refs

from .helpers import make_ctx


def test_customer_text_that_looks_like_a_template_renders_literally() -> None:
    ns = make_ctx(subject="{{ 7*7 }} {% for x in range(9) %}boom{% endfor %}").namespace()
    assert render("Subject: {{ ticket.subject }}", ns) == (
        "Subject: {{ 7*7 }} {% for x in range(9) %}boom{% endfor %}")


def test_sandbox_blocks_access_to_python_internals_with_a_clear_error() -> None:
    with pytest.raises(TemplateRenderError, match="blocked by the template sandbox"):
        render("{{ ''.__class__.__mro__ }}", {})


def test_templates_cannot_mutate_their_inputs() -> None:
    ns = make_ctx().namespace()
    with pytest.raises(TemplateRenderError, match="sandbox"):
        render("{{ ticket.tags.append('hacked') }}", ns)


def test_undefined_names_are_errors_not_empty_strings() -> None:
    with pytest.raises(TemplateRenderError, match="'jira' is undefined"):
        render("Linked to {{ jira.key }}", make_ctx().namespace())


def test_output_is_not_html_escaped() -> None:
    assert render("{{ ticket.subject }}", make_ctx(subject="a < b & c").namespace()) == (
        "a < b & c")


def test_compile_template_reports_syntax_errors_with_a_line() -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        compile_template("ok\n{{ ticket.subject ")
    assert info.value.lineno == 2


def test_template_roots_and_attribute_paths() -> None:
    text = ("{{ ticket.fields.error_code }} {{ ticket['subject'] | upper }} "
            "{{ ticket.fields.get('area', 'n/a') }} {% for t in ticket.tags %}{{ t }}{% endfor %}"
            " {{ jira.key }}")
    assert template_roots(text) == {"ticket", "jira"}
    assert {r.dotted for r in template_refs(text)} == {
        "ticket.fields.error_code", "ticket.subject", "ticket.fields.area", "ticket.tags",
        "jira.key",
    }


def test_dynamic_access_yields_the_static_prefix() -> None:
    assert {r.dotted for r in template_refs("{{ ticket.fields[name] }}")} == {
        "ticket.fields", "name"}


def test_default_bug_description_renders_missing_custom_fields_as_not_provided() -> None:
    ctx = make_ctx(custom_fields={"steps_to_reproduce": "1. open checkout\n2. pay"})
    text = render(DEFAULT_BUG_DESCRIPTION, ctx.namespace())
    assert "h3. Steps to reproduce\n1. open checkout\n2. pay\n" in text
    assert "h3. Expected result\nnot provided\n" in text
    assert "h3. Environment\nnot provided\n" in text
    assert "* Zendesk ticket: #4012 https://acme.zendesk.com/agent/tickets/4012" in text
    assert "* Priority: high" in text and "* Organization: 70" in text
    assert "* Requester: 7" in text
    assert text.endswith("h3. Customer report\nClicking pay shows error E42.\n")


def test_namespace_always_has_link_kinds_and_is_a_copy_of_the_context() -> None:
    ctx = make_ctx()
    ns = ctx.namespace()
    assert ns["links"] == {"jira": [], "pagerduty": [], "slack": [], "productboard": []}
    assert ns["event"] == {"type": "ticket.updated", "source": "webhook"}
    ns["ticket"]["tags"].append("changed")
    assert ctx.ticket["tags"] == ["bug_confirmed", "billing"]
    assert render("{{ links.jira | length }}", ns) == "0"
