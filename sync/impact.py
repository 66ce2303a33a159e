"""``jira.impact``: the customer impact of a bug, on the bug, kept current in place.

One comment per Jira issue, written by Switchboard and then edited — never a new comment per
ticket — that rolls up what support knows of the tickets linked to it: how many (open / solved),
their priorities, the organizations and their plan tiers, the oldest ticket still waiting and the
newest report. It is built from Switchboard's store (the tickets' last states) and organization
reads (cached); an edit is sent only when the text changed.

The comment carries a marker (``switchboard-impact``): after an ambiguous failure of the create,
the issue's comments are searched for it before creating again. Its id and the digest of its text
are kept in the store (``cursors``, ``impact:<key>``), with the thresholds of ``raise_priority``
already crossed (``sync.impact_priority``: the bug's priority raised with its impact).
"""

from __future__ import annotations

__all__ = ["COMMENT", "IMPACT", "MARKER", "impact_text", "jira_comment", "jira_impact"]

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from connectors.errors import NotFoundError, RetriableError
from connectors.models import Ticket
from sync.actions import ActionContext, ActionOutcome
from sync.impact_priority import raise_priority
from sync.links import linked_tickets
from sync.state import get_cursor, get_snapshot, set_cursor

log = logging.getLogger("switchboard.actions")

IMPACT = "jira.impact"
MARKER = "switchboard-impact"
#: Organizations named (each a cached read), and the characters of the newest report shown.
MAX_ORGANIZATIONS = 10
MAX_QUOTE = 300
RESOLVED = ("solved", "closed")
#: How long one intent's claim to create an issue's roll-up holds.
CLAIM_SECONDS = 600.0
PRIORITIES = ("urgent", "high", "normal", "low")


def _organizations(ctx: ActionContext, tickets: Sequence[Ticket], tier_field: str) -> list[str]:
    counts = Counter(t.organization_id for t in tickets if t.organization_id is not None)
    some_ticket = {t.organization_id: t.id for t in tickets}
    names = []
    for org_id, count in counts.most_common(MAX_ORGANIZATIONS):
        label = f"organization {org_id}"
        try:  # through the people cache: an organization is read once, then reused
            org = ctx.zendesk.get_people(some_ticket[org_id], None, org_id).organization
            if org is not None:
                label = org.name or label
                tier = (org.fields or {}).get(tier_field)
                if tier:
                    label += f" ({tier})"
        except Exception as exc:  # a name is nice to have; the id says enough
            log.info("impact: organization %s: no name (%s)", org_id, exc)
        names.append(label + (f" ×{count}" if count > 1 else ""))
    more = len(counts) - len(names)
    return names + ([f"+{more} more"] if more > 0 else [])


def _link(ctx: ActionContext, ticket: Ticket) -> str:
    return f"[#{ticket.id}|{ticket.url or ctx.zendesk.ticket_url(ticket.id)}]"


def impact_text(ctx: ActionContext, issue: str, tickets: Sequence[Ticket],
                tier_field: str) -> str:
    """The roll-up, in Jira wiki markup (customer text inside ``{noformat}``)."""
    open_ = [t for t in tickets if (t.status or "") not in RESOLVED]
    priorities = Counter(t.priority or "none" for t in tickets)
    order = [*PRIORITIES, "none"]
    lines = [
        "h3. Customer impact",
        f"_Kept current by Switchboard ({MARKER}): edited in place as tickets are linked to "
        f"{issue} and change._",
        "",
        f"* *Linked tickets:* {len(tickets)} — {len(open_)} open, "
        f"{len(tickets) - len(open_)} solved",
        "* *Priorities:* " + ", ".join(f"{p} {priorities[p]}" for p in order if priorities[p]),
    ]
    organizations = _organizations(ctx, tickets, tier_field)
    if organizations:
        lines.append("* *Organizations:* " + ", ".join(organizations))
    waiting = min(open_, key=lambda t: (t.created_at or t.updated_at, t.id), default=None)
    if waiting is not None:
        since = (waiting.created_at or waiting.updated_at).strftime("%Y-%m-%d")
        lines.append(f"* *Oldest waiting:* {_link(ctx, waiting)} — open since {since}")
    newest = max(tickets, key=lambda t: (t.created_at or t.updated_at, t.id), default=None)
    if newest is not None and newest.description.strip():
        quote = newest.description.strip().replace("{noformat}", "{ noformat}")
        if len(quote) > MAX_QUOTE:
            quote = quote[:MAX_QUOTE - 1] + "…"
        lines += [f"* *Newest report:* {_link(ctx, newest)}", "{noformat}", quote, "{noformat}"]
    return "\n".join(lines)


def _tickets(conn: sa.Connection, issue: str) -> list[Ticket]:
    found = [get_snapshot(conn, t) for t in linked_tickets(conn, "jira", issue)]
    return [t for t in found if t is not None]


def _claim_creation(ctx: ActionContext, name: str, issue: str) -> str | None:
    """Only one intent creates an issue's roll-up: two that run at once (a new link and a
    linked ticket's change, ordered by different keys) would otherwise add two comments. The
    other retries shortly and then edits the one created. Returns the roll-up's id when one
    was created meanwhile."""
    now = time.time()
    with ctx.store.write() as conn:
        known = get_cursor(conn, name) or {}
        if known.get("comment_id") is not None:
            return str(known["comment_id"])
        owner = known.get("creating")
        if now - float(known.get("creating_at") or 0) > CLAIM_SECONDS:
            owner = None  # a claim its intent never finished (it died): taken over
        if known.get("comment_id") is None and owner not in (None, ctx.item.idem_key):
            raise RetriableError(f"jira: the impact comment of {issue} is being created by "
                                 "another intent", vendor="jira", retry_after=2.0)
        if owner is None and known.get("comment_id") is None:
            set_cursor(conn, name, {**known, "creating": ctx.item.idem_key, "creating_at": now})
    return None


def jira_impact(ctx: ActionContext) -> ActionOutcome:
    issue = str(ctx.params["issue"]).strip()
    name = f"impact:{issue}"[:64]
    with ctx.store.read() as conn:
        tickets = _tickets(conn, issue)
        known = get_cursor(conn, name) or {}
    result: dict[str, Any] = {"issue": issue, "tickets": len(tickets)}
    priority = raise_priority(ctx, issue, name, tickets, ctx.params)
    if priority is not None:
        result["priority"] = priority
    text = impact_text(ctx, issue, tickets, str(ctx.params.get("tier_field") or "plan_tier"))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    comment_id = known.get("comment_id")
    if comment_id is not None and known.get("digest") == digest:
        return ActionOutcome({**result, "comment": comment_id, "changed": False})
    created = False
    if comment_id is None:
        comment_id = _claim_creation(ctx, name, issue)  # another intent may have created it
    if comment_id is not None:
        try:
            ctx.jira.edit_comment(issue, comment_id, text)
        except NotFoundError:  # someone deleted it in Jira: the roll-up starts again
            comment_id = None
    if comment_id is None:
        # An earlier attempt, or a claim taken over, may have added it: look before adding.
        comment_id = ctx.jira.find_comment(issue, MARKER)
        if comment_id is not None:
            ctx.jira.edit_comment(issue, comment_id, text)
        else:
            ctx.save_progress(sent=True)
            comment_id = ctx.jira.add_comment(issue, text)
            created = True

    def commit(conn: sa.Connection) -> None:
        # The creation claim is done with; the priority crossings stay.
        kept = {k: v for k, v in (get_cursor(conn, name) or {}).items()
                if k not in ("creating", "creating_at")}
        set_cursor(conn, name, {**kept, "comment_id": comment_id, "digest": digest})

    return ActionOutcome({**result, "comment": comment_id, "changed": True, "created": created},
                         commit)


COMMENT = "jira.comment"


def jira_comment(ctx: ActionContext) -> ActionOutcome:
    """One comment on the issue, whatever happens: it carries the intent's marker, looked for
    before writing again after an ambiguous failure."""
    issue = str(ctx.params["issue"]).strip()
    marker = f"switchboard:{ctx.item.idem_key[:12]}"
    body = f"{str(ctx.params['body']).rstrip()}\n\n_— via Switchboard ({marker})_"
    comment_id = ctx.jira.find_comment(issue, marker) if ctx.progress.get("sent") else None
    if comment_id is None:
        ctx.save_progress(sent=True)
        comment_id = ctx.jira.add_comment(issue, body)
    return ActionOutcome({"issue": issue, "comment": comment_id, "marker": marker})
