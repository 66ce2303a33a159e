"""Reconciliation poller: Zendesk's cursor-based incremental ticket export (webhooks are hints,
polling is truth — invariant 4).

- The first poll of an account is a **backfill**: it pages from ``backfill_start`` to the end of
  the stream and only stores snapshots — connecting Switchboard never replays a company's history
  into Jira. A backfill interrupted by a crash resumes from its last committed page.
- Every later poll turns each exported ticket into an inbox event keyed by its change (ticket id +
  ``updated_at``), so a change a webhook already delivered is a no-op, and one it missed is caught.
  The processor diffs the ticket against its snapshot to find what changed.
- The completed backfill leaves ``connected_at`` in the cursor: when the account was connected
  (the start of its first backfill poll). A later poll hints ``ticket.created`` for a ticket
  created at or after it — also one created *and* edited between two polls, whose ``created_at``
  no longer equals its ``updated_at`` — so ``on: [ticket.created]`` rules still fire when the
  webhook was missed. (The processor uses the hint only for a ticket it has no snapshot of.) A
  cursor stored before ``connected_at`` existed falls back to ``created_at == updated_at``.
- Each page's events and the cursor that follows them are committed in ONE transaction: the
  cursor never runs ahead of what is stored.
"""

from __future__ import annotations

__all__ = ["PollResult", "ZendeskPoller"]

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.models import Ticket, format_time, parse_time
from sync import inbox
from sync.config import PollerSettings
from sync.state import get_cursor, put_snapshot, set_cursor
from sync.store import Store

log = logging.getLogger("switchboard.poller")
CURSOR = "zendesk.tickets"


@dataclass(frozen=True, slots=True)
class PollResult:
    backfill: bool
    pages: int
    tickets: int
    new_events: int


class ZendeskPoller:
    """One poll = page through the export until ``end_of_stream``."""

    def __init__(self, store: Store, zendesk: Any, settings: PollerSettings, *,
                 on_events: Callable[[], None] = lambda: None, max_pages: int = 100,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.zendesk = zendesk
        self.settings = settings
        self.on_events = on_events
        self.max_pages = max_pages
        self.clock = clock
        self._lock = threading.Lock()

    def poll(self) -> PollResult:
        """Page through the export until ``end_of_stream``; concurrent calls run one at a time."""
        with self._lock:
            return self._poll()

    def _poll(self) -> PollResult:
        poll_started = format_time(self.clock())
        with self.store.read() as conn:
            state = get_cursor(conn, CURSOR)
        backfill = state is None or bool(state.get("backfill"))
        cursor = state.get("cursor") if state else None
        # A backfill resumed after a crash keeps the start of the poll that began it.
        started_at = (state or {}).get("started_at") or poll_started
        stored_connected = None if backfill else (state or {}).get("connected_at")
        connected_at = _connected_at(stored_connected)
        start_time = None if cursor else self.settings.backfill_start
        pages = tickets = new_events = 0
        while pages < self.max_pages:
            page = self.zendesk.export_page(cursor=cursor, start_time=start_time,
                                            per_page=self.settings.page_size)
            pages += 1
            tickets += len(page.tickets)
            next_cursor = page.after_cursor or cursor
            with self.store.write() as conn:
                for ticket in page.tickets:
                    if backfill:
                        put_snapshot(conn, ticket)
                        continue
                    created = _is_created(ticket, connected_at)
                    result = inbox.accept_in(
                        conn, source="zendesk", kind="poll",
                        entity_key=f"zendesk:ticket:{ticket.id}",
                        change_key=f"zendesk:ticket:{ticket.id}:{ticket.to_dict()['updated_at']}",
                        payload={"style": "poll", "complete": True,
                                 "hint": "ticket.created" if created else "ticket.updated",
                                 "fields": ticket.to_dict()})
                    new_events += result.accepted
                if next_cursor is not None:
                    value: dict[str, Any] = {
                        "cursor": next_cursor, "backfill": backfill and not page.end_of_stream}
                    if value["backfill"]:
                        value["started_at"] = started_at
                    elif backfill:
                        value["connected_at"] = started_at
                    elif stored_connected is not None:
                        value["connected_at"] = stored_connected
                    set_cursor(conn, CURSOR, value)
            cursor, start_time = next_cursor, None
            if page.end_of_stream or next_cursor is None:
                break
        if new_events:
            self.on_events()
        log.info("poll: %s page(s), %s ticket(s), %s new event(s)%s", pages, tickets, new_events,
                 " (backfill: snapshots only)" if backfill else "")
        return PollResult(backfill, pages, tickets, new_events)


def _connected_at(value: Any) -> datetime | None:
    """The cursor's ``connected_at`` (ISO text or unix seconds); None if absent or unreadable."""
    try:
        return parse_time(value)
    except (TypeError, ValueError, OverflowError):
        log.warning("poll: ignoring unreadable connected_at %r in the cursor", value)
        return None


def _is_created(ticket: Ticket, connected_at: datetime | None) -> bool:
    """Whether a polled ticket is new since the account was connected (hint ``ticket.created``)."""
    if ticket.created_at is None:
        return False
    if ticket.created_at == ticket.updated_at:
        return True
    return connected_at is not None and ticket.created_at >= connected_at
