"""The rule-evaluation benchmark's quick mode runs end to end, so the script cannot rot; its three
engines (RuleSet.matching, matches, evaluate) decide the same events the same way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.rules import main


def test_quick_mode_runs_every_engine_and_they_agree(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    results = {}
    for engine in ("matching", "matches", "evaluate"):
        out = tmp_path / f"{engine}.json"
        argv = ["--quick", "--events", "200", "--engine", engine, "--out", str(out)]
        if engine == "evaluate":
            argv.append("--no-tracemalloc")  # the slow one: speed pass only
        assert main(argv) == 0
        results[engine] = json.loads(out.read_text(encoding="utf-8"))
    printed = capsys.readouterr().out
    assert "events/s" in printed and "ru_maxrss MiB" in printed

    speeds = {engine: r["speed"] for engine, r in results.items()}
    assert {s["matched_evaluations"] for s in speeds.values()} == {
        speeds["evaluate"]["matched_evaluations"]}
    assert 0 < speeds["evaluate"]["match_rate"] < 0.2  # most rules do not match most events
    for speed in speeds.values():
        assert [c["events"] for c in speed["checkpoints"]] == [50, 100, 200]
        assert speed["events_per_s"] > 0
    memory = results["matching"]["memory"]
    assert [c["events"] for c in memory["checkpoints"]] == [50, 100, 200]
    assert all(c["traced_peak_kib"] > 0 for c in memory["checkpoints"])
    assert results["matching"]["rules"] == 200


def test_generated_rules_and_events_do_not_depend_on_the_hash_seed() -> None:
    script = (
        "import hashlib, sys; sys.path.insert(0, '.')\n"
        "from bench.rules import events, rule_documents\n"
        "h = hashlib.sha256(''.join(rule_documents()).encode())\n"
        "for c in events(300):\n"
        "    h.update(repr((c.event_type, dict(c.ticket), sorted(c.changes.items()),"
        " dict(c.links), c.now)).encode())\n"
        "print(h.hexdigest())\n"
    )
    root = Path(__file__).resolve().parents[2]
    digests = {
        subprocess.run([sys.executable, "-c", script], cwd=root, check=True, text=True,
                       capture_output=True, env={**os.environ, "PYTHONHASHSEED": seed}
                       ).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1
