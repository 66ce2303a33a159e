"""Validation of one rule's conditions, actions and templates (used by :mod:`rules.loader`).

Checkers append :class:`~rules.source.Problem` objects to a shared list and keep going, so that a
file with ten mistakes reports ten problems. What they accept becomes the model objects.
"""

from __future__ import annotations

__all__ = ["ActionChecker", "ConditionChecker", "RuleProblems"]

import difflib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError
from pydantic import ValidationError

from .actions import ACTIONS, ActionSpec
from .events import EVENT_TYPES
from .fields import CONFIGURED, MAPPING_METHODS, FieldKind, FieldRegistry, FieldSpec
from .model import ActionCall, All, Any_, Condition, FieldCondition, Not
from .operators import OPERATORS, Op, OperatorSpec, Reads, ValueProblem, ValueShape
from .source import Path, Positions, Problem, format_path
from .templating import Ref, compile_template, private_attributes, template_refs

LEAF_KEYS = ("field", "op", "value", "case_sensitive")
GROUP_KEYS = ("all", "any", "not")

#: What may follow each template root; ``None`` = anything (not checked).
Schema = Mapping[str, "Schema | None"]


def _hint(word: str, options: Iterable[str], fallback: str = "") -> str:
    close = difflib.get_close_matches(word, sorted(options), n=3)
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else fallback


@dataclass
class RuleProblems:
    """Where one rule sits in its file, and the list its problems go to."""

    positions: Positions
    prefix: Path
    problems: list[Problem]

    def add(self, path: Sequence[str | int], message: str, hint: str = "") -> None:
        self.problems.append(self.positions.problem(path, message, hint, prefix=self.prefix))

    def line(self, path: Sequence[str | int]) -> int | None:
        return self.positions.line((*self.prefix, *path))


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


class ConditionChecker:
    """Checks ``if:`` and builds its :data:`~rules.model.Condition` tree."""

    def __init__(self, registry: FieldRegistry, report: RuleProblems, roots: frozenset[str],
                 events: Sequence[str]) -> None:
        self.registry = registry
        self.report = report
        self.roots = roots
        self.events = events
        self.fields_used: set[str] = set()

    def check(self, raw: Any, path: Path) -> Condition | None:
        if not isinstance(raw, dict):
            self.report.add(path, "a condition is a mapping: {field, op, value} or all/any/not")
            return None
        groups = [key for key in GROUP_KEYS if key in raw]
        if not groups:
            return self._leaf(raw, path)
        if len(raw) > 1:
            extra = ", ".join(str(k) for k in raw if k != groups[0])
            self.report.add(path, f"'{groups[0]}' cannot be combined with {extra}",
                            "nest them: a group condition has exactly one key")
            return None
        key = groups[0]
        here = format_path((*path, key))
        line = self.report.line((*path, key))
        if key == "not":
            inner = self.check(raw["not"], (*path, "not"))
            return None if inner is None else Not(inner, here, line)
        items = raw[key]
        if not isinstance(items, list) or not items:
            self.report.add((*path, key), f"'{key}' needs a non-empty list of conditions")
            return None
        children = [self.check(item, (*path, key, i)) for i, item in enumerate(items)]
        if any(child is None for child in children):
            return None
        kind = All if key == "all" else Any_
        return kind(tuple(c for c in children if c is not None), here, line)

    def _leaf(self, raw: Mapping[Any, Any], path: Path) -> FieldCondition | None:
        ok = True
        for key in raw:
            if key not in LEAF_KEYS:
                self.report.add((*path, key), f"unknown key '{key}' in condition",
                                _hint(str(key), (*LEAF_KEYS, *GROUP_KEYS)))
                ok = False
        spec = self._field(raw, path)
        op = self._op(raw, path)
        if spec is not None and op is not None:
            ok = self._fits(spec, op, path) and ok
        if op is not None:
            ok = self._value(raw, path, op, spec) and ok
        case_sensitive = raw.get("case_sensitive", False)
        if not isinstance(case_sensitive, bool):
            self.report.add((*path, "case_sensitive"), "case_sensitive must be true or false")
            ok = False
        if not ok or spec is None or op is None:
            return None
        self.fields_used |= self.registry.expand(spec.path)
        return FieldCondition(spec.path, op.op, raw.get("value"), case_sensitive,
                              format_path(path), self.report.line(path))

    def _field(self, raw: Mapping[Any, Any], path: Path) -> FieldSpec | None:
        if "field" not in raw:
            self.report.add(path, "condition is missing 'field'")
            return None
        name = raw["field"]
        spec = self.registry.get(name) if isinstance(name, str) else None
        if spec is None:
            message, hint = self.registry.unknown(str(name))
            self.report.add((*path, "field"), message, hint)
            return None
        if spec.root not in self.roots or not all(
                EVENT_TYPES[e].carries(spec.path) for e in self.events):
            message, hint = self.registry.not_carried(
                spec.path, self.events or list(EVENT_TYPES))
            self.report.add((*path, "field"), message, hint)
            return None
        return spec

    def _op(self, raw: Mapping[Any, Any], path: Path) -> OperatorSpec | None:
        if "op" not in raw:
            self.report.add(path, "condition is missing 'op'",
                            f"operators: {', '.join(op.value for op in Op)}")
            return None
        name = raw["op"]
        try:
            return OPERATORS[Op(name)]
        except ValueError:
            self.report.add((*path, "op"), f"unknown operator {name!r}",
                            _hint(str(name), (op.value for op in Op),
                                  f"operators: {', '.join(op.value for op in Op)}"))
            return None

    def _fits(self, spec: FieldSpec, op: OperatorSpec, path: Path) -> bool:
        if spec.kind not in op.kinds:
            fitting = [o.value for o, s in OPERATORS.items() if spec.kind in s.kinds]
            self.report.add((*path, "op"),
                            f"'{op.op.value}' does not apply to {spec.path} ({spec.kind.value})",
                            f"operators for {spec.kind.value} fields: {', '.join(fitting)}")
            return False
        if op.reads is Reads.CHANGE and spec.change_key is None:
            self.report.add((*path, "op"), f"'{op.op.value}' needs a ticket field; "
                            f"{spec.path} has no changes")
            return False
        return True

    def _value(self, raw: Mapping[Any, Any], path: Path, op: OperatorSpec,
               spec: FieldSpec | None) -> bool:
        name, where = op.op.value, (*path, "value")
        if op.value is ValueShape.NONE:
            if "value" in raw:
                self.report.add(where, f"'{name}' takes no value", "remove 'value'")
                return False
            return True
        if "value" not in raw or raw["value"] is None:
            self.report.add(path, f"'{name}' needs a value: {op.value.value}")
            return False
        value = raw["value"]
        if op.check is not None:
            case_sensitive = raw.get("case_sensitive", False)
            try:
                op.check(value, case_sensitive if isinstance(case_sensitive, bool) else False)
            except ValueProblem as problem:
                self.report.add(where, f"'{name}': {problem.message}", problem.hint)
                return False
            return True
        if op.value is ValueShape.SCALAR:
            if not _is_scalar(value):
                hint = "a list needs an operator like 'in' or 'contains_any'" if isinstance(
                    value, list) else "quote it to make it text"
                self.report.add(where, f"'{name}' needs {op.value.value}, not "
                                f"{type(value).__name__}", hint)
                return False
            values = [value]
        else:
            if not isinstance(value, list) or not value:
                self.report.add(where, f"'{name}' needs {op.value.value}",
                                f"write value: [{value!r}]" if _is_scalar(value) else "")
                return False
            bad = [i for i, item in enumerate(value) if not _is_scalar(item)]
            for i in bad:
                self.report.add((*where, i), "list items must be text, numbers or true/false")
            if bad:
                return False
            values = value
        return self._enum(spec, values, where, scalar=op.value is ValueShape.SCALAR)

    def _enum(self, spec: FieldSpec | None, values: list[Any], where: Path, *,
              scalar: bool) -> bool:
        if spec is None or spec.kind is not FieldKind.ENUM or not spec.values:
            return True
        allowed = {v.casefold() for v in spec.values}
        ok = True
        for i, item in enumerate(values):
            if str(item).casefold() not in allowed:
                self.report.add(where if scalar else (*where, i),
                                f"{item!r} is not a {spec.path} value",
                                _hint(str(item), spec.values, f"one of: {', '.join(spec.values)}"))
                ok = False
        return ok


#: Event types about a Jira issue or a Productboard feature, not one ticket: only
#: ``without_ticket`` actions apply.
TICKETLESS_PREFIX = ("jira.", "productboard.")


class ActionChecker:
    """Checks ``then:`` steps in order, tracking which result namespaces exist at each step."""

    def __init__(self, registry: FieldRegistry, report: RuleProblems,
                 roots: frozenset[str], *, key: str = "then",
                 extra: Mapping[str, Schema | None] | None = None,
                 events: Sequence[str] = ()) -> None:
        """``events``: the rule's event types; templates may name only what all of them carry
        (within ``roots``)."""
        self.registry = registry
        self.report = report
        self.key = key
        self.events = tuple(events)
        self.calls: list[ActionCall] = []
        self.fields_used: set[str] = set()
        known = registry.template_schema(self.events or None)
        self.schemas: dict[str, Schema | None] = {r: s for r, s in known.items() if r in roots}
        self.schemas.update(extra or {})

    def check(self, step: Any, index: int) -> None:
        path: Path = (self.key, index)
        if not isinstance(step, dict) or len(step) != 1:
            self.report.add(path, "an action is a single-key mapping: '- action.name: {params}'")
            return
        name, params = next(iter(step.items()))
        spec = ACTIONS.get(name) if isinstance(name, str) else None
        if spec is None:
            self.report.add((*path, name), f"unknown action {name!r}",
                            _hint(str(name), ACTIONS, f"actions: {', '.join(ACTIONS)}"))
            return
        ticketless = [e for e in self.events if e.startswith(TICKETLESS_PREFIX)]
        if ticketless and not spec.without_ticket:
            self.report.add((*path, name), f"{name} acts on one ticket, and {ticketless[0]} "
                            "events carry none",
                            "zendesk.update_linked reaches the tickets linked to the issue")
        self._step(spec, params, index, (*path, name))
        if spec.produces:
            # Published even when this step is invalid, so later steps report no knock-on errors.
            self.schemas[spec.produces] = {f: None for f in spec.result_fields}

    def _step(self, spec: ActionSpec, params: Any, index: int, path: Path) -> None:
        if params is None:
            params = {}
        if not isinstance(params, dict):
            self.report.add(path, f"params of {spec.name} must be a mapping")
            return
        before = len(self.report.problems)
        try:
            model = spec.params.model_validate(params)
        except ValidationError as exc:
            self._pydantic(exc, path, spec)
            return
        dumped = model.model_dump(mode="json")
        self._custom_fields(spec, dumped, path)
        uses: set[str] = set()
        for where, text in _template_strings(spec, dumped):
            uses |= self._template(text, (*path, *where))
        for name in sorted(spec.per_ticket_params):
            if isinstance(dumped.get(name), str):
                self._per_ticket(dumped[name], (*path, name))
        if len(self.report.problems) == before:
            self.calls.append(ActionCall(spec.name, dumped, index, self.report.line(path),
                                         frozenset(uses)))

    def _pydantic(self, exc: ValidationError, path: Path, spec: ActionSpec) -> None:
        fields = list(spec.params.model_fields)
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            message, hint = str(error["msg"]).removeprefix("Value error, "), ""
            if error["type"] == "extra_forbidden":
                message = f"unknown parameter '{loc[-1]}' for {spec.name}"
                hint = _hint(str(loc[-1]), fields, f"parameters: {', '.join(fields)}")
            elif error["type"] == "missing":
                message = f"missing required parameter '{loc[-1]}' for {spec.name}"
            elif error["type"] == "string_pattern_mismatch":
                pattern = (error.get("ctx") or {}).get("pattern", "")
                message = PATTERN_MESSAGES.get(pattern, message)
            self.report.add((*path, *loc), message, hint)

    def _custom_fields(self, spec: ActionSpec, params: Mapping[str, Any], path: Path) -> None:
        for param in sorted(spec.custom_field_params):
            for key in params.get(param) or {}:
                if key not in self.registry.custom_fields:
                    message, hint = self.registry.unknown(f"ticket.fields.{key}")
                    self.report.add((*path, param, key), message, hint)

    def _per_ticket(self, text: str, path: Path) -> None:
        """A template rendered for each ticket the action writes: it may also name ``ticket``
        and ``requester`` (of that ticket), which the event need not carry and which are not
        read for the event itself."""
        every = self.registry.template_schema(None)
        saved = dict(self.schemas), set(self.fields_used)
        self.schemas.update({r: every[r] for r in ("ticket", "requester") if r in every})
        try:
            self._template(text, path)
        finally:
            self.schemas, self.fields_used = saved

    def _template(self, text: str, path: Path) -> set[str]:
        try:
            compile_template(text)
        except TemplateSyntaxError as exc:
            self.report.add(path, f"template syntax error: {exc.message} "
                            f"(template line {exc.lineno})")
            return set()
        private = sorted(private_attributes(text))
        if private:
            self.report.add(path, f"template uses {', '.join(private)}; names starting with '_' "
                            "are not allowed in templates")
        uses: set[str] = set()
        for ref in sorted(template_refs(text), key=lambda r: r.path):
            uses.add(ref.path[0])
            if self._ref(ref, path):
                self.fields_used |= self.registry.expand(ref.dotted)
        return uses

    def _ref(self, ref: Ref, path: Path) -> bool:
        root = ref.path[0]
        if root not in self.schemas:
            producers = [s.name for s in ACTIONS.values() if s.produces == root]
            carriers = [e.name for e in EVENT_TYPES.values() if root in e.roots]
            if producers:
                self.report.add(path, f"'{ref.dotted}' is used before any action produces "
                                f"'{root}'", f"put {' or '.join(producers)} before this action")
            elif carriers:
                missing = [e for e in self.events if root not in EVENT_TYPES[e].roots]
                self.report.add(path, f"template: '{ref.dotted}' is not carried by "
                                f"{', '.join(missing) or 'every event of this rule'}",
                                f"only {', '.join(carriers)} carries it; a rule reads only "
                                f"fields that every event in its 'on' carries")
            else:
                self.report.add(path, f"unknown name '{root}' in template",
                                _hint(root, self.schemas, f"names: {', '.join(self.schemas)}"))
            return False
        schema = self.schemas[root]
        for depth, segment in enumerate(ref.path[1:], 1):
            if schema is None or segment in MAPPING_METHODS:
                return True
            if segment not in schema:
                if ref.lenient and depth == len(ref.path) - 1:
                    return True
                prefix = ".".join(ref.path[:depth])
                if f"{prefix}." in CONFIGURED:
                    message, hint = self.registry.unknown(f"{prefix}.{segment}")
                    self.report.add(path, f"template: {message}", hint)
                else:
                    self.report.add(path, f"template: '{prefix}' has no '{segment}'",
                                    _hint(segment, schema, f"it has: {', '.join(sorted(schema))}"))
                return False
            schema = schema[segment]
        return True


PATTERN_MESSAGES = {
    r"^[^\s,]+$": "must be a single word (no spaces or commas)",
    r"^[A-Z][A-Z0-9_]+$": "must be a Jira project key such as 'SUP'",
}


def _template_strings(spec: ActionSpec, params: Mapping[str, Any]) -> Iterator[tuple[Path, str]]:
    """``(path, text)`` of every template string in the template params, nested ones included."""
    for name in sorted(spec.template_params):
        yield from _strings(params.get(name), (name,))


def _strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))
