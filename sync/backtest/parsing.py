"""Ticket records -> :class:`~connectors.models.Ticket`, line by line: the hot path of a backtest.

:class:`TicketBuilder` makes a ticket exactly as :func:`connectors.zendesk_records.ticket_from_api`
does, directly for records of the shape Zendesk writes; :func:`jsonl_tickets` reads a JSONL export
with it, telling malformed records (with their line number) to a :class:`ProblemSink`. Used in
the reading process (:mod:`.records`) or in the parse stage's own (:mod:`.stage`).
"""

from __future__ import annotations

__all__ = ["MAX_LINE_BYTES", "RECORD_ERRORS", "ProblemSink", "Progress", "TicketBuilder",
           "jsonl_tickets", "records_of_line", "ticket_of"]

from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO, Protocol

import orjson

from connectors.models import Ticket, parse_time
from connectors.zendesk_records import ticket_from_api

#: Lines longer than this are refused as records (and skipped without being held in memory).
MAX_LINE_BYTES = 16 * 1024 * 1024
#: Errors a malformed record can raise while being turned into a :class:`Ticket`.
RECORD_ERRORS = (ValueError, TypeError, OverflowError, OSError, KeyError)

Progress = Callable[[int], None]


class ProblemSink(Protocol):
    """Where skipped records are told (:class:`~.records.ProblemLog`)."""

    def add(self, where: str, message: str, kind: str) -> None: ...


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


class TicketBuilder:
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
        except (_Unusual, *RECORD_ERRORS):
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


def ticket_of(data: Any, where: str, build: TicketBuilder, problems: ProblemSink) -> Ticket | None:
    """The ticket of one record, or ``None`` when it is malformed (then told to ``problems``)."""
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
    except RECORD_ERRORS as exc:
        problems.add(where, f"ticket {data.get('id')!r}: {exc}", "malformed record")
        return None


def records_of_line(data: Any) -> list[Any]:
    """A JSONL line's records: a ticket, ``{"ticket": {...}}`` or a page ``{"tickets": [...]}``."""
    if isinstance(data, dict):
        if isinstance(data.get("tickets"), list) and "id" not in data:
            return list(data["tickets"])
        if isinstance(data.get("ticket"), dict) and "id" not in data:
            return [data["ticket"]]
    return [data]


def jsonl_tickets(handle: BinaryIO, build: TicketBuilder, problems: ProblemSink,
                  progress: Progress | None) -> Iterator[Ticket]:
    """The tickets of a JSONL file, in file order; ``progress`` gets the bytes read now and then."""
    position = 0
    lineno = 0
    while True:
        line = handle.readline(MAX_LINE_BYTES)
        if not line:
            break
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
        for item in records_of_line(data):
            ticket = ticket_of(item, f"line {lineno}", build, problems)
            if ticket is not None:
                yield ticket
    if progress is not None:
        progress(position)
