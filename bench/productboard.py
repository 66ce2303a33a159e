"""Feedback -> Productboard benchmark (issue 6): Productboard calls spent per feedback ticket.

    .venv/bin/python bench/productboard.py [--tickets 50]

A sandbox and a hub (in this process, store in a temp dir) on the shipped config trimmed to its
bug rule plus the shipped feedback rules (``feedback-to-productboard`` and its follow-up). N
feature-request tickets from N customers arrive by webhook, each naming a feature; then half of
the customers write again. Two workspaces:

- **known**: Productboard already knows the customers and the tags (a workspace in use);
- **new**: every customer is new to Productboard (and the tags on the first tickets).

Every request the Productboard stand-in received is counted by method and path. The aim is one
call per feedback ticket; a note linked to a feature costs the feature lookup and the link too.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox import Sandbox  # noqa: E402
from sandbox.demo import sandboxed_config, zendesk_ticket  # noqa: E402
from sync.config import LoadedConfig, load_config  # noqa: E402
from sync.hub import Hub  # noqa: E402

SHIPPED = (ROOT / "config.yaml").read_text(encoding="utf-8")
COOKBOOK = "  # The cookbook"
RULES = "  - id: feedback-to-productboard" + SHIPPED.split(
    "  - id: feedback-to-productboard")[1].split("  - id: feature-released-reply")[0]
FEATURES = ("Route export to CSV", "Dark mode for the driver app", "Bulk edit depots")
TAGS = ("feature-request", "routing", "zendesk")


def _shape(path: str) -> str:
    return re.sub(r"/[0-9a-f-]{36}", "/{id}", path)


def run(n: int, *, known: bool, with_feature: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-pb-") as tmp, Sandbox() as sb:
        path = Path(tmp) / "config.yaml"
        path.write_text(SHIPPED.split(COOKBOOK)[0].rstrip("\n") + "\n" + RULES, encoding="utf-8")
        config = sandboxed_config(load_config(path, env={}), sb, Path(tmp) / "hub.db")
        app = config.app
        zendesk = app.connectors.zendesk.model_copy(update={"requests_per_minute": 60000})
        app = app.model_copy(update={
            "poller": app.poller.model_copy(update={"interval_seconds": 3600}),
            "connectors": app.connectors.model_copy(update={"zendesk": zendesk})})
        field_ids = dict(app.connectors.zendesk.custom_fields)
        for name in FEATURES:
            sb.productboard.add_feature(name)
        if known:
            sb.productboard.add_tags(*TAGS)
        requesters = []
        for i in range(n):
            email = f"customer{i}@example.com"
            sb.zendesk.create_user({"id": 90000 + i, "name": f"Customer {i}", "email": email,
                                    "role": "end-user"})
            if known:
                sb.productboard.add_user(email, f"Customer {i}")
            requesters.append(90000 + i)
        hub = Hub(LoadedConfig(path=config.path, app=app, rules=config.rules))
        hub.start()
        try:
            secret = hub.config.app.receiver.zendesk_signing_secrets[0].get_secret_value()
            sb.zendesk.configure_webhook(f"{hub.url}/webhooks/zendesk", secret)
            hub.wait_idle(30)
            sb.requests.clear()
            start = time.monotonic()
            tickets = []
            for i in range(n):
                spec = {"subject": f"Please add {FEATURES[i % 3]} ({i})",
                        "description": "We need this every week.", "priority": "normal",
                        "type": "question", "status": "open",
                        "tags": ["feature_request", "routing"],
                        "fields": {"feature_request": FEATURES[i % 3] if with_feature else None,
                                   "feedback_summary": "Wants it"}}
                data = zendesk_ticket(spec, field_ids)
                data["requester_id"] = requesters[i]
                ticket = int(sb.zendesk.create_ticket(data)["id"])
                tickets.append(ticket)
                sb.zendesk.deliver(ticket, style="trigger", event_type="ticket.created")
            idle = hub.wait_idle(600)
            created_in = time.monotonic() - start
            first = Counter(f"{e.method} {_shape(e.path)}"
                            for e in sb.requests.entries("productboard"))
            sb.requests.clear()
            for i, ticket in enumerate(tickets[: n // 2]):
                sb.zendesk.update_ticket(ticket, {"comment": {
                    "body": f"One more thing ({i}).", "public": True}},
                    author_id=requesters[i])
                sb.zendesk.deliver(ticket, style="trigger", event_type="ticket.updated")
            idle = hub.wait_idle(600) and idle
            later = Counter(f"{e.method} {_shape(e.path)}"
                            for e in sb.requests.entries("productboard"))
            notes = len(sb.productboard.notes())
            return {"idle": idle, "tickets": n, "notes": notes, "first": first,
                    "later": later, "seconds": created_in}
        finally:
            hub.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=50)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("switchboard", "apscheduler", "alembic", "uvicorn"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    n = args.tickets
    print(f"Productboard calls per feedback ticket ({n} tickets, then {n // 2} later comments)")
    for label, known, feature in (("known customers, no feature", True, False),
                                  ("known customers, feature named", True, True),
                                  ("new customers, feature named", False, True)):
        out = run(n, known=known, with_feature=feature)
        first, later = out["first"], out["later"]
        assert isinstance(first, Counter) and isinstance(later, Counter)
        print(f"\n{label}: {out['notes']} notes for {n} tickets"
              f"{'' if out['idle'] else ' (NOT IDLE: timed out)'}; "
              f"{sum(first.values()) / n:.2f} calls per ticket "
              f"({first['POST /v2/notes'] / n:.2f} note creates); "
              f"later comments: {sum(later.values()) / max(1, n // 2):.2f} calls each")
        for shape, count in sorted(first.items()):
            print(f"    {count:5d}  {shape}")
        for shape, count in sorted(later.items()):
            print(f"    {count:5d}  {shape}  (later comments)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
