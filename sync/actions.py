"""What each action intent does against the vendors, written to be safe to run more than once.

The dispatcher calls a handler with the intent's rendered parameters; a handler either returns an
:class:`ActionOutcome` (its result, plus a store update committed in the same transaction that
marks the intent done) or raises from the ``connectors.errors`` tree. A handler may be re-run after
a crash or an ambiguous failure at any point, so each step checks what already happened:

``jira.create_or_link_bug``
    1. an issue already recorded in the intent's progress, or the bug of its dedupe key if Jira
       says it is still open (one read), is reused — with ``when_done: reopen`` a Done one is
       reopened first (``sync.reopen``); 2. if a create may already have been sent
       (``create_sent`` in the progress), search for the intent's label, and search again after
       ``search_lag_seconds`` before concluding that nothing was created (Jira's search lags
       writes); 3. otherwise create the issue with that label; 4. upsert the ticket's remote
       link (a stable ``globalId``, which Jira upserts);
       5. commit the ticket⇄issue link with the intent.
``zendesk.update``
    The note, the tags (with a marker tag naming the intent) and the custom fields travel in ONE
    safe update (``updated_stamp``); the marker's presence on a re-read proves an earlier attempt
    landed. A 409 means an agent changed the ticket: re-read and re-apply, never overwrite. What
    the write changes is recorded before it is sent, so that its echo is recognised as such.
"""

from __future__ import annotations

__all__ = [
    "HANDLERS",
    "MARKER_PREFIX",
    "VENDOR_OF",
    "ActionContext",
    "ActionOutcome",
    "TicketWrite",
    "bug_label",
    "marker_tag",
    "write_ticket",
]

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from connectors.errors import ConfigurationError, ConflictError, NotFoundError, RetriableError
from connectors.models import BugDraft, IssueRef, RemoteLink, Ticket, TicketUpdate, format_time
from sync.links import BugRecord, add_link, find_bug, record_bug
from sync.outbox import OutboxItem, set_progress
from sync.reopen import reopen
from sync.state import get_snapshot, put_snapshot, record_write
from sync.store import Store

log = logging.getLogger("switchboard.actions")
MAX_CONFLICT_RETRIES = 3


@dataclass
class ActionContext:
    """Everything a handler may use: the claimed intent, its rendered params, the connectors."""

    store: Store
    item: OutboxItem
    params: Mapping[str, Any]
    zendesk: Any
    jira: Any
    jira_search_lag: float = 0.0
    sleep: Callable[[float], None] = time.sleep
    progress: dict[str, Any] = field(default_factory=dict)
    pagerduty: Any = None
    slack: Any = None
    productboard: Any = None

    def save_progress(self, **values: Any) -> None:
        """Durably note a step, before the side effect it guards."""
        self.progress.update(values)
        with self.store.write() as conn:
            set_progress(conn, self.item.id, self.progress, owner=self.item.owner)


@dataclass(frozen=True)
class ActionOutcome:
    result: Mapping[str, Any]
    on_commit: Callable[[sa.Connection], None] | None = None


def bug_label(idem_key: str) -> str:
    """The Jira label that identifies the issue one intent creates (no spaces, stable)."""
    return f"switchboard-{idem_key[:20]}"


MARKER_PREFIX = "switchboard_"


def marker_tag(idem_key: str) -> str:
    """The Zendesk tag that proves one intent's update landed."""
    return f"{MARKER_PREFIX}{idem_key[:12]}"


def _issue_dict(issue: IssueRef) -> dict[str, Any]:
    return {"id": issue.id, "key": issue.key, "url": issue.url, "status": issue.status}


def _find_created(ctx: ActionContext, label: str) -> IssueRef | None:
    issue: IssueRef | None = ctx.jira.find_issue_by_label(label)
    if issue is None and ctx.jira_search_lag > 0:
        # Search lags writes: an issue created a moment ago may not be found yet.
        ctx.sleep(ctx.jira_search_lag)
        issue = ctx.jira.find_issue_by_label(label)
    return issue


def _open_bug(ctx: ActionContext, project: str,
              dedupe: str) -> tuple[IssueRef | None, IssueRef | None]:
    """The bug recorded for this dedupe key if Jira still has it open, else the Done one (a
    new ticket with that key is a regression), if any."""
    with ctx.store.read() as conn:
        bug = find_bug(conn, project, dedupe)
    if bug is None:
        return None, None
    # One read: engineers may have closed the bug since; a closed bug is never joined.
    try:
        current: IssueRef = ctx.jira.get_issue(bug.jira_key)
    except NotFoundError:
        log.warning("bug %s for %s/%s is gone (deleted, or no longer visible); a new bug will "
                    "be created", bug.jira_key, project, dedupe)
        return None, None
    return (None, current) if current.is_done else (current, None)


def _when_done(ctx: ActionContext, done: IssueRef) -> IssueRef | None:
    """What ``when_done`` makes of the dedupe key's Done bug: the bug reopened (``reopen``),
    or nothing — a new bug follows, a regression one when so configured (noted in the
    progress)."""
    params = ctx.params
    mode = params.get("when_done")
    if mode == "reopen":
        ctx.save_progress(reopen_of=done.key)
        try:
            return reopen(ctx, done, str(params.get("reopen_status") or ""))
        except ConfigurationError as exc:
            mode = params.get("reopen_fallback") or "fail"
            if mode == "fail":
                raise
            log.warning("%s; falling back to a %s bug (reopen_fallback)", exc, mode)
            ctx.save_progress(reopen_failed=str(exc))
    if mode == "regression":
        ctx.save_progress(regression_of=done.key)
    return None


def create_or_link_bug(ctx: ActionContext) -> ActionOutcome:
    params, item = ctx.params, ctx.item
    ticket = item.context["ticket"]
    project = str(params["project"])
    dedupe = str(params.get("dedupe_by") or "").strip()
    label = bug_label(item.idem_key)
    issue: IssueRef | None = None
    created = bool(ctx.progress.get("created"))
    if ctx.progress.get("issue"):
        issue = IssueRef(**ctx.progress["issue"])
    if issue is None and dedupe:
        issue, done = _open_bug(ctx, project, dedupe)
        if done is not None:
            issue = _when_done(ctx, done)
        if issue is not None and ctx.progress.get("reopen_of") == issue.key:
            # Reopened now — or by an earlier attempt, found open again after a crash: joined,
            # never transitioned twice.
            ctx.save_progress(issue=_issue_dict(issue), created=False, reopened=True)
    regression_of = ctx.progress.get("regression_of")
    if issue is None:
        if ctx.progress.get("create_sent"):
            issue = _find_created(ctx, label)
            created = issue is not None
        if issue is None:
            ctx.save_progress(create_sent=True)
            labels = tuple(dict.fromkeys([*params.get("labels", ()),
                                          *(["regression"] if regression_of else []), label]))
            issue = ctx.jira.create_issue(BugDraft(
                project=project, summary=str(params["summary"])[:255],
                description=str(params.get("description") or ""),
                issue_type=str(params.get("issue_type") or "Bug"),
                labels=labels, priority=params.get("priority") or None))
            created = True
        # The issue and the dedupe record are committed together, before the remote link: a
        # crash from here on resumes with this issue instead of looking for it again.
        ctx.progress.update(issue=_issue_dict(issue), created=created)
        with ctx.store.write() as conn:
            if dedupe:
                record_bug(conn, BugRecord(project, dedupe, issue.key, issue.id, issue.url,
                                           issue.status))
            set_progress(conn, item.id, ctx.progress, owner=item.owner)

    if regression_of and created and not ctx.progress.get("regression_linked"):
        # The new bug "relates to" the Done one it regresses (linking twice keeps one link).
        ctx.jira.link_issues(issue.key, str(regression_of))
        ctx.save_progress(regression_linked=True)
    ticket_url = str(ticket.get("url") or "")
    subject = str(ticket.get("subject") or "")
    ctx.jira.upsert_remote_link(issue.key, RemoteLink(
        global_id=f"switchboard:{ticket_url}"[:255],
        url=ticket_url,
        title=f"Zendesk #{ticket['id']}: {subject}"[:255],
        summary=f"priority {ticket.get('priority') or 'none'}, status {ticket.get('status')}",
    ))
    linked = issue

    def commit(conn: sa.Connection) -> None:
        add_link(conn, int(ticket["id"]), "jira", linked.key, linked.url)

    result = {**_issue_dict(issue), "created": created, "dedupe_key": dedupe,
              "reopened": bool(ctx.progress.get("reopened"))}
    if regression_of:
        result["regression_of"] = regression_of
    if ctx.progress.get("reopen_failed"):
        result["reopen_failed"] = ctx.progress["reopen_failed"]
    return ActionOutcome(result, commit)


def _apply_tags(current: tuple[str, ...], add: list[str], remove: list[str]) -> tuple[str, ...]:
    tags = [t for t in current if t not in remove]
    tags += [t for t in add if t not in tags]
    return tuple(tags)


@dataclass(frozen=True)
class TicketWrite:
    """How one safe ticket write ended (:func:`write_ticket`)."""

    ticket_id: int
    marker: str
    landed: Ticket | None  # None: an earlier attempt landed, proved by the marker on a re-read
    conflicts: int
    on_seen_state: bool

    def result(self) -> dict[str, Any]:
        if self.landed is None:
            return {"ticket_id": self.ticket_id, "marker": self.marker,
                    "confirmed_by": "re-read", **({"conflicts": self.conflicts}
                                                  if self.conflicts else {})}
        return {"ticket_id": self.ticket_id, "updated_at": format_time(self.landed.updated_at),
                "marker": self.marker, "conflicts": self.conflicts}

    def commit(self, conn: sa.Connection, outbox_id: int) -> None:
        """Record the write as Switchboard's own (its echo is then recognised)."""
        if self.landed is None:
            return
        record_write(conn, "zendesk", self.ticket_id, self.landed, outbox_id)
        if self.on_seen_state:
            put_snapshot(conn, self.landed)


def write_ticket(ctx: ActionContext, ticket_id: int, delta: Mapping[str, Any], *,
                 note: str | None = None, public: bool = False, step: str = "") -> TicketWrite:
    """One safe update of a ticket: ``delta`` (``marker``, ``add_tags``, ``remove_tags``,
    ``fields``, ``status`` and ``ticket`` — plain ticket keys such as ``type``) and the note.

    ``step`` names the write within its intent (an intent writing several tickets gives each its
    own): the delta is saved in the intent's progress as ``delta<step>`` before it is sent.
    """
    marker = str(delta["marker"])
    sent = f"sent{step}"
    with ctx.store.read() as conn:
        snapshot = get_snapshot(conn, ticket_id)
    current: Ticket | None = snapshot
    if ctx.progress.get(sent) or current is None:
        current = ctx.zendesk.get_ticket(ticket_id)
        if marker in current.tags:
            # An earlier attempt landed. Its own stamp is unknown (this read may include later
            # edits by agents), so nothing is recorded as Switchboard's: the marker speaks for it.
            return TicketWrite(ticket_id, marker, None, 0, False)
    plain = dict(delta.get("ticket") or {})
    conflicts = 0
    while True:
        assert current is not None
        update = TicketUpdate(
            ticket_id=ticket_id, updated_stamp=current.updated_at, note=note or None,
            public=public, tags=_apply_tags(current.tags, list(delta["add_tags"]),
                                            list(delta["remove_tags"])),
            custom_fields=delta.get("fields") or {}, status=delta.get("status") or None,
            type=plain.get("type"), problem_id=plain.get("problem_id"))
        if not ctx.progress.get(sent):
            ctx.save_progress(**{sent: True, f"delta{step}": dict(delta)})
        try:
            landed: Ticket = ctx.zendesk.update_ticket(update)
            break
        except ConflictError as exc:
            conflicts += 1
            current = ctx.zendesk.get_ticket(ticket_id)
            if marker in current.tags:
                return TicketWrite(ticket_id, marker, None, conflicts, False)
            if conflicts >= MAX_CONFLICT_RETRIES:
                raise RetriableError(f"zendesk: ticket {ticket_id} kept changing under the "
                                     f"update ({conflicts} conflicts)", vendor="zendesk") from exc
    # Written straight on top of the state the rules last saw: that state plus this write is
    # the new snapshot. After a conflict, the agent's change in between has not reached the
    # rules yet, so the snapshot stays and that change arrives through its own event.
    on_seen_state = conflicts == 0 and snapshot is not None \
        and snapshot.updated_at == update.updated_stamp
    return TicketWrite(ticket_id, marker, landed, conflicts, on_seen_state)


def zendesk_update(ctx: ActionContext) -> ActionOutcome:
    params, item = ctx.params, ctx.item
    ticket_id = int(item.ticket_id or item.context["ticket"]["id"])
    marker = marker_tag(item.idem_key)
    # What this write changes, recorded before it is sent: the processor subtracts it from the
    # ticket's next diff once the marker shows up, even before this intent is marked done.
    # Zendesk stores tags lower-cased: so must the tag lists compared and recorded here.
    delta: dict[str, Any] = {"marker": marker,
             "add_tags": [*(t.lower() for t in params.get("add_tags", ())), marker],
             "remove_tags": [t.lower() for t in params.get("remove_tags", ())],
             "fields": dict(params.get("fields") or {}), "status": params.get("status") or None}
    write = write_ticket(ctx, ticket_id, delta, note=params.get("note") or None,
                         public=bool(params.get("public", False)))
    return ActionOutcome(write.result(), lambda conn: write.commit(conn, item.id))


HANDLERS: dict[str, Callable[[ActionContext], ActionOutcome]] = {
    "jira.create_or_link_bug": create_or_link_bug,
    "zendesk.update": zendesk_update,
}

#: The vendor whose rate limit paces each action: the hub runs a worker pool per vendor.
VENDOR_OF: dict[str, str] = {
    "jira.create_or_link_bug": "jira",
    "zendesk.update": "zendesk",
}
