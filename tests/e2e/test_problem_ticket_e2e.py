"""An outage's Zendesk problem ticket end to end: the real hub and Zendesk connector over HTTP
against the stand-in — one problem ticket per episode, every matching ticket attached to it as
an incident, no rule run on Switchboard's own writes, nothing opened twice."""

from __future__ import annotations

import re
import time

import pytest
import sqlalchemy as sa

from sandbox import Sandbox
from sandbox.demo import load_sample, seed_organizations
from sync.schema import escalation_members, escalations
from tests.e2e.conftest import config_with, decisions, inbox, outbox, rows
from tests.e2e.test_escalation_e2e import OUTAGE_RULE, _deliver, _ticket

ORGS = [501, 502, 503, 504, 505]


@pytest.fixture
def outage_hub(sb, make_hub, tmp_path):
    seed_organizations(sb, load_sample())
    return make_hub(config_with(tmp_path, OUTAGE_RULE))


def _burst(sb: Sandbox, n: int) -> list[int]:
    tickets = [_ticket(sb, tags=["error_500"], priority="high", org=ORGS[i % 5],
                       subject=f"Checkout fails ({i})") for i in range(n)]
    for ticket in tickets:
        _deliver(sb, ticket)
    return tickets


def rows_of(hub, table):
    with hub.store.read() as conn:
        return conn.execute(sa.select(table)).all()


def _problems(sb: Sandbox) -> list[dict]:
    return [t for t in sb.zendesk.tickets() if t["type"] == "problem"]


def test_an_outage_opens_one_problem_ticket_and_attaches_every_ticket(sb, outage_hub):
    hub = outage_hub
    tickets = _burst(sb, 7)
    assert hub.wait_idle(60)

    problems = _problems(sb)
    assert len(problems) == 1
    problem = problems[0]
    assert problem["subject"] == "Possible outage: checkout"
    assert "outage_problem" in problem["tags"]
    assert problem["external_id"].startswith("switchboard/window:checkout-outage:checkout:")
    assert sb.zendesk.incidents(problem["id"]) == sorted(tickets)
    for ticket in tickets:
        assert sb.zendesk.ticket(ticket)["type"] == "incident"
    first = sb.zendesk.comments(problem["id"])[0]
    assert first["public"] is False and "checkout-outage" in first["body"]
    (escalation,) = rows_of(hub, escalations)
    assert escalation.zd_problem_id == problem["id"]
    assert {m.problem_id for m in rows_of(hub, escalation_members)} == {problem["id"]}
    root = sb.slack.messages("#support-outages")[0]
    assert f"problem #{problem['id']}" in str(root["blocks"])
    assert not rows(hub, outbox, outbox.c.status.in_(["dead", "pending"]))

    # Zendesk's webhooks for Switchboard's own writes: the problem's creation, the attachments.
    matched = len(rows(hub, decisions, decisions.c.matched))
    _deliver(sb, problem["id"])
    for ticket in tickets:
        _deliver(sb, ticket, created=False)
    assert hub.wait_idle(30)
    assert len(rows(hub, decisions, decisions.c.matched)) == matched  # no rule ran
    outcomes = [r.outcome for r in rows(hub, inbox)][-(len(tickets) + 1):]
    assert all("own write" in o for o in outcomes), outcomes
    assert len(_problems(sb)) == 1


def test_the_problem_tickets_webhook_arriving_before_its_create_answers_runs_no_rule(
        sb, outage_hub):
    hub = outage_hub
    held = sb.faults.add("zendesk", "POST", r"^/api/v2/tickets(\.json)?$", kind="hold",
                         phase="after")
    _burst(sb, 5)
    assert held.wait_reached(30)
    (problem,) = _problems(sb)  # created in Zendesk; Switchboard has not seen the answer yet
    matched = len(rows(hub, decisions, decisions.c.matched))
    _deliver(sb, problem["id"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not [
            r for r in rows(hub, inbox)
            if r.status == "done" and r.entity_key == f"zendesk:ticket:{problem['id']}"]:
        time.sleep(0.05)
    held.release()
    assert hub.wait_idle(60)
    (seen,) = [r for r in rows(hub, inbox) if r.entity_key == f"zendesk:ticket:{problem['id']}"]
    assert "Switchboard opened itself" in seen.outcome
    assert len(rows(hub, decisions, decisions.c.matched)) == matched
    assert len(_problems(sb)) == 1
    assert len(sb.zendesk.incidents(problem["id"])) == 5


def test_a_problem_ticket_whose_answer_is_lost_is_found_not_opened_twice(sb, outage_hub):
    sb.faults.add("zendesk", "POST", r"^/api/v2/tickets(\.json)?$", kind="reset_after_commit")
    _burst(sb, 5)
    assert outage_hub.wait_idle(60)
    assert len(_problems(sb)) == 1
    assert sb.requests.count("zendesk", method="POST", path_regex=r"^/api/v2/tickets") == 1
    assert sb.requests.count("zendesk", method="GET", path_regex=r"^/api/v2/tickets(\.json)?$") \
        == 1  # the search by external id, after the lost answer
    assert len(sb.zendesk.incidents(_problems(sb)[0]["id"])) == 5
    assert not rows(outage_hub, outbox, outbox.c.status.in_(["dead", "pending"]))


def test_a_ticket_zendesk_refuses_to_attach_does_not_stop_the_others(sb, outage_hub):
    tickets = [_ticket(sb, tags=["error_500"], priority="high", org=ORGS[i % 5],
                       subject=f"Checkout fails ({i})") for i in range(6)]
    refused = tickets[2]
    sb.faults.add("zendesk", "PUT", rf"^/api/v2/tickets/{refused}(\.json)?$", kind="status",
                  status=422, times=None, body={
                      "error": "RecordInvalid", "description": "Record validation errors",
                      "details": {"status": [{"description": "Status: closed prevents ticket "
                                              "update", "error": "ClosedPreventsUpdate"}]}})
    for ticket in tickets:
        _deliver(sb, ticket)
    assert outage_hub.wait_idle(60)
    (problem,) = _problems(sb)
    assert sb.zendesk.incidents(problem["id"]) == sorted(t for t in tickets if t != refused)
    done = rows(outage_hub, outbox, outbox.c.action == "zendesk.problem",
                outbox.c.status == "done")
    reasons = {k: v for r in done for k, v in (r.result.get("not_attached") or {}).items()}
    assert list(reasons) == [str(refused)]
    assert re.search(r"closed|422|invalid", reasons[str(refused)], re.I)
    assert not rows(outage_hub, outbox, outbox.c.status.in_(["dead", "pending"]))
    # Refused once, not asked again on every later join.
    assert sb.requests.count("zendesk", method="PUT",
                             path_regex=rf"^/api/v2/tickets/{refused}(\.json)?$") == 1
