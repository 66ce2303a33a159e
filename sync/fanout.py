"""``zendesk.update_linked``: one change to every ticket linked to a Jira issue (or to a
Productboard feature, through the ticket's feedback note), in bulk.

N linked tickets cost ceil(N / 100) ``update_many`` calls plus the polls of their jobs — not N
updates — and a fan-out interrupted anywhere (a crash, a timeout, a lost answer) resumes without
writing any ticket twice:

1. The first attempt fixes the *plan* — the linked tickets, in batches of 100 — and the change
   (the ``delta``, with the intent's marker tag) in the intent's progress, before any call. Later
   attempts follow that plan, so a ticket linked meanwhile is not half-included.
2. Each batch is marked ``sent`` before its ``update_many`` and gets its job id recorded from the
   answer. A batch with a job id is only ever polled again, never re-sent.
3. A batch ``sent`` without a job id (the answer was lost) may have been queued: once
   ``bulk_settle_seconds`` have passed since it was sent (a queued job may not have run yet), its
   tickets are read with ``show_many`` (one call) and only those without the marker tag are sent
   again. A ticket that no longer exists is left out.
4. Per-ticket failures in a job's results (a closed ticket) are reported in the result, not
   retried: the others are done.

A ``reply`` (closing the loop with each customer) is rendered per ticket just before its batch
is sent, with that ticket and its requester (one ``show_many`` of the tickets and one of their
requesters per batch): sent as a public comment, or proposed to an agent in an internal note.

The marker tag also makes the change Switchboard's own when Zendesk's webhooks come back: the
processor subtracts the delta (``sync.processor``), and a note by the API user is never a new
comment, so no rule runs on the echo.
"""

from __future__ import annotations

__all__ = ["BATCH", "FANOUT", "zendesk_update_linked"]

import time
from collections.abc import Mapping
from typing import Any

from connectors.errors import NotFoundError, RetriableError
from connectors.models import BulkUpdate, JobStatus
from rules.context import REQUESTER_KEYS, blank_person
from rules.templating import TemplateRenderError, render
from sync.actions import ActionContext, ActionOutcome, marker_tag
from sync.links import linked_tickets

FANOUT = "zendesk.update_linked"
BATCH = 100
#: Seconds between two polls of a job.
POLL_INTERVAL = 1.0
#: The internal note that proposes a reply for an agent to send (``reply_mode: draft``).
DRAFT = "Proposed reply to the customer (review it, then send it as a public reply):\n\n{reply}"


def _delta(params: Mapping[str, Any], marker: str) -> dict[str, Any]:
    # Zendesk stores tags lower-cased: so must the recorded delta.
    return {"marker": marker,
            "add_tags": [*(t.lower() for t in params.get("add_tags") or ()), marker],
            "remove_tags": [t.lower() for t in params.get("remove_tags") or ()],
            "status": params.get("status") or None}


def _landed(ctx: ActionContext, batch: list[int], marker: str) -> set[int]:
    """The tickets of ``batch`` that need nothing more: the marker shows the update landed, or
    the ticket is gone."""
    present = {t.id: t for t in ctx.zendesk.bulk.show_many(batch)}
    return {t for t in batch if t not in present or marker in present[t].tags}


def _await(ctx: ActionContext, job_id: str) -> JobStatus:
    deadline = time.monotonic() + ctx.zendesk.settings.bulk_job_timeout_seconds
    while True:
        job: JobStatus = ctx.zendesk.bulk.job_status(job_id)
        if job.done:
            return job
        if time.monotonic() >= deadline:
            raise RetriableError(f"zendesk: update_many job {job_id} still {job.status}; "
                                 "a later attempt polls it again", vendor="zendesk")
        ctx.sleep(POLL_INTERVAL)


def _replies(ctx: ActionContext, batch: list[int],
             unrendered: dict[str, str]) -> dict[int, tuple[str, bool]]:
    """Each ticket's reply, rendered with its ``ticket`` and ``requester`` (two reads per
    batch: the tickets, then their requesters), as (comment, public). A draft is an internal
    note proposing the reply. A ticket that no longer exists is left out; one whose reply
    cannot render is left out and named in ``unrendered`` (the others still get theirs)."""
    tickets = ctx.zendesk.bulk.show_many(batch)
    requester_ids = sorted({t.requester_id for t in tickets if t.requester_id})
    people = {u.id: u.to_dict() for u in ctx.zendesk.bulk.users_show_many(requester_ids)} \
        if requester_ids else {}
    send = ctx.params.get("reply_mode") == "send"
    out: dict[int, tuple[str, bool]] = {}
    for ticket in tickets:
        namespace = {**dict(ctx.item.context), "ticket": ticket.to_dict(),
                     "requester": people.get(ticket.requester_id or -1)
                     or blank_person(REQUESTER_KEYS)}
        try:
            text = render(str(ctx.params["reply"]), namespace)
        except TemplateRenderError as exc:  # for this ticket's data it never will
            unrendered[str(ticket.id)] = f"reply could not be rendered: {exc}"
            continue
        out[ticket.id] = (text, True) if send else (DRAFT.format(reply=text), False)
    return out


def system_key(system: str) -> str:
    """The result key naming what the tickets are linked to."""
    return "feature" if system == "productboard" else "issue"


def zendesk_update_linked(ctx: ActionContext) -> ActionOutcome:
    params = ctx.params
    # The tickets linked to a Jira issue, or those whose feedback note is linked to a
    # Productboard feature (``sync.productboard_actions`` records that link).
    system, issue = (("productboard", str(params["feature"]).strip())
                     if params.get("feature") is not None
                     else ("jira", str(params.get("issue") or "").strip()))
    marker = marker_tag(ctx.item.idem_key)
    if "plan" not in ctx.progress:
        with ctx.store.read() as conn:
            tickets = linked_tickets(conn, system, issue)
        ctx.save_progress(plan=[tickets[i:i + BATCH] for i in range(0, len(tickets), BATCH)],
                          delta=_delta(params, marker), batches={})
    plan: list[list[int]] = ctx.progress["plan"]
    delta: Mapping[str, Any] = ctx.progress["delta"]
    batches: dict[str, dict[str, Any]] = dict(ctx.progress.get("batches") or {})
    for index, batch in enumerate(plan):
        state = dict(batches.get(str(index)) or {})
        if state.get("done"):
            continue
        if state.get("job") is None:
            todo = list(batch)
            if state.get("sent"):
                waited = time.time() - float(state.get("sent_at", 0))
                settle = ctx.zendesk.settings.bulk_settle_seconds
                if waited < settle:
                    raise RetriableError(
                        f"zendesk: update_many for {issue} (batch {index + 1}/{len(plan)}) may "
                        f"be queued; its tickets are checked {settle:g} s after it was sent",
                        vendor="zendesk", retry_after=settle - waited)
                landed = _landed(ctx, batch, marker)
                todo = [t for t in batch if t not in landed]
            if not todo:
                batches[str(index)] = {"done": True, "failed": {}}
                ctx.save_progress(batches=batches)
                continue
            unrendered: dict[str, str] = {}
            comments = _replies(ctx, todo, unrendered) if params.get("reply") else {
                t: (params.get("note") or None, bool(params.get("public"))) for t in todo}
            todo = [t for t in todo if t in comments]
            if not todo:  # the tickets are gone, or no reply could be written for them
                batches[str(index)] = {"done": True, "failed": unrendered}
                ctx.save_progress(batches=batches)
                continue
            batches[str(index)] = state = {"sent": True, "sent_at": time.time(),
                                           "count": len(todo), "unrendered": unrendered}
            ctx.save_progress(batches=batches)
            job = ctx.zendesk.bulk.update_many([BulkUpdate(
                ticket_id, note=comments[ticket_id][0], public=comments[ticket_id][1],
                add_tags=tuple(delta["add_tags"]), remove_tags=tuple(delta["remove_tags"]),
                status=delta["status"]) for ticket_id in todo])
            state["job"] = job.id
            state["sent_for"] = todo
            ctx.save_progress(batches=batches)
        try:
            done = _await(ctx, str(state["job"]))
        except NotFoundError:
            done = JobStatus(str(state["job"]), "expired")  # Zendesk forgot the job
        reported = {r.ticket_id for r in done.results}
        if done.status != "completed" or not set(state.get("sent_for") or ()) <= reported:
            # A failed or killed job, or one that does not account for its tickets: which of
            # them it updated is read from the tickets (their marker) before sending again.
            batches[str(index)] = {"sent": True, "sent_at": float(state.get("sent_at", 0)),
                                   "count": state.get("count")}
            ctx.save_progress(batches=batches)
            raise RetriableError(f"zendesk: update_many job {state['job']} for {issue} ended "
                                 f"{done.status}; its tickets are checked and the ones it did "
                                 "not update are sent again", vendor="zendesk")
        failed = {str(r.ticket_id): f"{r.error or r.status}: {r.details or ''}".strip(": ")
                  for r in done.results if not r.success}
        batches[str(index)] = {**state, "done": True,
                               "failed": {**(state.get("unrendered") or {}), **failed}}
        ctx.save_progress(batches=batches)
    failed = {k: v for b in batches.values() for k, v in (b.get("failed") or {}).items()}
    total = sum(len(b) for b in plan)
    return ActionOutcome({system_key(system): issue, "tickets": total, "marker": marker,
                          "batches": len(plan),
                          "jobs": [b["job"] for b in batches.values() if b.get("job")],
                          "failed": failed})
