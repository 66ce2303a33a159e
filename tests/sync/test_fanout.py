"""``zendesk.update_linked``: one change to every ticket linked to a Jira issue, in
ceil(N / 100) ``update_many`` calls, resumable after any interruption without writing a ticket
twice. The real Zendesk connector over HTTP against the sandbox's stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.errors import RetriableError
from connectors.zendesk import ZendeskConnector
from rules.planner import idempotency_key
from sandbox import Sandbox
from sync import outbox
from sync.actions import ActionContext
from sync.fanout import FANOUT, zendesk_update_linked
from sync.links import add_link
from sync.store import Store
from tests.connectors.support import zendesk_settings

ISSUE = "SUP-77"
UPDATE_MANY = r"^/api/v2/tickets/update_many"
PARAMS = {"issue": ISSUE, "note": "Engineering fixed SUP-77; the fix ships in 2.4.1.",
          "add_tags": ["bug_fixed"], "remove_tags": ["bug_open"]}


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def _zendesk(sb: Sandbox, **settings: Any) -> ZendeskConnector:
    return ZendeskConnector(zendesk_settings(base_url=sb.zendesk_url, **settings))


def _linked(sb: Sandbox, store: Store, n: int) -> list[int]:
    ids = [sb.zendesk.create_ticket({"subject": f"Import fails ({i})", "description": "d",
                                     "tags": ["bug_open"]})["id"] for i in range(n)]
    with store.write() as conn:
        for ticket_id in ids:
            add_link(conn, ticket_id, "jira", ISSUE, None)
        add_link(conn, ids[0], "jira", "SUP-1", None)  # another issue's link changes nothing
    return ids


def _intent(store: Store, params: dict[str, Any] = PARAMS) -> str:
    key = idempotency_key("bug-fixed", 0, FANOUT, "jira:SUP-77:done")
    with store.write() as conn:
        outbox.add_intent(conn, idem_key=key, inbox_id=1, rule_id="bug-fixed", action=FANOUT,
                          ticket_id=None, order_key=f"jira-linked:{ISSUE}", depends_on=None,
                          params=params, context={})
    return key


def _attempt(store: Store, zendesk: ZendeskConnector, params: dict[str, Any] = PARAMS,
             sleep: Any = lambda s: None) -> Any:
    """Claim the intent (as a worker would, with its saved progress) and run the handler."""
    (item,) = outbox.acquire(store, "worker-1", 1, 60)
    ctx = ActionContext(store=store, item=item, params=params, zendesk=zendesk, jira=None,
                        sleep=sleep, progress=dict(item.progress))
    try:
        outcome = zendesk_update_linked(ctx)
    except Exception:
        with store.write() as conn:
            outbox.finish(conn, item.id, "pending", error="retry", retry_in=0,
                          owner=item.owner)
        raise
    with store.write() as conn:
        outbox.finish(conn, item.id, "done", result=outcome.result, owner=item.owner)
    return outcome


def _notes(sb: Sandbox, ticket_id: int) -> list[str]:
    return [c["body"] for c in sb.zendesk.comments(ticket_id) if c["body"] == PARAMS["note"]]


def test_250_linked_tickets_cost_three_update_many_calls_and_get_one_note_each(sb, store):
    tickets = _linked(sb, store, 250)
    _intent(store)
    outcome = _attempt(store, _zendesk(sb))
    assert sb.requests.count("zendesk", method="PUT", path_regex=UPDATE_MANY) == 3
    assert sb.requests.count("zendesk", method="GET", path_regex=r"job_statuses") == 3
    assert sb.requests.count("zendesk", method="PUT", path_regex=r"^/api/v2/tickets/\d+") == 0
    for ticket_id in tickets:
        assert len(_notes(sb, ticket_id)) == 1
        tags = sb.zendesk.ticket(ticket_id)["tags"]
        assert "bug_fixed" in tags and "bug_open" not in tags
        assert outcome.result["marker"] in tags
    assert (outcome.result["tickets"], outcome.result["batches"]) == (250, 3)
    assert outcome.result["failed"] == {}


def test_a_lost_answer_mid_fan_out_resumes_without_writing_any_ticket_twice(sb, store):
    tickets = _linked(sb, store, 250)
    _intent(store)
    zendesk = _zendesk(sb, bulk_settle_seconds=0)
    # The second batch lands, but its answer is lost (the hub could as well have died there).
    sb.faults.add("zendesk", "PUT", UPDATE_MANY, kind="reset_after_commit")
    sb.faults.add("zendesk", "PUT", UPDATE_MANY, kind="status", status=503)  # not applied
    with pytest.raises(RetriableError):
        _attempt(store, zendesk)       # batch 1: answer lost (applied)
    with pytest.raises(RetriableError):
        _attempt(store, zendesk)       # batch 1 checked: all landed; batch 2: 503
    _attempt(store, zendesk)           # batch 2 sent again (it never landed), batch 3
    assert all(len(_notes(sb, t)) == 1 for t in tickets)
    # 1 lost + 1 refused + batch 2 + batch 3; the landed batch was read once, never re-sent.
    assert sb.requests.count("zendesk", method="PUT", path_regex=UPDATE_MANY) == 4
    assert sb.requests.count("zendesk", method="GET", path_regex=r"show_many") == 2


def test_a_ticket_changed_meanwhile_is_sent_again_only_if_the_marker_is_missing(sb, store):
    tickets = _linked(sb, store, 120)
    _intent(store)
    zendesk = _zendesk(sb, bulk_settle_seconds=0)
    sb.faults.add("zendesk", "PUT", UPDATE_MANY, kind="reset_after_commit")
    with pytest.raises(RetriableError):
        _attempt(store, zendesk)
    # An agent removed the marker from one ticket: only that one is written again.
    marker = next(t for t in sb.zendesk.ticket(tickets[5])["tags"] if t.startswith("switchboard_"))
    sb.zendesk.update_ticket(tickets[5], {"remove_tags": [marker]})
    _attempt(store, zendesk)
    assert len(_notes(sb, tickets[5])) == 2
    assert all(len(_notes(sb, t)) == 1 for t in tickets if t != tickets[5])


def test_within_the_settle_time_a_lost_batch_is_not_checked_yet(sb, store):
    _linked(sb, store, 3)
    _intent(store)
    zendesk = _zendesk(sb, bulk_settle_seconds=600)
    sb.faults.add("zendesk", "PUT", UPDATE_MANY, kind="reset_after_commit")
    with pytest.raises(RetriableError):
        _attempt(store, zendesk)
    before = len(sb.requests.entries("zendesk"))
    with pytest.raises(RetriableError) as info:
        _attempt(store, zendesk)
    assert info.value.retry_after is not None and 590 < info.value.retry_after <= 600
    assert len(sb.requests.entries("zendesk")) == before  # no call at all


def test_a_job_still_running_is_polled_again_never_sent_twice(sb, store, monkeypatch):
    tickets = _linked(sb, store, 3)
    _intent(store)
    zendesk = _zendesk(sb, bulk_job_timeout_seconds=0.01)
    real = sb.zendesk.job
    monkeypatch.setattr(sb.zendesk, "job", lambda job_id: {**real(job_id), "status": "working",
                                                           "results": None})
    with pytest.raises(RetriableError, match="still working"):
        _attempt(store, zendesk)
    monkeypatch.setattr(sb.zendesk, "job", real)
    _attempt(store, zendesk)
    assert sb.requests.count("zendesk", method="PUT", path_regex=UPDATE_MANY) == 1
    assert all(len(_notes(sb, t)) == 1 for t in tickets)


def test_a_ticket_zendesk_refuses_is_reported_and_the_others_are_updated(sb, store):
    tickets = _linked(sb, store, 4)
    sb.zendesk.update_ticket(tickets[1], {"status": "closed"})
    _intent(store)
    outcome = _attempt(store, _zendesk(sb))
    assert list(outcome.result["failed"]) == [str(tickets[1])]
    assert "RecordInvalid" in outcome.result["failed"][str(tickets[1])]
    assert [len(_notes(sb, t)) for t in tickets] == [1, 0, 1, 1]


def test_the_plan_is_fixed_at_the_first_attempt(sb, store):
    tickets = _linked(sb, store, 150)
    _intent(store)
    zendesk = _zendesk(sb, bulk_settle_seconds=0)
    sb.faults.add("zendesk", "PUT", UPDATE_MANY, kind="status", status=503, times=2)
    with pytest.raises(RetriableError):
        _attempt(store, zendesk)
    late = _linked(sb, store, 1)  # linked after the fan-out began: not half-included
    with pytest.raises(RetriableError):
        _attempt(store, zendesk)
    outcome = _attempt(store, zendesk)
    assert outcome.result["tickets"] == 150
    assert all(len(_notes(sb, t)) == 1 for t in tickets)
    assert _notes(sb, late[0]) == []


def test_no_linked_ticket_is_done_without_a_call(sb, store):
    _intent(store)
    outcome = _attempt(store, _zendesk(sb))
    assert (outcome.result["tickets"], outcome.result["jobs"]) == (0, [])
    assert sb.requests.entries("zendesk") == []


def _customers(sb: Sandbox, store: Store, n: int) -> list[int]:
    ids = []
    for i in range(n):
        user = sb.zendesk.create_user({"name": f"Customer {i}", "email": f"c{i}@example.com"})
        ids.append(sb.zendesk.create_ticket({"subject": f"Export broken ({i})", "description": "d",
                                             "requester_id": user["id"]})["id"])
    with store.write() as conn:
        for ticket_id in ids:
            add_link(conn, ticket_id, "jira", ISSUE, None)
    return ids


REPLY = 'Hi {{ requester.name }}, the fix for "{{ ticket.subject }}" has shipped ({{ issue.key }}).'


def _reply_intent(store: Store, mode: str) -> dict[str, Any]:
    params = {"issue": ISSUE, "reply": REPLY, "reply_mode": mode,
              "add_tags": ["fix_announced"], "status": "pending"}
    key = idempotency_key("fix-shipped", 0, FANOUT, f"jira:SUP-77:{mode}")
    with store.write() as conn:
        outbox.add_intent(conn, idem_key=key, inbox_id=1, rule_id="fix-shipped", action=FANOUT,
                          ticket_id=None, order_key=f"jira-linked:{ISSUE}", depends_on=None,
                          params=params, context={"issue": {"key": ISSUE}})
    return params


def test_a_reply_is_sent_to_each_customer_by_name_in_bulk(sb, store):
    tickets = _customers(sb, store, 120)
    params = _reply_intent(store, "send")
    _attempt(store, _zendesk(sb), params)
    for n, ticket_id in enumerate(tickets):
        [reply] = [c for c in sb.zendesk.comments(ticket_id) if c["public"] and "fix" in c["body"]]
        assert reply["body"] == (f'Hi Customer {n}, the fix for "Export broken ({n})" has shipped '
                                 "(SUP-77).")
        assert sb.zendesk.ticket(ticket_id)["status"] == "pending"
    # Per batch of 100: the tickets, their requesters, one update_many, one poll.
    assert sb.requests.count("zendesk", method="GET", path_regex=r"tickets/show_many") == 2
    assert sb.requests.count("zendesk", method="GET", path_regex=r"users/show_many") == 2
    assert sb.requests.count("zendesk", method="PUT", path_regex=UPDATE_MANY) == 2


def test_a_draft_reply_is_an_internal_note_for_an_agent_to_approve(sb, store):
    [ticket_id] = _customers(sb, store, 1)
    params = _reply_intent(store, "draft")
    _attempt(store, _zendesk(sb), params)
    [draft] = [c for c in sb.zendesk.comments(ticket_id) if "Proposed reply" in c["body"]]
    assert draft["public"] is False
    assert 'Hi Customer 0, the fix for "Export broken (0)" has shipped (SUP-77).' in draft["body"]
    assert "fix_announced" in sb.zendesk.ticket(ticket_id)["tags"]
    assert not [c for c in sb.zendesk.comments(ticket_id) if c["public"] and "fix" in c["body"]]


def test_a_ticket_whose_reply_cannot_render_is_reported_and_the_others_get_theirs(sb, store):
    tickets = _customers(sb, store, 2)
    sb.zendesk.update_ticket(tickets[1], {"subject": ""})
    params = {**_reply_intent(store, "send"),
              "reply": "Hi {{ requester.name }}, about {{ ticket.subject[0] }}..."}
    outcome = _attempt(store, _zendesk(sb), params)  # an empty subject has no first letter
    assert list(outcome.result["failed"]) == [str(tickets[1])]
    assert "reply could not be rendered" in outcome.result["failed"][str(tickets[1])]
    [reply] = [c for c in sb.zendesk.comments(tickets[0]) if c["public"] and "about" in c["body"]]
    assert reply["body"] == "Hi Customer 0, about E..."
    assert not [c for c in sb.zendesk.comments(tickets[1]) if "about" in c["body"]]


def test_a_job_that_fails_or_is_forgotten_is_checked_and_sent_again_not_taken_as_done(
        sb, store):
    tickets = _linked(sb, store, 3)
    _intent(store)
    zendesk = _zendesk(sb, bulk_settle_seconds=0)
    # Zendesk answers with a job it then does not know (expired, or a failed job's record),
    # and nothing was applied.
    sb.faults.add("zendesk", "PUT", UPDATE_MANY, kind="status", status=200,
                  body={"job_status": {"id": "V3-lost", "status": "queued", "total": 3}})
    with pytest.raises(RetriableError, match="ended expired"):
        _attempt(store, zendesk)
    _attempt(store, zendesk)
    assert all(len(_notes(sb, t)) == 1 for t in tickets)
    assert sb.requests.count("zendesk", method="PUT", path_regex=UPDATE_MANY) == 2


def test_a_failed_job_whose_updates_landed_is_not_sent_again(sb, store, monkeypatch):
    tickets = _linked(sb, store, 3)
    _intent(store)
    zendesk = _zendesk(sb, bulk_settle_seconds=0)
    real = sb.zendesk.job
    monkeypatch.setattr(sb.zendesk, "job", lambda job_id: {**real(job_id), "status": "failed",
                                                           "results": None})
    with pytest.raises(RetriableError, match="ended failed"):
        _attempt(store, zendesk)
    monkeypatch.setattr(sb.zendesk, "job", real)
    outcome = _attempt(store, zendesk)
    assert all(len(_notes(sb, t)) == 1 for t in tickets)
    assert sb.requests.count("zendesk", method="PUT", path_regex=UPDATE_MANY) == 1
    assert outcome.result["failed"] == {}
