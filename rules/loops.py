"""The loop graph: which rules' writes can make which rules' conditions true on a later event.

An :class:`Edge` A -> B says that A's writes (:func:`writes`) can make B's condition true on a
later event of the same ticket; :func:`cycles` finds the loops. Why an edge needs more than "A
writes what B reads" — later events, own writes subtracted from the change set, self-limiting
rules, what A's condition leaves in place, support, windows and throttles — is set out in
:mod:`rules.lints`, which turns cycles into findings.
"""

from __future__ import annotations

__all__ = ["BUG", "GATED_EVENTS", "UPDATE", "Edge", "Forms", "Write", "cycles", "writes"]

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .consistency import ByField, Reasoner, by_field, event_facts
from .literals import CHANGE_OPS, Literal
from .model import ActionCall, Mode, Rule, RuleSet
from .operators import Op

BUG = "jira.create_or_link_bug"
UPDATE = "zendesk.update"
#: Event types a write cannot bring about on a later event: a ticket's first event, events
#: that need a person's change (Switchboard's own status write and notes are subtracted), and
#: the SLA watch's events (raised by the clock, once per ticket, target and due time).
GATED_EVENTS = frozenset({"ticket.created", "ticket.solved", "ticket.comment_added",
                          "sla.warning", "sla.breached"})
#: Field roots that describe one event, not the ticket's lasting state.
PER_EVENT_ROOTS = frozenset({"event", "changes", "comment"})
#: Each rule id's condition as :func:`~rules.consistency.disjuncts` (``None``: too complex).
Forms = Mapping[str, "list[tuple[Literal, ...]] | None"]


def _constant(value: Any) -> bool:
    return not (isinstance(value, str) and any(m in value for m in ("{{", "{%", "{#")))


@dataclass(frozen=True, slots=True)
class Write:
    """One thing an action leaves on the ticket (a fact with a ``note``) and the action."""

    fact: Literal
    action: ActionCall


def writes(rule: Rule) -> list[Write]:
    """What the rule's actions leave on the ticket, as facts about the next event's state."""
    out: list[Write] = []
    for call in rule.actions:
        params = call.params
        if call.name == BUG:
            note = f"links the ticket to a Jira bug in {params['project']}"
            out.append(Write(Literal("links.jira", Op.EXISTS, note=note), call))
            continue
        if call.name != UPDATE:
            continue
        out.append(Write(Literal("ticket.tags", Op.EXISTS,
                                 note="adds its marker tag (every zendesk.update does)"), call))
        for tag in params.get("add_tags") or ():
            out.append(Write(Literal("ticket.tags", Op.CONTAINS, tag,
                                     note=f"adds tag '{tag}'"), call))
        for tag in params.get("remove_tags") or ():
            out.append(Write(Literal("ticket.tags", Op.CONTAINS, tag, positive=False,
                                     note=f"removes tag '{tag}'"), call))
        for name, value in (params.get("fields") or {}).items():
            path = f"ticket.fields.{name}"
            if value is None or value == "":
                fact = Literal(path, Op.EXISTS, positive=False, note=f"clears {path}")
            elif _constant(value):
                fact = Literal(path, Op.EQUALS, value, True, note=f"sets {path} to {value!r}")
            else:
                fact = Literal(path, Op.EXISTS, note=f"sets {path} (to {value!r})")
            out.append(Write(fact, call))
        if params.get("status"):
            out.append(Write(Literal("ticket.status", Op.EQUALS, params["status"],
                                     note=f"sets status '{params['status']}'"), call))
    return out


@dataclass(frozen=True, slots=True)
class Edge:
    """``source``'s ``writes`` make ``target``'s literal ``tested`` true on a later event."""

    source: Rule
    target: Rule
    writes: tuple[Write, ...]
    tested: Literal


def _after(conj: tuple[Literal, ...], facts: list[Literal], reason: Reasoner) -> list[Literal]:
    """What still holds on the next event after a rule fired on ``conj`` and wrote ``facts``:
    its state literals that no write contradicts (the change set and event are new)."""
    return [lit for lit in conj if lit.op not in CHANGE_OPS
            and lit.field.split(".")[0] not in PER_EVENT_ROOTS
            and not reason.conflict([*facts, lit])]


_MEMBERSHIP = frozenset({Op.CONTAINS, Op.CONTAINS_ANY, Op.CONTAINS_ALL, Op.CONTAINS_NONE})


def _values(lit: Literal) -> set[str]:
    items = lit.value if isinstance(lit.value, tuple) else (lit.value,)
    return {str(item).casefold() for item in items}


@dataclass(frozen=True, slots=True)
class _Source:
    """A rule as the start of an edge: its writes (and their facts by field), and the state right
    after each way it can fire."""

    rule: Rule
    writes: list[Write]
    facts: ByField
    afters: list[ByField]
    members: dict[str, set[str]]  # per field, the values written by membership facts (tags)

    @classmethod
    def of(cls, rule: Rule, form: list[tuple[Literal, ...]], reason: Reasoner) -> _Source:
        written = writes(rule)
        facts = [w.fact for w in written]
        fired = [conj for conj in form if not all(
            reason.conflict([*conj, *event_facts(event, conj)]) for event in rule.on)]
        afters = [[*_after(conj, facts, reason), *facts] for conj in fired]
        members: dict[str, set[str]] = {}
        for fact in facts:
            if fact.op in _MEMBERSHIP:
                members.setdefault(fact.field, set()).update(_values(fact))
        return cls(rule, written, by_field(facts),
                   [by_field(after) for after in afters if not reason.conflict(after)], members)


@dataclass(frozen=True, slots=True)
class _Target:
    """A rule as the end of an edge: each disjunct a later event could satisfy without a change
    made by a person, with that disjunct and the facts of each later event it can hold on."""

    rule: Rule
    disjuncts: list[tuple[tuple[Literal, ...], list[ByField]]]
    fields: frozenset[str]

    @classmethod
    def of(cls, rule: Rule, form: list[tuple[Literal, ...]], reason: Reasoner) -> _Target:
        later = [event for event in rule.on if event not in GATED_EVENTS]
        kept: list[tuple[tuple[Literal, ...], list[ByField]]] = []
        for conj in form:
            if any(reason.requires_change(lit) for lit in conj):
                continue
            states = [[*conj, *event_facts(event, conj)] for event in later]
            possible = [by_field(state) for state in states if not reason.conflict(state)]
            if possible:
                kept.append((conj, possible))
        return cls(rule, kept, frozenset(lit.field for conj, _ in kept for lit in conj))


def _supports(source: _Source, lit: Literal, reason: Reasoner) -> bool:
    """Whether the source's writes make ``lit`` true (its facts and ``not lit`` clash)."""
    mine = source.facts.get(lit.field)
    if not mine:
        return False
    if lit.op in _MEMBERSHIP and reason.is_list(lit.field) and not (
            source.members.get(lit.field, set()) & _values(lit)):
        return False  # membership of a list follows only from writing one of its values
    return reason.conflict([*mine, lit.negated()])


def _edge(source: _Source, target: _Target, reason: Reasoner) -> Edge | None:
    if not source.facts.keys() & target.fields:
        return None
    for conj, states in target.disjuncts:
        supported = [lit for lit in conj if _supports(source, lit, reason)]
        if not supported:
            continue
        if all(reason.clash(state, after) for state in states for after in source.afters):
            continue  # e.g. self-limiting: the state after the write fails this disjunct
        lit = supported[0]
        core = reason.core([*source.facts[lit.field], lit.negated()]) or ()
        used = [w for w in source.writes if any(w.fact is c for c in core)]
        return Edge(source.rule, target.rule, tuple(used), lit)
    return None


def _components(nodes: list[str], edges: dict[str, dict[str, Edge]]) -> list[list[str]]:
    """Strongly connected components (Tarjan), each in ``nodes`` order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            out.append(sorted(group, key=nodes.index))

    for node in nodes:
        if node not in index:
            visit(node)
    return out


def _shortest_cycle(start: str, group: set[str],
                    edges: dict[str, dict[str, Edge]]) -> list[Edge]:
    paths: dict[str, list[Edge]] = {start: []}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt, edge in edges.get(node, {}).items():
            if nxt == start and node != start:
                return [*paths[node], edge]
            if nxt in group and nxt not in paths:
                paths[nxt] = [*paths[node], edge]
                queue.append(nxt)
    return []


def _repeats(rule: Rule) -> bool:
    """Whether the rule can fire again and again for one ticket: a window fires once per
    episode, ``once_until_resolved`` once until the ticket is resolved."""
    return rule.window is None and not (rule.throttle and rule.throttle.once_until_resolved)


def cycles(rules: RuleSet, forms: Forms, reason: Reasoner) -> list[list[Edge]]:
    """The loops among the rules that act (not ``off``) and can fire again for one ticket: every
    self-loop, then one shortest cycle per strongly connected group of two or more rules.

    ``forms`` maps each rule id to its condition's :func:`~rules.consistency.disjuncts` (``None``
    when too complex to analyse: such a rule gets no incoming edge).
    """
    acting = [r for r in rules if r.mode is not Mode.OFF and _repeats(r)]
    sources = [_Source.of(r, forms[r.id] or [()], reason) for r in acting]
    targets = [_Target.of(r, form, reason) for r in acting if (form := forms[r.id]) is not None]
    edges: dict[str, dict[str, Edge]] = {}
    for source in sources:
        for target in targets:
            edge = _edge(source, target, reason)
            if edge is not None:
                edges.setdefault(source.rule.id, {})[target.rule.id] = edge
    order = [r.id for r in acting]
    found = [[edges[rule_id][rule_id]] for rule_id in order if rule_id in edges.get(rule_id, {})]
    for group in _components(order, edges):
        if len(group) > 1:
            cycle = _shortest_cycle(group[0], set(group), edges)
            if cycle:
                found.append(cycle)
    return found
