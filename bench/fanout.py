"""Jira -> Zendesk fan-out benchmark (issue 5): Zendesk and Jira calls spent when a bug that N
tickets are linked to changes status, and the time to fan out to them, against the sandbox.

    .venv/bin/python bench/fanout.py [--sizes 1,10,100,1000] [--rate 100]

For each N: a sandbox and a hub (in this process, store in a temp dir) on the shipped config
trimmed to its bug rule plus the shipped ``bug-progress-to-tickets`` rule; N tickets linked to
SUP-77; one signed ``jira:issue_updated`` webhook (To Do -> In Progress) posted to the hub. The
calls are counted in the sandbox's request log from the webhook on; the time is from the webhook
to the hub being idle (every ticket written). ``--rate`` sets the sandbox Zendesk's limit in
requests per minute (Zendesk's ticket-update limit is 100/min); the hub's own limiter is set to
the same. See bench/README.md.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import requests
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.jira_webhooks import sign  # noqa: E402
from sandbox import Sandbox  # noqa: E402
from sandbox.demo import sandboxed_config  # noqa: E402
from sync.config import LoadedConfig, load_config  # noqa: E402
from sync.hub import Hub  # noqa: E402
from sync.links import add_link  # noqa: E402

SHIPPED = (ROOT / "config.yaml").read_text(encoding="utf-8")
COOKBOOK = "  # The cookbook"
RULE = "  - id: bug-progress-to-tickets" + SHIPPED.split(
    "  - id: bug-progress-to-tickets")[1].split("  - id: ")[0]
EVENT = (ROOT / "tests" / "fixtures" / "jira" / "webhook_issue_updated_status.json").read_bytes()
SECRET = "bench-jira-webhook-secret"


def fan_out(n: int, rate: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp, Sandbox() as sb:
        path = Path(tmp) / "config.yaml"
        path.write_text(SHIPPED.split(COOKBOOK)[0].rstrip("\n") + "\n" + RULE, encoding="utf-8")
        config = sandboxed_config(load_config(path, env={}), sb, Path(tmp) / "hub.db")
        app = config.app
        zendesk = app.connectors.zendesk.model_copy(update={"requests_per_minute": rate})
        app = app.model_copy(update={
            "poller": app.poller.model_copy(update={"interval_seconds": 3600}),
            "receiver": app.receiver.model_copy(
                update={"jira_signing_secrets": (SecretStr(SECRET),)}),
            "connectors": app.connectors.model_copy(update={"zendesk": zendesk})})
        tickets = [int(sb.zendesk.create_ticket({"subject": f"Import fails ({i})",
                                                 "description": "d"})["id"]) for i in range(n)]
        hub = Hub(LoadedConfig(path=config.path, app=app, rules=config.rules))
        hub.start()
        try:
            with hub.store.write() as conn:
                for ticket_id in tickets:
                    add_link(conn, ticket_id, "jira", "SUP-77", None)
            hub.wait_idle(30)
            sb.zendesk.set_rate_limit(rate)
            sb.requests.clear()
            start = time.monotonic()
            answer = requests.post(f"{hub.url}/webhooks/jira", data=EVENT, timeout=10, headers={
                "Content-Type": "application/json", "X-Hub-Signature": sign(SECRET, EVENT),
                "X-Atlassian-Webhook-Identifier": f"bench-{n}"})
            answer.raise_for_status()
            idle = hub.wait_idle(600)
            elapsed = time.monotonic() - start
            note = "Engineering moved SUP-77 to In Progress."
            once = sum(1 for t in tickets
                       if [c["body"] for c in sb.zendesk.comments(t)].count(note) == 1)
            return {
                "n": n, "idle": idle, "seconds": elapsed, "once": once,
                "update_many": sb.requests.count("zendesk", method="PUT",
                                                 path_regex=r"update_many"),
                "job_polls": sb.requests.count("zendesk", method="GET",
                                               path_regex=r"job_statuses"),
                "zendesk_other": sb.requests.count("zendesk", path_regex=r"^/api/v2/")
                - sb.requests.count("zendesk", method="PUT", path_regex=r"update_many")
                - sb.requests.count("zendesk", method="GET", path_regex=r"job_statuses"),
                "rate_limited": sum(1 for e in sb.requests.entries("zendesk") if e.status == 429),
                "jira": sb.requests.count("jira", path_regex=r"."),
                "jira_paths": sorted({e.path for e in sb.requests.entries("jira")}),
            }
        finally:
            hub.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100,1000", help="linked tickets, comma-separated")
    parser.add_argument("--rate", type=int, default=100,
                        help="Zendesk requests per minute (sandbox limit and hub limiter)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    print(f"machine: {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), "
          f"Python {sys.version.split()[0]}; Zendesk limit {args.rate}/min")
    print(f"{'linked':>7} {'floor':>6} {'update_many':>11} {'job polls':>9} {'other zd':>8} "
          f"{'jira':>5} {'429s':>5} {'one note':>9} {'seconds':>8}")
    for n in (int(s) for s in args.sizes.split(",")):
        out = fan_out(n, args.rate)
        print(f"{n:>7} {math.ceil(n / 100):>6} {out['update_many']:>11} {out['job_polls']:>9} "
              f"{out['zendesk_other']:>8} {out['jira']:>5} {out['rate_limited']:>5} "
              f"{out['once']:>9} {out['seconds']:>8.2f}"
              + ("" if out["idle"] else "  (not idle in time)")
              + (f"  jira: {', '.join(out['jira_paths'])}" if out["jira_paths"] else ""))


if __name__ == "__main__":
    main()
