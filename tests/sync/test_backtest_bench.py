"""The backtest benchmark's quick mode runs end to end, so the script cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_backtest_bench_quick_mode_prints_and_writes_its_figures(tmp_path):
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "backtest.py"), "--quick",
                           "--json", str(out)], capture_output=True, text=True, timeout=300,
                          check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and all("records/s, peak RSS" in line for line in lines)
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert [f["size"] for f in figures] == [2_000, 8_000]
    for f in figures:
        assert f["records"] == f["size"] and f["problems"] == 0
        assert f["events"] + sum(f["skipped"].values()) == f["records"]
        assert 0 < f["fired"] == f["matched"] < f["records"]
