"""Comments both ways, end to end: an agent's note marked for engineering becomes a Jira comment,
a Jira comment marked for support becomes a note on every linked ticket, and neither side's
writes come back as events — 1,000 alternating changes, and every comment exists exactly once."""

from __future__ import annotations

import copy
import json
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import requests
from pydantic import SecretStr

from connectors.jira_webhooks import sign
from sandbox import Sandbox
from sandbox.zendesk_webhooks import trigger_payload
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


ROUNDS = 500  # each round: one change on each side — 1,000 changes
#: Rounds between two waits for the hub: a later change may bury a ticket's note under up to
#: this many newer comments before its event is processed (read deeper than the first page).
CHUNK = 50


def _faster(path: Path) -> None:
    """The stand-ins' pace, not the vendors' rate limits (100 Zendesk requests a minute, 300
    Jira): 1,000 changes in about a minute."""
    text = path.read_text(encoding="utf-8")
    for vendor in ("zendesk", "jira"):
        text = text.replace(f"  {vendor}:\n", f"  {vendor}:\n    requests_per_minute: 60000\n", 1)
    path.write_text(text, encoding="utf-8")


def test_a_thousand_changes_both_ways_produce_each_comment_once_and_no_loop(
        sb, make_hub, tmp_path):
    path = config_with(tmp_path, RULES)
    _faster(path)
    # The stand-in gives each change of a ticket its own second (Zendesk's stamps have
    # one-second resolution): 500+ changes of one ticket within a minute or two put its stamps
    # minutes ahead of the clock, which the receiver would refuse as from the future.
    hub = make_hub(path, receiver={"jira_signing_secrets": (SecretStr(SECRET),),
                                   "timestamp_tolerance_seconds": 3600})
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

    # Webhooks are delivered by a few threads at once, as Zendesk and Jira deliver them; each
    # payload is taken right after its change, so it carries that change's state. The notes
    # rotate over the tickets (one ticket's notes are 20 rounds apart).
    with ThreadPoolExecutor(max_workers=4) as pool:
        sent: list[Future[object]] = []
        for n in range(ROUNDS):
            # Support -> engineering: an agent's internal note marked #eng, and its webhook.
            ticket = tickets[n % len(tickets)]
            sb.zendesk.update_ticket(ticket, {"comment": {
                "body": f"#eng customer detail {n}", "public": False}})
            body = json.dumps(trigger_payload(sb.zendesk.ticket(ticket), "ticket.updated"))
            sent.append(pool.submit(sb.zendesk.deliver, ticket, body_override=body.encode()))
            # Engineering -> support: a comment marked [support] by an engineer, and its webhook.
            posted = sb.jira.add_comment(key, f"[support] update {n}", author_name="Priya",
                                         account_id=ENGINEER)
            sent.append(pool.submit(_webhook, hub, sb, key, posted))
            if n % CHUNK == CHUNK - 1:
                assert all(f.result() for f in sent)
                sent = []
                assert hub.wait_idle(300)
        # What Switchboard wrote comes back: its Jira comments' webhooks, its notes' webhooks.
        echoes = [pool.submit(_webhook, hub, sb, key, comment)
                  for comment in sb.jira.comments(key)
                  if comment["author"]["accountId"] != ENGINEER]
        echoes += [pool.submit(sb.zendesk.deliver, ticket, style="trigger",
                               event_type="ticket.updated") for ticket in tickets]
        assert all(f.result() for f in echoes)
    assert hub.wait_idle(300)

    bodies = [c["body"] for c in sb.jira.comments(key)]
    assert len(bodies) == 2 * ROUNDS  # each support note once, each engineer comment once
    assert sorted(int(b.split("customer detail ")[1].split()[0]) for b in bodies
                  if b.startswith("From support")) == list(range(ROUNDS))
    for ticket in tickets:
        notes = [c["body"] for c in sb.zendesk.comments(ticket)
                 if c["body"].startswith(f"Engineering on {key}")]
        assert sorted(notes) == sorted(f"Engineering on {key} (Priya): update {n}"
                                       for n in range(ROUNDS))
    outcomes = [r.outcome for r in rows(hub, inbox, inbox.c.source == "jira")]
    assert sum("Switchboard's own comment" in o for o in outcomes) == ROUNDS
    assert not rows(hub, outbox, outbox.c.status.in_(["dead", "pending"]))
