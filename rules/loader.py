"""Load rule files into a :class:`~rules.model.RuleSet`, or refuse with every problem at once.

Validation covers the whole language: rule keys, ids (unique across every file), modes, event
types, conditions (fields, operators, value shapes, enum values), actions (names, params), and
templates (syntax, the names they use, and whether those names exist at that point of the rule —
``jira.key`` needs an earlier action that produces ``jira``). Each problem carries ``file:line``,
the path inside the file and, where one helps, a hint. Nothing is partially loaded: either every
rule is valid and a RuleSet comes back, or :class:`~rules.source.ProblemsError` is raised.
"""

from __future__ import annotations

__all__ = ["load_rule_files", "load_rules"]

import difflib
import os
import re
from collections.abc import Collection, Iterable, Mapping
from datetime import timedelta
from pathlib import Path as FsPath
from typing import Any

from .checks import ActionChecker, ConditionChecker, RuleProblems
from .events import EVENT_TYPES
from .fields import FieldRegistry
from .model import AtMost, Mode, Rule, RuleSet, Throttle, Window
from .operators import ValueProblem, parse_duration
from .source import Path, Positions, Problem, ProblemsError, load_yaml

RULE_KEYS = ("id", "description", "mode", "on", "if", "window", "throttle", "then",
             "while_open", "after_quiet")
WINDOW_KEYS = ("count", "within", "group_by", "quiet_for")
THROTTLE_KEYS = ("once_until_resolved", "at_most")
AT_MOST_KEYS = ("count", "per", "by")
#: What a window exposes to templates (``{{ window.count }}``); see rules.engine.window_namespace.
WINDOW_SCHEMA: dict[str, None] = {k: None for k in (
    "count", "group", "tickets", "within", "quiet_for", "opened_at", "last_match_at")}
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
RULE_FILE_SUFFIXES = (".yaml", ".yml")


def _close(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=3)
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _yaml11_keys(raw: dict[Any, Any]) -> dict[Any, Any]:
    """Undo YAML 1.1 booleans where the rule language means words: ``on:`` and ``mode: off``."""
    out = {("on" if key is True else key): value for key, value in raw.items()}
    if out.get("mode") is False:
        out["mode"] = "off"
    return out


class _Loader:
    def __init__(self, custom_fields: Collection[str], user_fields: Collection[str] = (),
                 organization_fields: Collection[str] = ()) -> None:
        self.registry = FieldRegistry(custom_fields, user_fields=user_fields,
                                      organization_fields=organization_fields)
        self.problems: list[Problem] = []
        self.rules: list[Rule] = []
        self.ids: dict[str, list[tuple[RuleProblems, str, int | None]]] = {}

    def document(self, data: Any, positions: Positions) -> None:
        report = RuleProblems(positions, (), self.problems)
        if data is None:
            return
        if isinstance(data, list):
            base: Path = ()
            items = data
        elif isinstance(data, dict):
            for key in data:
                if key != "rules":
                    report.add([key], f"unknown top-level key '{key}'",
                               "a rule file holds 'rules:'")
            if "rules" not in data:
                report.add([], "no 'rules:' list in this file")
                return
            base, items = ("rules",), data["rules"]
            if items is None:
                return
            if not isinstance(items, list):
                report.add(["rules"], "'rules' must be a list of rules")
                return
        else:
            report.add([], "a rule file is a mapping with 'rules:' (or a list of rules)")
            return
        for index, raw in enumerate(items):
            self.rule(raw, RuleProblems(positions, (*base, index), self.problems))

    def rule(self, raw: Any, report: RuleProblems) -> None:
        before = len(self.problems)
        if not isinstance(raw, dict):
            report.add([], "a rule is a mapping with id, on, if and then")
            return
        raw = _yaml11_keys(raw)
        for key in raw:
            if key not in RULE_KEYS:
                report.add([key], f"unknown key '{key}'",
                           _close(str(key), RULE_KEYS) or f"rule keys: {', '.join(RULE_KEYS)}")
        rule_id = self._rule_id(raw, report)
        description = raw.get("description", "")
        if not isinstance(description, str):
            report.add(["description"], "description must be text")
        mode = self._mode(raw, report)
        events = self._events(raw, report)
        roots = frozenset.intersection(*(EVENT_TYPES[e].roots for e in events)) if events else (
            frozenset.union(*(e.roots for e in EVENT_TYPES.values()))
        )
        conditions = ConditionChecker(self.registry, report, roots, events)
        condition = conditions.check(raw["if"], ("if",)) if raw.get("if") is not None else None
        if "if" in raw and raw["if"] is None:
            report.add(["if"], "'if' is empty", "remove it to match every event")
        window = self._window(raw, report, roots)
        throttle = self._throttle(raw, report, roots)
        extra = {"window": WINDOW_SCHEMA} if "window" in raw else None
        actions = self._actions(raw, report, roots, extra, events)
        while_open = self._window_actions(raw, report, roots, events, "while_open")
        after_quiet = self._window_actions(raw, report, roots, events, "after_quiet")
        if len(self.problems) > before or rule_id is None or mode is None:
            return
        used = (conditions.fields_used | actions.fields_used | while_open.fields_used
                | after_quiet.fields_used)
        for gate_field in (window.group_by if window else None,
                           throttle.at_most.by if throttle and throttle.at_most else None):
            if gate_field:
                used |= self.registry.expand(gate_field)
        self.rules.append(
            Rule(rule_id, description, mode, tuple(events), condition, tuple(actions.calls),
                 report.positions.file, report.line([]), frozenset(used),
                 window=window, throttle=throttle, after_quiet=tuple(after_quiet.calls),
                 while_open=tuple(while_open.calls))
        )

    # -- gates: window and throttle -------------------------------------------------------------

    def _keys(self, value: Any, where: str, allowed: tuple[str, ...], report: RuleProblems,
              path: list[str | int]) -> bool:
        if not isinstance(value, dict):
            report.add(path, f"'{where}' must be a mapping with {', '.join(allowed)}")
            return False
        for key in value:
            if key not in allowed:
                report.add([*path, key], f"unknown key '{key}' in '{where}'",
                           _close(str(key), allowed) or f"keys: {', '.join(allowed)}")
        return True

    def _count(self, value: Any, report: RuleProblems, path: list[str | int]) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            report.add(path, f"count must be a whole number of at least 1, got {value!r}")
            return None
        return value

    def _duration(self, value: Any, report: RuleProblems,
                  path: list[str | int]) -> timedelta | None:
        try:
            return parse_duration(value)
        except ValueProblem as exc:
            report.add(path, str(exc), exc.hint)
            return None

    def _gate_field(self, value: Any, report: RuleProblems, path: list[str | int],
                    roots: frozenset[str]) -> str | None:
        if not isinstance(value, str) or not value:
            report.add(path, f"expected a field path such as ticket.fields.error_code, "
                       f"got {value!r}")
            return None
        spec = self.registry.get(value)
        if spec is None:
            message, hint = self.registry.unknown(value)
            report.add(path, message, hint)
            return None
        if spec.root not in roots:
            report.add(path, f"field '{value}' is not available for this rule's events")
            return None
        return value

    def _window(self, raw: Mapping[str, Any], report: RuleProblems,
                roots: frozenset[str]) -> Window | None:
        if "window" not in raw:
            return None
        value = raw["window"]
        if not self._keys(value, "window", WINDOW_KEYS, report, ["window"]):
            return None
        for key in ("count", "within"):
            if key not in value:
                report.add(["window"], f"window needs '{key}'",
                           "e.g. window: {count: 5, within: 15m, group_by: "
                           "ticket.fields.error_code}")
        count = self._count(value["count"], report, ["window", "count"]) \
            if "count" in value else None
        within = self._duration(value["within"], report, ["window", "within"]) \
            if "within" in value else None
        group_by = self._gate_field(value["group_by"], report, ["window", "group_by"], roots) \
            if value.get("group_by") is not None else None
        quiet_for = self._duration(value["quiet_for"], report, ["window", "quiet_for"]) \
            if "quiet_for" in value else None
        if count is None or within is None:
            return None
        return Window(count, within, group_by, quiet_for, report.line(["window"]))

    def _throttle(self, raw: Mapping[str, Any], report: RuleProblems,
                  roots: frozenset[str]) -> Throttle | None:
        if "throttle" not in raw:
            return None
        value = raw["throttle"]
        if value == "once_until_resolved":
            value = {"once_until_resolved": True}
        if not self._keys(value, "throttle", THROTTLE_KEYS, report, ["throttle"]):
            return None
        once = value.get("once_until_resolved", False)
        if not isinstance(once, bool):
            report.add(["throttle", "once_until_resolved"],
                       f"once_until_resolved must be true or false, got {once!r}")
            once = False
        at_most = None
        if "at_most" in value:
            spec = value["at_most"]
            path: list[str | int] = ["throttle", "at_most"]
            if self._keys(spec, "at_most", AT_MOST_KEYS, report, path):
                for key in ("count", "per"):
                    if key not in spec:
                        report.add(path, f"at_most needs '{key}'",
                                   "e.g. at_most: {count: 3, per: 1h, by: ticket.organization_id}")
                count = self._count(spec["count"], report, [*path, "count"]) \
                    if "count" in spec else None
                per = self._duration(spec["per"], report, [*path, "per"]) \
                    if "per" in spec else None
                by = self._gate_field(spec["by"], report, [*path, "by"], roots) \
                    if spec.get("by") is not None else None
                if count is not None and per is not None:
                    at_most = AtMost(count, per, by)
        if not once and "at_most" not in value:
            report.add(["throttle"], "throttle sets no limit",
                       "use once_until_resolved: true and/or at_most: {count: N, per: 1h}")
        return Throttle(once, at_most, report.line(["throttle"]))

    def _rule_id(self, raw: Mapping[str, Any], report: RuleProblems) -> str | None:
        if "id" not in raw:
            report.add([], "missing 'id'",
                       "give the rule a slug id such as 'confirmed-bug-to-jira'")
            return None
        rule_id = raw["id"]
        if not isinstance(rule_id, str) or not RULE_ID.match(rule_id):
            report.add(["id"], f"bad id {rule_id!r}",
                       "ids are slugs: lowercase letters, digits, '-' and '_'")
            return None
        self.ids.setdefault(rule_id, []).append((report, report.positions.file, report.line([])))
        return rule_id

    def _mode(self, raw: Mapping[str, Any], report: RuleProblems) -> Mode | None:
        value = raw.get("mode", "live")
        try:
            return Mode(value)
        except ValueError:
            report.add(["mode"], f"unknown mode {value!r}",
                       f"one of: {', '.join(m.value for m in Mode)}")
            return None

    def _events(self, raw: Mapping[str, Any], report: RuleProblems) -> list[str]:
        if "on" not in raw:
            report.add([], "missing 'on'", "list the events, e.g. on: [ticket.created]")
            return []
        value = raw["on"]
        if not isinstance(value, list) or not value:
            report.add(["on"], "'on' must be a non-empty list of event types",
                       "e.g. on: [ticket.created, ticket.updated]")
            return []
        events: list[str] = []
        for index, name in enumerate(value):
            if isinstance(name, str) and name in EVENT_TYPES:
                if name not in events:
                    events.append(name)
                continue
            report.add(["on", index], f"unknown event type {name!r}",
                       _close(str(name), EVENT_TYPES) or f"known: {', '.join(EVENT_TYPES)}")
        return events

    def _window_actions(self, raw: Mapping[str, Any], report: RuleProblems,
                        roots: frozenset[str], events: list[str], key: str) -> ActionChecker:
        """``while_open`` (each later match that joins an open episode) or ``after_quiet``
        (the episode ended): actions that only a rule with a window has."""
        checker = ActionChecker(self.registry, report, roots, key=key,
                                extra={"window": WINDOW_SCHEMA}, events=events)
        if key not in raw:
            return checker
        steps = raw[key]
        if "window" not in raw:
            when = ("runs for each later match that joins a window's open episode"
                    if key == "while_open"
                    else "runs when a window's group has been quiet for quiet_for")
            report.add([key], f"'{key}' needs a 'window'", f"{key} {when}")
            return checker
        if not isinstance(steps, list) or not steps:
            report.add([key], f"'{key}' must be a non-empty list of actions")
            return checker
        for index, step in enumerate(steps):
            checker.check(step, index)
        return checker

    def _actions(self, raw: Mapping[str, Any], report: RuleProblems,
                 roots: frozenset[str],
                 extra: Mapping[str, Any] | None = None,
                 events: list[str] | None = None) -> ActionChecker:
        checker = ActionChecker(self.registry, report, roots, extra=extra, events=events or ())
        if "then" not in raw:
            report.add([], "missing 'then'", "list at least one action")
            return checker
        steps = raw["then"]
        if not isinstance(steps, list) or not steps:
            report.add(["then"], "'then' must be a non-empty list of actions",
                       "e.g. then: [{zendesk.update: {add_tags: [seen]}}]")
            return checker
        for index, step in enumerate(steps):
            checker.check(step, index)
        return checker

    def finish(self) -> RuleSet:
        for rule_id, places in self.ids.items():
            if len(places) < 2:
                continue
            for report, _file, _line in places:
                others = ", ".join(f"{f}:{n}" for r, f, n in places if r is not report)
                report.add(["id"], f"duplicate rule id '{rule_id}'", f"also defined at {others}")
        if self.problems:
            raise ProblemsError(_ordered(self.problems))
        return RuleSet(tuple(self.rules))


def _ordered(problems: list[Problem], files: Iterable[str] = ()) -> list[Problem]:
    """Problems grouped by file (in the order files came) and by line within a file."""
    order = list(dict.fromkeys([*files, *(p.file for p in problems)]))
    return sorted(problems, key=lambda p: (order.index(p.file), p.line or 0))


def load_rules(sources: Iterable[tuple[Any, Positions]], *,
               custom_fields: Collection[str], user_fields: Collection[str] = (),
               organization_fields: Collection[str] = ()) -> RuleSet:
    """Validate parsed rule documents (from :func:`rules.source.load_yaml`) into a RuleSet.

    ``custom_fields`` are the configured Zendesk custom field names (``ticket.fields.<name>``);
    ``user_fields`` / ``organization_fields`` the configured field keys
    (``requester.fields.<key>``, ``organization.fields.<key>``). Raises :class:`ProblemsError`
    listing every problem in every source.
    """
    loader = _Loader(custom_fields, user_fields, organization_fields)
    for data, positions in sources:
        loader.document(data, positions)
    return loader.finish()


def _rule_paths(paths: Iterable[str | os.PathLike[str]]) -> list[FsPath]:
    out: list[FsPath] = []
    for item in paths:
        path = FsPath(item)
        if path.is_dir():
            out += sorted(p for p in path.iterdir()
                          if p.suffix in RULE_FILE_SUFFIXES and p.is_file())
        else:
            out.append(path)
    return out


def load_rule_files(paths: Iterable[str | os.PathLike[str]], *,
                    custom_fields: Collection[str], user_fields: Collection[str] = (),
                    organization_fields: Collection[str] = ()) -> RuleSet:
    """Read rule files (a directory stands for its ``*.yaml``/``*.yml`` files, sorted).

    Raises :class:`ProblemsError` with every problem of every file, unreadable files and YAML
    syntax errors included.
    """
    problems: list[Problem] = []
    sources: list[tuple[Any, Positions]] = []
    files = _rule_paths(paths)
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), None, "", f"cannot read rule file: {exc}"))
            continue
        try:
            sources.append(load_yaml(text, str(path)))
        except ProblemsError as exc:
            problems.extend(exc.problems)
    try:
        rules = load_rules(sources, custom_fields=custom_fields, user_fields=user_fields,
                           organization_fields=organization_fields)
    except ProblemsError as exc:
        problems.extend(exc.problems)
    if problems:
        raise ProblemsError(_ordered(problems, (str(f) for f in files)))
    return rules
