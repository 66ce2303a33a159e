"""The demo's escalation scene: an enterprise customer goes down, then an outage burst.

Played after the sample (whose report it leaves as it was): one urgent ticket from an enterprise
organization pages PagerDuty and opens a Slack thread; the on-call engineer acknowledges in the
PagerDuty stand-in, whose signed webhook comes back to the hub; then seven tickets about one
product area arrive together and open ONE outage incident and ONE thread whose root counts them.
It prints the pages PagerDuty received, each Slack thread as it ended up, and the outage's Zendesk
problem ticket with the tickets attached to it.
"""

from __future__ import annotations

__all__ = ["escalation_scene"]

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sandbox.demo import zendesk_ticket
from sandbox.server import Sandbox
from sync.hub import Hub

CHANNELS = ("#support-escalations", "#support-outages")
BURST = 7


def _create(sb: Sandbox, field_ids: dict[str, int], *, subject: str, org: int, priority: str,
            tags: list[str], area: str) -> int:
    spec = {"subject": subject, "description": "Reported by phone and email.",
            "priority": priority, "type": "incident", "status": "open", "tags": tags,
            "organization_id": org, "fields": {"product_area": area}}
    ticket_id = int(sb.zendesk.create_ticket(zendesk_ticket(spec, field_ids))["id"])
    sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.created")
    return ticket_id


def escalation_scene(hub: Hub, sb: Sandbox, field_ids: dict[str, int], console: Console,
                     timeout: float = 120.0) -> dict[str, int]:
    """Play the scene; returns {"pages", "threads", "acknowledged"} (also used by tests)."""
    if hub.pagerduty is None or hub.slack is None:
        console.print("No escalation scene: connectors.pagerduty / connectors.slack are not "
                      "configured.")
        return {"pages": 0, "threads": 0, "acknowledged": 0, "problems": 0}
    down = _create(sb, field_ids, subject="Dispatch board shows no vehicles", org=501,
                   priority="urgent", tags=["outage"], area="dispatch")
    hub.wait_idle(timeout)
    acknowledged = 0
    for event in sb.pagerduty.events():
        if event.get("event_action") == "trigger":
            sb.pagerduty.acknowledge_incident(event["dedup_key"], by="Priya Shah")
            acknowledged += 1
    hub.wait_idle(timeout)
    for n in range(BURST):
        _create(sb, field_ids, subject=f"Checkout fails with error 500 ({n + 1})",
                org=501 + n % 5, priority="high", tags=["error_500"], area="checkout")
    hub.wait_idle(timeout)

    pages = Table(title=f"PagerDuty: events received (ticket #{down} paged; an outage burst)")
    for col in ("action", "dedup key", "summary"):
        pages.add_column(col, overflow="fold")
    events = sb.pagerduty.events()
    for event in events:
        pages.add_row(str(event.get("event_action")), str(event.get("dedup_key")),
                      escape(str((event.get("payload") or {}).get("summary", ""))))
    console.print(pages)
    threads = 0
    for channel in CHANNELS:
        for root in sb.slack.messages(channel):
            threads += 1
            console.print(f"[bold]Slack {channel}[/] — root (updated in place): "
                          f"{escape(str(root.get('text')))}")
            for reply in sb.slack.thread(channel, str(root["ts"])):
                console.print(f"    ↳ {escape(str(reply.get('text')))}")
    problems = [t for t in sb.zendesk.tickets() if t.get("type") == "problem"
                and str(t.get("external_id") or "").startswith("switchboard/")]
    for problem in problems:
        incidents = sb.zendesk.incidents(int(problem["id"]))
        console.print(f"[bold]Zendesk problem #{problem['id']}[/] "
                      f"{escape(str(problem.get('subject')))}: {len(incidents)} incident(s) "
                      f"attached ({', '.join(f'#{i}' for i in incidents)})")
    triggers = sum(1 for e in events if e.get("event_action") == "trigger")
    console.print(f"[bold]Escalations:[/] {triggers} pages, {threads} Slack threads, "
                  f"{len(problems)} problem ticket(s), {acknowledged} acknowledged in PagerDuty "
                  f"and reported back (thread reply and internal note)")
    return {"pages": triggers, "threads": threads, "acknowledged": acknowledged,
            "problems": len(problems)}
