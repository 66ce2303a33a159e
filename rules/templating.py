"""Sandboxed Jinja2 templates for action parameters.

Templates are compiled at load time (syntax errors become load problems) and rendered at dispatch
time. The environment is an immutable sandbox with ``StrictUndefined`` and no autoescaping, so:

- a template may not reach Python internals (``''.__class__``) nor mutate its inputs, has no
  globals (no ``range``, ``cycler``, ``lipsum``...), and ``*`` / ``**`` are bounded;
- a name the namespace lacks is an error (:class:`TemplateRenderError`), never an empty string;
- text coming from a ticket is data: Jinja renders values once and never re-evaluates its output,
  so a subject of ``{{ 7*7 }}`` renders as ``{{ 7*7 }}``.

:func:`template_refs` reads a template's AST for the dotted paths it references
(``ticket.fields.error_code``), which the loader checks and counts.
"""

from __future__ import annotations

__all__ = [
    "ENV",
    "Ref",
    "TemplateRenderError",
    "compile_template",
    "private_attributes",
    "render",
    "template_refs",
    "template_roots",
]

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, nodes
from jinja2 import meta as jinja_meta
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: Longest text a ``*`` or ``**`` inside a template may produce (``'-' * 40`` is fine).
MAX_PRODUCT = 10_000


class _RuleTemplateEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, minus the globals rule templates have no use for (``range``, ``lipsum``,
    ``cycler``, ``joiner``, ``namespace``, ``dict``) and with ``*`` / ``**`` bounded, so that a
    template can neither reach Python internals nor exhaust memory or time."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > 64:
                raise SecurityError("exponent too large in template")
            return left ** right
        if isinstance(left, str | list | tuple) or isinstance(right, str | list | tuple):
            count = right if isinstance(right, int) else left
            text = left if isinstance(right, int) else right
            if isinstance(count, int) and len(text) * max(count, 0) > MAX_PRODUCT:
                raise SecurityError(f"template product longer than {MAX_PRODUCT} characters")
        return left * right


ENV = _RuleTemplateEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
)
ENV.globals.clear()


class TemplateRenderError(Exception):
    """A template could not be rendered: an undefined name, a blocked access, a failing filter."""


@dataclass(frozen=True, slots=True)
class Ref:
    """A dotted path a template reads, e.g. ``("ticket", "fields", "error_code")``.

    ``lenient`` marks a ``.get("name")`` lookup, which tolerates a missing key.
    """

    path: tuple[str, ...]
    lenient: bool = False

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


@lru_cache(maxsize=1024)
def compile_template(text: str) -> Template:
    """Compile ``text``; raises ``jinja2.TemplateSyntaxError`` (with ``lineno``) when invalid."""
    return ENV.from_string(text)


@lru_cache(maxsize=1024)
def _parse(text: str) -> nodes.Template:
    return ENV.parse(text)


def template_roots(text: str) -> set[str]:
    """Names the template takes from its namespace (``{"ticket", "jira"}``)."""
    return set(jinja_meta.find_undeclared_variables(_parse(text)))


def _chain(node: nodes.Node) -> tuple[str, ...] | None:
    """The dotted path of a pure attribute/constant-key chain, else ``None``."""
    if isinstance(node, nodes.Name) and node.ctx == "load":
        return (node.name,)
    if isinstance(node, nodes.Getattr):
        base = _chain(node.node)
        return None if base is None else (*base, node.attr)
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        base = _chain(node.node)
        if base is None:
            return None
        key = node.arg.value
        return (*base, key) if isinstance(key, str) else base  # an index reads the whole list
    return None


def _collect(node: nodes.Node, out: set[Ref]) -> None:
    if (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Getattr)
        and node.node.attr == "get"
        and node.args
        and isinstance(node.args[0], nodes.Const)
        and isinstance(node.args[0].value, str)
    ):
        base = _chain(node.node.node)
        if base is not None:
            out.add(Ref((*base, node.args[0].value), lenient=True))
            for child in [*node.args[1:], *node.kwargs]:
                _collect(child, out)
            return
    chain = _chain(node)
    if chain is not None:
        out.add(Ref(chain))
        return
    for child in node.iter_child_nodes():
        _collect(child, out)


def template_refs(text: str) -> frozenset[Ref]:
    """Dotted paths the template reads from its namespace, as precisely as the AST allows.

    Dynamic access (``ticket[name]``) yields the shortest static prefix (``ticket``), so callers
    that count field usage stay conservative.
    """
    tree = _parse(text)
    roots = jinja_meta.find_undeclared_variables(tree)
    found: set[Ref] = set()
    _collect(tree, found)
    return frozenset(ref for ref in found if ref.path[0] in roots)


def private_attributes(text: str) -> set[str]:
    """Attribute names starting with ``_``, also as filter arguments (the sandbox refuses them
    at render; the loader refuses them at load)."""
    tree = _parse(text)
    names = {n.attr for n in tree.find_all(nodes.Getattr) if n.attr.startswith("_")}
    names |= {
        n.arg.value
        for n in tree.find_all(nodes.Getitem)
        if isinstance(n.arg, nodes.Const) and isinstance(n.arg.value, str)
        and n.arg.value.startswith("_")
    }
    # ``|attr('__class__')``, ``|map(attribute='__class__')``: names handed to filters.
    for node in tree.find_all(nodes.Filter):
        for arg in [*node.args, *(kw.value for kw in node.kwargs)]:
            if isinstance(arg, nodes.Const) and isinstance(arg.value, str) \
                    and arg.value.startswith("_"):
                names.add(arg.value)
    return names


def render(text: str, namespace: Mapping[str, Any]) -> str:
    """Render ``text`` with ``namespace``.

    Raises :class:`TemplateRenderError` naming the cause: an undefined name, an access the sandbox
    blocks, a syntax error, or any error a filter raised.
    """
    try:
        return compile_template(text).render(dict(namespace))
    except SecurityError as exc:
        raise TemplateRenderError(f"blocked by the template sandbox: {exc}") from exc
    except UndefinedError as exc:
        raise TemplateRenderError(f"undefined in template: {exc}") from exc
    except TemplateError as exc:
        raise TemplateRenderError(f"template error: {exc}") from exc
    except Exception as exc:  # a filter or operator inside the template failed
        raise TemplateRenderError(f"template failed: {type(exc).__name__}: {exc}") from exc
