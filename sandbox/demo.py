"""``switchboard demo``: the shipped sample, end to end, on the local sandbox.

1. Start the Zendesk and Jira stand-ins on free ports and seed the *history* tickets (the account
   as it was before Switchboard connected).
2. Start the hub on a fresh demo store, pointed at the sandbox. Its first poll is the backfill:
   snapshots only, no rules — the old confirmed bug in the history does not reach Jira.
3. Create the *live* tickets in the sandbox; each reaches the hub as a signed trigger webhook, a
   signed event-subscription webhook, or only through the poller, as the sample says. Then the
   agents' later edits, delivered the same way.
4. Poll once more (catching the poll-only tickets, and the echoes of Switchboard's own writes,
   which must be no-ops), wait until no work is pending, and print what happened.
"""

from __future__ import annotations

__all__ = [
    "SAMPLE",
    "call_shape",
    "fresh_store",
    "load_sample",
    "run_with_sandbox",
    "sandboxed_config",
    "zendesk_ticket",
]

import json
import re
import signal
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sandbox import Sandbox
from sync.config import LoadedConfig
from sync.hub import Hub
from sync.schema import decisions, inbox, links, outbox

SAMPLE = Path(__file__).parent / "data" / "sample_tickets.json"


def load_sample(path: Path = SAMPLE) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def zendesk_ticket(spec: dict[str, Any], field_ids: dict[str, int], *,
                    when: datetime | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        k: spec[k] for k in ("subject", "description", "priority", "type", "status", "tags",
                             "organization_id") if k in spec
    }
    data["requester_id"] = 7000 + int(spec.get("organization_id") or 0)
    data["custom_fields"] = [{"id": fid, "value": spec.get("fields", {}).get(name)}
                             for name, fid in field_ids.items()]
    if when is not None:
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        data["created_at"] = data["updated_at"] = stamp
    return data


def seed_organizations(sb: Sandbox, sample: dict[str, Any]) -> None:
    """Create the sample's organizations, ``"Acme Logistics (enterprise)"`` -> name and the
    ``plan_tier`` organization field."""
    for org_id, label in sample.get("organizations", {}).items():
        name, _, tier = str(label).partition(" (")
        sb.zendesk.create_organization({"id": int(org_id), "name": name,
                                        "organization_fields": {"plan_tier": tier.rstrip(")")}})


def _edit(change: dict[str, Any], field_ids: dict[str, int]) -> dict[str, Any]:
    out = {k: v for k, v in change.items() if k != "fields"}
    if "fields" in change:
        out["custom_fields"] = [{"id": field_ids[n], "value": v}
                                for n, v in change["fields"].items()]
    return out


def sandboxed_config(config: LoadedConfig, sb: Sandbox, store_file: Path,
                     **connector_settings: Any) -> LoadedConfig:
    """``config`` with its connectors aimed at ``sb`` (plus any ``connector_settings`` for both,
    e.g. ``requests_per_minute``) and its store in ``store_file``."""
    app = config.app
    zendesk = app.connectors.zendesk.model_copy(
        update={"base_url": sb.zendesk_url, **connector_settings})
    jira = app.connectors.jira.model_copy(update={"url": sb.jira_url, **connector_settings})
    update: dict[str, Any] = {"zendesk": zendesk, "jira": jira}
    if app.connectors.pagerduty is not None:
        # The stand-in serves TLS (the client refuses http://) with a CA made at start.
        pd = app.connectors.pagerduty
        update["pagerduty"] = pd.model_copy(update={
            "events_url": sb.pagerduty_url,
            "http": pd.http.model_copy(update={"verify_tls": sb.ca_bundle})})
        sb.pagerduty.require_routing_keys(
            [key.get_secret_value() for key in pd.routing_keys.values()])
    if app.connectors.slack is not None:
        update["slack"] = app.connectors.slack.model_copy(update={"base_url": sb.slack_url})
    if app.connectors.productboard is not None:
        pb = app.connectors.productboard
        update["productboard"] = pb.model_copy(update={"base_url": sb.productboard_url})
        sb.productboard.require_token(pb.token.get_secret_value())
    connectors = app.connectors.model_copy(update=update)
    store = app.store.model_copy(update={"url": f"sqlite:///{store_file}"})
    receiver = app.receiver
    if not receiver.zendesk_signing_secrets:
        receiver = receiver.model_copy(
            update={"zendesk_signing_secrets": (app.sandbox.webhook_secret,)})
    if not receiver.pagerduty_signing_secrets:
        receiver = receiver.model_copy(
            update={"pagerduty_signing_secrets": (app.sandbox.webhook_secret,)})
    new_app = app.model_copy(update={"connectors": connectors, "store": store,
                                     "receiver": receiver})
    return LoadedConfig(path=config.path, app=new_app, rules=config.rules)


def subscribe_pagerduty(hub: Hub, sb: Sandbox) -> None:
    """Point the PagerDuty stand-in's webhook v3 subscription at the hub's receiver."""
    secrets = [s.get_secret_value() for s in hub.config.app.receiver.pagerduty_signing_secrets]
    if secrets:
        sb.pagerduty.subscribe(f"{hub.url}/webhooks/pagerduty", secrets)


def fresh_store(config: LoadedConfig, name: str) -> Path:
    path = config.path.parent / "var" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def feed(hub: Hub, sb: Sandbox, sample: dict[str, Any], field_ids: dict[str, int],
         timeout: float = 120.0) -> dict[int, dict[str, Any]]:
    """Play the live part of the sample into the sandbox; returns ticket id -> sample entry."""
    played: dict[int, dict[str, Any]] = {}
    for spec in (t for t in sample["tickets"] if t["phase"] == "live"):
        ticket = sb.zendesk.create_ticket(zendesk_ticket(spec, field_ids))
        played[int(ticket["id"])] = spec
        _deliver(sb, int(ticket["id"]), spec.get("delivery", "poll"), created=True)
    hub.wait_idle(timeout)
    for ticket_id, spec in played.items():
        for change in spec.get("later", ()):
            sb.zendesk.update_ticket(ticket_id, _edit(change, field_ids))
            _deliver(sb, ticket_id, spec.get("delivery", "poll"), created=False)
    hub.wait_idle(timeout)
    hub.poll_now()
    hub.wait_idle(timeout)
    hub.poll_now()  # sees Switchboard's own writes: every one must be a no-op echo
    hub.wait_idle(timeout)
    return played


def _deliver(sb: Sandbox, ticket_id: int, delivery: str, *, created: bool) -> None:
    if delivery == "trigger":
        sb.zendesk.deliver(ticket_id, style="trigger",
                           event_type="ticket.created" if created else "ticket.updated")
    elif delivery == "event":
        sb.zendesk.deliver(ticket_id, style="event",
                           event_type="ticket.created" if created else "ticket.tags_changed")


def report(hub: Hub, sb: Sandbox, sample: dict[str, Any], played: dict[int, dict[str, Any]],
           console: Console) -> dict[str, int]:
    """Print what happened; returns the headline numbers (also used by tests)."""
    with hub.store.read() as conn:
        link_rows = conn.execute(sa.select(links).order_by(links.c.ticket_id)).all()
        outcomes = conn.execute(sa.select(inbox.c.source, inbox.c.kind, inbox.c.outcome)).all()
        intents = conn.execute(sa.select(outbox.c.action, outbox.c.status,
                                         outbox.c.last_error)).all()
        decided = conn.execute(sa.select(decisions.c.rule_id, decisions.c.mode,
                                         decisions.c.matched, decisions.c.trace)
                               .order_by(decisions.c.id)).all()
        planned = Counter((r.rule_id, r.action) for r in conn.execute(
            sa.select(outbox.c.rule_id, outbox.c.action)))
    issues = sb.jira.issues()
    history = sum(1 for t in sample["tickets"] if t["phase"] == "history")

    bugs = Table(title="Jira bugs created in the sandbox", show_lines=False)
    for col in ("key", "summary", "labels", "remote links (tickets)"):
        bugs.add_column(col)
    for issue in issues:
        remote = sb.jira.remote_links(issue["key"])
        bugs.add_row(issue["key"], escape(issue["fields"]["summary"]),
                     ", ".join(issue["fields"].get("labels") or []), str(len(remote)))
    console.print(bugs)
    busiest = max(issues, key=lambda i: len(sb.jira.remote_links(i["key"])), default=None)
    impact = [c["body"] for c in sb.jira.comments(busiest["key"])
              if "switchboard-impact" in c["body"]] if busiest else []
    if impact:
        console.print(f"[bold]The impact comment on {busiest['key']}[/] (one per bug, edited in "
                      "place as tickets joined):")
        console.print(escape(impact[0]))

    linked = Table(title="Tickets linked to bugs, and what was written back to them")
    for col in ("ticket", "heard via", "subject", "bug", "jira_key field", "tags added",
                "internal note"):
        linked.add_column(col, no_wrap=True, overflow="ellipsis", max_width=40)
    key_field = str(hub.config.app.connectors.zendesk.custom_fields.get("jira_key", ""))
    for row in link_rows:
        ticket = sb.zendesk.ticket(row.ticket_id)
        spec = played.get(row.ticket_id, {})
        internal = [c for c in sb.zendesk.comments(row.ticket_id) if not c.get("public", True)]
        field_value = next((f["value"] for f in ticket.get("custom_fields", [])
                            if str(f["id"]) == key_field), None)
        added = [t for t in ticket["tags"] if t == "jira_linked" or t.startswith("switchboard_")]
        linked.add_row(str(row.ticket_id), spec.get("delivery", "?"), escape(ticket["subject"]),
                       row.ref, str(field_value), ", ".join(added),
                       internal[-1]["body"].split(" (")[0] if internal else "—")
    console.print(linked)

    per_rule = Table(title="Rules: what each decided (switchboard explain TICKET tells why)")
    for col in ("rule", "mode", "events", "matched", "fired", "held back", "actions planned"):
        per_rule.add_column(col, justify="left" if col in ("rule", "mode", "actions planned")
                            else "right")
    tally: dict[str, list[Any]] = {}
    for row in decided:
        counts = tally.setdefault(row.rule_id, [row.mode, 0, 0, 0, 0])
        counts[1] += 1
        counts[2] += bool(row.matched)
        fired = bool(row.matched) and (row.trace or {}).get("fired", True)
        counts[3] += fired
        counts[4] += bool(row.matched) and not fired
    for rule_id, (mode, events, matched, fired, held) in tally.items():
        actions = ", ".join(f"{a} × {n}" for (r, a), n in sorted(planned.items()) if r == rule_id)
        per_rule.add_row(rule_id, str(mode), str(events), str(matched), str(fired), str(held),
                         actions or "—")
    console.print(per_rule)
    notes = sum(1 for ticket_id in played for c in sb.zendesk.comments(ticket_id)
                if not c.get("public", True))

    by_source = Counter(f"{kind}" for _source, kind, _o in outcomes)
    echo = sum(1 for *_x, o in outcomes if o and "own write" in o)
    reads = sum(1 for *_x, o in outcomes if o and "read the ticket" in o)
    calls = Counter(f"{e.vendor} {e.method} {call_shape(e.path)}" for e in sb.requests.entries())
    calls_table = Table(title="Vendor API calls made by Switchboard")
    calls_table.add_column("call")
    calls_table.add_column("count", justify="right")
    for name, count in sorted(calls.items()):
        calls_table.add_row(name, str(count))
    console.print(calls_table)
    status = Counter(s for _a, s, _e in intents)
    dead = [(a, e) for a, s, e in intents if s == "dead"]
    live = len(played)
    console.print(
        f"[bold]{history + live} sample tickets[/] ({history} already in Zendesk when Switchboard "
        f"connected — backfilled, no rules run; {live} new) -> [bold]{len(issues)} Jira bugs[/], "
        f"[bold]{len(link_rows)} tickets linked[/], {notes} internal notes written back.")
    console.print(f"Inbox events by kind: {dict(by_source)}; {echo} echoes of Switchboard's own "
                  f"writes ignored; {reads} ticket read(s) for fields the event lacked.")
    console.print(f"Intents: {dict(status)}" + (f"; DEAD: {dead}" if dead else ""))
    if link_rows:
        console.print(f"Why did a rule fire (or not)? switchboard explain {link_rows[0].ticket_id} "
                      f"--store {hub.config.store_url().removeprefix('sqlite:///')}")
    return {"tickets": history + live, "bugs": len(issues), "linked": len(link_rows),
            "notes": notes, "dead": len(dead)}


def dead_intents(hub: Hub) -> list[tuple[str, str | None]]:
    """(action, reason) of every dead-lettered intent."""
    with hub.store.read() as conn:
        return [(r.action, r.last_error) for r in conn.execute(
            sa.select(outbox.c.action, outbox.c.last_error).where(outbox.c.status == "dead"))]


def call_shape(path: str) -> str:
    """``/api/v2/tickets/1012.json`` -> ``/api/v2/tickets/{id}.json``; Jira keys -> ``{key}``."""
    out: list[str] = []
    for part in path.split("?")[0].split("/"):
        stem, dot, ext = part.partition(".")
        if stem.isdigit() and out[-1:] != ["api"]:  # ids, but not the 2 of /rest/api/2/
            part = "{id}" + dot + ext
        elif re.fullmatch(r"[A-Z][A-Z0-9]+-\d+", part):
            part = "{key}"
        out.append(part)
    return "/".join(out)


def run_with_sandbox(config: LoadedConfig, *, feed_sample: bool, serve: bool) -> int:
    """Run the hub against a fresh sandbox; with ``feed_sample`` play and report the sample."""
    console = Console(width=None if sys.stdout.isatty() else 150)
    app = config.app
    field_ids = dict(app.connectors.zendesk.custom_fields)
    sample = load_sample()
    with Sandbox(jira_search_lag=app.sandbox.jira_search_lag_seconds,
                 zendesk_subdomain=app.connectors.zendesk.subdomain) as sb:
        store_file = fresh_store(config, "demo.db" if feed_sample else "sandbox.db")
        hub = Hub(sandboxed_config(config, sb, store_file), source=config)
        seed_organizations(sb, sample)
        if feed_sample:
            start = datetime.now(UTC) - timedelta(days=7)
            for n, spec in enumerate(t for t in sample["tickets"] if t["phase"] == "history"):
                sb.zendesk.create_ticket(
                    zendesk_ticket(spec, field_ids, when=start + timedelta(hours=5 * n)))
        hub.start()
        secret = hub.config.app.receiver.zendesk_signing_secrets[0].get_secret_value()
        sb.zendesk.configure_webhook(f"{hub.url}/webhooks/zendesk", secret)
        subscribe_pagerduty(hub, sb)
        console.print(f"Sandbox: Zendesk {sb.zendesk_url}, Jira {sb.jira_url}; "
                      f"hub {hub.url}; store {store_file}")
        try:
            if feed_sample:
                hub.poll_now()  # the backfill
                played = feed(hub, sb, sample, field_ids)
                numbers = report(hub, sb, sample, played, console)
                if numbers["dead"]:
                    return 1
                from sandbox.demo_escalation import escalation_scene  # imports this module

                escalation_scene(hub, sb, field_ids, console)
                from sandbox.demo_feedback import feedback_scene

                feedback_scene(hub, sb, field_ids, console)
                from sandbox.demo_report import report_scene

                report_scene(hub, sb, console)
                dead = dead_intents(hub)
                if dead:
                    console.print(f"[red]Dead-lettered in the escalation or feedback scene: "
                                  f"{dead}[/]")
                    return 1
            if serve or not feed_sample:
                stop = threading.Event()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, lambda *_: stop.set())
                signal.signal(signal.SIGHUP, lambda *_: threading.Thread(
                    target=hub.reload_rules, name="sighup-reload", daemon=True).start())
                console.print("Serving; Ctrl-C to stop; rules reload when their files change "
                              "(or on SIGHUP).")
                stop.wait()
        finally:
            hub.stop()
    return 0
