"""Template sandbox escapes: in a rule's templates they are refused (at load where the template
shows it, else at render); typed into a ticket by a customer they are inert text."""

from __future__ import annotations

import pytest

from rules import ProblemsError
from rules.templating import TemplateRenderError, render

from .helpers import load_text, make_ctx

LOAD = "load"
RENDER = "render"

# (template in a rule, where it is stopped)
ESCAPES = [
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", LOAD),
    ("{{ ticket['__class__'] }}", LOAD),
    ("{{ ticket.subject|attr('__class__') }}", LOAD),
    ("{{ ticket.tags|map(attribute='__class__')|list }}", LOAD),
    ("{{ ticket.tags|map('attr', '__class__')|list }}", LOAD),
    ("{{ cycler.__init__.__globals__.os }}", LOAD),
    ("{{ lipsum.__globals__['os'].popen('id').read() }}", LOAD),
    ("{{ joiner() }}", LOAD),
    ("{% set ns = namespace(x=1) %}{{ ns.x }}", LOAD),
    ("{{ range(100000)|list }}", LOAD),
    ("{{ config }}", LOAD),
    ("{{ '{0.__class__}'.format(ticket.subject) }}", RENDER),
    ("{{ '{x.__class__.__mro__}'.format_map({'x': ticket.subject}) }}", RENDER),
    ("{{ ('{0.__class__}'|attr('format'))(ticket.subject) }}", RENDER),
    ("{{ ticket.tags.append('pwned') }}", RENDER),
    ("{{ ticket.fields.update({'error_code': 'x'}) }}", LOAD),
    ("{{ 'x' * 100000000 }}", RENDER),
    ("{{ 9 ** 9999999 }}", RENDER),
]


@pytest.mark.parametrize(("template", "stopped"), ESCAPES)
def test_an_escape_in_a_rule_template_is_refused(template: str, stopped: str) -> None:
    yaml_note = template.replace("'", "''")
    text = ("rules:\n  - id: r\n    on: [ticket.created]\n"
            f"    then: [{{zendesk.update: {{note: '{yaml_note}'}}}}]\n")
    if stopped == LOAD:
        with pytest.raises(ProblemsError) as info:
            load_text(text)
        assert str(info.value.problems[0]).startswith("a.yaml:4: rules[0].then[0]")
        return
    load_text(text)  # not visible in the template's shape: the sandbox stops it at render
    ctx = make_ctx()
    with pytest.raises(TemplateRenderError, match="blocked by the template sandbox"):
        render(template, ctx.namespace())
    assert list(ctx.ticket["tags"]) == ["bug_confirmed", "billing"]  # nothing mutated


@pytest.mark.parametrize("payload", [t for t, _ in ESCAPES] + [
    "{{ 7*7 }}", "{% for x in range(9) %}boom{% endfor %}", "{# comment #}", "{% raw %}",
    "${jndi:ldap://x}", "{{ self }}"])
def test_the_same_text_typed_into_a_ticket_is_inert(payload: str) -> None:
    ctx = make_ctx(subject=payload, description=payload, custom_fields={"error_code": payload})
    note = render("{{ ticket.subject }}|{{ ticket.description }}|{{ ticket.fields.error_code }}",
                  ctx.namespace())
    assert note == f"{payload}|{payload}|{payload}"


def test_a_format_string_typed_by_a_customer_cannot_reach_internals_either() -> None:
    ctx = make_ctx(subject="{error_code.__class__.__mro__}")
    with pytest.raises(TemplateRenderError, match="blocked by the template sandbox"):
        render("{{ ticket.subject.format_map(ticket.fields) }}", ctx.namespace())
