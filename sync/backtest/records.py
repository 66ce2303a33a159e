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
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import ijson
import orjson

from connectors.errors import SwitchboardError
from connectors.models import Ticket, parse_time
from connectors.zendesk_records import ticket_from_api

#: Lines longer than this are refused as records (and skipped without being held in memory).
MAX_LINE_BYTES = 16 * 1024 * 1024
#: How many problems are kept with their position; the rest are only counted.
KEEP_PROBLEMS = 20
_JSONL_SUFFIXES = (".jsonl", ".ndjson")
#: Errors a malformed record can raise while being turned into a :class:`Ticket`.
_RECORD_ERRORS = (ValueError, TypeError, OverflowError, OSError, KeyError)


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


Progress = Callable[[int], None]


class _Unusual(Exception):
    """A record of a shape the quick path leaves to :func:`ticket_from_api`."""


def _quick_id(value: Any) -> int | None:
    """A related id as ``ticket_from_api`` reads it (lenient: ``None`` unless positive)."""
    if value is None:
        return None
    if type(value) is int:
        return value if value > 0 else None
    raise _Unusual


def _quick_text(value: Any) -> str | None:
    """status / priority / type as ``ticket_from_api`` reads them (lower case)."""
    if type(value) is str:
        return value.lower() if value else None
    if value is None:
        return None
    raise _Unusual


def _quick_time(value: Any) -> Any:
    if type(value) is str:
        return parse_time(value)
    if value is None:
        return None
    raise _Unusual


class _Builder:
    """Tickets from parsed records, exactly as :func:`ticket_from_api` makes them.

    Records shaped as Zendesk writes them (an integer id, times as text, text where text
    belongs, integer ids, a list of ``{"id", "value"}`` custom fields with integer ids) are built
    directly, at a fraction of the general path's cost; any other shape goes through
    :func:`ticket_from_api` itself, which also says what is wrong with a malformed record.
    """

    def __init__(self, field_ids: Mapping[str, int], agent_url_base: str) -> None:
        self.field_ids = field_ids
        self.agent_url_base = agent_url_base
        self.names = {int(field_id): name for name, field_id in field_ids.items()}
        self.url_base = f"{agent_url_base.rstrip('/')}/agent/tickets/"

    def __call__(self, data: dict[str, Any]) -> Ticket:
        try:
            return self._quick(data)
        except (_Unusual, *_RECORD_ERRORS):
            # Another shape, or malformed: the general path reads it, or raises what is wrong.
            return ticket_from_api(data, field_ids=self.field_ids,
                                   agent_url_base=self.agent_url_base)

    def _quick(self, data: dict[str, Any]) -> Ticket:
        get = data.get
        ticket_id = get("id")
        if type(ticket_id) is not int or ticket_id <= 0:
            raise _Unusual
        updated_at = _quick_time(get("updated_at"))
        created_at = _quick_time(get("created_at"))
        subject = get("subject") or get("raw_subject") or ""
        description = get("description") or ""
        tags = get("tags")
        if updated_at is None or type(subject) is not str or type(description) is not str:
            raise _Unusual
        if tags is not None:
            if type(tags) is not list:
                raise _Unusual
            for tag in tags:
                if type(tag) is not str:
                    raise _Unusual
        raw_fields = get("custom_fields")
        if raw_fields is None:
            raw_fields = get("fields")
        custom: dict[str, Any] = {}
        if raw_fields is not None:
            if type(raw_fields) is not list:
                raise _Unusual
            names = self.names
            for item in raw_fields:
                if type(item) is not dict or type(field_id := item.get("id")) is not int:
                    raise _Unusual
                name = names.get(field_id)
                if name is not None:
                    custom[name] = item.get("value")
        return Ticket(ticket_id, updated_at, created_at, subject, description,
                      _quick_text(get("status")), _quick_text(get("priority")),
                      _quick_text(get("type")), tuple(tags) if tags else (),
                      _quick_id(get("requester_id")), _quick_id(get("organization_id")),
                      _quick_id(get("assignee_id")), _quick_id(get("group_id")), custom,
                      f"{self.url_base}{ticket_id}")


def _ticket(data: Any, where: str, build: _Builder, problems: ProblemLog) -> Ticket | None:
    if not isinstance(data, dict):
        problems.add(where, f"a ticket record must be a JSON object, not {type(data).__name__}",
                     "not an object")
        return None
    if "id" not in data:
        problems.add(where, "no 'id'", "no id")
        return None
    if data.get("updated_at") in (None, ""):
        problems.add(where, f"ticket {data.get('id')!r}: no 'updated_at'", "no updated_at")
        return None
    try:
        return build(data)
    except _RECORD_ERRORS as exc:
        problems.add(where, f"ticket {data.get('id')!r}: {exc}", "malformed record")
        return None


def _records_of_line(data: Any) -> list[Any]:
    """A JSONL line's records: a ticket, ``{"ticket": {...}}`` or a page ``{"tickets": [...]}``."""
    if isinstance(data, dict):
        if isinstance(data.get("tickets"), list) and "id" not in data:
            return list(data["tickets"])
        if isinstance(data.get("ticket"), dict) and "id" not in data:
            return [data["ticket"]]
    return [data]


def _first_bytes(handle: BinaryIO) -> bytes:
    """The first non-blank bytes of the file (up to 64 KiB), leaving the position at 0."""
    head = handle.read(65536)
    handle.seek(0)
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")


def _jsonl(handle: BinaryIO, build: _Builder, problems: ProblemLog,
           progress: Progress | None) -> Iterator[Ticket]:
    position = 0
    lineno = 0
    while True:
        line = handle.readline(MAX_LINE_BYTES)
        if not line:
            return
        lineno += 1
        position += len(line)
        if len(line) == MAX_LINE_BYTES and not line.endswith(b"\n"):
            while True:  # skip the rest of an oversized line without holding it
                rest = handle.readline(MAX_LINE_BYTES)
                position += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
            problems.add(f"line {lineno}", f"longer than {MAX_LINE_BYTES} bytes", "too long")
            continue
        if progress is not None and lineno % 4096 == 0:
            progress(position)
        if not line.strip():
            continue
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            problems.add(f"line {lineno}", f"not valid JSON: {exc}", "not JSON")
            continue
        for item in _records_of_line(data):
            ticket = _ticket(item, f"line {lineno}", build, problems)
            if ticket is not None:
                yield ticket
    if progress is not None:
        progress(position)


def _document(handle: BinaryIO, prefix: str, build: _Builder, problems: ProblemLog,
              progress: Progress | None) -> Iterator[Ticket]:
    index = 0
    try:
        for item in ijson.items(handle, prefix, use_float=True):
            index += 1
            if progress is not None and index % 4096 == 0:
                progress(handle.tell())
            ticket = _ticket(item, f"record {index}", build, problems)
            if ticket is not None:
                yield ticket
    except ijson.JSONError as exc:
        raise IncompleteHistory(f"the JSON document is broken after record {index}: {exc}",
                                f"record {index}") from exc


def read_export(path: str | Path, *, field_ids: Mapping[str, int], agent_url_base: str,
                problems: ProblemLog, progress: Progress | None = None) -> Iterator[Ticket]:
    """Stream the tickets of an export file, in file order.

    ``progress`` is called now and then with the number of bytes read. Malformed records go to
    ``problems`` and are skipped. Raises :class:`InputError` when the file cannot be opened, is
    empty or is not JSON at all (before yielding anything), :class:`IncompleteHistory` when a
    JSON document breaks halfway.
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
    build = _Builder(field_ids, agent_url_base)
    if path.suffix.lower() in _JSONL_SUFFIXES or (first == b"{" and _one_line_object(handle)):
        records = _jsonl(handle, build, problems, progress)
    elif first == b"[":
        records = _document(handle, "item", build, problems, progress)
    elif first == b"{":
        records = _document(handle, "tickets.item", build, problems, progress)
    else:
        handle.close()
        raise InputError(f"{path}: not a JSON or JSONL ticket export (it starts with "
                         f"{head[:20]!r})")
    return _closing(records, handle)


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
