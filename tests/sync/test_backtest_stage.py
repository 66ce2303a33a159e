"""The parse stage (a child process parsing a JSONL export) reads exactly what the reading process
reads: the same tickets, problems with the same line numbers, the same progress, and the same
backtest report; it stops when the reader stops, and a child that dies makes the history
incomplete rather than short."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from main import cli
from sync.backtest import ProblemLog, read_export
from sync.backtest import records as records_module
from sync.backtest import stage as stage_module
from sync.backtest.stage import BATCH_RECORDS, ParseStage, available

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sandbox" / "data" / "sample_export.jsonl"
RULES = ROOT / "tests" / "fixtures" / "backtest" / "rules.yaml"
FIELD_IDS = {"error_code": 360001, "product_area": 360002}
AGENT = "https://x.zendesk.com"

pytestmark = pytest.mark.skipif(not available(), reason="needs fork and a single thread")


def _lines(count: int) -> list[str]:
    lines = []
    for n in range(1, count + 1):
        record: dict[str, Any] = {
            "id": n % 700 + 1, "updated_at": f"2026-01-01T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:"
                                            f"{n % 60:02d}Z",
            "created_at": "2025-12-31T10:00:00Z", "subject": f"s{n}", "status": "Open",
            "tags": ["a", f"t{n % 5}"],
            "custom_fields": [{"id": 360001, "value": f"E{n % 9}"}]}
        if n % 97 == 0:
            lines.append("{not json")
        elif n % 89 == 0:
            lines.append("")
        elif n % 83 == 0:
            lines.append(json.dumps({"tickets": [record, {"id": "x", "updated_at": "y"}]}))
        elif n % 79 == 0:
            lines.append(json.dumps({"ticket": {**record, "updated_at": "2026-01-01T10:00:00.5Z",
                                                "created_at": 1_700_000_000}}))
        elif n % 73 == 0:
            lines.append(json.dumps([1, 2]))
        elif n % 71 == 0:
            lines.append(json.dumps({**record, "updated_at": None}))
        else:
            lines.append(json.dumps(record))
    return lines


def _read(path: Path, parse_stage: bool) -> tuple[list[Any], list[Any], list[int], Any]:
    problems = ProblemLog()
    positions: list[int] = []
    tickets = list(read_export(path, field_ids=FIELD_IDS, agent_url_base=AGENT,
                               problems=problems, progress=positions.append,
                               parse_stage=parse_stage))
    return tickets, [(p.where, p.message) for p in problems.kept], positions, problems


def test_the_parse_stage_reads_what_the_reading_process_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(records_module, "KEEP_PROBLEMS", 10_000)
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(_lines(3 * BATCH_RECORDS + 17)) + "\n", encoding="utf-8")
    here, there = _read(path, False), _read(path, True)
    assert there[0] == here[0] and len(here[0]) > 2 * BATCH_RECORDS
    assert [t.created_at for t in there[0]] == [t.created_at for t in here[0]]
    assert there[1] == here[1] and len(here[1]) > 100
    assert there[2] == here[2] and len(here[2]) >= 2
    assert there[3].kinds == here[3].kinds and there[3].count == here[3].count


def test_a_reader_that_stops_early_stops_the_parse_stage(tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(_lines(5 * BATCH_RECORDS)) + "\n", encoding="utf-8")
    stage = ParseStage(path, field_ids=FIELD_IDS, agent_url_base=AGENT)
    tickets = stage.tickets(ProblemLog(), None)
    assert next(tickets).id == 2
    tickets.close()
    assert not stage.process.is_alive()


def test_a_parse_stage_that_dies_is_not_taken_for_the_end_of_the_export(tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(_lines(5 * BATCH_RECORDS)) + "\n", encoding="utf-8")
    stage = ParseStage(path, field_ids=FIELD_IDS, agent_url_base=AGENT)
    tickets = stage.tickets(ProblemLog(), None)
    next(tickets)
    stage.process.kill()
    with pytest.raises(EOFError):
        for _ in tickets:
            pass


def test_a_backtest_through_the_parse_stage_reports_the_same(tmp_path, monkeypatch, capsys):
    started: list[ParseStage] = []

    class Counted(ParseStage):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(stage_module, "ParseStage", Counted)
    reports = []
    for threshold in (10**12, 0):  # never, always
        monkeypatch.setattr(records_module, "PARSE_STAGE_BYTES", threshold)
        report = tmp_path / f"report-{threshold}.md"
        with pytest.raises(SystemExit) as exc:
            cli(["backtest", "--export", str(SAMPLE), "--rules", str(RULES), "--report",
                 str(report), "--no-progress"])
        assert exc.value.code in (0, None)
        reports.append([line for line in report.read_text(encoding="utf-8").splitlines()
                        if not line.startswith("- took ")])
    capsys.readouterr()
    assert reports[0] == reports[1] and len(reports[0]) > 10
    assert len(started) == 1 and not started[0].process.is_alive()
