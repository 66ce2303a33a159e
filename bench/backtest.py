"""Benchmark: `switchboard backtest` over a large JSONL ticket export.

    .venv/bin/python bench/backtest.py            # 250,000 and 1,000,000 records, about 5 min
    .venv/bin/python bench/backtest.py --quick    # 2,000 and 8,000 records, a few seconds
    .venv/bin/python bench/backtest.py --sizes 100000 --parse-stage off --repeat 3

For each size, a synthetic Zendesk export is streamed to a temporary JSONL file (realistic
records: the API's ticket keys, a description of a few hundred characters, tags, seven custom
fields; about 15% of the records are later updates of an earlier ticket), then the real backtest
(``sync.backtest``: the export reader, the replay through ``rules.engine``, the per-ticket state
file) runs over it with the rules of the shipped ``config.yaml``, in a fresh child process so that
its peak memory (``ru_maxrss``) is its own. Prints wall time, records/s, CPU, peak memory (and
the parse stage's, when the export is parsed in a child process) and the load average per size;
``--json`` writes them too. Generation time is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIELD_IDS = {"error_code": 360001, "product_area": 360002, "steps_to_reproduce": 360003,
             "expected_result": 360004, "actual_result": 360005, "environment": 360006,
             "jira_key": 360007}
WORDS = ("route", "optimiser", "depot", "import", "driver", "app", "dispatch", "board",
         "invoice", "billing", "export", "csv", "login", "password", "reset", "dashboard",
         "report", "fleet", "vehicle", "schedule", "delivery", "window", "stop", "customer",
         "portal", "api", "webhook", "error", "timeout", "blank", "page", "slow", "sync",
         "mobile")
TAGS = ("billing", "howto", "feature_request", "mobile", "reports", "account", "routing",
        "dashboard", "api", "vip", "cannot_login", "followup")
AREAS = ("billing", "routing", "reports", "mobile", "auth", "dispatch")
START = datetime(2026, 1, 1, tzinfo=UTC)


def _z(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(path: Path, records: int, seed: int = 7) -> int:
    """Write ``records`` ticket records to ``path`` (JSONL); returns the file size in bytes."""
    rng = random.Random(seed)
    descriptions = [" ".join(rng.choices(WORDS, k=rng.randint(40, 120))) for _ in range(500)]
    subjects = [" ".join(rng.choices(WORDS, k=rng.randint(3, 8))).capitalize()
                for _ in range(500)]
    codes = [f"E{n}" for n in range(1000, 1050)]
    recent: list[dict[str, object]] = []
    next_id = 100_000
    at = START
    with path.open("wb") as out:
        for _ in range(records):
            at += timedelta(seconds=rng.randint(0, 6))
            if recent and rng.random() < 0.15:
                ticket = dict(rng.choice(recent))
                ticket["status"] = rng.choice(("open", "pending", "solved"))
                if rng.random() < 0.1:
                    ticket["tags"] = [*ticket["tags"], "bug_confirmed"]  # type: ignore[misc]
                ticket["updated_at"] = _z(at)
            else:
                next_id += 1
                bug = rng.random() < 0.02
                fields = {"error_code": rng.choice(codes) if bug or rng.random() < 0.1 else None,
                          "product_area": rng.choice(AREAS), "steps_to_reproduce": None,
                          "expected_result": None, "actual_result": None,
                          "environment": rng.choice(("Chrome", "Safari", "iOS app", None)),
                          "jira_key": None}
                tags = rng.sample(TAGS, rng.randint(1, 3)) + (["bug_confirmed"] if bug else [])
                subject = rng.choice(subjects)
                requester = rng.randint(1, 200_000)
                ticket = {
                    "url": f"https://acme.zendesk.com/api/v2/tickets/{next_id}.json",
                    "id": next_id, "external_id": None,
                    "via": {"channel": rng.choice(("email", "web", "api")), "source": {}},
                    "created_at": _z(at), "updated_at": _z(at),
                    "type": rng.choice(("question", "incident", "problem", "task")),
                    "subject": subject, "raw_subject": subject,
                    "description": rng.choice(descriptions),
                    "priority": rng.choice(("low", "normal", "normal", "high", "urgent")),
                    "status": "new", "recipient": None, "requester_id": requester,
                    "submitter_id": requester, "assignee_id": rng.randint(1, 80),
                    "organization_id": rng.randint(1, 5000), "group_id": rng.randint(1, 20),
                    "collaborator_ids": [], "follower_ids": [], "email_cc_ids": [],
                    "forum_topic_id": None, "problem_id": None, "has_incidents": False,
                    "is_public": True, "due_at": None, "tags": tags,
                    "custom_fields": [{"id": fid, "value": fields[name]}
                                      for name, fid in FIELD_IDS.items()],
                    "satisfaction_rating": None, "sharing_agreement_ids": [],
                    "fields": [], "followup_ids": [], "ticket_form_id": 360000,
                    "brand_id": 360001, "allow_channelback": False,
                    "allow_attachments": True,
                }
                recent.append(ticket)
                if len(recent) > 2000:
                    recent.pop(rng.randrange(len(recent)))
            out.write(orjson.dumps(ticket))
            out.write(b"\n")
    return path.stat().st_size


STAGES = {"auto": None, "on": True, "off": False}


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def measure(path: Path, parse_stage: str = "auto") -> dict[str, object]:
    """Run the real backtest over ``path`` in this process; wall time, CPU and peak memory
    (this process's, and the parse stage's when there is one)."""
    from sync.backtest import ProblemLog, backtest, read_export
    from sync.config import load_config

    config = load_config(ROOT / "config.yaml")
    zendesk = config.app.connectors.zendesk
    problems = ProblemLog()
    load_before = os.getloadavg()[0]
    began, cpu_began = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
    tickets = read_export(path, field_ids=dict(zendesk.custom_fields),
                          agent_url_base="https://acme.zendesk.com", problems=problems,
                          parse_stage=STAGES[parse_stage])
    summary = backtest(config.rules, tickets, custom_fields=tuple(zendesk.custom_fields),
                       rules_source="config.yaml", history_source=str(path),
                       problems=problems)
    wall = time.perf_counter() - began
    cpu = _cpu(resource.RUSAGE_SELF) - cpu_began
    stage_cpu = _cpu(resource.RUSAGE_CHILDREN)
    rule = next(iter(summary.tally.rules.values()))
    return {"records": summary.records, "events": summary.event_count,
            "skipped": dict(summary.skipped), "problems": problems.count,
            "fired": rule.fired, "matched": rule.matched,
            "fired_all": sum(t.fired for t in summary.tally.rules.values()),
            "wall_s": round(wall, 2), "records_per_s": round(summary.records / wall),
            "us_per_record": round(1e6 * wall / summary.records, 1),
            "cpu_s": round(cpu, 2), "parse_stage_cpu_s": round(stage_cpu, 2),
            "parse_stage": stage_cpu > 0,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "parse_stage_peak_rss_mb": round(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
            "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--sizes", help="comma-separated record counts (overrides --quick)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--parse-stage", choices=sorted(STAGES), default="auto",
                        help="parse in a child process: on, off, or auto (exports of 32 MB or "
                             "more; the default)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="backtest each export this many times (the machine may be shared)")
    parser.add_argument("--measure", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure), args.parse_stage)))
        return 0
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else [2_000, 8_000] if args.quick else [250_000, 1_000_000])
    results = []
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as tmp:
        for size in sizes:
            path = Path(tmp) / f"export-{size}.jsonl"
            began = time.perf_counter()
            size_bytes = generate(path, size)
            made = time.perf_counter() - began
            for _ in range(args.repeat):
                done = subprocess.run([sys.executable, __file__, "--measure", str(path),
                                       "--parse-stage", args.parse_stage],
                                      capture_output=True, text=True, check=False,
                                      env={**os.environ, "PYTHONHASHSEED": "0"})
                if done.returncode != 0:
                    print(done.stderr, file=sys.stderr)
                    return 1
                figures = json.loads(done.stdout.strip().splitlines()[-1])
                figures.update(size=size, file_mb=round(size_bytes / 2**20, 1),
                               generate_s=round(made, 1))
                results.append(figures)
                stage = (f", parse stage {figures['parse_stage_cpu_s']} s CPU / "
                         f"{figures['parse_stage_peak_rss_mb']} MB" if figures["parse_stage"]
                         else "")
                print(f"{size:>9,} records ({figures['file_mb']} MB JSONL, generated in "
                      f"{made:.1f} s): backtest {figures['wall_s']} s "
                      f"({figures['us_per_record']} µs/record, {figures['cpu_s']} s CPU), "
                      f"{figures['records_per_s']:,} records/s, peak RSS "
                      f"{figures['peak_rss_mb']} MB{stage}; {figures['events']:,} events, "
                      f"skipped {figures['skipped']}, rule matched {figures['matched']:,} / "
                      f"fired {figures['fired']:,}; load average {figures['load_before']} -> "
                      f"{figures['load_after']}", flush=True)
            path.unlink()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
