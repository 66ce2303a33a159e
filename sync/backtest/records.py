"""Where a backtest's history comes from: a ticket export file, or Zendesk's incremental export.

A history is a stream of ticket *records*, each one ticket's state at one moment, in the Zendesk
ticket JSON of the API and the incremental export (custom fields as ``[{"id", "value"}]``, mapped
to names by ``connectors.zendesk.custom_fields``). Files are read streaming, whatever their size:

- **JSONL** (``.jsonl`` / ``.ndjson``, or any file whose first line is a JSON object): one record
  per line; a line may also be ``{"ticket": {...}}`` (the API's shape) or a whole export page
  ``{"tickets": [...]}``. Blank lines are ignored.
- **JSON**: an array of records, or an export page / merged export ``{"tickets": [...]}``,
  parsed incrementally (ijson), never loaded whole.

Input is untrusted. A line that is not JSON, a record that is not an object, has no usable ``id``
or ``updated_at``, or has a field of the wrong type is a :class:`RecordProblem` — counted in
:class:`ProblemLog` with its line (or record) number, and skipped; reading goes on. What cannot be
read at all raises: :class:`InputError` before the first record (missing, unreadable, empty or not
JSON), :class:`IncompleteHistory` once records have been read (a JSON document broken halfway, a
vendor error during the export): whatever was decided until then is partial.
"""

from __future__ import annotations

__all__ = [
    "IncompleteHistory",
    "InputError",
    "ProblemLog",
    "RecordProblem",
    "read_export",
    "read_incremental",
]

import io
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import ijson
import orjson

from connectors.errors import SwitchboardError
from connectors.models import Ticket

from . import stage
from .parsing import MAX_LINE_BYTES, Progress, TicketBuilder, jsonl_tickets, ticket_of

#: How many problems are kept with their position; the rest are only counted.
KEEP_PROBLEMS = 20
#: JSONL exports at least this big are parsed by a parse stage (a child process) when possible.
PARSE_STAGE_BYTES = 32 * 1024 * 1024
_JSONL_SUFFIXES = (".jsonl", ".ndjson")


class InputError(Exception):
    """The history cannot be read at all: nothing was decided."""


class IncompleteHistory(Exception):
    """Reading stopped before the end of the history; ``where`` says how far it got."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(message)
        self.where = where


@dataclass(frozen=True, slots=True)
class RecordProblem:
    """One record that was skipped: ``where`` is ``line 12`` (JSONL) or ``record 12`` (JSON)."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class ProblemLog:
    """Skipped records: the first :data:`KEEP_PROBLEMS` with their position, all counted."""

    kept: list[RecordProblem] = field(default_factory=list)
    count: int = 0
    kinds: Counter[str] = field(default_factory=Counter)

    def add(self, where: str, message: str, kind: str) -> None:
        self.count += 1
        self.kinds[kind] += 1
        if len(self.kept) < KEEP_PROBLEMS:
            self.kept.append(RecordProblem(where, message))


def _first_bytes(handle: BinaryIO) -> bytes:
    """The first non-blank bytes of the file (up to 64 KiB), leaving the position at 0."""
    head = handle.read(65536)
    handle.seek(0)
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")


def _document(handle: BinaryIO, prefix: str, build: TicketBuilder, problems: ProblemLog,
              progress: Progress | None) -> Iterator[Ticket]:
    index = 0
    try:
        for item in ijson.items(handle, prefix, use_float=True):
            index += 1
            if progress is not None and index % 4096 == 0:
                progress(handle.tell())
            ticket = ticket_of(item, f"record {index}", build, problems)
            if ticket is not None:
                yield ticket
    except ijson.JSONError as exc:
        raise IncompleteHistory(f"the JSON document is broken after record {index}: {exc}",
                                f"record {index}") from exc


def read_export(path: str | Path, *, field_ids: Mapping[str, int], agent_url_base: str,
                problems: ProblemLog, progress: Progress | None = None,
                parse_stage: bool | None = None) -> Iterator[Ticket]:
    """Stream the tickets of an export file, in file order.

    ``progress`` is called now and then with the number of bytes read. Malformed records go to
    ``problems`` and are skipped. Raises :class:`InputError` when the file cannot be opened, is
    empty or is not JSON at all (before yielding anything), :class:`IncompleteHistory` when a
    JSON document breaks halfway (or the parse stage dies).

    ``parse_stage``: parse a JSONL export in a child process (:mod:`.stage`) while the caller
    works on the records — the same tickets and problems, in the same order. ``None`` (default):
    for files of :data:`PARSE_STAGE_BYTES` or more, when :func:`.stage.available`. The child
    starts here, before the first record is asked for.
    """
    path = Path(path)
    try:
        handle: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by the generator below
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        head = _first_bytes(handle)
    except OSError as exc:
        handle.close()
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not head:
        handle.close()
        raise InputError(f"{path}: the export is empty")
    first = head[:1]
    build = TicketBuilder(field_ids, agent_url_base)
    if path.suffix.lower() in _JSONL_SUFFIXES or (first == b"{" and _one_line_object(handle)):
        if parse_stage is None:
            parse_stage = _size(handle) >= PARSE_STAGE_BYTES and stage.available()
        if parse_stage:
            handle.close()
            return _staged(stage.ParseStage(path, field_ids=field_ids,
                                            agent_url_base=agent_url_base), problems, progress)
        records = jsonl_tickets(handle, build, problems, progress)
    elif first == b"[":
        records = _document(handle, "item", build, problems, progress)
    elif first == b"{":
        records = _document(handle, "tickets.item", build, problems, progress)
    else:
        handle.close()
        raise InputError(f"{path}: not a JSON or JSONL ticket export (it starts with "
                         f"{head[:20]!r})")
    return _closing(records, handle)


def _size(handle: BinaryIO) -> int:
    try:
        return os.fstat(handle.fileno()).st_size
    except (OSError, ValueError, io.UnsupportedOperation):
        return 0


def _staged(parse: stage.ParseStage, problems: ProblemLog,
            progress: Progress | None) -> Iterator[Ticket]:
    count = 0
    try:
        for ticket in parse.tickets(problems, progress):
            count += 1
            yield ticket
    except EOFError as exc:
        raise IncompleteHistory(f"the parse stage stopped unexpectedly after {count} "
                                "record(s)", f"record {count}") from exc


def _one_line_object(handle: BinaryIO) -> bool:
    """Whether the file's first non-blank line is a complete JSON value (then it is JSONL)."""
    try:
        line = b""
        while not line.strip():
            line = handle.readline(MAX_LINE_BYTES)
            if not line:
                return False
    finally:
        handle.seek(0)
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def _closing(records: Iterator[Ticket], handle: io.BufferedIOBase | BinaryIO) -> Iterator[Ticket]:
    try:
        yield from records
    finally:
        handle.close()


def read_incremental(zendesk: Any, since: datetime, *, per_page: int = 1000,
                     progress: Callable[[int, datetime | None], None] | None = None,
                     ) -> Iterator[Ticket]:
    """Stream Zendesk's cursor-based incremental ticket export from ``since`` to its end.

    ``zendesk`` is a :class:`~connectors.zendesk.ZendeskConnector` (reads only). ``progress``
    gets the number of tickets so far and the latest ``updated_at``. A vendor error (after the
    connector's own bounded retries of reads) raises :class:`IncompleteHistory`, naming the page.
    """
    cursor: str | None = None
    pages = tickets = 0
    while True:
        try:
            page = zendesk.export_page(cursor=cursor,
                                       start_time=None if cursor else int(since.timestamp()),
                                       per_page=per_page)
        except SwitchboardError as exc:
            raise IncompleteHistory(f"Zendesk incremental export, page {pages + 1}: {exc}",
                                    f"page {pages + 1}") from exc
        pages += 1
        for ticket in page.tickets:
            tickets += 1
            yield ticket
        if progress is not None:
            progress(tickets, page.tickets[-1].updated_at if page.tickets else None)
        if page.end_of_stream or not page.after_cursor:
            return
        cursor = page.after_cursor
