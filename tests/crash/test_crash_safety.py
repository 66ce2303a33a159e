"""Crash safety (invariants 1 and 2): SIGKILL the hub at every step boundary of the bug flow,
restart it on the same store, and check that every side effect happened exactly once —
one Jira issue per error code, one remote link per ticket, one internal note per ticket.

The sandbox runs in this process; the hub is a real subprocess (``main.py run``). Sandbox
``hold`` faults park the hub's request at an exact point (before the vendor applies it, or after
it applied it but before the answer goes out), so the kill lands exactly there. A released hold
lets the parked request finish on the vendor's side, as a request already on the wire would.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from sandbox import Fault, Sandbox
from tests.support.hubproc import (
    HubProcess,
    StoreReader,
    bug_ticket,
    hub_config,
    receiver_pids,
    shipped_config,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.slow

SECRET = "crash-test-secret"
SANDBOX_SEARCH_LAG = 1.0  # the sandbox's Jira search lags writes by this much
HUB_SEARCH_LAG = 1.5  # the hub waits this long before concluding a create did not land
FIELD_IDS: dict[str, int] = dict(shipped_config()["connectors"]["zendesk"]["custom_fields"])
JIRA_KEY_FIELD = FIELD_IDS["jira_key"]

JIRA_CREATE = r"^/rest/api/2/issue$"
JIRA_REMOTE_LINK = r"^/rest/api/2/issue/[^/]+/remotelink$"
ZENDESK_TICKET = r"^/api/v2/tickets/\d+\.json$"

KILL_POINTS = {
    # name: (vendor, method, path, phase)
    "jira-create-in-flight": ("jira", "POST", JIRA_CREATE, "before"),
    "jira-create-landed": ("jira", "POST", JIRA_CREATE, "after"),
    "remote-link-landed": ("jira", "POST", JIRA_REMOTE_LINK, "after"),
    "zendesk-update-landed": ("zendesk", "PUT", ZENDESK_TICKET, "after"),
}


@dataclass
class Rig:
    """A sandbox, a hub subprocess pointed at it, and a read-only view of the hub's store."""

    sb: Sandbox
    hub: HubProcess
    store: StoreReader
    tickets: list[int] = field(default_factory=list)

    # -- driving ------------------------------------------------------------------------------

    def create_ticket(self, subject: str, error_code: str | None) -> int:
        ticket = self.sb.zendesk.create_ticket(
            bug_ticket(FIELD_IDS, subject=subject, error_code=error_code))
        self.tickets.append(int(ticket["id"]))
        return int(ticket["id"])

    def deliver(self, ticket_id: int, *, style: str = "trigger",
                event_type: str = "ticket.created") -> None:
        """Deliver a signed webhook; a 200 proves the event is committed to the inbox."""
        resp = self.sb.zendesk.deliver(ticket_id, style=style, event_type=event_type)
        try:
            assert resp.status_code == 200, (resp.status_code, resp.text)
            assert resp.json()["status"] == "accepted", resp.text
        finally:
            resp.close()

    def hold(self, point: str, *, times: int | None = 1) -> Fault:
        vendor, method, path, phase = KILL_POINTS[point]
        return self.sb.faults.add(vendor, method, path, kind="hold", phase=phase, times=times)

    def crash_at(self, fault: Fault, timeout: float = 15.0) -> None:
        """Wait until the hub is parked on ``fault``, SIGKILL it, then let the request go on."""
        assert fault.wait_reached(timeout), (
            f"the hub never reached {fault}\n{self.store.describe()}")
        self.hub.kill()
        self.sb.faults.remove(fault)  # releases the parked request; it completes vendor-side

    def restart(self) -> None:
        self.hub.start()

    def wait_done(self, *, intents: int, timeout: float = 30.0) -> None:
        """Until nothing is pending and ``intents`` intents are done (seen twice, 0.3 s apart)."""
        def quiet() -> bool:
            if not self.store.settled(min_done=intents):
                return False
            time.sleep(0.3)
            return self.store.settled(min_done=intents)
        wait_until(quiet, timeout, interval=0.1, message=lambda: self.store.describe())

    # -- checking -----------------------------------------------------------------------------

    def assert_exactly_once(self, groups: list[list[int]]) -> None:
        """Each group of tickets shares one Jira issue; everything happened exactly once."""
        sb = self.sb
        statuses = {r.status for r in self.store.intents()}
        assert statuses == {"done"}, self.store.describe()
        issues = sb.jira.issues()
        creates = sb.requests.count("jira", "POST", JIRA_CREATE)
        assert len(issues) == len(groups), (
            f"expected {len(groups)} Jira issue(s), found {[i['key'] for i in issues]} "
            f"({creates} create request(s))\n{self.store.describe()}")
        keys_seen: set[str] = set()
        for group in groups:
            keys = {self._jira_key(t) for t in group}
            assert len(keys) == 1 and None not in keys, f"tickets {group} -> jira_key {keys}"
            key = keys.pop()
            assert key not in keys_seen, f"{key} shared by two dedupe groups"
            keys_seen.add(key)
            links = sb.jira.remote_links(key)
            global_ids = [link["globalId"] for link in links]
            assert len(links) == len(group), f"{key}: remote links {global_ids}, tickets {group}"
            assert len(set(global_ids)) == len(global_ids), global_ids
            titles = sorted(link["object"]["title"].split(":")[0] for link in links)
            assert titles == sorted(f"Zendesk #{t}" for t in group), titles
            for ticket_id in group:
                ticket = sb.zendesk.ticket(ticket_id)
                notes = [c for c in sb.zendesk.comments(ticket_id) if not c["public"]]
                assert len(notes) == 1, f"ticket {ticket_id}: notes {[n['body'] for n in notes]}"
                assert key in notes[0]["body"], notes[0]["body"]
                markers = [t for t in ticket["tags"] if t.startswith("switchboard_")]
                assert len(markers) == 1, f"ticket {ticket_id}: tags {ticket['tags']}"
                assert ticket["tags"].count("jira_linked") == 1, ticket["tags"]
        assert keys_seen == {i["key"] for i in issues}

    def _jira_key(self, ticket_id: int) -> str | None:
        ticket = self.sb.zendesk.ticket(ticket_id)
        return next((f["value"] for f in ticket["custom_fields"]
                     if f["id"] == JIRA_KEY_FIELD), None)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    sb = Sandbox(jira_search_lag=SANDBOX_SEARCH_LAG).start()
    hub: HubProcess | None = None
    store: StoreReader | None = None
    try:
        config = hub_config(sb, tmp_path, secret=SECRET, jira_search_lag=HUB_SEARCH_LAG)
        hub = HubProcess(write_config(tmp_path / "hub.yaml", config),
                         log_path=tmp_path / "hub.log")
        store = StoreReader(tmp_path / "hub.db")
        hub.start()
        # The first poll is the backfill (snapshots only): tickets created before it ends would
        # be taken as history, and their webhooks as stale.
        wait_until(store.backfilled, 15, message="the backfill poll")
        sb.zendesk.configure_webhook(hub.webhook_url, SECRET)
        yield Rig(sb, hub, store)
    finally:
        sb.faults.release_all()
        if hub is not None:
            hub.close()
            print(hub.log_text())  # shown by pytest only when the test fails
        if store is not None:
            store.close()
        sb.stop()


# -- the step boundaries -----------------------------------------------------------------------


def test_kill_after_inbox_commit_before_the_decision_then_restart_processes_the_event_once(
        rig: Rig) -> None:
    # An event-subscription webhook lacks custom fields, so the processor reads the ticket
    # before deciding: parking that read kills the hub after the inbox commit, before any
    # decision or intent exists.
    read = rig.sb.faults.add("zendesk", "GET", ZENDESK_TICKET, kind="hold", phase="before")
    ticket = rig.create_ticket("Export to CSV fails with E500", "E500")
    rig.deliver(ticket, style="event", event_type="ticket.created")
    rig.crash_at(read)
    assert rig.store.counts("inbox") == {"pending": 1}
    assert rig.store.counts("outbox") == {}

    rig.restart()
    rig.wait_done(intents=2)
    rig.assert_exactly_once([[ticket]])


def test_kill_while_jira_create_is_in_flight_then_restart_creates_exactly_one_issue(
        rig: Rig) -> None:
    # Killed after the inbox commit and the decision, while the create is on the wire; the
    # create then lands after the crash, so the restarted hub must find it by its label (past
    # the search lag) instead of creating another.
    create = rig.hold("jira-create-in-flight")
    ticket = rig.create_ticket("Route optimiser crashes on import", "E1042")
    rig.deliver(ticket)
    rig.crash_at(create)

    rig.restart()
    rig.wait_done(intents=2)
    rig.assert_exactly_once([[ticket]])
    assert rig.sb.requests.count("jira", "POST", JIRA_CREATE) == 1


def test_kill_while_a_jira_create_that_never_arrives_is_in_flight_creates_it_once(
        rig: Rig) -> None:
    # The create was sent (create_sent is recorded) but is lost on the way: after the restart
    # the label search finds nothing, twice across the search lag, so the issue is created —
    # once.
    create = rig.hold("jira-create-in-flight")
    ticket = rig.create_ticket("Route optimiser crashes on import", "E1042")
    rig.deliver(ticket)
    assert create.wait_reached(15), rig.store.describe()
    rig.hub.kill()
    create.abort()
    rig.sb.faults.remove(create)
    assert rig.sb.jira.issues() == []

    rig.restart()
    rig.wait_done(intents=2)
    rig.assert_exactly_once([[ticket]])
    searches = [e for e in rig.sb.requests.entries("jira", path_regex=r"/search/jql$")]
    assert len(searches) >= 2  # searched, waited out the lag, searched again, then created
    assert [e.fault for e in rig.sb.requests.entries("jira", "POST", JIRA_CREATE)] == \
        ["aborted", None]


def test_kill_after_jira_create_lands_then_restart_creates_exactly_one_issue(rig: Rig) -> None:
    create = rig.hold("jira-create-landed")
    first = rig.create_ticket("Route optimiser crashes on import", "E1042")
    rig.deliver(first)
    rig.crash_at(create)
    assert len(rig.sb.jira.issues()) == 1  # it landed; the hub never heard the answer

    rig.restart()
    rig.wait_done(intents=2)
    rig.assert_exactly_once([[first]])
    assert rig.sb.requests.count("jira", "POST", JIRA_CREATE) == 1

    # A second ticket with the same error code joins the same issue.
    second = rig.create_ticket("Optimiser import dies again", "E1042")
    rig.deliver(second)
    rig.wait_done(intents=4)
    rig.assert_exactly_once([[first, second]])


def test_kill_after_remote_link_lands_then_restart_links_each_ticket_once(rig: Rig) -> None:
    link = rig.hold("remote-link-landed")
    first = rig.create_ticket("Dashboard shows blank charts", "E2001")
    rig.deliver(first)
    rig.crash_at(link)
    issues = rig.sb.jira.issues()
    assert len(issues) == 1 and len(rig.sb.jira.remote_links(issues[0]["key"])) == 1

    rig.restart()
    rig.wait_done(intents=2)
    rig.assert_exactly_once([[first]])

    second = rig.create_ticket("Charts empty on the dashboard", "E2001")
    rig.deliver(second)
    rig.wait_done(intents=4)
    rig.assert_exactly_once([[first, second]])


def test_kill_after_zendesk_update_lands_then_restart_writes_one_note(rig: Rig) -> None:
    update = rig.hold("zendesk-update-landed")
    first = rig.create_ticket("SSO login loops back to the login page", "E3003")
    rig.deliver(first)
    rig.crash_at(update)
    notes = [c for c in rig.sb.zendesk.comments(first) if not c["public"]]
    assert len(notes) == 1  # it landed; the outbox does not know yet

    rig.restart()
    rig.wait_done(intents=2)
    rig.assert_exactly_once([[first]])

    second = rig.create_ticket("Login loop with SSO", "E3003")
    rig.deliver(second)
    rig.wait_done(intents=4)
    rig.assert_exactly_once([[first, second]])


def test_commit_then_reset_on_jira_create_with_lagging_search_creates_exactly_one_issue(
        rig: Rig) -> None:
    # The create lands but the connection is reset before the answer: the dispatcher retries,
    # searches for the label (not visible yet: search lags), waits, searches again, finds it.
    rig.sb.faults.add("jira", "POST", JIRA_CREATE, kind="reset_after_commit", times=1)
    ticket = rig.create_ticket("Webhook retries flood the audit log", "E4004")
    rig.deliver(ticket)

    rig.wait_done(intents=2)
    rig.assert_exactly_once([[ticket]])
    assert rig.sb.requests.count("jira", "POST", JIRA_CREATE) == 1
    searches = rig.sb.requests.count("jira", "GET", r"/search")
    assert searches >= 2, f"expected a search, a lag wait and a second search; saw {searches}"


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_kill_with_several_tickets_in_flight_then_restart_processes_each_exactly_once(
        rig: Rig, point: str) -> None:
    hold = rig.hold(point, times=None)  # park every matching request, not just the first
    codes = ["E7001", "E7001", "E7002", "E7002", "E7003"]
    tickets = [rig.create_ticket(f"Crash storm ticket {n} ({code})", code)
               for n, code in enumerate(codes)]
    for ticket in tickets:
        rig.deliver(ticket)
    # Let several tickets pile up at the same point: one per dedupe group for the Jira steps
    # (order per bug), and as many as there are free workers for the Zendesk update.
    wait_until(lambda: hold.hits >= 3, 15,
               message=lambda: f"3 requests held at {point}\n{rig.store.describe()}")
    rig.crash_at(hold)

    rig.restart()
    rig.wait_done(intents=2 * len(tickets), timeout=40)
    rig.assert_exactly_once([tickets[0:2], tickets[2:4], tickets[4:5]])


def test_sigterm_stops_the_hub_cleanly_and_a_restart_carries_on(rig: Rig) -> None:
    first = rig.create_ticket("Route optimiser crashes on import", "E1042")
    rig.deliver(first)
    rig.wait_done(intents=2)
    assert rig.hub.stop() == 0  # graceful: SIGTERM, exit status 0, within the timeout

    rig.restart()
    second = rig.create_ticket("Optimiser import dies again", "E1042")
    rig.deliver(second)
    rig.wait_done(intents=4)
    rig.assert_exactly_once([[first, second]])


def _port_is_free(port: int) -> bool:
    """Nobody listens on ``port`` (connections in TIME_WAIT are fine, as for the hub)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_a_killed_hubs_receiver_exits_and_frees_the_port(rig: Rig) -> None:
    assert rig.hub.proc is not None
    [receiver] = receiver_pids(rig.hub.proc.pid)
    rig.hub.kill()
    wait_until(lambda: not Path(f"/proc/{receiver}").exists(), 10,
               message="the receiver outlived its hub")
    assert _port_is_free(rig.hub.port)


def test_a_receiver_that_dies_is_restarted_by_its_hub(rig: Rig) -> None:
    assert rig.hub.proc is not None
    [receiver] = receiver_pids(rig.hub.proc.pid)
    os.kill(receiver, signal.SIGKILL)

    def restarted() -> bool:
        assert rig.hub.proc is not None
        pids = receiver_pids(rig.hub.proc.pid)
        return bool(pids) and pids != [receiver]

    wait_until(restarted, 15, message="no new receiver")
    ticket = rig.create_ticket("Route optimiser crashes on import", "E1042")

    def accepted() -> bool:
        try:
            rig.deliver(ticket)
        except (requests.ConnectionError, AssertionError):
            return False  # the new receiver is not listening yet
        return True

    wait_until(accepted, 15, message="webhook not accepted")
    rig.wait_done(intents=2)
    rig.assert_exactly_once([[ticket]])
