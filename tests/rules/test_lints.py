"""`switchboard validate`'s lints: loops, conditions that can never be true, duplicate side effects.

Rule texts mark the line a finding must point at with ``# <-`` and other lines its message must
name with ``# <=``; every rule text is loaded as ``a.yaml`` (a second one as ``b.yaml``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from textwrap import dedent, indent

import pytest

from rules import FieldRegistry, Op, ProblemsError
from rules.consistency import Reasoner, event_facts
from rules.lints import Lint, LintKind, lint
from rules.literals import Literal
from sync.config import load_config

from .helpers import CUSTOM_FIELDS, load_text

ROOT = Path(__file__).resolve().parents[2]


def findings(*texts: str, kind: LintKind | None = None) -> list[Lint]:
    found = lint(load_text(*texts), custom_fields=CUSTOM_FIELDS)
    return [f for f in found if kind is None or f.kind is kind]


def marked(text: str, mark: str = "# <-") -> list[int]:
    return [n for n, line in enumerate(dedent(text).splitlines(), 1) if mark in line]


def one_rule(condition: str, on: str = "[ticket.updated]") -> str:
    block = dedent(condition).strip("\n") + "\n"
    # A one-line condition sits on the `if:` line, where the loader places a root leaf.
    cond = " " + block if block.count("\n") == 1 else "\n" + indent(block, " " * 6)
    return ("rules:\n  - id: r\n    on: " + on + "\n    if:" + cond
            + "    then:\n      - zendesk.update: {note: hello}\n")


def assert_points_at(found: list[Lint], text: str, kind: LintKind, *says: str) -> Lint:
    assert len(found) == 1, [str(f) for f in found]
    [finding] = found
    [line] = marked(text)
    assert (finding.file, finding.line, finding.kind) == ("a.yaml", line, kind), str(finding)
    assert str(finding).startswith(f"a.yaml:{line}: warning [{kind.value}] "), str(finding)
    assert "(hint: " in str(finding)
    for other in marked(text, "# <="):
        assert f"a.yaml:{other}" in finding.message, (other, str(finding))
    for words in says:
        assert words in finding.message, str(finding)
    return finding


# -- never-true -----------------------------------------------------------------------------------

NEVER_TRUE = [
    pytest.param("""\
        all:
          - {field: ticket.status, op: equals, value: open}
          - {field: ticket.priority, op: equals, value: high}
          - {field: ticket.status, op: equals, value: solved}  # <-
        """, "[ticket.updated]",
        "if.all[0] `ticket.status equals 'open'` and if.all[2] `ticket.status equals 'solved'` "
        "cannot both be true", id="equals-two-values"),
    pytest.param("""\
        all:
          - {field: ticket.status, op: in, value: [new, open]}
          - {field: ticket.status, op: in, value: [solved, closed]}  # <-
        """, "[ticket.updated]", "can never match", id="disjoint-in-lists"),
    pytest.param("""\
        all:
          - {field: ticket.priority, op: equals, value: low}
          - {field: ticket.priority, op: in, value: [high, urgent]}  # <-
        """, "[ticket.updated]", "`ticket.priority in ['high', 'urgent']`",
        id="equals-a-value-not-in-the-in-list"),
    pytest.param("""\
        all:
          - {field: ticket.fields.error_code, op: exists}
          - not: {field: ticket.fields.error_code, op: exists}  # <-
        """, "[ticket.updated]", "`not ticket.fields.error_code exists`",
        id="exists-and-not-exists"),
    pytest.param("""\
        all:
          - {field: ticket.tags, op: contains, value: vip}
          - not: {field: ticket.tags, op: contains, value: VIP}  # <-
        """, "[ticket.updated]", "`not ticket.tags contains 'VIP'`",
        id="contains-and-not-contains-any-case"),
    pytest.param("""\
        all:
          - {field: ticket.tags, op: contains_any, value: [a, b]}
          - {field: ticket.tags, op: contains_none, value: [b, a]}  # <-
        """, "[ticket.updated]", "can never match", id="contains-any-and-contains-none"),
    pytest.param("""\
        all:
          - {field: ticket.id, op: gt, value: 5}
          - {field: ticket.id, op: lt, value: 3}  # <-
        """, "[ticket.updated]", "`ticket.id lt 3`", id="empty-numeric-range"),
    pytest.param("""\
        all:
          - {field: ticket.created_at, op: lt, value: '2025-01-01T00:00:00Z'}
          - {field: ticket.created_at, op: gte, value: '2026-01-01T00:00:00Z'}  # <-
        """, "[ticket.updated]", "can never match", id="empty-time-range"),
    pytest.param("""\
        all:
          - not: {field: ticket.id, op: gt, value: 5}
          - {field: ticket.id, op: gt, value: 7}  # <-
        """, "[ticket.updated]", "`not ticket.id gt 5`", id="negated-bound-on-a-set-value"),
    pytest.param("""\
        all:
          - {field: ticket.created_at, op: older_than, value: 2h}
          - {field: ticket.created_at, op: within, value: 1h}  # <-
        """, "[ticket.updated]", "can never match", id="older-than-and-within"),
    pytest.param("""\
        all:
          - {field: ticket.status, op: changed_to, value: open}
          - {field: ticket.status, op: changed_from, value: open}  # <-
        """, "[ticket.updated]", "`ticket.status changed_from 'open'`",
        id="changed-to-and-changed-from-the-same-value"),
    pytest.param("""\
        all:
          - not: {field: ticket.status, op: changed}
          - {field: ticket.status, op: changed_to, value: open}  # <-
        """, "[ticket.updated]", "`not ticket.status changed`", id="changed-and-not-changed"),
    pytest.param("""\
        {field: ticket.status, op: changed_from, value: new}  # <-
        """, "[ticket.created]",
        "`ticket.status changed_from 'new'` cannot be true on ticket.created",
        id="changed-from-on-ticket-created"),
    pytest.param("""\
        {field: ticket.tags, op: changed_from, value: vip}  # <-
        """, "[ticket.created]", "on ticket.created", id="tag-removed-on-ticket-created"),
    pytest.param("""\
        {field: event.type, op: equals, value: ticket.created}  # <-
        """, "[ticket.updated]", "cannot be true on ticket.updated",
        id="event-type-the-rule-does-not-listen-to"),
    pytest.param("""\
        all:
          - {field: event.type, op: equals, value: ticket.created}
          - {field: ticket.status, op: changed_from, value: new}  # <-
        """, "[ticket.created, ticket.updated]",
        "on ticket.created, where every field was null before; if.all[0]",
        id="each-event-for-its-own-reason"),
    pytest.param("""\
        all:
          - {field: ticket.priority, op: exists}
          - {field: ticket.priority, op: not_in, value: [low, normal, high, urgent]}  # <-
        """, "[ticket.updated]", "can never match", id="every-enum-value-excluded"),
    pytest.param("""\
        all:
          - {field: ticket.subject, op: contains, value: checkout failed}
          - not: {field: ticket.subject, op: contains, value: Checkout}  # <-
        """, "[ticket.updated]", "can never match", id="substring-of-a-required-substring"),
    pytest.param("""\
        all:
          - {field: ticket.status, op: equals, value: open}
          - {field: ticket.status, op: matches, value: '^sol'}  # <-
        """, "[ticket.updated]", "`ticket.status matches '^sol'`",
        id="regex-that-the-only-value-fails"),
    pytest.param("""\
        all:
          - {field: ticket.tags, op: contains, value: x}
          - not:
              any:
                - {field: ticket.tags, op: contains, value: x}  # <-
                - {field: ticket.priority, op: equals, value: high}
        """, "[ticket.updated]", "if.all[1].not.any[0] `not ticket.tags contains 'x'`",
        id="negated-any-pushed-down"),
    pytest.param("""\
        all:
          - {field: ticket.status, op: equals, value: open}
          - any:
              - {field: ticket.status, op: equals, value: solved}  # <-
              - {field: ticket.priority, op: equals, value: high}
        """, "[ticket.updated]", "rule 'r' has a branch that can never be true",
        id="dead-branch-of-an-any"),
]


@pytest.mark.parametrize(("condition", "on", "says"), NEVER_TRUE)
def test_a_condition_that_can_never_be_true_is_reported_at_its_line(condition: str, on: str,
                                                                   says: str) -> None:
    text = one_rule(condition, on)
    finding = assert_points_at(findings(text), text, LintKind.NEVER_TRUE, says)
    assert finding.rule_ids == ("r",)


NOT_NEVER_TRUE = [
    pytest.param("""\
        any:
          - {field: ticket.status, op: equals, value: open}
          - {field: ticket.status, op: equals, value: solved}
        """, "[ticket.updated]", id="two-values-under-any"),
    pytest.param("""\
        {field: ticket.status, op: changed_from, value: new}
        """, "[ticket.created, ticket.updated]", id="changed-from-also-on-ticket-updated"),
    pytest.param("""\
        {field: ticket.status, op: changed_to, value: open}
        """, "[ticket.created]", id="changed-to-on-ticket-created-is-from-null"),
    pytest.param("""\
        {field: event.type, op: equals, value: ticket.created}
        """, "[ticket.created, ticket.updated]", id="event-type-among-the-listened"),
    pytest.param("""\
        all:
          - {field: ticket.subject, op: equals, value: Foo, case_sensitive: true}
          - {field: ticket.subject, op: equals, value: foo}
        """, "[ticket.updated]", id="case-insensitive-equals-admits-the-exact-value"),
    pytest.param("""\
        all:
          - {field: ticket.tags, op: contains, value: Bug, case_sensitive: true}
          - not: {field: ticket.tags, op: contains, value: bug, case_sensitive: true}
        """, "[ticket.updated]", id="case-sensitive-tags-differ"),
    pytest.param("""\
        all:
          - {field: ticket.fields.error_code, op: equals, value: 1}
          - {field: ticket.fields.error_code, op: equals, value: '1.0'}
        """, "[ticket.updated]", id="a-number-and-its-decimal-text-can-both-hold"),
    pytest.param("""\
        all:
          - {field: ticket.subject, op: contains, value: check}
          - not: {field: ticket.subject, op: contains, value: checkout}
        """, "[ticket.updated]", id="compatible-substrings"),
    pytest.param("""\
        all:
          - {field: ticket.id, op: gte, value: 3}
          - {field: ticket.id, op: lte, value: 3}
        """, "[ticket.updated]", id="touching-range"),
    pytest.param("""\
        all:
          - not: {field: ticket.id, op: gt, value: 5}
          - {field: ticket.id, op: gt, value: 3}
        """, "[ticket.updated]", id="negated-bound-leaves-room"),
    pytest.param("""\
        all:
          - not: {field: ticket.fields.error_code, op: exists}
          - {field: ticket.fields.error_code, op: not_equals, value: E42}
        """, "[ticket.updated]", id="not-exists-and-not-equals"),
    pytest.param("""\
        {field: ticket.priority, op: not_in, value: [low, normal, high, urgent]}
        """, "[ticket.updated]", id="every-enum-value-excluded-but-null-remains"),
    pytest.param("""\
        all:
          - {field: ticket.status, op: equals, value: open}
          - {field: ticket.status, op: matches, value: '^op'}
        """, "[ticket.updated]", id="regex-the-value-passes"),
    pytest.param("""\
        all:
          - not: {field: ticket.status, op: changed_to, value: open}
          - {field: ticket.status, op: changed_from, value: open}
        """, "[ticket.updated]", id="not-changed-to-binds-nothing"),
    pytest.param("""\
        all:
          - any:
              - {field: ticket.status, op: equals, value: open}
              - {field: ticket.status, op: equals, value: solved}
          - any:
              - {field: ticket.status, op: equals, value: open}
              - {field: ticket.priority, op: equals, value: high}
        """, "[ticket.updated]", id="a-dead-combination-whose-leaves-live-elsewhere"),
]


@pytest.mark.parametrize(("condition", "on"), NOT_NEVER_TRUE)
def test_a_condition_that_can_be_true_is_not_reported(condition: str, on: str) -> None:
    assert findings(one_rule(condition, on), kind=LintKind.NEVER_TRUE) == []


@pytest.mark.parametrize("text", [
    pytest.param("{field: ticket.status, op: in, value: []}", id="in-empty"),
    pytest.param("{any: []}", id="any-empty"),
    pytest.param("{all: []}", id="all-empty"),
])
def test_empty_lists_are_load_errors_so_they_never_reach_the_lints(text: str) -> None:
    with pytest.raises(ProblemsError):
        load_text(one_rule(text))


def test_event_facts_ticket_created_nulls_what_changed_and_ticket_solved_means_solved() -> None:
    reason = Reasoner(FieldRegistry(CUSTOM_FIELDS))
    open_now = Literal("ticket.status", Op.EQUALS, "open")
    from_new = Literal("ticket.status", Op.CHANGED_FROM, "new")
    assert reason.conflict([open_now, *event_facts("ticket.solved", [open_now])])
    assert not reason.conflict([open_now, *event_facts("ticket.updated", [open_now])])
    assert reason.conflict([from_new, *event_facts("ticket.created", [from_new])])
    assert not reason.conflict([from_new, *event_facts("ticket.solved", [from_new])])
    assert reason.conflict([Literal("event.type", Op.EQUALS, "ticket.created"),
                            *event_facts("ticket.updated", [])])


def test_a_condition_ticket_solved_contradicts_is_never_true() -> None:
    text = one_rule("""\
        all:
          - {field: ticket.priority, op: equals, value: high}
          - {field: ticket.status, op: in, value: [open, pending]}  # <-
        """, "[ticket.solved]")
    assert_points_at(findings(text), text, LintKind.NEVER_TRUE,
                     "cannot be true on ticket.solved, where the status has just changed")
    assert findings(one_rule("{field: ticket.status, op: equals, value: solved}",
                             "[ticket.solved]")) == []


# -- loop -----------------------------------------------------------------------------------------

LOOPS = [
    pytest.param("""\
        rules:
          - id: vip
            on: [ticket.updated]
            if: {field: ticket.tags, op: contains, value: vip}  # <=
            then:
              - zendesk.update: {add_tags: [vip], note: VIP customer}  # <-
        """, ("vip",), ("rule 'vip' re-triggers itself", "it adds tag 'vip'",
                        "if `ticket.tags contains 'vip'`"), id="adds-the-tag-it-requires"),
    pytest.param("""\
        rules:
          - id: ping
            on: [ticket.updated]
            if: {field: ticket.tags, op: contains, value: x}  # <=
            then:
              - zendesk.update: {add_tags: [y], remove_tags: [x]}  # <-
          - id: pong
            on: [ticket.updated]
            if: {field: ticket.tags, op: contains, value: y}  # <=
            then:
              - zendesk.update: {add_tags: [x], remove_tags: [y]}  # <=
        """, ("ping", "pong"), ("rules loop 'ping' -> 'pong' -> 'ping'", "'ping' adds tag 'y'",
                                "'pong' adds tag 'x'"), id="two-self-limiting-rules-ping-pong"),
    pytest.param("""\
        rules:
          - id: reopen
            on: [ticket.updated]
            if: {field: ticket.status, op: equals, value: pending}
            then:
              - zendesk.update: {status: open, note: Reopened}  # <-
          - id: park
            on: [ticket.updated]
            if: {field: ticket.status, op: equals, value: open}
            then:
              - zendesk.update: {status: pending}
        """, ("reopen", "park"), ("'reopen' -> 'park' -> 'reopen'", "sets status 'open'",
                                  "sets status 'pending'"), id="status-flip-flop"),
    pytest.param("""\
        rules:
          - id: escalate
            on: [ticket.updated]
            if: {field: ticket.tags, op: contains, value: escalate}
            then:
              - jira.create_or_link_bug: {project: SUP}  # <-
          - id: mark-linked
            on: [ticket.created, ticket.updated]
            if: {field: links.jira, op: exists}
            then:
              - zendesk.update: {add_tags: [escalate], note: Escalated}
        """, ("escalate", "mark-linked"), (
            "'escalate' -> 'mark-linked' -> 'escalate'",
            "links the ticket to a Jira bug in SUP", "`links.jira exists`"),
        id="bug-link-feeds-back"),
    pytest.param("""\
        rules:
          - id: has-key
            on: [ticket.updated]
            if: {field: ticket.fields.jira_key, op: exists}
            then:
              - zendesk.update: {add_tags: [has_key]}  # <-
          - id: set-key
            on: [ticket.updated]
            if: {field: ticket.tags, op: contains, value: has_key}
            then:
              - zendesk.update: {fields: {jira_key: "{{ ticket.id }}"}}
        """, ("has-key", "set-key"), ("sets ticket.fields.jira_key",
                                      "`ticket.fields.jira_key exists`"),
        id="custom-field-feeds-back"),
    pytest.param("""\
        rules:
          - id: vip
            mode: shadow
            on: [ticket.updated]
            if: {field: ticket.tags, op: contains, value: vip}
            then:
              - zendesk.update: {add_tags: [vip]}  # <-
        """, ("vip",), ("(once 'vip' go live)",), id="shadow-rule-warned-before-going-live"),
    pytest.param("""\
        rules:
          - id: escalated
            on: [ticket.updated]
            if:
              any:
                - {field: ticket.priority, op: changed_to, value: urgent}
                - {field: ticket.tags, op: contains, value: escalated}
            then:
              - zendesk.update: {add_tags: [escalated], note: Escalated}  # <-
        """, ("escalated",), ("if.any[1] `ticket.tags contains 'escalated'`",),
        id="the-ungated-branch-of-an-any"),
    pytest.param("""\
        rules:
          - id: vip
            on: [ticket.updated]
            if: {field: ticket.tags, op: contains, value: vip}
            throttle: {at_most: {count: 3, per: 1h}}
            then:
              - zendesk.update: {add_tags: [vip], note: VIP customer}  # <-
        """, ("vip",), ("rule 'vip' re-triggers itself",), id="at-most-only-slows-a-loop"),
]


@pytest.mark.parametrize(("text", "rule_ids", "says"), LOOPS)
def test_a_rule_whose_writes_make_a_rule_fire_again_in_a_cycle_is_a_loop(
        text: str, rule_ids: tuple[str, ...], says: tuple[str, ...]) -> None:
    finding = assert_points_at(findings(text, kind=LintKind.LOOP), text, LintKind.LOOP, *says)
    assert finding.rule_ids == rule_ids


NOT_LOOPS = [
    pytest.param("""\
        rules:
          - id: escalate
            on: [ticket.created, ticket.updated]
            if:
              all:
                - {field: ticket.priority, op: equals, value: urgent}
                - not: {field: ticket.tags, op: contains, value: escalated}
            then:
              - zendesk.update: {add_tags: [escalated], note: Escalated}
        """, id="requires-the-absence-of-the-tag-it-adds"),
    pytest.param("""\
        rules:
          - id: confirmed-bug-to-jira
            on: [ticket.created, ticket.updated]
            if:
              all:
                - {field: ticket.tags, op: contains, value: bug_confirmed}
                - not: {field: links.jira, op: exists}
            then:
              - jira.create_or_link_bug: {project: SUP, dedupe_by: "{{ ticket.fields.error_code }}"}
              - zendesk.update:
                  note: "Linked to {{ jira.key }}"
                  add_tags: [jira_linked]
                  fields: {jira_key: "{{ jira.key }}"}
        """, id="requires-no-link-and-links-a-bug"),
    pytest.param("""\
        rules:
          - id: copy-key
            on: [ticket.updated]
            if:
              all:
                - {field: links.jira, op: exists}
                - not: {field: ticket.fields.jira_key, op: exists}
            then:
              - zendesk.update: {fields: {jira_key: "{{ ticket.id }}"}}
        """, id="requires-an-unset-field-it-sets-from-a-template"),
    pytest.param("""\
        rules:
          - id: triage
            on: [ticket.updated]
            if: {field: ticket.tags, op: contains, value: needs_triage}
            then:
              - zendesk.update: {remove_tags: [needs_triage], add_tags: [triaged]}
        """, id="removes-the-tag-it-requires"),
    pytest.param("""\
        rules:
          - id: start
            on: [ticket.updated]
            if: {field: ticket.status, op: equals, value: new}
            then:
              - zendesk.update: {status: open}
        """, id="moves-the-status-away-from-the-one-it-requires"),
    pytest.param("""\
        rules:
          - id: urgent-seen
            on: [ticket.updated]
            if: {field: ticket.priority, op: changed_to, value: urgent}
            then:
              - zendesk.update: {add_tags: [urgent_seen], note: Urgent now}
          - id: vip-on-tag-change
            on: [ticket.updated]
            if:
              all:
                - {field: ticket.tags, op: changed}
                - {field: ticket.tags, op: contains, value: vip}
            then:
              - zendesk.update: {add_tags: [vip], note: VIP}
        """, id="gated-on-a-change-own-writes-never-make"),
    pytest.param("""\
        rules:
          - id: welcome
            on: [ticket.created]
            if: {field: ticket.tags, op: contains, value: vip}
            then:
              - zendesk.update: {add_tags: [vip], note: Welcome}
        """, id="listens-only-to-ticket-created"),
    pytest.param("""\
        rules:
          - id: welcome
            on: [ticket.created, ticket.updated]
            if:
              all:
                - {field: event.type, op: equals, value: ticket.created}
                - {field: ticket.tags, op: contains, value: vip}
            then:
              - zendesk.update: {add_tags: [vip], note: Welcome}
        """, id="requires-event-type-ticket-created"),
    pytest.param("""\
        rules:
          - id: vip
            on: [ticket.updated]
            if: {field: ticket.priority, op: in, value: [high, urgent]}
            then:
              - zendesk.update: {add_tags: [vip]}
        """, id="condition-stays-true-but-no-write-makes-it-true"),
    pytest.param("""\
        rules:
          - id: vip
            mode: off
            on: [ticket.updated]
            if: {field: ticket.tags, op: contains, value: vip}
            then:
              - zendesk.update: {add_tags: [vip]}
        """, id="off-rules-are-left-out"),
    pytest.param("""\
        rules:
          - id: a
            on: [ticket.updated]
            if: {field: ticket.tags, op: contains, value: x}
            then:
              - zendesk.update: {add_tags: [y]}
          - id: b
            on: [ticket.updated]
            if:
              all:
                - {field: ticket.tags, op: contains, value: y}
                - not: {field: ticket.tags, op: contains, value: x}
            then:
              - zendesk.update: {add_tags: [x]}
        """, id="what-the-first-rule-required-still-holds-and-blocks-the-second"),
    pytest.param("""\
        rules:
          - id: vip
            on: [ticket.updated]
            if: {field: ticket.tags, op: contains, value: vip}
            throttle: once_until_resolved
            then:
              - zendesk.update: {add_tags: [vip], note: VIP customer}
        """, id="once-until-resolved-fires-once"),
    pytest.param("""\
        rules:
          - id: vip
            on: [ticket.updated]
            if: {field: ticket.tags, op: contains, value: vip}
            window: {count: 3, within: 1h}
            then:
              - zendesk.update: {add_tags: [vip], note: "{{ window.count }} VIP tickets"}
        """, id="a-window-fires-once-per-episode"),
]


@pytest.mark.parametrize("text", NOT_LOOPS)
def test_self_limiting_and_change_gated_rules_are_not_loops(text: str) -> None:
    assert findings(text, kind=LintKind.LOOP) == []


SELF_TAGGING = """\
    rules:
      - id: vip
        on: <ON>
        if:
          all:
            - {field: ticket.tags, op: contains, value: vip}
            - <COND>
        then:
          - zendesk.update: {add_tags: [vip], note: VIP}
    """


@pytest.mark.parametrize(("on", "loops"), [
    ("[ticket.solved]", False),
    ("[ticket.solved, ticket.updated]", True),
])
def test_ticket_solved_needs_a_person_so_it_is_no_later_event_a_write_causes(on: str,
                                                                           loops: bool) -> None:
    text = SELF_TAGGING.replace("<ON>", on).replace(
        "<COND>", "{field: ticket.priority, op: equals, value: high}")
    assert bool(findings(text, kind=LintKind.LOOP)) is loops


@pytest.mark.parametrize(("cond", "loops"), [
    ("{field: changes.status.to, op: equals, value: open}", False),
    ("{field: changes.tags.to, op: contains, value: vip}", False),
    ("{not: {field: changes.status.to, op: equals, value: open}}", True),
])
def test_a_changes_test_that_needs_a_change_is_a_gate(cond: str, loops: bool) -> None:
    text = SELF_TAGGING.replace("<ON>", "[ticket.updated]").replace("<COND>", cond)
    assert bool(findings(text, kind=LintKind.LOOP)) is loops


# -- duplicate-side-effect ------------------------------------------------------------------------


def two_rules(cond_a: str, then_a: str, cond_b: str, then_b: str, *, mode_b: str = "live",
              on_b: str = "[ticket.updated]") -> str:
    return dedent(f"""\
        rules:
          - id: first
            on: [ticket.created, ticket.updated]
            if: {cond_a}
            then:
              - {then_a}  # <-
          - id: second
            mode: {mode_b}
            on: {on_b}
            if: {cond_b}
            then:
              - {then_b}  # <=
        """)


URGENT = "{field: ticket.priority, op: equals, value: urgent}"
LOW = "{field: ticket.priority, op: equals, value: low}"
CRASH = "{field: ticket.tags, op: contains, value: crash}"
NOT_CRASH = "{not: {field: ticket.tags, op: contains, value: crash}}"

DUPLICATES = [
    pytest.param(URGENT, "jira.create_or_link_bug: {project: SUP}",
                 CRASH, "jira.create_or_link_bug: {project: SUP}",
                 "create a Jira bug in SUP without dedupe_by: two bugs for one ticket",
                 id="two-bugs-without-dedupe"),
    pytest.param(URGENT, "jira.create_or_link_bug: {project: SUP, dedupe_by: '{{ ticket.id }}'}",
                 CRASH, "jira.create_or_link_bug: {project: SUP, dedupe_by: '{{ ticket.id }}'}",
                 "with the same dedupe_by", id="same-dedupe-key"),
    pytest.param(URGENT, "jira.create_or_link_bug: {project: SUP, dedupe_by: '{{ ticket.id }}'}",
                 CRASH, "jira.create_or_link_bug: {project: SUP}",
                 "the ticket can end up on two bugs", id="different-dedupe-keys"),
    pytest.param(URGENT, "zendesk.update: {note: Engineering is on it}",
                 CRASH, "zendesk.update: {note: Engineering is on it}",
                 "post the note 'Engineering is on it': it appears twice", id="same-note"),
    pytest.param(URGENT, "zendesk.update: {add_tags: [escalated]}",
                 CRASH, "zendesk.update: {add_tags: [escalated, crash_seen]}",
                 "both add tag 'escalated'", id="same-tag-added"),
    pytest.param(URGENT, "zendesk.update: {add_tags: [escalated]}",
                 CRASH, "zendesk.update: {remove_tags: [escalated]}",
                 "one adds it, the other removes it", id="tag-added-and-removed"),
    pytest.param(URGENT, "zendesk.update: {fields: {product_area: billing}}",
                 CRASH, "zendesk.update: {fields: {product_area: engine}}",
                 "set ticket.fields.product_area, to different values ('billing' vs 'engine')",
                 id="field-set-to-different-values"),
    pytest.param(URGENT, "zendesk.update: {status: pending}",
                 CRASH, "zendesk.update: {status: solved}",
                 "set the status, to different values", id="status-set-to-different-values"),
]


@pytest.mark.parametrize(("cond_a", "then_a", "cond_b", "then_b", "says"), DUPLICATES)
def test_two_live_rules_that_can_match_one_event_with_the_same_side_effect_are_reported(
        cond_a: str, then_a: str, cond_b: str, then_b: str, says: str) -> None:
    text = two_rules(cond_a, then_a, cond_b, then_b)
    finding = assert_points_at(findings(text, kind=LintKind.DUPLICATE_SIDE_EFFECT), text,
                               LintKind.DUPLICATE_SIDE_EFFECT, says,
                               "rules 'first' (a.yaml:6) and 'second'",
                               "can both match the same ticket.updated event")
    assert finding.rule_ids == ("first", "second")


NOT_DUPLICATES = [
    pytest.param(URGENT, "jira.create_or_link_bug: {project: SUP}",
                 LOW, "jira.create_or_link_bug: {project: SUP}", {}, id="exclusive-values"),
    pytest.param(CRASH, "jira.create_or_link_bug: {project: SUP}",
                 NOT_CRASH, "jira.create_or_link_bug: {project: SUP}", {},
                 id="exclusive-through-not"),
    pytest.param(URGENT, "jira.create_or_link_bug: {project: SUP}",
                 CRASH, "jira.create_or_link_bug: {project: SUP}", {"mode_b": "shadow"},
                 id="a-shadow-rule-executes-nothing"),
    pytest.param(URGENT, "zendesk.update: {note: Engineering is on it}",
                 CRASH, "zendesk.update: {note: Engineering is on it}", {"on_b": "[ticket.created]",
                                                                          "mode_b": "off"},
                 id="an-off-rule"),
    pytest.param(URGENT, "jira.create_or_link_bug: {project: SUP}",
                 CRASH, "jira.create_or_link_bug: {project: OPS}", {}, id="different-projects"),
    pytest.param(URGENT, "zendesk.update: {note: One, add_tags: [a], fields: {product_area: x}}",
                 CRASH, "zendesk.update: {note: Two, add_tags: [b], fields: {error_code: x}}", {},
                 id="different-notes-tags-and-fields"),
    pytest.param("{field: event.type, op: equals, value: ticket.created}",
                 "zendesk.update: {note: Engineering is on it}",
                 "{field: event.type, op: equals, value: ticket.updated}",
                 "zendesk.update: {note: Engineering is on it}",
                 {"on_b": "[ticket.created, ticket.updated]"}, id="exclusive-event-types"),
]


@pytest.mark.parametrize(("cond_a", "then_a", "cond_b", "then_b", "options"), NOT_DUPLICATES)
def test_exclusive_non_live_or_different_side_effects_are_not_duplicates(
        cond_a: str, then_a: str, cond_b: str, then_b: str, options: dict[str, str]) -> None:
    text = two_rules(cond_a, then_a, cond_b, then_b, **options)
    assert findings(text, kind=LintKind.DUPLICATE_SIDE_EFFECT) == []


def test_rules_one_change_fires_as_different_event_types_can_duplicate() -> None:
    text = two_rules(URGENT, "zendesk.update: {note: Sorry to see you go}",
                     URGENT, "zendesk.update: {note: Sorry to see you go}",
                     on_b="[ticket.solved]")
    assert_points_at(findings(text, kind=LintKind.DUPLICATE_SIDE_EFFECT), text,
                     LintKind.DUPLICATE_SIDE_EFFECT,
                     "can both match one change (as ticket.", "and as ticket.solved)")
    still_open = text.replace("if: " + URGENT,
                              "if: {field: ticket.status, op: equals, value: open}", 1)
    assert findings(still_open, kind=LintKind.DUPLICATE_SIDE_EFFECT) == []


def test_rules_in_two_files_with_no_common_event_type_are_not_duplicates() -> None:
    a = two_rules(URGENT, "zendesk.update: {note: Hi}", CRASH, "zendesk.update: {note: Hello}")
    b = """\
        rules:
          - id: third
            on: [ticket.created]
            if: {field: ticket.tags, op: contains, value: crash}
            then:
              - zendesk.update: {note: Hello}
        """
    assert findings(a, b, kind=LintKind.DUPLICATE_SIDE_EFFECT) == []
    on_both = b.replace("[ticket.created]", "[ticket.updated]")
    [finding] = findings(a, on_both, kind=LintKind.DUPLICATE_SIDE_EFFECT)
    assert (finding.file, finding.line, finding.rule_ids) == ("a.yaml", 12, ("second", "third"))
    assert "'third' (b.yaml:6)" in finding.message


# -- all together, the shipped configs, the command line ------------------------------------------


def test_findings_come_in_file_then_line_order() -> None:
    a = one_rule("""\
        all:
          - {field: ticket.status, op: equals, value: open}
          - {field: ticket.status, op: equals, value: solved}
        """)
    b = """\
        rules:
          - id: vip
            on: [ticket.updated]
            if: {field: ticket.tags, op: contains, value: vip}
            then:
              - zendesk.update: {add_tags: [vip]}
        """
    found = findings(b, a.replace("id: r", "id: s"))
    assert [(f.file, f.line, f.kind) for f in found] == [
        ("a.yaml", 6, LintKind.LOOP), ("b.yaml", 7, LintKind.NEVER_TRUE)]


ENV = {"ZENDESK_API_TOKEN": "t", "JIRA_API_TOKEN": "t",
       "ZENDESK_WEBHOOK_SECRET": "whsec-5d0b8e3a9c1f"}


@pytest.mark.parametrize("name", ["config.yaml", "config.production.yaml"])
def test_the_shipped_configs_lint_clean(name: str) -> None:
    config = load_config(ROOT / name, env=ENV)
    zendesk = config.app.connectors.zendesk
    assert config.rules.rules
    assert lint(config.rules, custom_fields=tuple(zendesk.custom_fields),
                user_fields=tuple(zendesk.user_fields),
                organization_fields=tuple(zendesk.organization_fields)) == []


LOOPING_RULES = """\
rules:
  - id: vip
    on: [ticket.updated]
    if: {field: ticket.tags, op: contains, value: vip}
    then:
      - zendesk.update: {add_tags: [vip], note: VIP}
"""


def run_validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "validate", *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_validate_prints_warnings_and_exits_1_on_them_only_with_strict(tmp_path: Path) -> None:
    shipped = (ROOT / "config.yaml").read_text(encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(shipped[:shipped.index("\nrules:\n") + 1] + LOOPING_RULES, encoding="utf-8")
    line = shipped[:shipped.index("\nrules:\n") + 1].count("\n") + 6

    lenient = run_validate("--config", str(config))
    assert lenient.returncode == 0, lenient.stderr
    assert f"{config}:{line}: warning [loop] rule 'vip' re-triggers itself" in lenient.stderr
    assert f"{config}: OK — 1 rule(s): vip (live)" in lenient.stdout
    assert "1 warning(s)" in lenient.stderr

    strict = run_validate("--config", str(config), "--strict")
    assert strict.returncode == 1
    assert f"{config}:{line}: warning [loop]" in strict.stderr

    clean = run_validate("--config", str(ROOT / "config.yaml"), "--strict")
    assert clean.returncode == 0, clean.stderr
    assert "warning" not in clean.stderr


def test_validate_strict_still_exits_1_for_errors_without_linting(tmp_path: Path) -> None:
    shipped = (ROOT / "config.yaml").read_text(encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(shipped.replace("op: contains", "op: contians"), encoding="utf-8")
    for extra in ((), ("--strict",)):
        done = run_validate("--config", str(config), *extra)
        assert done.returncode == 1
        assert "unknown operator 'contians'" in done.stderr
        assert "warning [" not in done.stderr
