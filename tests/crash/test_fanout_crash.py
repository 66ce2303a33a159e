"""Crash safety of the bulk fan-out (issue 5): SIGKILL the hub while a Jira change is being
fanned out to 250 linked tickets — after a batch's ``update_many`` landed in Zendesk but before
its answer reached the hub — restart it, and every ticket still has exactly one note, with no
batch sent twice.

The sandbox runs in this process; the hub is a real subprocess (``main.py run``), as in
``test_crash_safety``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from connectors.jira_webhooks import sign
from sandbox import Sandbox
from sync.links import add_link
from sync.store import Store
from tests.support.hubproc import HubProcess, StoreReader, hub_config, wait_until, write_config

pytestmark = pytest.mark.slow

SECRET = "crash-test-secret"
JIRA_SECRET = "crash-test-jira-whsec-0a1b2c"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "jira" / \
    "webhook_issue_updated_status.json"
UPDATE_MANY = r"^/api/v2/tickets/update_many"
NOTE = "SUP-77 moved to In Progress."
RULE = {"id": "bug-progress", "on": ["jira.issue.updated"],
        "if": {"field": "issue.changed", "op": "contains", "value": "status"},
        "then": [{"zendesk.update_linked": {"issue": "{{ issue.key }}",
                                            "note": "{{ issue.key }} moved to {{ issue.status }}.",
                                            "add_tags": ["bug_progress"]}}]}


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[Sandbox, HubProcess, StoreReader, list[int]]]:
    sb = Sandbox().start()
    hub: HubProcess | None = None
    store: StoreReader | None = None
    try:
        tickets = [int(sb.zendesk.create_ticket({"subject": f"Import fails ({n})",
                                                 "description": "d"})["id"])
                   for n in range(250)]
        config = hub_config(sb, tmp_path, secret=SECRET, rules=[RULE], overrides={
            "receiver": {"jira_signing_secrets": [JIRA_SECRET]},
            "connectors": {"zendesk": {"bulk_settle_seconds": 1}}})
        # The links the bug flow would have written, in the store the hub will open.
        writer = Store(config["store"]["url"]).open()
        with writer.write() as conn:
            for ticket in tickets:
                add_link(conn, ticket, "jira", "SUP-77", None)
        writer.close()
        hub = HubProcess(write_config(tmp_path / "hub.yaml", config),
                         log_path=tmp_path / "hub.log")
        store = StoreReader(tmp_path / "hub.db")
        hub.start()
        wait_until(store.backfilled, 15, message="the backfill poll")
        yield sb, hub, store, tickets
    finally:
        sb.faults.release_all()
        if hub is not None:
            hub.close()
            print(hub.log_text())  # shown by pytest only when the test fails
        if store is not None:
            store.close()
        sb.stop()


def test_a_hub_killed_mid_fan_out_resumes_and_writes_every_ticket_once(rig):
    sb, hub, store, tickets = rig
    body = FIXTURE.read_bytes()  # SUP-77: To Do -> In Progress
    # The second batch lands in Zendesk; its answer is held, and the hub is killed there.
    # (Faults apply in the order added: the first update_many takes the no-op delay.)
    sb.faults.add("zendesk", "PUT", UPDATE_MANY, kind="delay", delay=0.0, times=1)
    held = sb.faults.add("zendesk", "PUT", UPDATE_MANY, kind="hold", phase="after", times=1)
    answer = requests.post(f"{hub.url}/webhooks/jira", data=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Hub-Signature": sign(JIRA_SECRET, body),
        "X-Atlassian-Webhook-Identifier": "crash-1"})
    assert answer.status_code == 202, answer.text
    assert held.wait_reached(30), store.describe()
    hub.kill()
    sb.faults.remove(held)  # the parked answer goes nowhere; the update itself has landed

    hub.start()
    wait_until(lambda: {r.status for r in store.intents()} == {"done"}, 60,
               message=lambda: store.describe())
    for ticket in tickets:
        notes = [c["body"] for c in sb.zendesk.comments(ticket)].count(NOTE)
        assert notes == 1, f"ticket {ticket}: {notes} notes"
    # Three batches, each sent once; the one whose answer was lost was checked, not re-sent.
    assert sb.requests.count("zendesk", method="PUT", path_regex=UPDATE_MANY) == 3
    assert sb.requests.count("zendesk", method="GET", path_regex=r"show_many") == 1
    assert len(store.intents()) == 1  # one fan-out intent, done
