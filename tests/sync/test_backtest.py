"""switchboard backtest / diff over export files: input handling, event sequencing, reports,
the diff of two rule sets (files and git revisions), and exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.models import Ticket
from main import cli
from rules import load_rule_files
from sync.backtest import (
    IncompleteHistory,
    InputError,
    ProblemLog,
    ReplayEvent,
    TicketHistory,
    backtest,
    read_export,
)
from sync.backtest.history import TicketEntry

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sandbox" / "data" / "sample_export.jsonl"
RULES = ROOT / "tests" / "fixtures" / "backtest" / "rules.yaml"
FIELD_IDS = {"error_code": 360001, "product_area": 360002, "steps_to_reproduce": 360003,
             "expected_result": 360004, "actual_result": 360005, "environment": 360006,
             "jira_key": 360007}
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _z(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def record(ticket_id: int, at: datetime, *, created: datetime | None = None,
           tags: tuple[str, ...] = ("bug_confirmed",), priority: str = "high",
           status: str = "open", code: str | None = "E1") -> dict[str, Any]:
    return {"id": ticket_id, "created_at": _z(created or at), "updated_at": _z(at),
            "subject": f"ticket {ticket_id}", "description": "text", "status": status,
            "priority": priority, "tags": list(tags),
            "custom_fields": [{"id": 360001, "value": code}]}


def write_jsonl(path: Path, items: list[Any]) -> Path:
    path.write_text("".join((item if isinstance(item, str) else json.dumps(item)) + "\n"
                            for item in items), encoding="utf-8")
    return path


def read(path: Path) -> tuple[list[Ticket], ProblemLog]:
    problems = ProblemLog()
    return list(read_export(path, field_ids=FIELD_IDS, agent_url_base="https://x.zendesk.com",
                            problems=problems)), problems


def run(*argv: str) -> int:
    with pytest.raises(SystemExit) as exc:
        cli(list(argv))
    return int(exc.value.code or 0)


# -- reading the export -----------------------------------------------------------------------


def test_malformed_lines_are_counted_with_their_line_numbers_and_the_rest_is_read(tmp_path):
    path = write_jsonl(tmp_path / "export.jsonl", [
        record(1, T0),
        "{not json",
        "[1, 2]",
        {"updated_at": _z(T0)},
        {"id": 2},
        {"id": "abc", "updated_at": _z(T0)},
        {"id": 3, "updated_at": "yesterday"},
        {"id": 4, "updated_at": _z(T0), "tags": 17},
        "",
        record(5, T0 + timedelta(minutes=1)),
    ])
    tickets, problems = read(path)
    assert [t.id for t in tickets] == [1, 5]
    assert problems.count == 7
    assert [p.where for p in problems.kept] == [f"line {n}" for n in range(2, 9)]
    assert "not valid JSON" in problems.kept[0].message
    assert "must be a JSON object" in problems.kept[1].message
    assert "no 'id'" in problems.kept[2].message
    assert "no 'updated_at'" in problems.kept[3].message


def test_json_array_and_export_page_read_the_same_tickets_as_jsonl(tmp_path):
    items = [record(1, T0), record(2, T0 + timedelta(minutes=1)), {"id": 3}]
    jsonl, _ = read(write_jsonl(tmp_path / "a.jsonl", items))
    (tmp_path / "b.json").write_text(json.dumps(items, indent=2), encoding="utf-8")
    (tmp_path / "c.json").write_text(json.dumps({"tickets": items, "end_of_stream": True},
                                                indent=2), encoding="utf-8")
    array, array_problems = read(tmp_path / "b.json")
    page, _ = read(tmp_path / "c.json")
    assert [t.id for t in jsonl] == [t.id for t in array] == [t.id for t in page] == [1, 2]
    assert jsonl == array == page
    assert [str(p) for p in array_problems.kept] == ["record 3: ticket 3: no 'updated_at'"]


def test_a_json_document_broken_halfway_stops_the_history_as_incomplete(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("[" + json.dumps(record(1, T0)) + ", {\"id\": 2, \"upd", encoding="utf-8")
    tickets = read_export(path, field_ids=FIELD_IDS, agent_url_base="https://x",
                          problems=ProblemLog())
    assert next(tickets).id == 1
    with pytest.raises(IncompleteHistory, match="broken after record 1"):
        next(tickets)


@pytest.mark.parametrize(("content", "message"), [
    ("", "the export is empty"), ("  \n\n", "the export is empty"),
    ("hello world", "not a JSON or JSONL ticket export"),
])
def test_an_empty_or_non_json_file_is_refused_before_reading(tmp_path, content, message):
    path = tmp_path / "export.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read(path)
    with pytest.raises(InputError, match="cannot read"):
        read(tmp_path / "missing.jsonl")


# -- per-ticket history -----------------------------------------------------------------------


def test_ticket_history_spills_to_disk_and_reads_back_what_it_spilled(tmp_path):
    with TicketHistory(cache=3, directory=tmp_path) as history:
        for n in range(1, 10_001):
            ticket = Ticket(n, T0 + timedelta(seconds=n), tags=(f"t{n}",),
                            custom_fields={"error_code": f"E{n}"})
            history.put(n, TicketEntry(ticket, ((f"pending:{n}",),)))
        assert history.spilled == 9_997
        for n in (1, 4_000, 9_999, 10_000):
            entry = history.get(n)
            assert entry is not None and entry.ticket.tags == (f"t{n}",)
            assert entry.ticket.updated_at == T0 + timedelta(seconds=n)
            assert entry.ticket.custom_fields == {"error_code": f"E{n}"}
            assert entry.links == ((f"pending:{n}",),)
        assert history.get(10_001) is None
        path = history.path
    assert not path.exists()


# -- event sequencing -------------------------------------------------------------------------


def _events(tmp_path: Path, items: list[Any], rules_yaml: str) -> list[ReplayEvent]:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(rules_yaml, encoding="utf-8")
    rules = load_rule_files([rules_file], custom_fields=tuple(FIELD_IDS))
    tickets, _ = read(write_jsonl(tmp_path / "export.jsonl", items))
    events: list[ReplayEvent] = []
    backtest(rules, tickets, custom_fields=tuple(FIELD_IDS), rules_source="r",
             history_source="h", on_event=events.append, temp_dir=tmp_path)
    return events


BUG_RULE = """\
rules:
  - id: bug
    on: [ticket.created, ticket.updated]
    if:
      all:
        - {field: ticket.tags, op: contains, value: bug_confirmed}
        - not: {field: links.jira, op: exists}
    then:
      - jira.create_or_link_bug: {project: SUP, summary: "{{ ticket.subject }}"}
"""


def test_events_follow_live_processing_created_updated_stale_and_unchanged(tmp_path):
    old = T0 - timedelta(days=2)
    events = _events(tmp_path, [
        record(1, T0, tags=("x",)),  # starts the history
        record(2, T0 + timedelta(minutes=1), created=old, tags=("x",)),  # an older ticket
        record(1, T0 + timedelta(minutes=2), created=T0, tags=("bug_confirmed",)),
        record(1, T0 + timedelta(minutes=2), created=T0, tags=("other",)),  # not newer
        record(1, T0 + timedelta(minutes=3), created=T0, tags=("bug_confirmed",)),  # same
        record(1, T0 + timedelta(minutes=4), created=T0, tags=("bug_confirmed",),
               status="pending"),
    ], BUG_RULE)
    assert [(e.ticket_id, e.event_type) for e in events] == [
        (1, "ticket.created"), (2, "ticket.updated"), (1, "ticket.updated"),
        (1, "ticket.updated")]
    second = events[1].sides[0].ctx
    assert second.changes["tags"].from_ is None  # diffed against nothing, as live does
    fired, linked = events[2].sides[0], events[3].sides[0]
    assert fired.outcomes[0].fired
    key = fired.outcomes[0].intents[0].idempotency_key
    # The bug planned for it makes the ticket count as linked afterwards.
    assert linked.ctx.links["jira"] == (f"pending:{key[:12]}",)
    assert not linked.outcomes[0].matched
    assert events[3].at == T0 + timedelta(minutes=4) == linked.ctx.event_time


def test_shadow_rules_link_nothing(tmp_path):
    events = _events(tmp_path, [
        record(1, T0), record(1, T0 + timedelta(minutes=1), created=T0, status="pending"),
    ], BUG_RULE.replace("  - id: bug\n", "  - id: bug\n    mode: shadow\n"))
    assert [o.fired for e in events for o in e.sides[0].outcomes] == [True, True]
    assert events[1].sides[0].ctx.links == {}


# -- the backtest command ---------------------------------------------------------------------


def test_backtest_command_prints_the_rule_table_and_writes_both_reports(tmp_path, capsys):
    report, table = tmp_path / "report.md", tmp_path / "rules.csv"
    status = run("backtest", "--export", str(SAMPLE), "--rules", str(RULES), "--report",
                 str(report), "--csv", str(table), "--no-progress")
    out = capsys.readouterr().out
    assert status == 0
    assert "299 record(s) read -> 260 event(s) (92 ticket.created, 168 ticket.updated); " \
        "skipped 1 not newer than the ticket's previous record, 38 with no field changed" in out
    assert "feature-requests (shadow)" in out and "login-outage" in out
    markdown = report.read_text(encoding="utf-8")
    assert markdown.startswith("# Switchboard backtest\n")
    assert "| login-outage | live | 92 | 15 | 2 | 13 |" in markdown
    rows = table.read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("rule,mode,events evaluated,matched,fired,")
    assert len(rows) == 8 and all(row.endswith(",yes") for row in rows[1:])


def test_backtest_command_exit_codes_for_bad_input(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    junk = write_jsonl(tmp_path / "junk.jsonl", ["{", "[]"])
    broken = tmp_path / "broken.json"
    broken.write_text("[" + json.dumps(record(1, T0)) + ", {", encoding="utf-8")
    bad_rules = tmp_path / "bad.yaml"
    bad_rules.write_text("rules:\n  - id: x\n    on: [ticket.exploded]\n", encoding="utf-8")
    assert run("backtest", "--export", str(tmp_path / "nope.jsonl")) == 2
    assert "cannot read" in capsys.readouterr().err
    assert run("backtest", "--export", str(empty)) == 2
    assert "the export is empty" in capsys.readouterr().err
    assert run("backtest", "--export", str(junk)) == 2
    assert "no valid ticket record (2 malformed; first: line 1" in capsys.readouterr().err
    assert run("backtest", "--export", str(broken), "--no-progress") == 4
    captured = capsys.readouterr()
    assert "INCOMPLETE" in captured.out and "INCOMPLETE" in captured.err
    assert run("backtest", "--export", str(SAMPLE), "--rules", str(bad_rules)) == 1
    assert "unknown event type" in capsys.readouterr().err
    assert run("backtest", "--since", "last tuesday") == 2
    assert "not a date" in capsys.readouterr().err
    # The shipped config runs against the sandbox: there is no account to export from.
    assert run("backtest", "--since", "2026-01-01") == 2
    assert "sandbox.enabled" in capsys.readouterr().err
    assert run("backtest") == 2  # usage: --export or --since is required
    capsys.readouterr()


def test_an_incomplete_history_is_reported_as_such():
    def tickets() -> Iterator[Ticket]:
        yield Ticket(1, T0, T0, tags=("bug_confirmed",), priority="high")
        raise IncompleteHistory("Zendesk incremental export, page 2: 503", "page 2")

    rules = load_rule_files([RULES], custom_fields=tuple(FIELD_IDS))
    summary = backtest(rules, tickets(), custom_fields=tuple(FIELD_IDS), rules_source="r",
                       history_source="h")
    assert not summary.complete and summary.records == 1
    assert summary.tally.rules["confirmed-bug-to-jira"].fired == 1
    assert any(line.startswith("INCOMPLETE: Zendesk incremental export, page 2")
               for line in summary.headline())


# -- diff -------------------------------------------------------------------------------------


def _changed_rules(tmp_path: Path) -> Path:
    text = RULES.read_text(encoding="utf-8")
    text = text.replace("window: {count: 5, within: 15m", "window: {count: 3, within: 15m")
    text = text.replace('zendesk.update: {add_tags: [billing_seen]}',
                        'zendesk.update: {add_tags: [billing_checked]}')
    text = text.replace("  - id: stale-follow-up\n", "  - id: stale-follow-up-2\n")
    path = tmp_path / "new.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_diff_lists_the_decisions_that_change_and_exits_1_with_exit_code(tmp_path, capsys):
    new = _changed_rules(tmp_path)
    changes_csv, report = tmp_path / "changes.csv", tmp_path / "diff.md"
    status = run("diff", str(RULES), str(new), "--export", str(SAMPLE), "--exit-code",
                 "--csv", str(changes_csv), "--report", str(report), "--no-progress")
    out = capsys.readouterr().out
    assert status == 1
    # The window fires earlier (at 3 tickets instead of 5), once per burst, and now also for
    # the small routing burst, whose episode then ends after its quiet period (a follow-up).
    assert "login-outage: fired 2 → 3; 4 newly fired, 2 no longer fired, 0 with different" \
        in out
    assert "ticket 4189 window.quiet at 2026-11-24T14:37:00Z — rule login-outage: " \
        "not fired → fired" in out
    assert "billing-heads-up: fired 18 → 18; 0 newly fired, 0 no longer fired, 18 with " \
        "different actions" in out
    assert "vip-urgent: fired 5 → 5; 0 newly fired" in out
    assert "added rule stale-follow-up-2" in out and "removed rule stale-follow-up" in out
    rows = changes_csv.read_text(encoding="utf-8").splitlines()
    assert rows[0] == "ticket,event,time,rule,change,old,new"
    assert len(rows) == 1 + 24
    billing = [r for r in rows if ",billing-heads-up," in r]
    assert 'zendesk.update {""add_tags"": [""billing_seen""], ""public"": false}' in billing[0]
    assert '{""add_tags"": [""billing_checked""], ""public"": false}' in billing[0]
    assert "## Changed decisions (24, first 20)" not in report.read_text(encoding="utf-8")
    assert "## Changed decisions (24)" in report.read_text(encoding="utf-8")


def test_diff_of_identical_rules_changes_nothing_and_exits_0(tmp_path, capsys):
    copy = tmp_path / "same.yaml"
    shutil.copy(RULES, copy)
    assert run("diff", str(RULES), str(copy), "--export", str(SAMPLE), "--exit-code") == 0
    assert "0 decision(s) changed" in capsys.readouterr().out


def test_diff_refuses_a_side_it_cannot_load_with_status_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - id: x\n    on: [ticket.created]\n    then: []\n",
                   encoding="utf-8")
    assert run("diff", str(RULES), str(bad), "--export", str(SAMPLE)) == 2
    assert "invalid rules" in capsys.readouterr().err
    assert run("diff", str(RULES), str(tmp_path / "missing"), "--export", str(SAMPLE)) == 2
    assert "no such rules file or directory" in capsys.readouterr().err
    assert run("diff", "git:no-such-rev-xyz", str(RULES), "--export", str(SAMPLE)) == 2
    assert "unknown revision" in capsys.readouterr().err
    assert run("diff", str(RULES), str(RULES), "--config", str(tmp_path / "nope.yaml"),
               "--export", str(SAMPLE)) == 2


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
                        "HOME": str(repo), "PATH": "/usr/bin:/bin"})


def test_diff_reads_a_git_revision_of_the_configs_rules_and_rules_dir(tmp_path, monkeypatch,
                                                                      capsys):
    repo = tmp_path / "repo"
    (repo / "rules").mkdir(parents=True)
    config = (ROOT / "config.yaml").read_text(encoding="utf-8").split("\nrules:\n")[0]
    (repo / "config.yaml").write_text(config + "\nrules_dir: rules\n", encoding="utf-8")
    shutil.copy(RULES, repo / "rules" / "team.yaml")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "rules")
    shutil.copy(_changed_rules(tmp_path), repo / "rules" / "team.yaml")  # not committed
    monkeypatch.chdir(repo)
    assert run("diff", "git:HEAD", "config.yaml", "--export", str(SAMPLE), "--exit-code") == 1
    out = capsys.readouterr().out
    assert out.startswith("diff git:HEAD (git:HEAD:config.yaml) → config.yaml")
    assert "login-outage: fired 2 → 3" in out
    assert run("diff", "git:HEAD:rules", "rules", "--export", str(SAMPLE)) == 0
    assert "login-outage: fired 2 → 3" in capsys.readouterr().out
    assert run("diff", "git:HEAD", "git:HEAD", "--export", str(SAMPLE), "--exit-code") == 0
    capsys.readouterr()
