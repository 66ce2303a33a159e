"""`switchboard backtest --since` and `diff --since` read Zendesk's incremental export through the
real connector (the sandbox on loopback) — and write nothing to any vendor."""

from __future__ import annotations

from pathlib import Path

import pytest

from main import cli
from sandbox import Sandbox

from .conftest import ROOT, bug_ticket


def _config(tmp_path: Path, sb: Sandbox) -> Path:
    """The shipped config, aimed at the running sandbox as a real account would be."""
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    text = text.replace("  enabled: true\n", "  enabled: false\n", 1)
    text = text.replace("    subdomain: sandbox\n",
                        f"    subdomain: sandbox\n    base_url: {sb.zendesk_url}\n", 1)
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def run(*argv: str) -> int:
    with pytest.raises(SystemExit) as exc:
        cli(list(argv))
    return int(exc.value.code or 0)


def test_backtest_since_reads_the_export_and_only_ever_gets(sb, tmp_path, capsys):
    first = bug_ticket(sb, error_code="E1042")
    bug_ticket(sb, error_code="E2201", priority="low")
    sb.zendesk.create_ticket({"subject": "How do I add a user?", "tags": ["howto"]})
    sb.zendesk.update_ticket(first, {"status": "pending"})
    config = _config(tmp_path, sb)
    report = tmp_path / "report.md"
    status = run("backtest", "--since", "2020-01-01", "--config", str(config),
                 "--report", str(report), "--no-progress")
    out = capsys.readouterr().out
    assert status == 0
    assert "3 record(s) read -> 3 event(s) (3 ticket.created)" in out
    markdown = report.read_text(encoding="utf-8")
    assert "| confirmed-bug-to-jira | live | 3 | 1 | 1 |" in markdown
    assert "jira.create_or_link_bug × 1, jira.impact × 1, zendesk.update × 1" in markdown
    # The committed config's rules against this one's: the same rules, so nothing changes.
    assert run("diff", f"git:HEAD:{ROOT / 'config.yaml'}", str(config), "--since",
               "2020-01-01", "--config", str(config), "--exit-code") == 0
    capsys.readouterr()
    requests = sb.requests.entries()
    assert requests, "the export was read through the sandbox"
    assert {r.method for r in requests} == {"GET"}
    assert all("incremental/tickets/cursor" in r.path for r in requests)
    assert sb.requests.count("jira") == 0


@pytest.mark.parametrize(("status", "headers", "message"), [
    (401, None, "401"),
    (429, {"Retry-After": "120"}, "429"),
])
def test_a_vendor_error_stops_the_backtest_as_incomplete(sb, tmp_path, capsys, status, headers,
                                                         message):
    bug_ticket(sb)
    sb.faults.add("zendesk", "GET", r"incremental", kind="status", status=status,
                  headers=headers, times=None)
    status_code = run("backtest", "--since", "2020-01-01", "--config",
                      str(_config(tmp_path, sb)), "--no-progress")
    captured = capsys.readouterr()
    assert status_code == 4
    assert "INCOMPLETE: Zendesk incremental export, page 1:" in captured.err
    assert message in captured.err
    assert "INCOMPLETE" in captured.out
    assert {r.method for r in sb.requests.entries()} == {"GET"}
