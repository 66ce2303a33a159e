"""``switchboard test``: evaluate rules against one event file and explain every decision.

An event file is one JSON object::

    {
      "type": "ticket.updated",                 # an event type rules listen to (rules.events)
      "source": "test",                         # optional: what `event.source` is (default "test")
      "ticket": {                               # Ticket.to_dict() shape; only "id" is required
        "id": 4012, "subject": "Checkout fails", "status": "open", "priority": "high",
        "tags": ["bug_confirmed"], "fields": {"error_code": "E42"},
        "updated_at": "2026-01-05T10:00:00Z", ...
      },
      "changes": {"status": {"from": "new", "to": "open"}},   # optional; keys as in `changes.*`
      "links": {"jira": []},                                  # optional; kind -> linked keys
      "requester": {"name": "Dana", "email": "dana@example.com", "tags": ["vip"],
                    "fields": {"seats": 250}},                # optional; User.to_dict() shape
      "organization": {"name": "Globex", "tags": [], "fields": {"plan_tier": "enterprise"}},
      "comment": {"body": "Any news?", "public": true,        # ticket.comment_added only
                  "author_id": 7, "created_at": "2026-01-05T10:00:00Z"},
      "sla": {"target": "resolution", "minutes_left": 30,      # sla.* events only
              "due_at": "2026-01-05T14:00:00Z", "source": "config"}
    }

:func:`parse_event` validates it (every problem at once, :class:`EventFileError`) into an
:class:`~rules.context.EvalContext`; :func:`run_test` evaluates each rule listening to the event and
plans and renders the actions of the matched ones; :func:`render_report` turns that into plain text.
Results of earlier actions (``{{ jira.key }}``) are not known without running them: they render as
placeholders such as ``<jira.key>``. Nothing here writes anything or talks to any vendor.
"""

from __future__ import annotations

__all__ = [
    "EventFileError",
    "PlannedAction",
    "RuleOutcome",
    "TestReport",
    "load_event",
    "parse_event",
    "gate_notes",
    "placeholder_namespace",
    "render_report",
    "run_test",
]

import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .actions import ACTIONS
from .context import (
    COMMENT_KEYS,
    ORGANIZATION_KEYS,
    REQUESTER_KEYS,
    SLA_KEYS,
    Change,
    EvalContext,
    blank_person,
)
from .engine import format_duration
from .evaluator import Evaluation
from .events import EVENT_TYPES
from .model import Mode, Rule, RuleSet
from .occurrence import COMMENT_ADDED, SOLVED_EVENT, contexts, evaluate_once, event_types
from .planner import plan, render_params
from .templating import TemplateRenderError

#: Keys of an event file, and of its ``ticket`` (the ``Ticket.to_dict()`` shape).
EVENT_KEYS = ("type", "source", "ticket", "changes", "links", "requester", "organization",
              "comment", "sla")
TICKET_KEYS: dict[str, Any] = {
    "id": None, "updated_at": None, "created_at": None, "subject": "", "description": "",
    "status": None, "priority": None, "type": None, "tags": [], "requester_id": None,
    "organization_id": None, "assignee_id": None, "group_id": None, "fields": {}, "url": None,
}
_INT_KEYS = ("requester_id", "organization_id", "assignee_id", "group_id")
_TEXT_KEYS = ("updated_at", "created_at", "subject", "description", "status", "priority", "type",
              "url")


class EventFileError(Exception):
    """The event file is unreadable or malformed; :attr:`problems` lists every problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        """``event.json: invalid event file`` followed by one indented line per problem."""
        return "\n".join([f"{self.source}: invalid event file", *(f"  - {p}" for p in
                                                                  self.problems)])


class _Pending:
    """Stands for an earlier action's result: ``{{ jira.key }}`` renders as ``<jira.key>``."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> _Pending:
        if attr.startswith("_"):
            raise AttributeError(attr)
        return _Pending(f"{self._name}.{attr}")

    def __getitem__(self, key: Any) -> _Pending:
        return _Pending(f"{self._name}.{key}")

    def __iter__(self) -> Iterator[_Pending]:
        # Iterating (``window.tickets | join(', ')``) yields the placeholder itself, once; without
        # this, Python would iterate through __getitem__ forever.
        yield self

    def __str__(self) -> str:
        return f"<{self._name}>"

    __repr__ = __str__


def placeholder_namespace(ctx: EvalContext, rule: Rule | None = None) -> dict[str, Any]:
    """``ctx.namespace()`` plus a placeholder for every action result namespace (``jira``),
    and for ``window`` when ``rule`` has one (what it holds is known only when it fires)."""
    namespace = ctx.namespace()
    for spec in ACTIONS.values():
        if spec.produces and spec.produces not in namespace:
            namespace[spec.produces] = _Pending(spec.produces)
    if rule is not None and rule.window is not None:
        namespace["window"] = _Pending("window")
    return namespace


def gate_notes(rule: Rule) -> list[str]:
    """What a single event cannot tell about ``rule``'s window and throttle, in plain words."""
    notes: list[str] = []
    if rule.window is not None:
        window = rule.window
        group = f", counted per {window.group_by}" if window.group_by else ""
        within = format_duration(window.within)
        notes.append(f"window: this match counts toward {window.count} ticket(s) within "
                     f"{within}{group}; the rule fires once when the count is "
                     "reached (one event alone cannot tell) — the actions below are what would "
                     "run then")
    if rule.throttle is not None:
        limits = []
        if rule.throttle.once_until_resolved:
            limits.append("once per ticket until it is solved or closed")
        if rule.throttle.at_most is not None:
            at_most = rule.throttle.at_most
            by = f" per {at_most.by}" if at_most.by else ""
            limits.append(f"at most {at_most.count} per {format_duration(at_most.per)}{by}")
        notes.append(f"throttle: fires {' and '.join(limits)}; earlier fires are not known "
                     "in a test (use backtest for that)")
    return notes


# -- the event file ----------------------------------------------------------------------------


def _ticket(raw: Any, custom_fields: Collection[str], problems: list[str]) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        problems.append("'ticket' must be an object (the Ticket.to_dict() shape)")
        return {}
    ticket = {**TICKET_KEYS, "tags": [], "fields": {}}
    for key, value in raw.items():
        if key not in TICKET_KEYS:
            problems.append(f"ticket.{key}: unknown ticket field (known: "
                            f"{', '.join(TICKET_KEYS)}; custom fields go under ticket.fields)")
            continue
        ticket[key] = value
    if "id" not in raw:
        problems.append("ticket.id: missing (the ticket's number)")
    elif isinstance(ticket["id"], bool) or not isinstance(ticket["id"], int):
        problems.append(f"ticket.id: must be an integer, not {ticket['id']!r}")
    for key in _INT_KEYS:
        value = ticket[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append(f"ticket.{key}: must be an integer or null, not {value!r}")
    for key in _TEXT_KEYS:
        value = ticket[key]
        if value is not None and not isinstance(value, str):
            problems.append(f"ticket.{key}: must be a string or null, not {value!r}")
    tags = ticket["tags"]
    if tags is None:
        ticket["tags"] = []
    elif not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        problems.append(f"ticket.tags: must be a list of strings, not {tags!r}")
    fields = ticket["fields"]
    if fields is None:
        fields = {}
    if not isinstance(fields, Mapping):
        problems.append(f"ticket.fields: must be an object of custom fields by name, "
                        f"not {fields!r}")
        fields = {}
    known = set(custom_fields)
    for name in fields:
        if name not in known:
            hint = (f"configured: {', '.join(sorted(known))}" if known
                    else "the config names no custom fields")
            problems.append(f"ticket.fields.{name}: not a configured custom field ({hint})")
    # Like the hub: every configured custom field is present, None when unset.
    ticket["fields"] = {**dict.fromkeys(sorted(known)), **fields}
    return ticket


def _changes(raw: Any, problems: list[str]) -> dict[str, Change]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append("'changes' must be an object like "
                        '{"status": {"from": "new", "to": "open"}}')
        return {}
    out: dict[str, Change] = {}
    for path, change in raw.items():
        where = f"changes.{path}"
        if str(path).startswith(("ticket.", "changes.")):
            problems.append(f"{where}: key changes by the field path relative to the ticket "
                            f"('status', 'fields.error_code'), without a prefix")
            continue
        if not isinstance(change, Mapping) or set(change) - {"from", "to"} \
                or not {"from", "to"} & set(change):
            problems.append(f'{where}: must be {{"from": <old value>, "to": <new value>}}')
            continue
        out[str(path)] = Change(change.get("from"), change.get("to"))
    return out


def _links(raw: Any, problems: list[str]) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append('\'links\' must be an object like {"jira": ["SUP-1"]}')
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for kind, keys in raw.items():
        if keys is None:
            keys = []
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            problems.append(f"links.{kind}: must be a list of linked keys (strings)")
            continue
        out[str(kind)] = tuple(keys)
    return out


def _person(raw: Any, name: str, keys: tuple[str, ...], field_keys: Collection[str],
            setting: str, problems: list[str]) -> dict[str, Any] | None:
    """``requester`` / ``organization``: the ``to_dict()`` shape, every key optional."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.append(f"'{name}' must be an object with {', '.join(keys)}")
        return None
    person = blank_person(keys, sorted(field_keys))
    for key, value in raw.items():
        if key not in keys:
            problems.append(f"{name}.{key}: unknown key (known: {', '.join(keys)})")
            continue
        if key in ("id", "organization_id"):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                problems.append(f"{name}.{key}: must be an integer or null, not {value!r}")
                continue
        elif key in ("name", "email"):
            if value is not None and not isinstance(value, str):
                problems.append(f"{name}.{key}: must be a string or null, not {value!r}")
                continue
        elif key == "tags":
            if value is None:
                value = []
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                problems.append(f"{name}.tags: must be a list of strings, not {value!r}")
                continue
        elif key == "fields":
            if not isinstance(value, Mapping):
                problems.append(f"{name}.fields: must be an object of fields by key, "
                                f"not {value!r}")
                continue
            for field_key in value:
                if field_key not in field_keys:
                    known = ", ".join(sorted(field_keys)) or "none"
                    problems.append(f"{name}.fields.{field_key}: not configured in {setting} "
                                    f"(configured: {known})")
            value = {**person["fields"], **{k: v for k, v in value.items() if k in field_keys}}
        person[key] = value
    return person


def _sla(raw: Any, event_type: Any, problems: list[str]) -> dict[str, Any] | None:
    """The SLA target of an ``sla.*`` event (keys left out are null); refused on others."""
    is_sla = isinstance(event_type, str) and event_type.startswith("sla.")
    if raw is None:
        return dict.fromkeys(SLA_KEYS) if is_sla else None
    if not is_sla:
        problems.append("sla: only sla.warning and sla.breached events carry one")
        return None
    if not isinstance(raw, Mapping):
        problems.append(f"'sla' must be an object with {', '.join(SLA_KEYS)}")
        return None
    for key in raw:
        if key not in SLA_KEYS:
            problems.append(f"sla.{key}: unknown key (known: {', '.join(SLA_KEYS)})")
    return {key: raw.get(key) for key in SLA_KEYS}


def _comment(raw: Any, event_type: Any, problems: list[str]) -> dict[str, Any] | None:
    """The comment the change added: required for ``ticket.comment_added``, allowed with
    ``ticket.updated`` / ``ticket.solved`` (the change is then also ticket.comment_added)."""
    if raw is None:
        if event_type == COMMENT_ADDED:
            problems.append(f"comment: missing (a {event_type} event carries the comment: "
                            f"{', '.join(COMMENT_KEYS)})")
        return None
    if event_type not in (COMMENT_ADDED, SOLVED_EVENT, "ticket.updated"):
        problems.append(f"comment: a {event_type} event adds no comment (a new ticket's first "
                        "comment is ticket.description)")
        return None
    if not isinstance(raw, Mapping):
        problems.append(f"'comment' must be an object with {', '.join(COMMENT_KEYS)}")
        return None
    comment: dict[str, Any] = dict.fromkeys(COMMENT_KEYS)
    for key, value in raw.items():
        if key not in COMMENT_KEYS:
            problems.append(f"comment.{key}: unknown key (known: {', '.join(COMMENT_KEYS)})")
        elif key in ("id", "author_id") and value is not None and (
                isinstance(value, bool) or not isinstance(value, int)):
            problems.append(f"comment.{key}: must be an integer or null, not {value!r}")
        elif key in ("body", "created_at") and value is not None and not isinstance(value, str):
            problems.append(f"comment.{key}: must be a string or null, not {value!r}")
        elif key == "public" and not isinstance(value, bool):
            problems.append(f"comment.public: must be true or false, not {value!r}")
        else:
            comment[key] = value
    for key in ("body", "public"):
        if key not in raw:
            problems.append(f"comment.{key}: missing")
    return comment


def parse_event(data: Any, *, custom_fields: Collection[str] = (),
                user_fields: Collection[str] = (), organization_fields: Collection[str] = (),
                source: str = "event") -> EvalContext:
    """Validate a decoded event file into an :class:`EvalContext`.

    ``custom_fields`` are the configured custom field names; each is present in the ticket's
    ``fields`` (``None`` when the file does not set it), as in the hub. The same goes for the
    configured ``user_fields`` / ``organization_fields`` keys under ``requester.fields`` and
    ``organization.fields``. A ``ticket.comment_added`` event needs a ``comment``; other events
    refuse one. Raises :class:`EventFileError` listing every problem.
    """
    if not isinstance(data, Mapping):
        raise EventFileError(source, ["the event must be a JSON object with 'type' and 'ticket'"])
    problems: list[str] = []
    for key in data:
        if key not in EVENT_KEYS:
            problems.append(f"{key}: unknown key (an event has {', '.join(EVENT_KEYS)})")
    event_type = data.get("type")
    if event_type is None:
        problems.append(f"type: missing (one of {', '.join(EVENT_TYPES)})")
    elif event_type not in EVENT_TYPES:
        problems.append(f"type: unknown event type {event_type!r} "
                        f"(one of {', '.join(EVENT_TYPES)})")
    event_source = data.get("source", "test")
    if not isinstance(event_source, str):
        problems.append(f"source: must be a string, not {event_source!r}")
    if "ticket" not in data:
        problems.append("ticket: missing (the Ticket.to_dict() shape; at least 'id')")
        ticket: dict[str, Any] = {}
    else:
        ticket = _ticket(data["ticket"], custom_fields, problems)
    changes = _changes(data.get("changes"), problems)
    links = _links(data.get("links"), problems)
    requester = _person(data.get("requester"), "requester", REQUESTER_KEYS, user_fields,
                        "connectors.zendesk.user_fields", problems)
    organization = _person(data.get("organization"), "organization", ORGANIZATION_KEYS,
                           organization_fields, "connectors.zendesk.organization_fields",
                           problems)
    comment = _comment(data.get("comment"), event_type, problems)
    sla = _sla(data.get("sla"), event_type, problems)
    if problems:
        raise EventFileError(source, problems)
    # Like the hub: people the file leaves out are "unknown", with every configured field.
    if requester is None:
        requester = blank_person(REQUESTER_KEYS, sorted(user_fields))
    if organization is None:
        organization = blank_person(ORGANIZATION_KEYS, sorted(organization_fields))
    return EvalContext(str(event_type), str(event_source), ticket, changes, links,
                       requester=requester, organization=organization, comment=comment,
                       sla=sla)


def load_event(path: str | Path, *, custom_fields: Collection[str] = (),
               user_fields: Collection[str] = (),
               organization_fields: Collection[str] = ()) -> EvalContext:
    """Read and validate an event file; raises :class:`EventFileError` (unreadable, not JSON,
    or malformed)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EventFileError(str(path), [f"cannot read: {exc}"]) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventFileError(str(path), [f"not valid JSON: {exc.msg} at line {exc.lineno} "
                                         f"column {exc.colno}"]) from exc
    return parse_event(data, custom_fields=custom_fields, user_fields=user_fields,
                       organization_fields=organization_fields, source=str(path))


# -- evaluation -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """One action a matched rule would run: its params rendered, or why they could not be."""

    index: int
    action: str
    params: Mapping[str, Any]
    error: str | None = None
    depends_on_action: str | None = None


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """One listening rule's decision and, when it matched, the actions it would run."""

    rule: Rule
    evaluation: Evaluation | None
    actions: tuple[PlannedAction, ...] = ()

    @property
    def matched(self) -> bool:
        return self.evaluation is not None and self.evaluation.matched


@dataclass(frozen=True, slots=True)
class TestReport:
    """Everything ``switchboard test`` prints: the event and each listening rule's outcome."""

    __test__ = False  # not a pytest test class

    context: EvalContext
    outcomes: tuple[RuleOutcome, ...]
    event_types: tuple[str, ...] = ()

    @property
    def matched(self) -> tuple[RuleOutcome, ...]:
        return tuple(o for o in self.outcomes if o.matched)


def _plan_actions(rule: Rule, namespace: Mapping[str, Any]) -> tuple[PlannedAction, ...]:
    intents = plan(rule, "switchboard-test")
    by_key = {intent.idempotency_key: intent for intent in intents}
    out: list[PlannedAction] = []
    for intent in intents:
        dep = by_key.get(intent.depends_on) if intent.depends_on else None
        dep_name = f"{dep.index + 1}. {dep.action}" if dep else None
        try:
            params = render_params(intent, intent.params, namespace)
            out.append(PlannedAction(intent.index, intent.action, params, None, dep_name))
        except (TemplateRenderError, ValueError) as exc:
            out.append(PlannedAction(intent.index, intent.action, {}, str(exc), dep_name))
    return tuple(out)


def represented_types(ctx: EvalContext) -> tuple[str, ...]:
    """The event types an event file stands for, as the hub would see the same change: its
    ``type``, plus ``ticket.solved`` when ``changes`` says the status became solved, plus
    ``ticket.comment_added`` when it has a ``comment``."""
    if ctx.event_type in ("ticket.created", "ticket.updated"):
        return event_types(ctx.event_type, ctx.changes, comment=ctx.comment is not None)
    if ctx.event_type == SOLVED_EVENT and ctx.comment is not None:
        return (SOLVED_EVENT, COMMENT_ADDED)
    return (ctx.event_type,)


def run_test(rules: RuleSet, ctx: EvalContext) -> TestReport:
    """Evaluate every rule listening to an event type the event stands for
    (:func:`represented_types`), in file order, each once, and plan the matches.

    A rule in mode ``off`` is listed but not evaluated, as in the hub.
    """
    types = represented_types(ctx)
    by_type = contexts(ctx, types, ctx.comment)
    decided = {rule.id: evaluation for rule, evaluation in evaluate_once(rules, by_type)}
    outcomes: list[RuleOutcome] = []
    for rule in rules:
        if not any(t in rule.on for t in types):
            continue
        evaluation = decided.get(rule.id)
        if evaluation is None:  # mode off
            outcomes.append(RuleOutcome(rule, None))
            continue
        actions: tuple[PlannedAction, ...] = ()
        if evaluation.matched:
            namespace = placeholder_namespace(by_type[evaluation.event_type], rule)
            actions = _plan_actions(rule, namespace)
        outcomes.append(RuleOutcome(rule, evaluation, actions))
    return TestReport(ctx, tuple(outcomes), types)


# -- plain text -------------------------------------------------------------------------------


def _value(value: Any) -> str:
    if isinstance(value, str) and "\n" in value:
        return "\n" + "\n".join(f"             | {line}" for line in value.splitlines())
    return repr(value)


def render_report(report: TestReport) -> str:
    """The report as plain text, one block per listening rule."""
    ctx = report.context
    ticket = ctx.ticket
    types = report.event_types or (ctx.event_type,)
    also = f" (also {', '.join(types[1:])})" if len(types) > 1 else ""
    lines = [f"Event {types[0]}{also} (source {ctx.event_source}) on ticket "
             f"{ticket.get('id')}: {ticket.get('subject')!r}"]
    if ctx.changes:
        lines.append("  changes: " + "; ".join(
            f"{path} {change.from_!r} → {change.to!r}" for path, change in ctx.changes.items()))
    else:
        lines.append("  changes: none")
    links = ctx.namespace()["links"]
    lines.append("  links: " + "; ".join(
        f"{kind} {', '.join(keys) if keys else '(none)'}" for kind, keys in links.items()))
    for name in ("requester", "organization"):
        person = getattr(ctx, name)
        if person is not None and person.get("name") is not None:
            lines.append(f"  {name}: {person.get('name')!r}" + (
                f" <{person['email']}>" if person.get("email") else ""))
    if ctx.comment is not None:
        kind = "public reply" if ctx.comment.get("public") else "internal note"
        lines.append(f"  comment ({kind} by {ctx.comment.get('author_id')}): "
                     f"{_value(ctx.comment.get('body'))}")
    listened = " or ".join(types)
    if not report.outcomes:
        lines += ["", f"No rule listens to {listened}."]
        return "\n".join(lines)
    for outcome in report.outcomes:
        lines.append("")
        rule = outcome.rule
        if outcome.evaluation is None:
            lines.append(f"- rule {rule.id} is off: not evaluated")
            continue
        lines.append(outcome.evaluation.explain())
        if not outcome.matched:
            continue
        if rule.mode is Mode.SHADOW:
            lines.append("  shadow mode: these actions would be recorded, not executed")
        lines += [f"  {note}" for note in gate_notes(rule)]
        lines.append("  actions that would run:" if outcome.actions else "  (no actions)")
        for action in outcome.actions:
            after = f" (after {action.depends_on_action})" if action.depends_on_action else ""
            lines.append(f"    {action.index + 1}. {action.action}{after}")
            if action.error:
                lines.append(f"         cannot render: {action.error}")
                continue
            for name, value in action.params.items():
                if value is None:
                    continue
                lines.append(f"         {name}: {_value(value)}")
    matched = report.matched
    lines += ["", f"{len(matched)} of {len(report.outcomes)} rule(s) listening to "
              f"{listened} matched" + (": " + ", ".join(o.rule.id for o in matched)
                                       if matched else ".")]
    if any(a.params or a.error for o in matched for a in o.actions):
        lines.append("Results of earlier actions are not known in a test: they show as "
                     "<jira.key> and the like (a window's figures as <window.count>).")
    return "\n".join(lines)
