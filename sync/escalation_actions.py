"""What the escalation actions do against PagerDuty and Slack, safe to run more than once.

Every intent of an escalation runs in order (its outbox ``order_key`` is the escalation), so two
tickets of one outage never race to open two threads.

``pagerduty.trigger``
    Pages once per escalation: while its incident is open, another trigger sends nothing (the
    ticket joins). The dedup key names the incident, so a trigger repeated after an ambiguous
    failure lands on the same alert — PagerDuty de-duplicates it; nothing to reconcile.
``pagerduty.acknowledge`` / ``pagerduty.resolve``
    Act on the escalation's incident; nothing to do (already in that state, or never paged) is
    not a call. The status Switchboard sets is recorded *before* it is sent, so the webhook that
    echoes it is recognised and fires no rule (invariant 5).
``slack.thread``
    Opens the thread (one root message) or updates its root in place — only when what it shows
    changed — and posts ``reply`` in the thread. Every message carries the intent's key in its
    metadata; after an ambiguous failure the channel (or thread) is searched for that key before
    posting again, so a post whose answer was lost is found rather than repeated.
``zendesk.problem``
    Opens the escalation's problem ticket once — its ``external_id`` is the escalation's dedup
    key, looked up before creating again after an ambiguous failure — then attaches every member
    not attached yet as an incident, each with its own safe update (marker tag, delta recorded
    before sending: see ``zendesk.update``). A ticket Zendesk refuses (closed, deleted) is
    reported in the result and the others are still attached.
"""

from __future__ import annotations

__all__ = ["ESCALATION_HANDLERS", "ESCALATION_VENDORS"]

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from connectors.errors import InvalidRequestError, SkippableError
from connectors.models import Alert, NewTicket, SlackMessage, SlackPosted, Ticket
from sync import escalations as esc_store
from sync.actions import ActionContext, ActionOutcome, marker_tag, write_ticket
from sync.escalation_view import root_digest, root_message
from sync.escalations import Escalation, Member
from sync.state import put_snapshot, record_write

log = logging.getLogger("switchboard.actions")

#: Organizations whose names are looked up (cached reads) for one root message, at most.
MAX_NAME_LOOKUPS = 10


def _key(ctx: ActionContext) -> str:
    return esc_store.escalation_key(ctx.item.rule_id, ctx.params.get("incident"),
                                    ctx.item.context)


def _ticket(ctx: ActionContext) -> Mapping[str, Any]:
    ticket = ctx.item.context.get("ticket")
    return ticket if isinstance(ticket, Mapping) else {}


def _ensure(ctx: ActionContext, key: str, title: str) -> Escalation:
    ticket_id = _ticket(ctx).get("id")
    with ctx.store.write() as conn:
        return esc_store.ensure(conn, key, rule_id=ctx.item.rule_id, title=title,
                                ticket_id=ticket_id if isinstance(ticket_id, int) else None)


def _existing(ctx: ActionContext, key: str) -> Escalation:
    with ctx.store.read() as conn:
        escalation = esc_store.get(conn, key)
    if escalation is None:
        raise SkippableError(f"no escalation {key!r}: nothing was paged or posted for it",
                             vendor="switchboard")
    return escalation


def _updated(key: str, **values: Any) -> Callable[[sa.Connection], None]:
    def commit(conn: sa.Connection) -> None:
        esc_store.update(conn, key, **values)
        escalation = esc_store.get(conn, key)
        if escalation is not None:
            esc_store.link_members(conn, escalation)
    return commit


# -- PagerDuty ------------------------------------------------------------------------------


def pagerduty_trigger(ctx: ActionContext) -> ActionOutcome:
    params = ctx.params
    key = _key(ctx)
    escalation = _ensure(ctx, key, str(params["summary"]))
    service = params.get("service") or ctx.pagerduty.settings.default_service
    if escalation.paged and not ctx.progress.get("sent"):
        # The incident is open: this ticket joins it, nobody is paged twice.
        return ActionOutcome({"dedup_key": escalation.dedup_key, "service": escalation.pd_service,
                              "escalation": key, "sent": False}, _updated(key))
    ticket = _ticket(ctx)
    with ctx.store.read() as conn:
        tickets = [m.ticket_id for m in esc_store.members(conn, key)]
    links: list[tuple[str, str]] = []
    if ticket.get("url"):
        links.append((str(ticket["url"]), f"Zendesk ticket #{ticket.get('id')}"))
    details: dict[str, Any] = dict(params.get("details") or {})
    details.setdefault("tickets", tickets[:50] or [t for t in [ticket.get("id")] if t])
    details.setdefault("ticket_count", len(tickets) or 1)
    details.setdefault("escalation", key)
    details.setdefault("rule", ctx.item.rule_id)
    alert = Alert(dedup_key=escalation.dedup_key, summary=str(params["summary"]),
                  source=ctx.pagerduty.settings.source, severity=str(params["severity"]),
                  component=params.get("component") or None, group=params.get("group") or None,
                  custom_details=details, links=tuple(links))
    with ctx.store.write() as conn:
        # Recorded before sending: a trigger PagerDuty applied but whose answer was lost is
        # repeated with the same dedup key, which PagerDuty folds into the same alert.
        esc_store.update(conn, key, pd_own_status="triggered", pd_service=service)
    ctx.save_progress(sent=True)
    dedup_key = ctx.pagerduty.trigger(service, alert)
    return ActionOutcome({"dedup_key": dedup_key, "service": service, "escalation": key,
                          "sent": True},
                         _updated(key, pd_status="triggered", status="open"))


def _pagerduty_move(ctx: ActionContext, target: str) -> ActionOutcome:
    key = _key(ctx)
    escalation = _existing(ctx, key)
    if escalation.pd_status is None or escalation.pd_service is None:
        raise SkippableError(f"escalation {key!r} has no PagerDuty incident", vendor="pagerduty")
    done = ("acknowledged", "resolved") if target == "acknowledged" else ("resolved",)
    if escalation.pd_status in done and not ctx.progress.get("sent"):
        return ActionOutcome({"dedup_key": escalation.dedup_key, "escalation": key,
                              "sent": False, "status": escalation.pd_status})
    with ctx.store.write() as conn:
        esc_store.update(conn, key, pd_own_status=target)
    ctx.save_progress(sent=True)
    if target == "resolved":
        ctx.pagerduty.resolve(escalation.pd_service, escalation.dedup_key)
    else:
        ctx.pagerduty.acknowledge(escalation.pd_service, escalation.dedup_key)
    values: dict[str, Any] = {"pd_status": target}
    if target == "resolved":
        values["status"] = "resolved"
    return ActionOutcome({"dedup_key": escalation.dedup_key, "escalation": key, "sent": True,
                          "status": target}, _updated(key, **values))


def pagerduty_acknowledge(ctx: ActionContext) -> ActionOutcome:
    return _pagerduty_move(ctx, "acknowledged")


def pagerduty_resolve(ctx: ActionContext) -> ActionOutcome:
    return _pagerduty_move(ctx, "resolved")


# -- Slack ----------------------------------------------------------------------------------


def _named_members(ctx: ActionContext, key: str) -> list[Member]:
    """The members, with organization names looked up (cached reads) where they are missing."""
    with ctx.store.read() as conn:
        found = esc_store.members(conn, key)
    names: dict[int, str] = {}
    lookups = 0
    for member in found:
        org = member.organization_id
        if member.organization_name or org is None or org in names:
            continue
        if lookups >= MAX_NAME_LOOKUPS or ctx.zendesk is None:
            break
        lookups += 1
        try:
            people = ctx.zendesk.get_people(member.ticket_id, None, org)
        except Exception as exc:  # a name is nice to have; the root shows the id instead
            log.info("organization %s of ticket %s: no name (%s)", org, member.ticket_id, exc)
            continue
        if people.organization is not None and people.organization.name:
            names[org] = people.organization.name
    if not names:
        return found
    named = [Member(m.ticket_id, m.organization_id,
                    m.organization_name or names.get(m.organization_id or -1)) for m in found]
    with ctx.store.write() as conn:
        esc_store.add_members(conn, key, [m for m in named if m.organization_name])
    return named


def _post_once(ctx: ActionContext, step: str, channel: str, message: SlackMessage,
               thread_ts: str | None = None) -> SlackPosted:
    """Post, unless an earlier attempt of this step may have landed and is found by its key."""
    key = f"{ctx.item.idem_key}:{step}"
    if ctx.progress.get(step):
        found: SlackPosted | None = ctx.slack.find_by_key(channel, key, thread_ts=thread_ts)
        if found is not None:
            return found
    ctx.save_progress(**{step: True})
    posted: SlackPosted = ctx.slack.post(channel, message, key=key, thread_ts=thread_ts)
    return posted


def slack_thread(ctx: ActionContext) -> ActionOutcome:
    params = ctx.params
    key = _key(ctx)
    escalation = _ensure(ctx, key, str(params["title"]))
    ticket_url = _ticket(ctx).get("url") if escalation.ticket_id == _ticket(ctx).get("id") \
        else None
    members = _named_members(ctx, key)
    problem_url = ctx.zendesk.ticket_url(escalation.zd_problem_id) \
        if escalation.zd_problem_id is not None and ctx.zendesk is not None else None

    def render(escalation: Escalation) -> SlackMessage:
        return root_message(escalation, members, str(ticket_url) if ticket_url else None,
                            problem_url)

    root = render(escalation)
    digest = root_digest(root)
    values: dict[str, Any] = {}
    updated = False
    if escalation.slack_ts is None or escalation.slack_channel is None:
        if not params.get("channel"):
            raise SkippableError(f"escalation {key!r} has no Slack thread yet and the action "
                                 "names no channel to open it in", vendor="slack")
        # The action that opens the thread names it; later ones keep that title.
        values["title"] = str(params["title"])[:1000]
        escalation = dataclasses.replace(escalation, title=values["title"])
        root = render(escalation)
        digest = root_digest(root)
        channel = ctx.slack.channel_id(str(params["channel"]))
        posted = _post_once(ctx, "root", channel, root)
        values.update(slack_channel=posted.channel, slack_ts=posted.ts,
                      slack_root_digest=digest)
        # Committed at once: a failure of the reply below must not open a second thread.
        with ctx.store.write() as conn:
            esc_store.update(conn, key, **values)
        channel, ts, opened = posted.channel, posted.ts, True
    else:
        channel, ts, opened = escalation.slack_channel, escalation.slack_ts, False
        if digest != escalation.slack_root_digest:
            ctx.slack.update(channel, ts, root, key=f"{ctx.item.idem_key}:root")
            values["slack_root_digest"] = digest
            updated = True
    reply_ts = None
    if params.get("reply"):
        reply = _post_once(ctx, "reply", channel, SlackMessage(text=str(params["reply"])),
                           thread_ts=ts)
        reply_ts = reply.ts
    return ActionOutcome({"channel": channel, "ts": ts, "escalation": key, "opened": opened,
                          "root_updated": updated, "reply_ts": reply_ts},
                         _updated(key, **values))


# -- Zendesk problem ticket -------------------------------------------------------------------


def _default_note(ctx: ActionContext, key: str, count: int) -> str:
    return (f"Opened by Switchboard (rule {ctx.item.rule_id}) for escalation {key}: "
            f"{count} ticket(s) so far. The matching tickets are attached to this problem as "
            "incidents; solving it solves them.")


def _problem(ctx: ActionContext, key: str, escalation: Escalation) -> tuple[Ticket, bool]:
    """The escalation's problem ticket, opened unless an earlier attempt's creation is found
    by its external id (a creation whose answer was lost)."""
    external_id = esc_store.dedup_key_for(key)
    if ctx.progress.get("create_sent"):
        found = ctx.zendesk.find_tickets_by_external_id(external_id)
        if found:
            return min(found, key=lambda t: t.id), False
    params = ctx.params
    with ctx.store.read() as conn:
        count = len(esc_store.members(conn, key))
    marker = marker_tag(ctx.item.idem_key)
    new = NewTicket(subject=str(params.get("subject") or escalation.title)[:250],
                    note=str(params.get("note") or _default_note(ctx, key, count)),
                    type="problem", priority=params.get("priority") or None,
                    tags=(*(t.lower() for t in params.get("tags") or ()), marker),
                    external_id=external_id)
    # Recorded before sending: the ticket.created echo may arrive before this intent is done;
    # the processor recognises it by the marker and runs no rule on it.
    ctx.save_progress(create_sent=True, delta={"marker": marker, "add_tags": [marker],
                                               "created": True})
    created: Ticket = ctx.zendesk.create_ticket(new)
    return created, True


def zendesk_problem(ctx: ActionContext) -> ActionOutcome:
    """Open the escalation's problem ticket once; attach every member not attached yet."""
    key = _key(ctx)
    escalation = _ensure(ctx, key, str(ctx.params.get("subject") or f"Escalation {key}"))
    problem_id, created = escalation.zd_problem_id, False
    if problem_id is None:
        problem, created = _problem(ctx, key, escalation)
        problem_id = problem.id
        with ctx.store.write() as conn:
            esc_store.update(conn, key, zd_problem_id=problem_id)
            # Its creation is Switchboard's own: the ticket.created echo runs no rule.
            record_write(conn, "zendesk", problem.id, problem, ctx.item.id)
            put_snapshot(conn, problem)
    with ctx.store.read() as conn:
        pending = esc_store.unattached(conn, key, problem_id)
    marker = marker_tag(ctx.item.idem_key)
    delta = {"marker": marker, "add_tags": [marker], "remove_tags": [], "fields": {},
             "status": None, "ticket": {"type": "incident", "problem_id": problem_id}}
    attached: list[int] = []
    refused: dict[str, str] = {}
    for ticket_id in pending:
        try:
            write = write_ticket(ctx, ticket_id, delta, step=f":{ticket_id}")
        except (SkippableError, InvalidRequestError) as exc:
            # A deleted or closed ticket cannot become an incident; the others still can.
            log.warning("escalation %s: ticket %s not attached to problem %s: %s", key,
                        ticket_id, problem_id, exc)
            refused[str(ticket_id)] = str(exc)
            write = None
        with ctx.store.write() as conn:
            if write is not None:
                write.commit(conn, ctx.item.id)
                attached.append(ticket_id)
            esc_store.set_problem(conn, key, [ticket_id], problem_id)
    return ActionOutcome({"id": problem_id, "url": ctx.zendesk.ticket_url(problem_id),
                          "escalation": key, "created": created, "attached": attached,
                          "not_attached": refused}, _updated(key))


ESCALATION_HANDLERS: dict[str, Callable[[ActionContext], ActionOutcome]] = {
    "pagerduty.trigger": pagerduty_trigger,
    "pagerduty.acknowledge": pagerduty_acknowledge,
    "pagerduty.resolve": pagerduty_resolve,
    "slack.thread": slack_thread,
    "zendesk.problem": zendesk_problem,
}

ESCALATION_VENDORS: dict[str, str] = {
    "pagerduty.trigger": "pagerduty",
    "pagerduty.acknowledge": "pagerduty",
    "pagerduty.resolve": "pagerduty",
    "slack.thread": "slack",
    "zendesk.problem": "zendesk",
}
