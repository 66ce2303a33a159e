"""The parse stage: a JSONL export read and parsed in a process of its own, beside the replay.

Parsing (``orjson``, building each :class:`~connectors.models.Ticket`) is a fifth of a backtest's
work and depends on nothing the replay decides, so for a large export it runs in a child process
while the replay decides the previous records. The child sends batches of
:data:`BATCH_RECORDS` records through a pipe, in file order; the replay only rebuilds each ticket
from its fields. Malformed records and progress travel in the same batches, at their place, so
:class:`~.records.ProblemLog` gets the same entries with the same line numbers as when the reading
process parses. Memory stays bounded: a full pipe stops the child until the replay catches up.

The child is forked (it starts at once, sharing the modules already loaded), which is safe only
while the process runs a single thread: :func:`available` says whether it may be used.
"""

from __future__ import annotations

__all__ = ["BATCH_RECORDS", "ParseStage", "available"]

import contextlib
import multiprocessing
import pickle
import threading
import weakref
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from connectors.models import Ticket, format_time, parse_time

from .parsing import ProblemSink, Progress, TicketBuilder, jsonl_tickets

#: Records per message from the child (about 1.5 MB of pickled fields for realistic records).
BATCH_RECORDS = 2048


def available() -> bool:
    """Whether a parse stage can start here: ``fork`` exists and no other thread runs (forking a
    process with threads may copy a lock some thread holds)."""
    return ("fork" in multiprocessing.get_all_start_methods()
            and threading.active_count() == 1)


def _time_field(at: datetime | None) -> str | datetime | None:
    """A time as sent: Zendesk's text when it reads back exactly (the reading side then
    remembers the text, as it does when it parses the record itself), else the datetime."""
    if at is not None and at.tzinfo is UTC and at.microsecond == 0 and at.year >= 1000:
        return format_time(at)
    return at


def _fields(ticket: Ticket) -> tuple[Any, ...]:
    return (ticket.id, _time_field(ticket.updated_at), _time_field(ticket.created_at),
            ticket.subject, ticket.description, ticket.status, ticket.priority, ticket.type,
            ticket.tags, ticket.requester_id, ticket.organization_id, ticket.assignee_id,
            ticket.group_id, dict(ticket.custom_fields), ticket.url)


def _ticket(fields: tuple[Any, ...]) -> Ticket:
    updated, created = fields[1], fields[2]
    updated_at = parse_time(updated) if type(updated) is str else updated
    assert updated_at is not None
    created_at = parse_time(created) if type(created) is str else created
    return Ticket(fields[0], updated_at, created_at, *fields[3:])


class _Forward:
    """The child's problem log: each problem goes into the batch, at its place."""

    def __init__(self, batch: list[Any]) -> None:
        self.batch = batch

    def add(self, where: str, message: str, kind: str) -> None:
        self.batch.append([where, message, kind])


def _run(conn: Connection, path: str, field_ids: dict[str, int], agent_url_base: str) -> None:
    """The child: read and parse ``path``; send ``(items, error, done)`` messages.

    Items are a ticket's fields (a tuple), a problem (a list) or a byte position (an int).
    """
    batch: list[Any] = []
    try:
        with open(path, "rb") as handle:
            tickets = jsonl_tickets(handle, TicketBuilder(field_ids, agent_url_base),
                                    _Forward(batch), batch.append)
            for ticket in tickets:
                batch.append(_fields(ticket))
                if len(batch) >= BATCH_RECORDS:
                    conn.send_bytes(pickle.dumps((batch, None, False), pickle.HIGHEST_PROTOCOL))
                    batch.clear()
        conn.send_bytes(pickle.dumps((batch, None, True), pickle.HIGHEST_PROTOCOL))
    except BrokenPipeError:
        pass  # the replay stopped reading
    except Exception as exc:  # the reading side raises it, as it would have parsing itself
        _send_error(conn, batch, exc)
    finally:
        conn.close()


def _send_error(conn: Connection, batch: list[Any], exc: Exception) -> None:
    try:
        message = pickle.dumps((batch, exc, True), pickle.HIGHEST_PROTOCOL)
    except Exception:  # an exception that does not pickle: its text, as an OSError
        message = pickle.dumps((batch, OSError(f"{type(exc).__name__}: {exc}"), True))
    with contextlib.suppress(OSError):  # the replay stopped reading
        conn.send_bytes(message)


def _stop(process: BaseProcess, conn: Connection) -> None:
    conn.close()
    if process.is_alive():
        process.terminate()
    process.join(timeout=10)


class ParseStage:
    """A child process parsing the JSONL export ``path``; iterate :meth:`tickets` once.

    Started on construction (call :func:`available` first). Stopped when the iteration ends,
    when :meth:`close` is called, or when the object is collected.
    """

    def __init__(self, path: str | Path, *, field_ids: Mapping[str, int],
                 agent_url_base: str) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child_end = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_run, args=(child_end, str(path), dict(field_ids), agent_url_base),
            name="switchboard-backtest-parse", daemon=True)
        self.process.start()
        child_end.close()
        self._finalizer = weakref.finalize(self, _stop, self.process, self._conn)

    def tickets(self, problems: ProblemSink, progress: Progress | None) -> Iterator[Ticket]:
        """The export's tickets in file order; problems and progress as parsing in-process
        tells them. Raises what parsing raised in the child; :class:`EOFError` if the child
        died."""
        try:
            while True:
                try:
                    message = self._conn.recv_bytes()
                except OSError as exc:  # the child died in the middle of a message
                    raise EOFError(f"the parse stage died mid-message: {exc}") from exc
                items, error, done = pickle.loads(message)
                for item in items:
                    kind = type(item)
                    if kind is tuple:
                        yield _ticket(item)
                    elif kind is list:
                        problems.add(*item)
                    elif progress is not None:
                        progress(item)
                if error is not None:
                    raise error
                if done:
                    return
        finally:
            self.close()

    def close(self) -> None:
        """Stop the child (if it still runs) and release the pipe. Safe to call twice."""
        self._finalizer()
