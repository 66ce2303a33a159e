"""Escalation benchmark (issue 4): PagerDuty and Slack calls spent per escalation, and the
ticket-event -> page latency, against the sandbox.

    .venv/bin/python bench/escalation.py [--tickets K] [--burst N] [--spacing S]

Each phase starts its own sandbox and hub (in this process, store in a temp dir) on the shipped
config.yaml trimmed to the rules under test, as tests/e2e does; background polls are off, the
dispatcher and connector settings stay as shipped. See bench/README.md.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from sandbox import Sandbox  # noqa: E402
from sandbox.demo import (  # noqa: E402
    load_sample,
    sandboxed_config,
    seed_organizations,
    subscribe_pagerduty,
    zendesk_ticket,
)
from sync.config import LoadedConfig, load_config  # noqa: E402
from sync.hub import Hub  # noqa: E402
from sync.schema import escalations as escalation_table  # noqa: E402
from sync.schema import outbox  # noqa: E402

SHIPPED = (ROOT / "config.yaml").read_text(encoding="utf-8")
COOKBOOK = "  # The cookbook"
#: The shipped escalation rules (enterprise page, priority change, PagerDuty back, solve).
ESCALATION_RULES = "  - id: enterprise-down-page" + SHIPPED.split(
    "  - id: enterprise-down-page")[1].split("  - id: checkout-outage")[0]
OUTAGE_RULE = "  - id: checkout-outage" + SHIPPED.split("  - id: checkout-outage")[1]
FIELD_IDS = {"error_code": 360001, "product_area": 360002, "steps_to_reproduce": 360003,
             "expected_result": 360004, "actual_result": 360005, "environment": 360006,
             "jira_key": 360007}
SLACK_METHODS = ("chat.postMessage", "chat.update", "conversations.list",
                 "conversations.history")
CALLS = [("pagerduty", "POST", r"^/v2/enqueue$", "PagerDuty events (POST /v2/enqueue)")] + [
    ("slack", None, rf"^/api/{re.escape(m)}$", f"Slack {m}") for m in SLACK_METHODS] + [
    ("slack", None, r"^/api/", "Slack, all methods")] + [
    ("zendesk", "POST", r"^/api/v2/tickets(\.json)?$", "Zendesk ticket create (POST)"),
    ("zendesk", "PUT", r"^/api/v2/tickets/\d+(\.json)?$", "Zendesk ticket update (PUT)"),
    ("zendesk", None, r"^/api/v2/", "Zendesk, all methods")]


@contextmanager
def running_hub(rules: str) -> Iterator[tuple[Sandbox, Hub]]:
    """A sandbox with the sample's organizations and a started hub on the shipped config with
    ``rules``, its request log cleared once the start-up backfill is done."""
    with tempfile.TemporaryDirectory(prefix="bench-escalation-") as tmp, Sandbox() as sb:
        path = Path(tmp) / "config.yaml"
        path.write_text(SHIPPED.split(COOKBOOK)[0].rstrip("\n") + "\n" + rules, encoding="utf-8")
        config = sandboxed_config(load_config(path, env={}), sb, Path(tmp) / "hub.db")
        app = config.app
        app = app.model_copy(update={"poller": app.poller.model_copy(
            update={"interval_seconds": 3600})})
        hub = Hub(LoadedConfig(path=config.path, app=app, rules=config.rules))
        seed_organizations(sb, load_sample())
        hub.start()
        try:
            secret = app.receiver.zendesk_signing_secrets[0].get_secret_value()
            sb.zendesk.configure_webhook(f"{hub.url}/webhooks/zendesk", secret)
            subscribe_pagerduty(hub, sb)
            hub.wait_idle(30)
            sb.requests.clear()
            yield sb, hub
        finally:
            hub.stop()


def ticket(sb: Sandbox, *, tags: list[str], priority: str, org: int, subject: str) -> int:
    spec = {"subject": subject, "description": "All users see errors.", "priority": priority,
            "type": "incident", "status": "open", "tags": tags, "organization_id": org,
            "fields": {"product_area": "checkout"}}
    return int(sb.zendesk.create_ticket(zendesk_ticket(spec, FIELD_IDS))["id"])


def counts(sb: Sandbox) -> dict[str, int]:
    return {label: sb.requests.count(vendor, method=method, path_regex=regex)
            for vendor, method, regex, label in CALLS}


def triggers(sb: Sandbox) -> list[dict]:
    return [e for e in sb.pagerduty.events() if e.get("event_action") == "trigger"]


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def escalations(k: int, spacing: float) -> dict:
    """K enterprise outage tickets one at a time (enterprise-down-page), then one later change
    (priority urgent -> high) on each."""
    with running_hub(ESCALATION_RULES) as (sb, hub):
        sent: dict[int, float] = {}
        for n in range(k):
            tid = ticket(sb, tags=["outage"], priority="urgent", org=501,
                         subject=f"Nothing loads ({n})")
            sent[tid] = time.time()
            sb.zendesk.deliver(tid, style="trigger", event_type="ticket.created")
            time.sleep(spacing)
        idle = hub.wait_idle(60 + 3 * k)  # Slack paces posts per channel: 2 per ticket
        received = {e["dedup_key"]: datetime.fromisoformat(e["received_at"]).timestamp()
                    for e in reversed(triggers(sb))}
        latency = [(received[f"switchboard/ticket:{tid}"] - t) * 1000
                   for tid, t in sent.items() if f"switchboard/ticket:{tid}" in received]
        created = counts(sb)
        escalated = len({e["dedup_key"] for e in triggers(sb)})
        roots = len(sb.slack.messages("#support-escalations"))
        for tid in sent:
            sb.zendesk.update_ticket(tid, {"priority": "high"})
            sb.zendesk.deliver(tid, style="trigger", event_type="ticket.updated")
        idle = hub.wait_idle(60 + 3 * k) and idle
        after = counts(sb)
        conn = hub.config.app.connectors
        limits = (f"shipped limits: PagerDuty {conn.pagerduty.events_per_minute} events/min per "
                  f"key, Slack {conn.slack.messages_per_minute} messages/min per channel")
    return {"limits": limits, "k": k, "escalated": escalated, "roots": roots, "idle": idle,
            "latency": latency, "created": created,
            "changed": {n: after[n] - created[n] for n in after}}


def burst(n: int) -> dict:
    """N checkout tickets (tag error_500) delivered at once, 16 at a time, in one window."""
    with running_hub(OUTAGE_RULE) as (sb, hub):
        orgs = [501, 502, 503, 504, 505]
        tickets = [ticket(sb, tags=["error_500"], priority="high", org=orgs[i % 5],
                          subject=f"Checkout fails ({i})") for i in range(n)]
        start = time.time()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda t: sb.zendesk.deliver(t, style="trigger"), tickets))
        delivered = time.time() - start
        idle = hub.wait_idle(120 + n)
        pages = triggers(sb)
        page_at = (datetime.fromisoformat(pages[0]["received_at"]).timestamp() - start
                   if pages else float("nan"))
        roots = sb.slack.messages("#support-outages")
        count = re.search(r"(\d+) ticket\(s\)", roots[-1]["text"]) if roots else None
        problems = [t for t in sb.zendesk.tickets() if t["type"] == "problem"]
        attached = len(sb.zendesk.incidents(problems[0]["id"])) if problems else 0
        return {"n": n, "idle": idle, "calls": counts(sb), "pages": len(pages),
                "roots": len(roots), "root_count": count.group(1) if count else "?",
                "problems": len(problems), "attached": attached,
                "delivered_s": delivered, "page_s": page_at,
                "anomalies": [] if len(pages) == 1 and len(roots) == 1 else anomalies(hub, sb)}


def anomalies(hub: Hub, sb: Sandbox) -> list[str]:
    """What to look at when a burst did not end with one page and one root: every escalation
    intent that is not done (or did not send), and what PagerDuty was asked."""
    lines = []
    with hub.store.read() as conn:
        for row in conn.execute(sa.select(outbox).where(
                outbox.c.action.in_(["pagerduty.trigger", "slack.thread"]))):
            if row.status != "done" or row.action == "pagerduty.trigger":
                lines.append(f"intent {row.id} {row.action} {row.status} attempts={row.attempts} "
                             f"order={row.order_key} result={row.result} "
                             f"error={row.last_error}")
        for row in conn.execute(sa.select(escalation_table)):
            lines.append(f"escalation {row.key}: pd_status={row.pd_status} "
                         f"own={row.pd_own_status} slack={row.slack_channel}/{row.slack_ts}")
    lines += [f"pagerduty request {e.method} {e.path} -> {e.status} ({e.fault})"
              for e in sb.requests.entries("pagerduty")]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=50, help="escalated tickets, one at a time")
    parser.add_argument("--burst", type=int, default=100, help="tickets in the outage burst")
    parser.add_argument("--spacing", type=float, default=0.6,
                        help="seconds between tickets (below 0.5 the shipped PagerDuty limit of "
                        "120 events/min per key queues the pages after a burst)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    esc = escalations(args.tickets, args.spacing)
    out = burst(args.burst)
    k = max(esc["escalated"], 1)
    print(f"machine: {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), "
          f"Python {sys.version.split()[0]}")
    print(f"\n(a) calls per escalated ticket: {esc['escalated']}/{esc['k']} tickets paged, "
          f"{esc['roots']} Slack roots; then 1 priority change each; burst of {out['n']}")
    print(f"{'call':<40} {'per ticket':>10} {'per change':>10} {'burst total':>11}")
    for label in esc["created"]:
        print(f"{label:<40} {esc['created'][label] / k:>10.2f} "
              f"{esc['changed'][label] / max(esc['k'], 1):>10.2f} {out['calls'][label]:>11}")
    print(f"burst: {out['pages']} PagerDuty trigger(s), {out['roots']} Slack root(s), root says "
          f"{out['root_count']} ticket(s), {out['problems']} Zendesk problem ticket(s) with "
          f"{out['attached']} incident(s); delivered in {out['delivered_s']:.2f} s, "
          f"page received {out['page_s']:.2f} s after the first delivery")
    for line in out["anomalies"]:
        print(f"  ANOMALY {line}")
    lat = esc["latency"]
    if lat:
        print(f"\n(b) ticket webhook -> PagerDuty trigger received, {len(lat)} tickets, "
              f"{args.spacing:g} s apart: p50 {statistics.median(lat):.1f} ms, "
              f"p99 {pct(lat, 0.99):.1f} ms, min {min(lat):.1f}, max {max(lat):.1f} ms")
        print(f"    ({esc['limits']})")
    if not (esc["idle"] and out["idle"]):
        print("warning: a hub did not go idle in time; figures may be incomplete")


if __name__ == "__main__":
    main()
