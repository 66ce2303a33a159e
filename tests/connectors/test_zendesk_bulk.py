"""Zendesk bulk calls (update_many, job status, show_many) at the HTTP layer, with payloads after
Zendesk's documented JobStatus examples, and against the sandbox's stand-in."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from connectors.errors import (
    FatalError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    RetriableError,
)
from connectors.models import BulkUpdate, JobResult
from connectors.zendesk import ZendeskConnector
from connectors.zendesk_bulk import job_from_api
from sandbox import Sandbox
from tests.connectors.support import ZENDESK, load, zendesk_settings

UPDATE_MANY = f"{ZENDESK}/api/v2/tickets/update_many.json"
JOB_ID = "V3-8b32a61e55c1d3a0e1f1a6b1b9d1f2c4"
JOB_URL = f"{ZENDESK}/api/v2/job_statuses/{JOB_ID}.json"
SHOW_MANY = f"{ZENDESK}/api/v2/tickets/show_many.json"


def bulk() -> Any:
    return ZendeskConnector(zendesk_settings()).bulk


def test_update_many_sends_one_put_with_each_tickets_changes(
        rsps: responses.RequestsMock) -> None:
    rsps.put(UPDATE_MANY, json=load("zendesk", "update_many_queued"))
    job = bulk().update_many([
        BulkUpdate(4012, note="Fixed in 2.4.1", add_tags=("jira_done", "switchboard_ab12"),
                   remove_tags=("jira_open",), custom_fields={"jira_key": "SUP-77"},
                   status="pending"),
        BulkUpdate(4013, note="Fixed in 2.4.1", public=True)])
    assert len(rsps.calls) == 1
    assert json.loads(rsps.calls[0].request.body) == {"tickets": [
        {"id": 4012, "comment": {"body": "Fixed in 2.4.1", "public": False},
         "additional_tags": ["jira_done", "switchboard_ab12"], "remove_tags": ["jira_open"],
         "custom_fields": [{"id": 360003, "value": "SUP-77"}], "status": "pending"},
        {"id": 4013, "comment": {"body": "Fixed in 2.4.1", "public": True}}]}
    assert (job.id, job.status, job.total, job.done) == (JOB_ID, "queued", 2, False)


@pytest.mark.parametrize("updates", [
    [], [BulkUpdate(n) for n in range(1, 102)], [BulkUpdate(7), BulkUpdate(7)],
    [BulkUpdate(7, custom_fields={"no_such_field": 1})], [BulkUpdate(-1)]])
def test_update_many_refuses_a_bad_batch_before_any_request(
        rsps: responses.RequestsMock, updates: list[BulkUpdate]) -> None:
    with pytest.raises(ValueError):
        bulk().update_many(updates)
    assert len(rsps.calls) == 0


@pytest.mark.parametrize(("status", "error"), [
    (429, RateLimitedError), (500, RetriableError), (503, RetriableError),
    (400, InvalidRequestError), (422, InvalidRequestError)])
def test_update_many_failures_are_raised_after_one_request(
        rsps: responses.RequestsMock, status: int, error: type[Exception]) -> None:
    rsps.put(UPDATE_MANY, json={"error": "TooManyValues"}, status=status,
             headers={"Retry-After": "5"} if status == 429 else {})
    with pytest.raises(error):
        bulk().update_many([BulkUpdate(4012, note="x")])
    assert len(rsps.calls) == 1


def test_update_many_answers_that_are_not_a_job_are_errors(rsps: responses.RequestsMock) -> None:
    rsps.put(UPDATE_MANY, body="<html>busy</html>")
    with pytest.raises(RetriableError) as info:  # ambiguous: the job may be queued
        bulk().update_many([BulkUpdate(4012, note="x")])
    assert info.value.ambiguous is True
    rsps.replace(responses.PUT, UPDATE_MANY, json={"job_status": {"id": 5}})
    with pytest.raises(FatalError, match="malformed"):
        bulk().update_many([BulkUpdate(4012, note="x")])
    rsps.replace(responses.PUT, UPDATE_MANY, json=[1, 2])
    with pytest.raises(FatalError, match="malformed"):
        bulk().update_many([BulkUpdate(4012, note="x")])


def test_update_many_read_timeout_is_ambiguous(rsps: responses.RequestsMock) -> None:
    rsps.put(UPDATE_MANY, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(RetriableError) as info:
        bulk().update_many([BulkUpdate(4012, note="x")])
    assert info.value.ambiguous is True


def test_job_status_reads_results_per_ticket(rsps: responses.RequestsMock) -> None:
    rsps.get(JOB_URL, json=load("zendesk", "job_status_completed"))
    job = bulk().job_status(JOB_ID)
    assert job.done and job.progress == 2
    assert job.results == (
        JobResult(4012, True, "Updated"),
        JobResult(4013, False, "Failed", "TicketUpdateFailed",
                  "Status: closed prevents ticket update"))


def test_job_status_unknown_job_and_bad_ids(rsps: responses.RequestsMock) -> None:
    rsps.get(JOB_URL, json=load("zendesk", "error_not_found"), status=404)
    with pytest.raises(NotFoundError):
        bulk().job_status(JOB_ID)
    for bad in ("", "a/b", "x?y"):
        with pytest.raises(ValueError):
            bulk().job_status(bad)
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("data", [None, "x", {"id": "J"}, {"id": "J", "status": "completed",
                                                          "results": ["nope"]},
                                  {"id": "J", "status": "completed", "results": [{"id": "x"}]}])
def test_job_from_api_refuses_what_is_not_a_job(data: object) -> None:
    with pytest.raises(ValueError):
        job_from_api(data)


def test_job_from_api_reads_a_result_without_success_by_its_status() -> None:
    job = job_from_api({"id": "J", "status": "completed",
                        "results": [{"id": 9, "status": "Updated"}]})
    assert job.results == (JobResult(9, True, "Updated"),)


def test_show_many_reads_up_to_100_tickets_in_one_call(rsps: responses.RequestsMock) -> None:
    ticket = load("zendesk", "ticket")["ticket"]
    rsps.get(SHOW_MANY, json={"tickets": [ticket], "next_page": None, "count": 1})
    found = bulk().show_many([4012, 4099])
    assert [t.id for t in found] == [4012]
    assert parse_qs(urlsplit(rsps.calls[0].request.url).query) == {"ids": ["4012,4099"]}
    with pytest.raises(ValueError):
        bulk().show_many(list(range(1, 102)))
    rsps.replace(responses.GET, SHOW_MANY, json={"count": 0})
    with pytest.raises(FatalError):
        bulk().show_many([4012])


def test_bulk_calls_against_the_sandbox() -> None:
    with Sandbox() as sb:
        _bulk_against(sb, ZendeskConnector(zendesk_settings(base_url=sb.zendesk_url)))


def _bulk_against(sb: Sandbox, zendesk: ZendeskConnector) -> None:
    ids = [sb.zendesk.create_ticket({"subject": f"T{n}", "description": "d",
                                     "tags": ["a"]})["id"] for n in range(3)]
    closed = sb.zendesk.create_ticket({"subject": "C", "description": "d", "status": "closed"})
    job = zendesk.bulk.update_many([BulkUpdate(t, note="Fixed", add_tags=("jira_done",),
                                               remove_tags=("a",)) for t in ids]
                                   + [BulkUpdate(closed["id"], note="Fixed")])
    assert job.status == "queued"
    done = zendesk.bulk.job_status(job.id)
    assert done.done
    assert [(r.ticket_id, r.success) for r in done.results] == [
        *((t, True) for t in ids), (closed["id"], False)]
    tickets = zendesk.bulk.show_many([*ids, 999999])
    assert [t.id for t in tickets] == ids
    assert all(t.tags == ("jira_done",) for t in tickets)
    assert [c["body"] for c in sb.zendesk.comments(ids[0])][-1] == "Fixed"
