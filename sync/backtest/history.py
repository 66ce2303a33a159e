"""Per-ticket state of a backtest — the previous record and the simulated links — in flat memory.

Live processing keeps a snapshot per ticket in its store; a backtest over millions of tickets
cannot keep them all in a dict. :class:`TicketHistory` holds the most recently seen tickets in a
bounded LRU and spills the others to a temporary SQLite file (synchronous off, no journal, batched
writes) that is deleted on :meth:`close`. A ticket is written to disk at most once per eviction,
so a ticket seen once costs one insert, never a read-modify-write.
"""

from __future__ import annotations

__all__ = ["TicketEntry", "TicketHistory"]

import os
import sqlite3
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from connectors.models import Ticket

#: Tickets kept in memory (about 1.5 KB each for realistic records).
DEFAULT_CACHE = 20_000
#: Evicted tickets written per transaction.
SPILL_BATCH = 4_000

Links = tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class TicketEntry:
    """What a backtest remembers of a ticket: its last record and, per rule set, its links."""

    ticket: Ticket
    links: Links


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def _micros(at: datetime | None) -> int | None:
    return None if at is None else (at - _EPOCH) // _MICRO


def _instant(micros: int | None) -> datetime | None:
    return None if micros is None else _EPOCH + timedelta(microseconds=micros)


def _encode(entry: TicketEntry) -> bytes:
    # Field by field rather than Ticket.to_dict(): no time formatting, exact microseconds.
    t = entry.ticket
    return orjson.dumps([t.id, _micros(t.updated_at), _micros(t.created_at), t.subject,
                         t.description, t.status, t.priority, t.type, t.tags, t.requester_id,
                         t.organization_id, t.assignee_id, t.group_id, dict(t.custom_fields),
                         t.url, entry.links])


def _decode(blob: bytes) -> TicketEntry:
    (ticket_id, updated, created, subject, description, status, priority, kind, tags,
     requester, organization, assignee, group, fields, url, links) = orjson.loads(blob)
    updated_at = _instant(updated)
    assert updated_at is not None
    ticket = Ticket(ticket_id, updated_at, _instant(created), subject, description, status,
                    priority, kind, tuple(tags), requester, organization, assignee, group,
                    fields, url)
    return TicketEntry(ticket, tuple(tuple(side) for side in links))


class TicketHistory:
    """``get`` / ``put`` of :class:`TicketEntry` by ticket id; memory bounded by ``cache``.

    ``directory`` is where the temporary file goes (default: the system's temp dir).
    """

    def __init__(self, *, cache: int = DEFAULT_CACHE, directory: str | Path | None = None) -> None:
        if cache < 1:
            raise ValueError("cache must hold at least one ticket")
        self._cache_size = cache
        self._recent: OrderedDict[int, TicketEntry] = OrderedDict()
        self._pending: dict[int, bytes] = {}
        fd, name = tempfile.mkstemp(prefix="switchboard-backtest-", suffix=".db",
                                    dir=directory)
        os.close(fd)
        self.path = Path(name)
        self._db = sqlite3.connect(name, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=MEMORY",
                       "cache_size=-8000", "locking_mode=EXCLUSIVE"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("CREATE TABLE ticket (id INTEGER PRIMARY KEY, entry BLOB NOT NULL)")
        self._spilled = 0
        self._spilled_max = 0

    @property
    def spilled(self) -> int:
        """How many evictions went to disk so far (for the report)."""
        return self._spilled

    def get(self, ticket_id: int) -> TicketEntry | None:
        entry = self._recent.get(ticket_id)
        if entry is not None:
            self._recent.move_to_end(ticket_id)
            return entry
        if not self._spilled or ticket_id > self._spilled_max:
            return None  # never evicted (Zendesk's ids grow: a new ticket skips the lookup)
        blob = self._pending.get(ticket_id)
        if blob is None:
            row = self._db.execute("SELECT entry FROM ticket WHERE id = ?",
                                   (ticket_id,)).fetchone()
            if row is None:
                return None
            blob = row[0]
        return _decode(blob)

    def put(self, ticket_id: int, entry: TicketEntry) -> None:
        recent = self._recent
        if ticket_id in recent:
            recent.move_to_end(ticket_id)
        recent[ticket_id] = entry
        if len(recent) > self._cache_size:
            old_id, old = recent.popitem(last=False)
            self._pending[old_id] = _encode(old)
            self._spilled += 1
            if old_id > self._spilled_max:
                self._spilled_max = old_id
            if len(self._pending) >= SPILL_BATCH:
                self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO ticket (id, entry) VALUES (?, ?)",
                             self._pending.items())
        self._db.execute("COMMIT")
        self._pending.clear()

    def close(self) -> None:
        """Drop the temporary file. Safe to call twice."""
        try:
            self._db.close()
        finally:
            self.path.unlink(missing_ok=True)
            self._recent.clear()
            self._pending.clear()

    def __enter__(self) -> TicketHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
