"""Jira webhook events about issues tickets are linked to, processed against the rules.

A stored Jira event (``payload.style == "jira"``, written by ``POST /webhooks/jira``) becomes:

- ``jira.issue.updated`` when the issue's status, resolution, priority or fix versions changed,
  ``jira.issue.deleted`` when it was deleted — evaluated against the rules listening to it, with
  ``issue.*`` (and ``links.jira`` naming the issue) but no single ticket: their actions reach the
  linked tickets in bulk (``zendesk.update_linked``). Decisions, intents and the inbox outcome
  are committed in ONE transaction, as for ticket events;
- ``jira.comment.added`` for a new comment on such an issue, unless Switchboard wrote it (its
  author is the account Switchboard acts as: no ping-pong);
- nothing for an update Switchboard made itself (its ``user`` is the account Switchboard acts
  as: a reopened regression, a raised priority) — its state is recorded, so that the poll does
  not report it either (``sync.jira_own``);
- nothing, with the reason as the outcome, for an issue no ticket is linked to, an update that
  changed none of those fields, an event not newer than the state already processed (a webhook
  and the reconciliation poll, ``sync.jira_poller``, may report the same change), and an edited
  comment.

The state processed is recorded with the decision, in the same transaction.

Events of one issue are processed in order (the inbox entity is the issue).
"""

from __future__ import annotations

__all__ = ["ISSUE_EVENTS", "process_jira"]

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connectors.jira_webhooks import JiraEvent
from rules import EvalContext
from sync import inbox as inbox_mod
from sync.jira_own import take_own
from sync.jira_poller import event_state, put_issue, stored_issue
from sync.links import linked_tickets
from sync.planning import decide_in, matched_summary

if TYPE_CHECKING:
    from sync.processor import EventProcessor

log = logging.getLogger("switchboard.processor")

#: Jira webhook event -> the rule event type it becomes.
ISSUE_EVENTS = {"jira:issue_updated": "jira.issue.updated",
                "jira:issue_deleted": "jira.issue.deleted"}
DELETED = "jira.issue.deleted"
COMMENT_CREATED = "comment_created"
COMMENT_ADDED = "jira.comment.added"


def issue_fields(event: JiraEvent, tickets: int, url: str | None) -> dict[str, Any]:
    """What rules read as ``issue.*``."""
    status = next((c for c in event.changes if c.field == "status"), None)
    versions = event.fix_versions or ()
    released = [v.released for v in versions if v.released is not None]
    return {"key": event.issue_key, "id": event.issue_id, "url": url,
            "status": event.status, "previous_status": status.from_string if status else None,
            "resolution": event.resolution, "priority": event.priority,
            "fix_versions": [v.name for v in versions],
            "released": any(released) if released else None,
            "changed": list(dict.fromkeys(c.field for c in event.changes)),
            "agent": event.user_name, "tickets": tickets}


def _url(processor: EventProcessor, key: str) -> str | None:
    return f"{processor.jira_url.rstrip('/')}/browse/{key}" if processor.jira_url else None


def _decide(processor: EventProcessor, item: inbox_mod.InboxItem, ctx: EvalContext,
            event: JiraEvent, tickets: int, state: dict[str, Any] | None,
            at: datetime | None) -> str:
    """Decide and plan in one transaction (recording the issue's state, when the event says
    it), and release the event with its summary."""
    with processor.store.write() as conn:
        planned, matched = decide_in(conn, processor.rules, ctx, ctx.namespace(), item.id,
                                     item.change_key or f"inbox:{item.id}", None)
        if state is not None and at is not None:
            put_issue(conn, event.issue_key, event.issue_id, state, at,
                      gone=ctx.event_type == DELETED)
        summary = (f"{ctx.event_type} {event.issue_key} ({tickets} linked ticket(s)); "
                   f"{matched_summary(matched, planned)}")
        inbox_mod.release(conn, item.id, "done", summary, owner=item.owner)
    log.info("event %s: %s", item.id, summary)
    return summary


def _by_switchboard(processor: EventProcessor, event: JiraEvent) -> bool:
    """Whether the account that made an issue update is the one Switchboard acts as."""
    if not event.user_account_id or processor.jira is None:
        return False
    return bool(event.user_account_id == processor.jira.own_account_id())


def _comment(processor: EventProcessor, item: inbox_mod.InboxItem, event: JiraEvent,
             what: str, tickets: int) -> str:
    """``jira.comment.added``, unless Switchboard wrote the comment itself (no ping-pong)."""
    comment = event.comment
    assert comment is not None
    own = processor.jira.own_account_id() if processor.jira is not None else None
    if own is not None and comment.author_account_id == own:
        return processor._finish(item, "done", f"{what}: Switchboard's own comment; no rule "
                                 "runs")
    visibility = comment.visibility_value if comment.visibility_type else None
    ctx = EvalContext(COMMENT_ADDED, "jira", {}, {}, {"jira": (event.issue_key,)},
                      now=item.received_at,
                      issue=issue_fields(event, tickets, _url(processor, event.issue_key)),
                      jira_comment={"id": comment.id, "body": comment.body,
                                    "author": comment.author_name, "visibility": visibility,
                                    "public": comment.jsd_public})
    return _decide(processor, item, ctx, event, tickets, None, None)


def process_jira(processor: EventProcessor, item: inbox_mod.InboxItem) -> str:
    """Handle one stored Jira event end to end; returns its outcome."""
    event = JiraEvent.from_payload(item.payload["event"])
    what = f"jira {event.event_type} {event.issue_key}"
    event_type = ISSUE_EVENTS.get(event.event_type)
    if event_type is None and event.event_type != COMMENT_CREATED:
        return processor._finish(item, "done", f"{what}: an edited comment is not synced again")
    with processor.store.read() as conn:
        tickets = linked_tickets(conn, "jira", event.issue_key)
        known = stored_issue(conn, event.issue_key)
    if not tickets:
        return processor._finish(item, "done", f"{what}: no ticket is linked to it; nothing "
                                 "to do")
    if event_type is None:
        return _comment(processor, item, event, what, len(tickets))
    state = event_state(event)
    at = event.timestamp or item.received_at
    if known is not None and (known.gone or (event_type != DELETED and (
            known.updated >= at or known.state == state))):
        # A webhook and the reconciliation poll may both report one change (the webhook's
        # timestamp a little after the issue's `updated` the poll saw): once is enough.
        return processor._finish(item, "done", f"{what}: no newer state than already "
                                 "processed")
    if event_type == "jira.issue.updated" and event.changes and _by_switchboard(processor, event):
        changed = ", ".join(dict.fromkeys(c.field for c in event.changes))
        with processor.store.write() as conn:
            take_own(conn, event.issue_key, event.changes, all_own=True)
            put_issue(conn, event.issue_key, event.issue_id, state, at)
            inbox_mod.release(conn, item.id, "done", f"{what}: Switchboard's own change "
                              f"({changed}); no rule runs", owner=item.owner)
        return f"{what}: Switchboard's own change ({changed})"
    if event_type == "jira.issue.updated" and not event.changes:
        with processor.store.write() as conn:
            put_issue(conn, event.issue_key, event.issue_id, state, at)
            inbox_mod.release(conn, item.id, "done", f"{what}: none of status, resolution, "
                              "priority, fix versions changed; no rule runs", owner=item.owner)
        return f"{what}: none of status, resolution, priority, fix versions changed"
    ctx = EvalContext(event_type, "jira", {}, {}, {"jira": (event.issue_key,)},
                      now=item.received_at,
                      issue=issue_fields(event, len(tickets), _url(processor, event.issue_key)))
    return _decide(processor, item, ctx, event, len(tickets), state, at)
