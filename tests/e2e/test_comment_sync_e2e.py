"""Comments both ways, end to end: an agent's note marked for engineering becomes a Jira comment,
a Jira comment marked for support becomes a note on every linked ticket, and neither side's
writes come back as events — 200 alternating changes, and every comment exists exactly once."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import requests
from pydantic import SecretStr

from connectors.jira_webhooks import sign
from sandbox import Sandbox
from sync.links import add_link
from tests.e2e.conftest import config_with, inbox, outbox, rows

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "config.yaml").read_text(encoding="utf-8")
RULES = "  - id: support-note-to-jira" + SHIPPED.split("  - id: support-note-to-jira")[1].split(
    "  - id: reopened-after-fix")[0]
COMMENT = json.loads((ROOT / "tests" / "fixtures" / "jira" /
                      "webhook_comment_created_cloud.json").read_text(encoding="utf-8"))
SECRET = "jira-e2e-whsec-comments-7c1d"
ENGINEER = "5b912f1c1aa25f2be7d36947"


def _webhook(hub, sb: Sandbox, key: str, comment: dict) -> str:
    """Jira's comment_created webhook for a comment the stand-in holds."""
    issue = sb.jira.issue(key)
    event = copy.deepcopy(COMMENT)
    event["issue"]["id"], event["issue"]["key"] = issue["id"], key
    event["comment"].update(id=comment["id"], body=comment["body"],
                            updated=comment["updated"], created=comment["created"],
                            author=comment["author"])
    event["comment"].pop("visibility", None)
    body = json.dumps(event).encode()
    answer = requests.post(f"{hub.url}/webhooks/jira", data=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Hub-Signature": sign(SECRET, body)})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["status"])


def test_two_hundred_changes_both_ways_produce_each_comment_once_and_no_loop(
        sb, make_hub, tmp_path):
    path = config_with(tmp_path, RULES)
    # The stand-in's pace, not Zendesk's 100 requests a minute: 200 changes in seconds.
    path.write_text(path.read_text(encoding="utf-8").replace(
        "  zendesk:\n", "  zendesk:\n    requests_per_minute: 60000\n", 1), encoding="utf-8")
    hub = make_hub(path, receiver={"jira_signing_secrets": (SecretStr(SECRET),)})
    key = str(sb.jira.create_issue({"project": {"key": "SUP"}, "issuetype": {"name": "Bug"},
                                    "summary": "Checkout fails"})["key"])
    tickets = [int(sb.zendesk.create_ticket({"subject": f"Checkout fails ({n})",
                                             "description": "d"})["id"]) for n in range(20)]
    for ticket in tickets:  # seen once, so a later comment is news
        sb.zendesk.deliver(ticket, style="trigger", event_type="ticket.created")
    assert hub.wait_idle(30)
    with hub.store.write() as conn:
        for ticket in tickets:
            add_link(conn, ticket, "jira", key, None)

    rounds = 100  # each round: one change on each side — 200 changes
    for n in range(rounds):
        # Support -> engineering: an agent's internal note marked #eng, and its webhook. The
        # notes rotate over the tickets: one ticket's notes are seconds apart, as an agent's are
        # (Zendesk's timestamps have one-second resolution; see the closing note).
        ticket = tickets[n % len(tickets)]
        sb.zendesk.update_ticket(ticket, {"comment": {
            "body": f"#eng customer detail {n}", "public": False}})
        sb.zendesk.deliver(ticket, style="trigger", event_type="ticket.updated")
        # Engineering -> support: a comment marked [support] by an engineer, and its webhook.
        posted = sb.jira.add_comment(key, f"[support] update {n}", author_name="Priya",
                                     account_id=ENGINEER)
        _webhook(hub, sb, key, posted)
        time.sleep(0.1)
    assert hub.wait_idle(300)
    # What Switchboard wrote comes back: its Jira comments' webhooks, its notes' webhooks.
    for comment in sb.jira.comments(key):
        if comment["author"]["accountId"] != ENGINEER:
            _webhook(hub, sb, key, comment)
    for ticket in tickets:
        sb.zendesk.deliver(ticket, style="trigger", event_type="ticket.updated")
    assert hub.wait_idle(300)

    bodies = [c["body"] for c in sb.jira.comments(key)]
    assert len(bodies) == 2 * rounds  # each support note once, each engineer comment once
    assert sorted(int(b.split("customer detail ")[1].split()[0]) for b in bodies
                  if b.startswith("From support")) == list(range(rounds))
    for ticket in tickets:
        notes = [c["body"] for c in sb.zendesk.comments(ticket)
                 if c["body"].startswith(f"Engineering on {key}")]
        assert sorted(notes) == sorted(f"Engineering on {key} (Priya): update {n}"
                                       for n in range(rounds))
    outcomes = [r.outcome for r in rows(hub, inbox, inbox.c.source == "jira")]
    assert sum("Switchboard's own comment" in o for o in outcomes) == rounds
    assert not rows(hub, outbox, outbox.c.status.in_(["dead", "pending"]))
