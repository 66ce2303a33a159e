"""Load generator for bench/webhooks.py — run as its own process so it never competes with the
hub for the hub's GIL.

    python bench/loadgen.py '<json spec>'

Protocol on stdio: it precomputes every signed request, prints ``READY`` and waits for a line on
stdin, runs, then prints one JSON line with its results. One asyncio thread, raw keep-alive
sockets (no HTTP library): per request it writes prebuilt bytes and parses the status line,
``content-length`` and the body.

Modes:
- ``closed``: ``connections`` clients, each sends its next request as soon as it has the previous
  answer, for ``warmup + duration`` seconds; the rate is taken over the last ``duration`` seconds.
- ``open``: request ``i`` is due at ``t0 + i / rate`` (``rate * duration`` requests), handed to
  whichever of ``connections`` clients is free; latency runs from the due time, so time spent
  waiting for a free client (queueing) counts.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox import sign_zendesk, trigger_payload  # noqa: E402


def _ticket(ticket_id: int, stamp: str, field_ids: dict[str, int]) -> dict:
    """A ticket no shipped rule matches (no bug_confirmed tag, normal priority)."""
    return {
        "id": ticket_id, "created_at": stamp, "updated_at": stamp,
        "subject": f"Bench ticket {ticket_id}: cannot export the monthly report",
        "description": "The export button spins forever. " * 4,
        "status": "open", "priority": "normal", "type": "question", "tags": ["bench", "billing"],
        "requester_id": 800001, "organization_id": None, "assignee_id": None, "group_id": None,
        "custom_fields": [{"id": fid, "value": "E-BENCH" if name == "error_code" else None}
                          for name, fid in field_ids.items()],
    }


def build_requests(spec: dict) -> list[bytes]:
    host = f"{spec['host']}:{spec['port']}"
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = []
    for n in range(spec["count"]):
        ticket_id = spec["first_ticket_id"] + n
        body = json.dumps(trigger_payload(_ticket(ticket_id, stamp, spec["field_ids"]),
                                          "ticket.created")).encode()
        head = (
            f"POST /webhooks/zendesk HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Type: application/json\r\nUser-Agent: Zendesk Webhook\r\n"
            "X-Zendesk-Webhook-Id: 01HBENCHWEBHOOK\r\n"
            f"X-Zendesk-Webhook-Invocation-Id: bench-{spec['first_ticket_id']}-{n}\r\n"
            f"X-Zendesk-Webhook-Signature-Timestamp: {stamp}\r\n"
            f"X-Zendesk-Webhook-Signature: {sign_zendesk(spec['secret'], stamp, body)}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: bytes) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    body = await reader.readexactly(length) if length else b""
    return status, body


def _tally(counts: dict[str, int], status: int, body: bytes) -> None:
    if status == 200:
        key = "accepted" if b'"accepted"' in body else (
            "duplicate" if b'"duplicate"' in body else "ok_other")
    else:
        key = f"http_{status}"
    counts[key] = counts.get(key, 0) + 1


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def _summary(values: list[float]) -> dict:
    ms = [v * 1000 for v in values]
    return {"n": len(ms), "p50_ms": _pct(ms, 50), "p90_ms": _pct(ms, 90), "p99_ms": _pct(ms, 99),
            "max_ms": max(ms) if ms else None, "mean_ms": sum(ms) / len(ms) if ms else None}


async def run_closed(spec: dict, requests: list[bytes]) -> dict:
    loop = asyncio.get_running_loop()
    conns = [await asyncio.open_connection(spec["host"], spec["port"])
             for _ in range(spec["connections"])]
    counts: dict[str, int] = {}
    done_times: list[float] = []
    latencies: list[float] = []
    state = {"next": 0, "exhausted": False}
    t0 = loop.time()
    window_start = t0 + spec["warmup"]
    deadline = window_start + spec["duration"]

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while loop.time() < deadline:
            i = state["next"]
            if i >= len(requests):
                state["exhausted"] = True
                return
            state["next"] = i + 1
            start = loop.time()
            status, body = await _exchange(reader, writer, requests[i])
            end = loop.time()
            _tally(counts, status, body)
            if end >= window_start:
                latencies.append(end - start)
                if status == 200 and b'"accepted"' in body:
                    done_times.append(end)

    await asyncio.gather(*(client(r, w) for r, w in conns))
    for _r, w in conns:
        w.close()
    accepted_in_window = sum(1 for t in done_times if t <= deadline)
    return {"mode": "closed", "sent": state["next"], "counts": counts,
            "exhausted": state["exhausted"], "window_s": spec["duration"],
            "accepted_in_window": accepted_in_window,
            "rate_per_s": accepted_in_window / spec["duration"],
            "latency_under_saturation": _summary(latencies)}


async def run_open(spec: dict, requests: list[bytes]) -> dict:
    loop = asyncio.get_running_loop()
    conns = [await asyncio.open_connection(spec["host"], spec["port"])
             for _ in range(spec["connections"])]
    queue: asyncio.Queue = asyncio.Queue()
    counts: dict[str, int] = {}
    latencies: list[float] = []
    service: list[float] = []
    queued: list[float] = []
    lateness: list[float] = []
    series: list[tuple[float, float]] = []  # (due offset, latency), returned if spec["raw"]
    rate = spec["rate"]
    total = len(requests)
    t0 = loop.time() + 0.05

    async def scheduler() -> None:
        for i in range(total):
            due = t0 + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            lateness.append(loop.time() - due)  # the client's own timer slack
            queue.put_nowait((i, due))
        for _ in conns:
            queue.put_nowait(None)

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (item := await queue.get()) is not None:
            i, due = item
            sent = loop.time()
            status, body = await _exchange(reader, writer, requests[i])
            end = loop.time()
            _tally(counts, status, body)
            latencies.append(end - due)
            series.append((round(due - t0, 4), round(end - due, 4)))
            service.append(end - sent)
            queued.append(sent - due)

    await asyncio.gather(scheduler(), *(client(r, w) for r, w in conns))
    elapsed = loop.time() - t0
    for _r, w in conns:
        w.close()
    extra = {"series": sorted(series)} if spec.get("raw") else {}
    return {**extra, "mode": "open", "sent": total, "counts": counts, "rate_target": rate,
            "rate_achieved": total / elapsed, "latency_from_schedule": _summary(latencies),
            "latency_from_send": _summary(service),
            "wait_for_free_connection": _summary(queued),
            "scheduler_lateness": _summary(lateness)}


def main() -> None:
    spec = json.loads(sys.argv[1])
    requests = build_requests(spec)
    print("READY", flush=True)
    if not sys.stdin.readline():
        return  # the parent went away
    started = time.process_time()
    runner = run_closed if spec["mode"] == "closed" else run_open
    result = asyncio.run(runner(spec, requests))
    result["client_cpu_s"] = time.process_time() - started
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
