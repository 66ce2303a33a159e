"""Switchboard webhook benchmark: receiver throughput and latency, webhook -> Jira latency, and the
vendor API calls spent per escalated ticket.

    .venv/bin/python bench/webhooks.py [--quick]

Every phase starts its own sandbox (in this process) and its own hub (in this process: uvicorn on
loopback, SQLite store in a temp dir, the shipped config.yaml and its rule), and stops both at the
end of the phase. HTTP load comes from bench/loadgen.py in a separate process. Figures are printed
as a plain-text table and written to bench/out/webhooks.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from sandbox import Sandbox, event_payload, sign_zendesk, trigger_payload  # noqa: E402
from sandbox.demo import call_shape, sandboxed_config  # noqa: E402
from sync.config import LoadedConfig, load_config  # noqa: E402
from sync.hub import Hub  # noqa: E402
from sync.schema import inbox, links, outbox  # noqa: E402

LOADGEN = Path(__file__).resolve().parent / "loadgen.py"
OUT = Path(__file__).resolve().parent / "out" / "webhooks.json"
LIFTED_RPM = 1_000_000  # "no limit" for the connectors' client-side rate limiters

#: Calls that are not caused by one ticket: once per process, or the poller's schedule.
NOT_PER_TICKET = {
    ("jira", "GET", "/rest/api/2/serverInfo"),
    ("zendesk", "GET", "/api/v2/incremental/tickets/cursor.json"),
}


# -- environment ------------------------------------------------------------------------------


class ReceiverOnlyHub(Hub):
    """The hub with its inbox workers parked: they never claim an event (receiver alone)."""

    def _inbox_step(self, worker: str) -> int:
        return 0


def _point_at(config: LoadedConfig, sb: Sandbox, store_file: Path, *,
              lift_limits: bool) -> LoadedConfig:
    """The shipped config aimed at the sandbox, as ``switchboard demo`` does, optionally with
    the connectors' rate limits lifted."""
    extra = {"requests_per_minute": LIFTED_RPM} if lift_limits else {}
    return sandboxed_config(config, sb, store_file, **extra)


def _ticket_data(field_ids: dict[str, int], *, subject: str, priority: str, tags: list[str],
                 error_code: str | None, when: datetime | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "subject": subject, "description": "Steps: open checkout, pay. Actual: error page.",
        "priority": priority, "type": "incident", "status": "open", "tags": tags,
        "custom_fields": [{"id": fid, "value": error_code if name == "error_code" else None}
                          for name, fid in field_ids.items()],
    }
    if when is not None:
        data["created_at"] = data["updated_at"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return data


@contextmanager
def running_hub(config: LoadedConfig, *, receiver_only: bool = False,
                lift_limits: bool = False) -> Iterator[tuple[Sandbox, Hub]]:
    """A fresh sandbox and hub; the hub's first (backfill) poll is done when this yields."""
    app = config.app
    field_ids = dict(app.connectors.zendesk.custom_fields)
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as tmp:
        sb = Sandbox(jira_search_lag=app.sandbox.jira_search_lag_seconds,
                     zendesk_subdomain=app.connectors.zendesk.subdomain)
        sb.start()
        hub: Hub | None = None
        try:
            # One ticket of "history", so the backfill ends with a cursor (as in the demo).
            sb.zendesk.create_ticket(_ticket_data(
                field_ids, subject="History ticket", priority="low", tags=["old"],
                error_code=None, when=datetime.now(UTC) - timedelta(days=3)))
            cfg = _point_at(config, sb, Path(tmp) / "bench.db", lift_limits=lift_limits)
            hub = (ReceiverOnlyHub if receiver_only else Hub)(cfg)
            hub.start()
            hub.poll_now()  # waits for / runs the backfill, so later tickets are live events
            yield sb, hub
        finally:
            if hub is not None:
                hub.stop()
            sb.stop()


def _inbox_counts(hub: Hub) -> tuple[int, int]:
    """(inbox rows from webhooks, of which still pending)."""
    with hub.store.read() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(inbox)
                             .where(inbox.c.kind != "poll")).scalar_one()
        pending = conn.execute(sa.select(sa.func.count()).select_from(inbox)
                               .where(inbox.c.kind != "poll", inbox.c.status == "pending")
                               ).scalar_one()
    return int(total), int(pending)


# -- load generator process -------------------------------------------------------------------


def run_loadgen(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run bench/loadgen.py in its own process (own session: Ctrl-C is ours to handle) and
    return its result plus this (hub) process's CPU use while it ran."""
    proc = subprocess.Popen([sys.executable, str(LOADGEN), json.dumps(spec)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.daemon = True
    watchdog.start()
    try:
        assert proc.stdin is not None and proc.stdout is not None
        ready = proc.stdout.readline().strip()
        if ready != "READY":
            raise RuntimeError(f"load generator did not start (said {ready!r})")
        cpu0, wall0 = time.process_time(), time.monotonic()
        proc.stdin.write("GO\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        if not line:
            raise RuntimeError("load generator died or timed out without a result")
        result = json.loads(line)
        proc.wait(timeout=10)
        result["hub_process_cpu_cores"] = cpu / wall
        return result
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- phases 1 and 2: the receiver -------------------------------------------------------------


def _target(hub: Hub) -> dict[str, Any]:
    """Where and how the load generator signs and sends: the hub's receiver."""
    app = hub.config.app
    return {"host": app.receiver.host, "port": hub.port,
            "secret": app.receiver.zendesk_signing_secrets[0].get_secret_value(),
            "field_ids": dict(app.connectors.zendesk.custom_fields)}


def _durability(hub: Hub, result: dict[str, Any]) -> tuple[int, int]:
    """Record whether every accepted webhook is an inbox row; returns (rows, still pending)."""
    rows, pending = _inbox_counts(hub)
    accepted = result["counts"].get("accepted", 0)
    result.update(inbox_rows=rows, inbox_pending_at_end=pending,
                  durable_check_ok=(rows == accepted and accepted == result["sent"]))
    return rows, pending


def phase_closed(config: LoadedConfig, args: argparse.Namespace, *,
                 receiver_only: bool) -> dict[str, Any]:
    with running_hub(config, receiver_only=receiver_only) as (_sb, hub):
        spec = {
            **_target(hub), "mode": "closed",
            "first_ticket_id": 10_000_000, "connections": args.connections,
            "warmup": args.warmup, "duration": args.duration,
            "count": int(args.max_rate * (args.warmup + args.duration)),
        }
        result = run_loadgen(spec, timeout=args.warmup + args.duration + 120)
        _rows, pending = _durability(hub, result)
        if not receiver_only and pending:
            started = time.monotonic()
            idle = hub.wait_idle(args.drain_timeout)
            drain = time.monotonic() - started
            _rows, still = _inbox_counts(hub)
            result.update(drain_s=drain, drained=idle,
                          worker_rate_after_load_per_s=(pending - still) / drain if drain else None)
    return result


def phase_open(config: LoadedConfig, args: argparse.Namespace, *,
               receiver_only: bool) -> dict[str, Any]:
    with running_hub(config, receiver_only=receiver_only) as (_sb, hub):
        spec = {
            **_target(hub), "mode": "open",
            "first_ticket_id": 20_000_000, "connections": args.open_connections,
            "rate": args.open_rate, "count": int(args.open_rate * args.open_duration),
        }
        result = run_loadgen(spec, timeout=args.open_duration + 120)
        _durability(hub, result)
    return result


# -- phases 3 and 4: escalations end to end ---------------------------------------------------


def _pcts(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    ms = sorted(v * 1000 for v in values)

    def pick(q: float) -> float:
        return ms[min(len(ms) - 1, int(round(q / 100 * (len(ms) - 1))))]

    return {"n": len(ms), "p50_ms": pick(50), "p90_ms": pick(90), "p99_ms": pick(99),
            "max_ms": ms[-1]}


TICKET_IN_URL = re.compile(r"/tickets/(\d+)")


def phase_escalate(config: LoadedConfig, args: argparse.Namespace, *, name: str, style: str,
                   groups: int | None, lift_limits: bool) -> dict[str, Any]:
    """Deliver ``args.tickets`` confirmed-bug tickets at ``args.ticket_rate`` and follow them to
    Jira and back. ``groups``: that many error codes shared round-robin (else one code each)."""
    app = config.app
    field_ids = dict(app.connectors.zendesk.custom_fields)
    count, rate = args.tickets, args.ticket_rate
    with running_hub(config, lift_limits=lift_limits) as (sb, hub):
        secret = hub.config.app.receiver.zendesk_signing_secrets[0].get_secret_value()
        conn = http.client.HTTPConnection(app.receiver.host, hub.port, timeout=30)
        sent: dict[int, dict[str, Any]] = {}
        acks: list[float] = []
        t0 = time.monotonic() + 0.1
        started_wall = time.time()
        try:
            for i in range(count):
                code = f"E-{name}-{(i % groups) if groups else i:03d}"
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                ticket = sb.zendesk.create_ticket(_ticket_data(
                    field_ids, subject=f"Checkout fails with {code}", priority="high",
                    tags=["bug_confirmed", "checkout"], error_code=code))
                ticket_id = int(ticket["id"])
                payload = (trigger_payload(ticket, "ticket.created") if style == "trigger"
                           else event_payload(sb.zendesk, ticket, "ticket.created"))
                body = json.dumps(payload).encode()
                stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                headers = {
                    "Content-Type": "application/json", "User-Agent": "Zendesk Webhook",
                    "X-Zendesk-Webhook-Id": "01HBENCHWEBHOOK",
                    "X-Zendesk-Webhook-Invocation-Id": f"{name}-{ticket_id}",
                    "X-Zendesk-Webhook-Signature-Timestamp": stamp,
                    "X-Zendesk-Webhook-Signature": sign_zendesk(secret, stamp, body),
                }
                t_send = time.time()
                conn.request("POST", "/webhooks/zendesk", body, headers)
                response = conn.getresponse()
                answer = response.read()
                acks.append(time.time() - t_send)
                if response.status != 200 or b'"accepted"' not in answer:
                    raise RuntimeError(f"webhook for ticket {ticket_id} answered "
                                       f"{response.status} {answer[:200]!r}")
                sent[ticket_id] = {"code": code, "t_send": t_send}
        finally:
            conn.close()
        idle = hub.wait_idle(args.settle_timeout)
        elapsed = time.time() - started_wall
        entries = sb.requests.entries()
        issues = sb.jira.issues()
        with hub.store.read() as db:
            linked = {int(r.ticket_id) for r in db.execute(
                sa.select(links.c.ticket_id).where(links.c.system == "jira"))}
            intents = Counter(r.status for r in db.execute(sa.select(outbox.c.status)))

    # Latencies: sandbox arrival time of the call minus the webhook's send time (same clock).
    first_create: dict[str, float] = {}   # error code -> time of its POST /issue
    first_link: dict[int, float] = {}
    first_put: dict[int, float] = {}
    for e in entries:
        if e.vendor == "jira" and e.method == "POST" and e.path == "/rest/api/2/issue":
            summary = str(((e.json or {}).get("fields") or {}).get("summary", ""))
            match = re.match(r"\[([^\]]+)\]", summary)
            if match:
                first_create.setdefault(match.group(1), e.time)
        elif e.vendor == "jira" and e.method == "POST" and e.path.endswith("/remotelink"):
            match = TICKET_IN_URL.search(str(((e.json or {}).get("object") or {}).get("url", "")))
            if match:
                first_link.setdefault(int(match.group(1)), e.time)
        elif e.vendor == "zendesk" and e.method == "PUT":
            match = TICKET_IN_URL.search(e.path)
            if match:
                first_put.setdefault(int(match.group(1)), e.time)
    first_of_code: dict[str, int] = {}
    for ticket_id, info in sorted(sent.items(), key=lambda kv: kv[1]["t_send"]):
        first_of_code.setdefault(info["code"], ticket_id)
    create_lat = [first_create[code] - sent[tid]["t_send"]
                  for code, tid in first_of_code.items() if code in first_create]
    link_lat = [first_link[t] - sent[t]["t_send"] for t in sent if t in first_link]
    put_lat = [first_put[t] - sent[t]["t_send"] for t in sent if t in first_put]

    calls = Counter((e.vendor, e.method, call_shape(e.path)) for e in entries)
    escalated = len(linked & set(sent))
    per_ticket = {f"{v} {m} {p}": n / escalated if escalated else None
                  for (v, m, p), n in sorted(calls.items()) if (v, m, p) not in NOT_PER_TICKET}
    other = {f"{v} {m} {p}": n for (v, m, p), n in sorted(calls.items())
             if (v, m, p) in NOT_PER_TICKET}
    return {
        "name": name, "style": style, "tickets": count, "rate_per_s": rate,
        "error_codes": groups or count, "rate_limits": "lifted" if lift_limits else "shipped",
        "settled": idle, "elapsed_s": elapsed, "escalated": escalated,
        "jira_issues": len(issues), "intents": dict(intents),
        "webhook_ack": _pcts(acks),
        "webhook_to_jira_create": _pcts(create_lat),
        "webhook_to_remote_link": _pcts(link_lat),
        "webhook_to_zendesk_writeback": _pcts(put_lat),
        "calls_per_escalated_ticket": per_ticket,
        "calls_not_per_ticket": other,
        "calls_per_ticket_total": sum(v for v in per_ticket.values() if v is not None),
    }


# -- report -----------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    cells = [header] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    for row in cells[1:]:
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    return "\n".join(lines)


def report(results: dict[str, Any]) -> str:
    out = [f"Switchboard webhook benchmark — {results['mode']} mode; {results['machine']['nproc']} "
           f"CPU(s), Python {results['machine']['python']}, {results['timestamp']}"]
    rows = []
    for key, label in (
            ("closed_loop", "1. accepted/s, closed loop, inbox workers running"),
            ("closed_loop_receiver_only", "1b. accepted/s, closed loop, workers parked")):
        r = results.get(key)
        if r:
            rows.append([label, r["rate_per_s"], ">= 1,000/s",
                         f"{r['counts']} rows={r['inbox_rows']} durable_ok={r['durable_check_ok']}"
                         f" hub_cpu={r['hub_process_cpu_cores']:.2f} cores "
                         f"lat p50/p99={_fmt(r['latency_under_saturation']['p50_ms'])}/"
                         f"{_fmt(r['latency_under_saturation']['p99_ms'])} ms"
                         + (f" backlog={r['inbox_pending_at_end']} drained in "
                            f"{_fmt(r.get('drain_s'))} s" if r.get('drain_s') else "")])
    for key, label in (("open_loop", "2. ack latency {q} at {rate:.0f}/s open loop, workers "
                                     "running (ms)"),
                       ("open_loop_receiver_only", "2b. ack latency {q} at {rate:.0f}/s open "
                                                   "loop, workers parked (ms)")):
        r = results.get(key)
        if not r:
            continue
        lat = r["latency_from_schedule"]
        rows.append([label.format(q="p50", rate=r["rate_target"]), lat["p50_ms"], "", ""])
        rows.append([label.format(q="p99", rate=r["rate_target"]), lat["p99_ms"], "< 25 ms",
                     f"max={_fmt(lat['max_ms'])} answered at {r['rate_achieved']:.1f}/s, "
                     f"from-send p99={_fmt(r['latency_from_send']['p99_ms'])} ms, "
                     f"client timer slack p99={_fmt(r['scheduler_lateness']['p99_ms'], 2)} ms "
                     f"{r['counts']} rows={r['inbox_rows']} durable_ok={r['durable_check_ok']} "
                     f"hub_cpu={r['hub_process_cpu_cores']:.2f} cores"])
    out.append(_table("\nReceiver", ["figure", "value", "aim", "notes"], rows))

    esc = results.get("escalations", [])
    if esc:
        rows = []
        for r in esc:
            c, link, put = (r["webhook_to_jira_create"], r["webhook_to_remote_link"],
                            r["webhook_to_zendesk_writeback"])
            rows.append([r["name"], f"{r['style']}", f"{r['tickets']}@{r['rate_per_s']}/s",
                         r["rate_limits"], f"{c.get('n')}", c.get("p50_ms"), c.get("p99_ms"),
                         link.get("p50_ms"), link.get("p99_ms"), put.get("p50_ms"),
                         put.get("p99_ms"), f"{r['jira_issues']}/{r['error_codes']}",
                         f"{r['escalated']}/{r['tickets']}"])
        out.append(_table("\n3. Webhook -> sandbox Jira (ms, from webhook send to the sandbox "
                          "receiving the call)",
                          ["run", "style", "tickets", "limits", "creates", "create p50",
                           "create p99", "link p50", "link p99", "write-back p50",
                           "write-back p99", "issues/codes", "escalated"], rows))
        shapes = sorted({k for r in esc for k in r["calls_per_escalated_ticket"]})
        rows = [[s] + [r["calls_per_escalated_ticket"].get(s, 0.0) for r in esc] for s in shapes]
        rows.append(["TOTAL per escalated ticket"] + [r["calls_per_ticket_total"] for r in esc])
        others = sorted({k for r in esc for k in r["calls_not_per_ticket"]})
        rows += [[f"(not per ticket, total) {s}"] + [float(r["calls_not_per_ticket"].get(s, 0))
                                                     for r in esc] for s in others]
        rows.append(["(run length, s)"] + [r["elapsed_s"] for r in esc])
        out.append(_table("\n4. Vendor API calls per escalated ticket (aim: 1 Jira create + 1 "
                          "remote link + 1 Zendesk update, + <= 1 Zendesk read for events)",
                          ["call"] + [r["name"] for r in esc],
                          [[row[0]] + [(_fmt(v, 2) if isinstance(v, float) else v)
                                       for v in row[1:]] for row in rows]))
    return "\n".join(out)


# -- main -------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short phases (smoke run, < 30 s)")
    p.add_argument("--config", default=str(ROOT / "config.yaml"))
    p.add_argument("--only", default="", help="comma list of phases: closed,receiver,open,"
                   "open-receiver,escalate (default all)")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds of the closed-loop window (default 10, quick 2)")
    p.add_argument("--connections", type=int, default=8, help="closed-loop client connections")
    args = p.parse_args()
    full = not args.quick
    args.warmup = 1.0 if full else 0.5
    if args.duration is None:
        args.duration = 10.0 if full else 1.5
    args.max_rate = 4000  # requests precomputed per second of closed-loop run (upper bound)
    args.drain_timeout = 300.0 if full else 20.0
    args.open_rate = 200.0
    args.open_duration = 10.0 if full else 2.0
    args.open_connections = 16
    args.tickets = 50 if full else 10
    args.ticket_rate = 10.0
    args.groups = 10 if full else 3
    args.settle_timeout = 180.0 if full else 30.0
    return args


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a background job starts ignoring it
        signal.signal(sig, _interrupt)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    only = {s.strip() for s in args.only.split(",") if s.strip()}

    def want(phase: str) -> bool:
        return not only or phase in only

    results: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "config": str(Path(args.config).resolve()),
    }
    with suppress(OSError):
        results["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
            check=False).stdout.strip()
    started = time.monotonic()
    try:
        if want("closed"):
            print("phase 1: closed loop, inbox workers running ...", flush=True)
            results["closed_loop"] = phase_closed(config, args, receiver_only=False)
        if want("receiver"):
            print("phase 1b: closed loop, inbox workers parked ...", flush=True)
            results["closed_loop_receiver_only"] = phase_closed(config, args, receiver_only=True)
        if want("open"):
            print(f"phase 2: open loop at {args.open_rate:.0f}/s, inbox workers running ...",
                  flush=True)
            results["open_loop"] = phase_open(config, args, receiver_only=False)
        if want("open-receiver"):
            print(f"phase 2b: open loop at {args.open_rate:.0f}/s, inbox workers parked ...",
                  flush=True)
            results["open_loop_receiver_only"] = phase_open(config, args, receiver_only=True)
        if want("escalate"):
            runs = [("trigger-shipped", "trigger", None, False),
                    ("trigger", "trigger", None, True),
                    ("event", "event", None, True),
                    ("shared-codes", "trigger", args.groups, True)]
            results["escalations"] = []
            for name, style, groups, lift in runs:
                print(f"phase 3/4: {name} ({args.tickets} tickets at {args.ticket_rate:.0f}/s, "
                      f"rate limits {'lifted' if lift else 'as shipped'}) ...", flush=True)
                results["escalations"].append(phase_escalate(
                    config, args, name=name, style=style, groups=groups, lift_limits=lift))
    except KeyboardInterrupt:
        print("interrupted; hub, sandbox and load generator stopped", file=sys.stderr)
        return 130
    results["wall_s"] = time.monotonic() - started
    out = OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print()
    print(report(results))
    print(f"\n(total {results['wall_s']:.0f} s; JSON: {out.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
