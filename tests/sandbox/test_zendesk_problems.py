"""The Zendesk stand-in's problem tickets: incidents linked by ``problem_id``, and the
``external_id`` filter of ``GET /tickets.json``."""

from __future__ import annotations

import requests

from sandbox import Sandbox


def _url(sb: Sandbox, path: str) -> str:
    return f"{sb.zendesk_url}/api/v2/{path}"


def test_an_incident_is_linked_to_a_problem_and_the_problem_knows(
        sb: Sandbox, zd: requests.Session) -> None:
    problem = zd.post(_url(sb, "tickets.json"), json={"ticket": {
        "subject": "Outage", "type": "problem", "external_id": "switchboard/x",
        "comment": {"body": "opened", "public": False}}})
    assert problem.status_code == 201, problem.text
    problem_id = problem.json()["ticket"]["id"]
    incident = sb.zendesk.create_ticket({"subject": "Down", "description": "d"})
    response = zd.put(_url(sb, f"tickets/{incident['id']}.json"), json={"ticket": {
        "type": "incident", "problem_id": problem_id}})
    assert response.status_code == 200, response.text
    assert response.json()["ticket"]["problem_id"] == problem_id
    assert sb.zendesk.incidents(problem_id) == [incident["id"]]
    assert sb.zendesk.ticket(problem_id)["has_incidents"] is True


def test_problem_id_must_name_a_problem_and_only_incidents_carry_one(
        sb: Sandbox, zd: requests.Session) -> None:
    question = sb.zendesk.create_ticket({"subject": "Q", "description": "d", "type": "question"})
    ticket = sb.zendesk.create_ticket({"subject": "T", "description": "d"})
    before = sb.zendesk.ticket(ticket["id"])
    for body in ({"type": "incident", "problem_id": question["id"]},   # not a problem
                 {"type": "incident", "problem_id": 999999},            # no such ticket
                 {"problem_id": question["id"]}):                       # not an incident
        response = zd.put(_url(sb, f"tickets/{ticket['id']}.json"), json={"ticket": body})
        assert response.status_code == 422, body
        assert response.json()["details"]["problem_id"]
    assert sb.zendesk.ticket(ticket["id"]) == before  # all or nothing
    created = zd.post(_url(sb, "tickets.json"), json={"ticket": {
        "subject": "I", "type": "incident", "problem_id": question["id"],
        "comment": {"body": "x"}}})
    assert created.status_code == 422


def test_tickets_are_listed_by_external_id(sb: Sandbox, zd: requests.Session) -> None:
    sb.zendesk.create_ticket({"subject": "A", "description": "d", "external_id": "switchboard/a"})
    sb.zendesk.create_ticket({"subject": "B", "description": "d", "external_id": "other"})
    found = zd.get(_url(sb, "tickets.json"), params={"external_id": "switchboard/a"}).json()
    assert [t["subject"] for t in found["tickets"]] == ["A"]
    assert found["count"] == 1 and found["next_page"] is None
    none = zd.get(_url(sb, "tickets.json"), params={"external_id": "nope"}).json()
    assert none["tickets"] == []
