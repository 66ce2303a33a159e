"""Filling a store with the trend report fixture (``tests/fixtures/report/store.json``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from connectors.models import parse_time
from sync.schema import bugs, jira_issues, links, productboard_notes, sla_alerts, snapshots
from sync.store import Store

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "report" / "store.json"
SAVED = datetime(2026, 11, 30, 8, 30, tzinfo=UTC)


def _time(text: str) -> datetime:
    moment = parse_time(text)
    assert moment is not None
    return moment


def snapshot_data(spec: dict[str, Any]) -> dict[str, Any]:
    """A snapshot's ``data`` as ``Ticket.to_dict`` writes it."""
    updated = spec.get("updated_at") or spec.get("created_at") or "2026-11-01T00:00:00Z"
    return {"id": spec["id"], "updated_at": updated,
            "created_at": spec.get("created_at"), "subject": spec.get("subject", "A ticket"),
            "description": spec.get("description", ""), "status": spec.get("status"),
            "priority": spec.get("priority", "normal"), "type": "question",
            "tags": spec.get("tags", []), "requester_id": 1, "organization_id": None,
            "assignee_id": None, "group_id": None, "fields": spec.get("fields", {}),
            "url": None}


def load_fixture(store: Store, fixture: Path = FIXTURE) -> dict[str, Any]:
    """Insert every row of the fixture; returns the fixture as read."""
    spec = json.loads(fixture.read_text(encoding="utf-8"))
    with store.write() as conn:
        for ticket in spec["snapshots"]:
            data = snapshot_data(ticket)
            conn.execute(sa.insert(snapshots).values(
                ticket_id=ticket["id"], updated_at=_time(data["updated_at"]), data=data,
                saved_at=SAVED))
        for link in spec["links"]:
            conn.execute(sa.insert(links).values(
                ticket_id=link["ticket_id"], system=link["system"], ref=link["ref"],
                url=f"https://sandbox.atlassian.net/browse/{link['ref']}",
                created_at=_time(link["created_at"])))
        for n, bug in enumerate(spec["bugs"]):
            conn.execute(sa.insert(bugs).values(
                project=bug["project"], dedupe_key=bug["dedupe_key"], jira_key=bug["jira_key"],
                jira_id=str(10000 + n), url=f"https://sandbox.atlassian.net/browse/"
                f"{bug['jira_key']}", status=bug["status"], created_at=SAVED))
        for n, issue in enumerate(spec["jira_issues"]):
            conn.execute(sa.insert(jira_issues).values(
                key=issue["key"], issue_id=str(10000 + n), state={
                    "status": issue["status"], "resolution": None, "priority": "High",
                    "fix_versions": []},
                updated=SAVED, gone=issue.get("gone", False), saved_at=SAVED))
        for n, note in enumerate(spec["notes"]):
            created = _time(note["created_at"])
            conn.execute(sa.insert(productboard_notes).values(
                ticket_id=note["ticket_id"], rule_id="feedback", record_id=f"record-{n}",
                note_id=f"note-{n}", url=None, feature_id=note["feature_id"],
                requester_email=note["requester_email"], organization=note["organization"],
                tags=note["tags"], appended=[], created_at=created, updated_at=created))
        for alert in spec["sla_alerts"]:
            conn.execute(sa.insert(sla_alerts).values(
                ticket_id=alert["ticket_id"], target=alert["target"], kind=alert["kind"],
                due_at=_time(alert["due_at"]), fired_at=_time(alert["fired_at"]),
                priority="high", plan=alert["plan"], source="config", inbox_id=None))
    return dict(spec)
