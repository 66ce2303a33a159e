"""`switchboard test`: event files are validated, every listening rule is explained, and matched
rules show their actions with rendered params (earlier results as placeholders)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from rules import TemplateRenderError, load_rule_files, render
from rules.tester import (
    EventFileError,
    load_event,
    parse_event,
    placeholder_namespace,
    render_report,
    run_test,
)

ROOT = Path(__file__).resolve().parents[2]
CUSTOM = ("error_code", "jira_key", "steps_to_reproduce")

RULES = dedent("""\
    rules:
      - id: bug-to-jira
        on: [ticket.created, ticket.updated]
        if:
          all:
            - {field: ticket.tags, op: contains, value: bug_confirmed}
            - {field: ticket.priority, op: in, value: [high, urgent]}
            - not: {field: links.jira, op: exists}
        then:
          - jira.create_or_link_bug:
              project: SUP
              summary: "[{{ ticket.fields.error_code or 'no code' }}] {{ ticket.subject }}"
          - zendesk.update:
              note: "Linked to {{ jira.key }} ({{ jira.url }})"
              fields: {jira_key: "{{ jira.key }}"}
      - id: reopened
        mode: shadow
        on: [ticket.updated]
        if: {field: ticket.status, op: changed_to, value: open}
        then:
          - zendesk.update: {add_tags: [reopened]}
      - id: dormant
        mode: off
        on: [ticket.updated]
        then:
          - zendesk.update: {add_tags: [never]}
      - id: only-created
        on: [ticket.created]
        then:
          - zendesk.update: {add_tags: [new]}
    """)


def event(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "ticket.updated",
        "ticket": {"id": 42, "subject": "Import fails", "status": "open", "priority": "high",
                   "tags": ["bug_confirmed"], "fields": {"error_code": "E1042"},
                   "updated_at": "2026-11-27T10:00:00Z"},
        "changes": {"status": {"from": "new", "to": "open"}},
        "links": {"jira": []},
    }
    data.update(overrides)
    return data


@pytest.fixture
def rules(tmp_path: Path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    return load_rule_files([path], custom_fields=CUSTOM)


def test_every_listening_rule_is_reported_and_matches_render_their_actions(rules):
    report = run_test(rules, parse_event(event(), custom_fields=CUSTOM))
    assert [o.rule.id for o in report.outcomes] == ["bug-to-jira", "reopened", "dormant"]
    assert [o.rule.id for o in report.matched] == ["bug-to-jira", "reopened"]
    bug, note = report.outcomes[0].actions
    assert bug.params["summary"] == "[E1042] Import fails"
    assert note.params["note"] == "Linked to <jira.key> (<jira.url>)"
    assert note.params["fields"] == {"jira_key": "<jira.key>"}
    assert note.depends_on_action == "1. jira.create_or_link_bug"
    assert report.outcomes[2].evaluation is None  # mode off: not evaluated


def test_report_shows_each_condition_with_the_value_it_saw(rules):
    ctx = parse_event(event(ticket={"id": 7, "priority": "low", "tags": ["bug_confirmed"]}),
                      custom_fields=CUSTOM)
    text = render_report(run_test(rules, ctx))
    assert "✗ rule bug-to-jira did not match (ticket.updated, mode live)" in text
    assert "✓ ticket.tags contains 'bug_confirmed' (saw ['bug_confirmed'])" in text
    assert "✗ ticket.priority is one of ['high', 'urgent'] (saw 'low')   ← first failure" in text
    assert "✓ rule reopened matched" in text
    assert "shadow mode: these actions would be recorded, not executed" in text
    assert "- rule dormant is off: not evaluated" in text
    assert "1 of 3 rule(s) listening to ticket.updated matched: reopened" in text
    assert "only-created" not in text


def test_report_lists_rendered_params(rules):
    text = render_report(run_test(rules, parse_event(event(), custom_fields=CUSTOM)))
    assert "    1. jira.create_or_link_bug" in text
    assert "         summary: '[E1042] Import fails'" in text
    assert "    2. zendesk.update (after 1. jira.create_or_link_bug)" in text
    assert "         note: 'Linked to <jira.key> (<jira.url>)'" in text


def test_placeholders_render_as_their_dotted_name():
    ctx = parse_event(event(), custom_fields=CUSTOM)
    namespace = placeholder_namespace(ctx)
    assert str(namespace["jira"].key) == "<jira.key>"
    assert str(namespace["jira"]["url"]) == "<jira.url>"
    with pytest.raises(TemplateRenderError, match="sandbox"):
        render("{{ jira.__class__ }}", namespace)
    with pytest.raises(AttributeError):
        _ = namespace["jira"]._name_of_nothing  # noqa: B018 - private names stay private
    assert ctx.namespace()["ticket"]["fields"] == {"error_code": "E1042", "jira_key": None,
                                                   "steps_to_reproduce": None}


def test_ticket_text_is_data_in_rendered_params(rules):
    ctx = parse_event(event(ticket={"id": 1, "subject": "{{ 7*7 }}", "priority": "urgent",
                                    "tags": ["bug_confirmed"]}), custom_fields=CUSTOM)
    [bug, _] = run_test(rules, ctx).outcomes[0].actions
    assert bug.params["summary"] == "[no code] {{ 7*7 }}"


@pytest.mark.parametrize(("data", "problem"), [
    ([], "must be a JSON object"),
    (event(type="ticket.exploded"), "type: unknown event type 'ticket.exploded'"),
    ({"ticket": {"id": 1}}, "type: missing"),
    (event(ticket=None), "'ticket' must be an object"),
    ({"type": "ticket.updated"}, "ticket: missing"),
    (event(ticket={"subject": "x"}), "ticket.id: missing"),
    (event(ticket={"id": "42"}), "ticket.id: must be an integer"),
    (event(ticket={"id": 1, "colour": "red"}), "ticket.colour: unknown ticket field"),
    (event(ticket={"id": 1, "tags": "bug"}), "ticket.tags: must be a list of strings"),
    (event(ticket={"id": 1, "fields": {"nope": 1}}),
     "ticket.fields.nope: not a configured custom field"),
    (event(changes={"status": "open"}), 'changes.status: must be {"from"'),
    (event(changes={"ticket.status": {"from": 1, "to": 2}}), "without a prefix"),
    (event(links={"jira": "SUP-1"}), "links.jira: must be a list"),
    (event(extra=1), "extra: unknown key"),
])
def test_bad_events_are_refused_with_a_clear_problem(data, problem):
    with pytest.raises(EventFileError) as info:
        parse_event(data, custom_fields=CUSTOM, source="ev.json")
    assert any(problem in p for p in info.value.problems), info.value.problems
    assert info.value.render().startswith("ev.json: invalid event file")


def test_every_problem_is_reported_at_once():
    with pytest.raises(EventFileError) as info:
        parse_event({"type": "x", "ticket": {"id": "a", "tags": 3}}, custom_fields=CUSTOM)
    assert len(info.value.problems) == 3


def test_unreadable_and_non_json_files(tmp_path):
    with pytest.raises(EventFileError, match="cannot read"):
        load_event(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(EventFileError, match="not valid JSON"):
        load_event(bad)


def test_a_rule_whose_template_fails_shows_the_error(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(dedent("""\
        rules:
          - id: boom
            on: [ticket.updated]
            then:
              - zendesk.update: {note: "{{ 1 / (ticket.tags | length - 1) }}"}
        """), encoding="utf-8")
    rules = load_rule_files([path], custom_fields=CUSTOM)
    report = run_test(rules, parse_event(event(), custom_fields=CUSTOM))
    [action] = report.outcomes[0].actions
    assert action.error and "zendesk.update.note" in action.error
    assert "cannot render: zendesk.update.note" in render_report(report)


# -- the command line --------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def write(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_cli_test_explains_the_shipped_rule(tmp_path):
    rules_file = tmp_path / "rules.yaml"
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    write(rules_file, "rules:\n" + text.split("\nrules:\n", 1)[1])
    ev = write(tmp_path / "ev.json", event())
    done = run_cli("test", str(rules_file), str(ev), "--config", str(ROOT / "config.yaml"))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("Event ticket.updated (source test) on ticket 42: 'Import fails'")
    assert "✓ rule confirmed-bug-to-jira matched" in out
    assert "✓ ticket.priority is one of ['high', 'urgent'] (saw 'high')" in out
    assert "summary: '[E1042] Import fails'" in out
    assert "note: 'Linked to <jira.key> (<jira.url>) — engineering is on it.'" in out


def test_cli_test_takes_a_directory(tmp_path):
    (tmp_path / "rules").mkdir()
    write(tmp_path / "rules" / "a.yaml", RULES.replace("  - id: reopened\n",
                                                       "  - id: reopened-x\n"))
    ev = write(tmp_path / "ev.json", event(ticket={"id": 3, "fields": {"error_code": "E1"}}))
    done = run_cli("test", str(tmp_path / "rules"), str(ev))
    assert done.returncode == 0, done.stderr
    assert "✓ rule reopened-x matched" in done.stdout


def test_cli_test_bad_event_exits_2(tmp_path):
    ev = write(tmp_path / "ev.json", event(type="nope"))
    rules_file = write(tmp_path / "rules.yaml", RULES)
    done = run_cli("test", str(rules_file), str(ev))
    assert done.returncode == 2
    assert "invalid event file" in done.stderr and "unknown event type 'nope'" in done.stderr


def test_cli_test_bad_rules_exit_1(tmp_path):
    ev = write(tmp_path / "ev.json", event())
    rules_file = write(tmp_path / "rules.yaml", RULES.replace("op: contains", "op: containz"))
    done = run_cli("test", str(rules_file), str(ev))
    assert done.returncode == 1
    assert f"{rules_file}:" in done.stderr and "containz" in done.stderr
    missing = run_cli("test", str(tmp_path / "none.yaml"), str(ev))
    assert missing.returncode == 1 and "no such rules file" in missing.stderr


GATED = dedent("""\
    rules:
      - id: spike
        on: [ticket.updated]
        if: {field: ticket.tags, op: contains, value: bug_confirmed}
        window: {count: 5, within: 15m, group_by: ticket.fields.error_code}
        throttle: {once_until_resolved: true, at_most: {count: 2, per: 1h}}
        then:
          - zendesk.update:
              note: "{{ window.count }} tickets: {{ window.tickets | join(', ') }}"
    """)


def test_a_gated_rule_says_what_one_event_cannot_tell_and_renders_window_placeholders(
        tmp_path):
    path = write(tmp_path / "gated.yaml", GATED)
    report = render_report(run_test(load_rule_files([path], custom_fields=CUSTOM),
                                    parse_event(event(), custom_fields=CUSTOM)))
    assert ("window: this match counts toward 5 ticket(s) within 15m, counted per "
            "ticket.fields.error_code; the rule fires once when the count is reached") in report
    assert ("throttle: fires once per ticket until it is solved or closed and at most 2 per 1h"
            in report)
    assert "note: '<window.count> tickets: <window.tickets>'" in report


def test_cli_test_takes_the_config_itself_for_its_rules(tmp_path):
    ev = write(tmp_path / "ev.json", event())
    done = run_cli("test", "config.yaml", str(ev), "--config", "config.yaml")
    assert done.returncode == 0, done.stderr
    assert "✓ rule confirmed-bug-to-jira matched" in done.stdout
    assert "rule login-outage" not in done.stdout  # listens to ticket.created only
