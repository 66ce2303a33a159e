"""Benchmark: `switchboard report` over a store of 100,000 ticket snapshots.

    .venv/bin/python bench/report.py                   # 100,000 tickets, about a minute in all
    .venv/bin/python bench/report.py --tickets 20000   # smaller
    .venv/bin/python bench/report.py --repeat 3 --json figures.json

A temporary SQLite store (migrated as the hub migrates it) is filled with realistic snapshots —
``Ticket.to_dict`` records with the API's fields, a description of a few hundred characters
(5% of them with a help-center article link, 3% with a request link), 2-5 tags from a skewed
vocabulary, seven custom fields plus a feedback category, statuses of a working support team,
creation times spread over the last 30 days (a quarter of them in the reported week, some
undated) — plus Jira links for 8% of the tickets (a few hot bugs, a long tail), the Jira states
of those issues, Productboard notes for 6% of them and SLA alerts for 4%. Then the real report
(``sync.report.command.generate``: the queries, the aggregation, the three PNG charts, Markdown
and HTML) runs over the last 7 days in a fresh child process, so that its peak memory
(``ru_maxrss``, beside the process's size before the report) is its own; a second run under
``tracemalloc`` gives the peak of Python allocations (not timed: tracemalloc slows Python).
Filling the store is not counted.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TAGS = ("login", "billing", "export", "import", "sso", "invoice", "routing", "driver_app",
        "dashboard", "api", "webhook", "csv", "password", "2fa", "mobile", "performance",
        "notifications", "permissions", "reports", "integration", "onboarding", "pricing",
        "feature_request", "bug", "question", "how_to", "outage", "latency", "timeout", "sync")
CATEGORIES = ("bug", "usability", "feature_request", "documentation", "billing", "other")
STATUSES = ("new", "open", "pending", "hold", "solved", "solved", "solved", "closed")
WORDS = ("route", "optimiser", "depot", "import", "driver", "app", "dispatch", "board",
         "invoice", "billing", "export", "csv", "login", "password", "reset", "dashboard",
         "customer", "order", "delivery", "window", "slot", "map", "address", "error")
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
CONFIG = """\
store:
  url: sqlite:///{db}
connectors:
  zendesk:
    subdomain: bench
    email: bench@example.com
    api_token: bench
    custom_fields: {{error_code: 1, product_area: 2, steps_to_reproduce: 3, expected_result: 4,
                    actual_result: 5, environment: 6, jira_key: 7, feedback_category: 8,
                    kb_article: 9}}
  jira:
    url: https://bench.atlassian.net
    email: bench@example.com
    api_token: bench
report:
  timezone: Europe/Berlin
  category_field: feedback_category
  article_field: kb_article
"""


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def fill(db: Path, tickets: int, seed: int) -> None:
    """Fill a migrated store at ``db`` with ``tickets`` snapshots and their links, notes and
    alerts, in batches."""
    import sqlalchemy as sa

    from sync.schema import (
        jira_issues,
        links,
        productboard_notes,
        sla_alerts,
        snapshots,
    )
    from sync.store import Store

    rng = random.Random(seed)
    store = Store(f"sqlite:///{db}").open()
    weights = [1.0 / (rank + 1) for rank in range(len(TAGS))]
    batch: dict[str, list[dict[str, object]]] = {"s": [], "l": [], "n": [], "a": []}
    bugs = [f"SUP-{n}" for n in range(1, 401)]
    bug_weights = [1.0 / (rank + 1) ** 1.2 for rank in range(len(bugs))]

    def flush() -> None:
        with store.write() as conn:
            for key, table in (("s", snapshots), ("l", links), ("n", productboard_notes),
                               ("a", sla_alerts)):
                if batch[key]:
                    conn.execute(sa.insert(table), batch[key])
                    batch[key].clear()

    for ticket_id in range(1, tickets + 1):
        created = NOW - timedelta(seconds=rng.uniform(0, 30 * 86400))
        updated = min(NOW, created + timedelta(hours=rng.uniform(0, 72)))
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 70)))
        roll = rng.random()
        if roll < 0.05:
            text += f" https://help.example.com/hc/en-us/articles/{rng.randint(1, 999)}-Guide"
        elif roll < 0.08:
            text += f" https://help.example.com/hc/en-us/requests/{ticket_id}"
        tags = sorted(set(rng.choices(TAGS, weights, k=rng.randint(2, 5))))
        if rng.random() < 0.1:
            tags.append("kb_linked")
        if rng.random() < 0.3:
            tags.append(f"switchboard_{rng.getrandbits(40):010x}")
        data = {
            "id": ticket_id, "updated_at": _time(updated),
            "created_at": None if rng.random() < 0.002 else _time(created),
            "subject": " ".join(rng.choice(WORDS) for _ in range(6)), "description": text,
            "status": rng.choice(STATUSES), "priority": rng.choice(("low", "normal", "high")),
            "type": "question", "tags": tags, "requester_id": rng.randint(1, 20000),
            "organization_id": rng.randint(1, 2000), "assignee_id": rng.randint(1, 50),
            "group_id": rng.randint(1, 8),
            "fields": {"error_code": f"E{rng.randint(1000, 1400)}",
                       "product_area": rng.choice(("routing", "billing", "mobile", "api")),
                       "steps_to_reproduce": "1. open 2. click", "expected_result": "works",
                       "actual_result": "fails", "environment": "Chrome", "jira_key": None,
                       "feedback_category": rng.choice(CATEGORIES),
                       "kb_article": "" if rng.random() < 0.9 else "https://help/hc/articles/1"},
            "url": f"https://bench.zendesk.com/api/v2/tickets/{ticket_id}.json",
        }
        batch["s"].append({"ticket_id": ticket_id, "updated_at": updated, "data": data,
                           "saved_at": updated})
        if rng.random() < 0.08:
            batch["l"].append({"ticket_id": ticket_id, "system": "jira",
                               "ref": rng.choices(bugs, bug_weights)[0], "url": None,
                               "created_at": updated})
        if rng.random() < 0.06:
            org = rng.randint(1, 800)
            batch["n"].append({
                "ticket_id": ticket_id, "rule_id": "feedback", "record_id": f"r{ticket_id}",
                "note_id": f"n{ticket_id}", "url": None,
                "feature_id": None if rng.random() < 0.3 else f"feat-{rng.randint(1, 60)}",
                "requester_email": f"user{rng.randint(1, 20000)}@org{org}.example",
                "organization": None if rng.random() < 0.2 else f"Org {org}",
                "tags": tags[:2], "appended": [], "created_at": updated, "updated_at": updated})
        if rng.random() < 0.04:
            batch["a"].append({
                "ticket_id": ticket_id, "target": rng.choice(("first_reply", "resolution")),
                "kind": rng.choice(("warning", "warning", "breached")),
                "due_at": updated, "fired_at": updated, "priority": "high",
                "plan": rng.choice(("enterprise", "pro", None)), "source": "config",
                "inbox_id": None})
        if len(batch["s"]) >= 5000:
            flush()
    flush()
    with store.write() as conn:
        conn.execute(sa.insert(jira_issues), [
            {"key": key, "issue_id": str(n), "state": {
                "status": rng.choice(("To Do", "In Progress", "Done")), "resolution": None,
                "priority": "High", "fix_versions": []}, "updated": NOW, "gone": False,
             "saved_at": NOW} for n, key in enumerate(bugs)])
    store.close()


def measure(config_path: Path, out: Path) -> dict[str, float]:
    """Run in the child: generate the report of the 7 days up to NOW; wall time and peaks."""
    import tracemalloc
    from zoneinfo import ZoneInfo

    from sync.config import load_config
    from sync.report.charts import render_charts  # noqa: F401  (matplotlib imported before timing)
    from sync.report.command import generate
    from sync.report.period import resolve_period

    config = load_config(config_path, env={})
    period = resolve_period("7d", None, ZoneInfo("Europe/Berlin"), NOW)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    cpu = time.process_time()
    files = generate(config, period, out / "timed", now=NOW)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Python's own allocations, in a second run: tracemalloc slows allocation-heavy code.
    tracemalloc.start()
    generate(config, period, out / "traced", now=NOW)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"wall_s": wall, "cpu_s": cpu, "tickets_in_period": files.report.tickets,
            "tickets_previous": files.report.tickets_previous,
            "traced_peak_mb": traced_peak / 2**20, "baseline_rss_mb": baseline,
            "maxrss_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON too")
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child[0]), Path(args.child[1]))))
        return
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        directory = Path(tmp)
        db = directory / "hub.db"
        started = time.perf_counter()
        fill(db, args.tickets, args.seed)
        size = db.stat().st_size / 2**20
        print(f"store: {args.tickets:,} tickets, {size:.0f} MB, filled in "
              f"{time.perf_counter() - started:.1f} s (not counted)")
        config = directory / "config.yaml"
        config.write_text(CONFIG.format(db=db), encoding="utf-8")
        runs = []
        for n in range(args.repeat):
            result = subprocess.run(
                [sys.executable, __file__, "--child", str(config), str(directory / f"out{n}")],
                capture_output=True, text=True, check=True, cwd=ROOT)
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            runs.append(figures)
            print(f"run {n + 1}: {figures['wall_s']:.2f} s wall, {figures['cpu_s']:.2f} s CPU, "
                  f"{figures['tickets_in_period']:,} tickets in the week "
                  f"({figures['tickets_previous']:,} the week before), peak RSS "
                  f"{figures['maxrss_mb']:.0f} MB ({figures['baseline_rss_mb']:.0f} MB before: "
                  f"interpreter, SQLAlchemy, matplotlib), Python allocations peak "
                  f"{figures['traced_peak_mb']:.1f} MB")
        if args.json:
            Path(args.json).write_text(json.dumps({"tickets": args.tickets, "runs": runs},
                                                  indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
