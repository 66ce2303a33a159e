"""The demo's feedback scene: feature requests reach Productboard, and come back when they ship.

Played after the escalation scene: five customers write in — three ask for the same feature
(route export to CSV), one for another, one with usability feedback that names no feature. The
shipped rules send each ticket to Productboard as ONE note (linked to the feature the agent named);
a customer's later words are appended to their note. Then product releases the CSV export: the
Productboard poll sees it, and every ticket that asked for it gets a reply drafted for an agent.
It prints the notes Productboard holds and what each cost.
"""

from __future__ import annotations

__all__ = ["feedback_scene"]

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sandbox.demo import zendesk_ticket
from sandbox.server import Sandbox
from sync.hub import Hub

CSV = "Route export to CSV"
DARK = "Dark mode for the driver app"
#: (organization, requester name, subject, what they say, feature field, tags)
REQUESTS: tuple[tuple[int, str, str, str, str | None, list[str]], ...] = (
    (501, "Dana Reyes", "Export planned routes to CSV?",
     "We copy 300 routes into a spreadsheet by hand every Monday.", CSV,
     ["feature_request", "routing"]),
    (502, "Lee Park", "CSV export of routes for our payroll",
     "Payroll needs the routes as CSV; today we retype them.", CSV,
     ["feature_request", "reporting"]),
    (503, "Sam Okafor", "Can routes be downloaded?",
     "A download of the day's routes (CSV is fine) would save us an hour.", CSV,
     ["feature_request", "routing"]),
    (504, "Ines Moreau", "Dark mode please",
     "Our night drivers find the app too bright.", DARK, ["feature_request", "mobile"]),
    (505, "Noor Haddad", "Depot list is hard to scan",
     "With 40 depots the list is hard to scan; grouping would help.", None, ["usability"]),
)


def _user(sb: Sandbox, org: int, name: str) -> tuple[int, str]:
    user_id = 8000 + org  # requesters of their own (sandbox.demo's tickets use 7000 + org)
    email = f"{name.split()[0].lower()}@customer{org}.example"
    sb.zendesk.create_user({"id": user_id, "name": name, "email": email, "role": "end-user",
                            "organization_id": org})
    return user_id, email


def feedback_scene(hub: Hub, sb: Sandbox, field_ids: dict[str, int], console: Console,
                   timeout: float = 120.0) -> dict[str, int]:
    """Play the scene; returns its figures (also used by tests)."""
    if hub.productboard is None:
        console.print("No feedback scene: connectors.productboard is not configured.")
        return {"tickets": 0, "notes": 0, "creates": 0, "appended": 0, "replies": 0}
    csv = sb.productboard.add_feature(CSV, status="Planned")
    sb.productboard.add_feature(DARK)
    creates_before = sb.requests.count("productboard", method="POST", path_regex=r"^/v2/notes$")
    tickets: list[int] = []
    requesters: dict[int, int] = {}
    for org, name, subject, words, feature, tags in REQUESTS:
        user_id, _ = _user(sb, org, name)
        spec = {"subject": subject, "description": words, "priority": "normal",
                "type": "question", "status": "open", "tags": tags, "organization_id": org,
                "fields": {"feature_request": feature,
                           "feedback_summary": f"Asks for: {feature or 'easier depot list'}"}}
        data = zendesk_ticket(spec, field_ids)
        data["requester_id"] = user_id
        ticket_id = int(sb.zendesk.create_ticket(data)["id"])
        requesters[ticket_id] = user_id
        tickets.append(ticket_id)
        sb.zendesk.deliver(ticket_id, style="trigger", event_type="ticket.created")
    hub.wait_idle(timeout)
    # The customer without a feature writes again: appended to their note, not a new one.
    later = tickets[-1]
    sb.zendesk.update_ticket(later, {"comment": {
        "body": "Also: a search box above the list would do.", "public": True}},
        author_id=requesters[later])
    sb.zendesk.deliver(later, style="trigger", event_type="ticket.updated")
    hub.wait_idle(timeout)
    creates = sb.requests.count("productboard", method="POST",
                                path_regex=r"^/v2/notes$") - creates_before
    notes = [n for n in sb.productboard.notes() if _ticket_of(n) in tickets]
    table = Table(title="Productboard: the feedback notes (one per ticket)")
    for col in ("ticket", "note", "customer", "tags", "feature", "appended"):
        table.add_column(col, overflow="fold")
    appended = 0
    for note in notes:
        ticket_id = _ticket_of(note)
        customer = sb.productboard.customer_of(str(note["id"])) or {}
        linked = [sb.productboard.entity(f) or {} for f in
                  sb.productboard.linked_features(str(note["id"]))]
        later_words = str(note["fields"].get("content", "")).count("Later comment")
        appended += later_words
        table.add_row(f"#{ticket_id}", escape(str(note["fields"]["name"])),
                      escape(_customer_name(customer)),
                      ", ".join(_tag(t) for t in note["fields"].get("tags", [])),
                      escape(", ".join(str((f.get("fields") or {}).get("name")) for f in linked)),
                      str(later_words))
    console.print(table)
    # Product ships the CSV export; the Productboard poll notices.
    sb.productboard.set_feature_status(csv, "Released")
    hub.poll_productboard_now()
    hub.wait_idle(timeout)
    replies = sum(1 for t in tickets for c in sb.zendesk.comments(t)
                  if c.get("public") is False and "good news" in str(c.get("body")))
    console.print(f"[bold]Feedback:[/] {len(tickets)} feedback tickets -> {len(notes)} "
                  f"Productboard notes ({creates} create calls: {creates - len(notes)} refused "
                  "first for a customer or tag new to the workspace, created, then sent again), "
                  f"{appended} later comment(s) appended; '{CSV}' released -> a reply drafted "
                  f"on {replies} ticket(s)")
    return {"tickets": len(tickets), "notes": len(notes), "creates": creates,
            "appended": appended, "replies": replies}


def _ticket_of(note: dict[str, Any]) -> int | None:
    """The ticket a note came from: its source record is ``zendesk-<ticket>-<rule>``."""
    record = str(((note.get("metadata") or {}).get("source") or {}).get("recordId") or "")
    parts = record.split("-")
    return int(parts[1]) if len(parts) > 2 and parts[0] == "zendesk" and parts[1].isdigit() \
        else None


def _customer_name(entity: dict[str, Any]) -> str:
    fields = entity.get("fields") or {}
    return str(fields.get("email") or fields.get("name") or "")


def _tag(tag: Any) -> str:
    return str(tag.get("name") if isinstance(tag, dict) else tag)
