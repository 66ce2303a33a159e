"""``jira.impact`` with ``raise_priority``: the bug's Jira priority follows its customer impact
up — never down — once per threshold.

A threshold is crossed when the bug has at least ``tickets`` linked tickets, or when an
organization of a linked ticket has plan ``tier`` (``tier_field``; organizations are read through
the people cache, and only until one matches). When thresholds are crossed for the first time, the
bug is raised to the highest of their priorities — unless its priority (read from Jira just
before) is already that high or higher in ``priority_order``, or is one that list does not know:
an engineer's choice is never fought. Each crossing is recorded in the store with the impact
state (``cursors``, ``impact:<key>``, under ``raised``) *before* the write and claimed by the
intent that writes it: a retry of that intent re-reads the priority (a write whose answer was
lost is not repeated), other intents leave the crossing alone, and a bug whose linked tickets
fall below a threshold and rise again is not raised twice. An engineer who lowers the priority
afterwards is not overruled.

The write (``PUT /rest/api/2/issue/{key}`` with ``fields.priority.name``) is announced first
(``sync.jira_own``): its webhook and the poll do not report it as an engineering change.
"""

from __future__ import annotations

__all__ = ["raise_priority"]

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from connectors.errors import InvalidRequestError
from connectors.models import Ticket
from rules.actions import DEFAULT_PRIORITY_ORDER, PriorityThreshold
from sync.jira_own import announce, withdraw
from sync.state import get_cursor, set_cursor

if TYPE_CHECKING:
    from sync.actions import ActionContext

log = logging.getLogger("switchboard.actions")

#: How long an intent's claim on a crossing holds if it never finishes (it died).
CLAIM_SECONDS = 600.0


def _has_tier(ctx: ActionContext, tickets: Sequence[Ticket], tier: str, field: str) -> bool:
    wanted = tier.casefold()
    seen: set[int] = set()
    for ticket in tickets:
        org_id = ticket.organization_id
        if org_id is None or org_id in seen:
            continue
        seen.add(org_id)
        try:  # through the people cache: an organization is read once, then reused
            org = ctx.zendesk.get_people(ticket.id, None, org_id).organization
        except Exception as exc:  # unknown now; the next roll-up looks again
            log.info("impact: organization %s: plan tier unknown (%s)", org_id, exc)
            continue
        value = (org.fields or {}).get(field) if org is not None else None
        if isinstance(value, str) and value.casefold() == wanted:
            return True
    return False


def _crossed(ctx: ActionContext, threshold: PriorityThreshold, tickets: Sequence[Ticket],
             tier_field: str) -> bool:
    if threshold.tickets is not None:
        return len(tickets) >= threshold.tickets
    return _has_tier(ctx, tickets, str(threshold.tier), tier_field)


def _open(entry: object, idem_key: str, now: float) -> bool:
    """Whether a recorded crossing is still this intent's to act on: not recorded, claimed by
    this intent, or claimed by one that died (its claim is old) — never one that is done."""
    if not isinstance(entry, dict):
        return True
    if entry.get("done"):
        return False
    return entry.get("by") == idem_key or now - float(entry.get("at") or 0) >= CLAIM_SECONDS


def _claim(ctx: ActionContext, name: str, crossed: list[PriorityThreshold]) -> list[str]:
    """Record the crossings as this intent's (unless another live intent has them): the keys
    this intent is to act on."""
    now = time.time()
    mine: list[str] = []
    with ctx.store.write() as conn:
        known = get_cursor(conn, name) or {}
        raised: dict[str, Any] = dict(known.get("raised") or {})
        for threshold in crossed:
            if not _open(raised.get(threshold.key), ctx.item.idem_key, now):
                continue  # done, or another intent's to do
            raised[threshold.key] = {"to": threshold.to, "by": ctx.item.idem_key, "at": now,
                                     "done": False}
            mine.append(threshold.key)
        if mine:
            set_cursor(conn, name, {**known, "raised": raised})
    return mine


def _settle(ctx: ActionContext, name: str, keys: list[str], outcome: str) -> None:
    with ctx.store.write() as conn:
        known = get_cursor(conn, name) or {}
        raised: dict[str, Any] = dict(known.get("raised") or {})
        for key in keys:
            if isinstance(raised.get(key), dict):
                raised[key] = {**raised[key], "done": True, "outcome": outcome}
        set_cursor(conn, name, {**known, "raised": raised})


def raise_priority(ctx: ActionContext, issue: str, name: str, tickets: Sequence[Ticket],
                   params: Mapping[str, Any]) -> dict[str, Any] | None:
    """Raise ``issue``'s priority for the thresholds of ``params["raise_priority"]`` crossed
    for the first time; what was done, for the intent's result (``None``: no thresholds).
    Raises the connector's errors (an unknown priority name is an InvalidRequestError)."""
    thresholds = [PriorityThreshold.model_validate(t) for t in params.get("raise_priority") or ()]
    if not thresholds:
        return None
    order = [str(p) for p in params.get("priority_order") or DEFAULT_PRIORITY_ORDER]
    rank = {p.casefold(): index for index, p in enumerate(order)}  # 0: the highest
    with ctx.store.read() as conn:
        known = get_cursor(conn, name) or {}
    recorded = known.get("raised") or {}
    now = time.time()
    pending = [t for t in thresholds if _open(recorded.get(t.key), ctx.item.idem_key, now)]
    tier_field = str(params.get("tier_field") or "plan_tier")
    crossed = [t for t in pending if _crossed(ctx, t, tickets, tier_field)]
    if not crossed:
        return {"raised": False, "crossed": []}
    keys = _claim(ctx, name, crossed)
    if not keys:
        return {"raised": False, "crossed": [], "why": "another intent is raising it"}
    target = min((t.to for t in crossed if t.key in keys), key=lambda p: rank[p.casefold()])
    current = ctx.jira.read_state(issue).priority
    result: dict[str, Any] = {"crossed": keys, "from": current, "to": target, "raised": False}
    if current is not None and current.casefold() not in rank:
        result["why"] = f"its priority {current!r} is not in priority_order; left as it is"
    elif current is not None and rank[current.casefold()] <= rank[target.casefold()]:
        result["why"] = f"already {current}"
    else:
        with ctx.store.write() as conn:
            announce(conn, issue, "priority", target)
        try:
            ctx.jira.set_priority(issue, target)
        except InvalidRequestError:
            with ctx.store.write() as conn:
                withdraw(conn, issue, "priority")
            raise
        result["raised"] = True
        log.info("impact: %s raised from %s to %s (%s)", issue, current, target,
                 ", ".join(keys))
    _settle(ctx, name, keys, f"{current} -> {target}" if result["raised"]
            else str(result["why"]))
    return result
