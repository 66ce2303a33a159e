"""The subset of JQL the Jira stand-in's ``/search/jql`` understands, parsed properly.

Supported: clauses joined by ``AND``; fields ``labels``, ``project``, ``key`` (``issuekey``),
``status``, ``statusCategory``, ``updated``, ``created``; operators ``=``, ``!=``, ``in (...)``,
``not in (...)`` and, for dates, ``>``, ``>=``, ``<``, ``<=``; values quoted (``"..."`` or
``'...'``) or bare; dates ``"yyyy/MM/dd HH:mm"``, ``"yyyy-MM-dd HH:mm"``, ``yyyy/MM/dd``,
``yyyy-MM-dd``, relative (``-5m``, ``-2h``, ``-1d``, ``-1w``) or epoch milliseconds, read as UTC;
optional ``ORDER BY`` over ``updated``, ``created``, ``key``, ``id`` with ``ASC`` / ``DESC``.
Anything else raises :class:`JQLError` with a message naming what was not understood, so a hub
that drifts outside the subset fails loudly instead of silently matching nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["Clause", "JQLError", "OrderBy", "Query", "matches", "ordering", "parse"]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
     |(?P<op>!=|>=|<=|=|>|<|!~|~)
     |(?P<punct>[(),])
     |(?P<word>[^\s"'(),=!<>~]+)
    )""",
    re.VERBOSE,
)
_FIELDS = {
    "labels": "labels", "project": "project", "key": "key", "issuekey": "key", "id": "key",
    "status": "status", "statuscategory": "statuscategory", "updated": "updated",
    "updateddate": "updated", "created": "created", "createddate": "created",
}  # fmt: skip
_DATE_FIELDS = ("updated", "created")
_EQUALITY = ("=", "!=", "in", "not in")
_ORDERABLE = {"updated": "updated", "created": "created", "key": "key", "issuekey": "key",
              "id": "key"}  # fmt: skip
_RELATIVE = re.compile(r"^([+-]?)(\d+)([wdhm])$")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}
_DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")


class JQLError(ValueError):
    """JQL outside the supported subset, or invalid; the message is Jira-style."""


@dataclass(frozen=True)
class Clause:
    """``field op values``: values are strings, or datetimes for date fields."""

    field: str
    op: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class OrderBy:
    """One ``ORDER BY`` item."""

    field: str
    descending: bool


@dataclass(frozen=True)
class Query:
    """A parsed query: clauses that must all hold, then the ordering."""

    clauses: tuple[Clause, ...]
    order: tuple[OrderBy, ...]


@dataclass
class _Token:
    kind: str
    text: str
    position: int

    @property
    def word(self) -> str:
        return self.text.lower() if self.kind == "word" else ""


def _tokenize(jql: str) -> list[_Token]:
    tokens, position = [], 0
    while position < len(jql):
        if not jql[position:].strip():
            break
        match = _TOKEN.match(jql, position)
        if match is None or match.end() == position:
            raise JQLError(f"Error in the JQL Query: The character '{jql[position]}' "
                           f"at position {position} is not expected.")  # fmt: skip
        kind = match.lastgroup or "word"
        text = match.group(kind)
        if kind == "string":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        tokens.append(_Token(kind, text, match.start(kind)))
        position = match.end()
    return tokens


def parse_date(text: str, field: str, now: datetime) -> datetime:
    """A JQL date value as an aware UTC datetime; raises JQLError if it is not one."""
    value = text.strip()
    relative = _RELATIVE.match(value.replace(" ", ""))
    if relative is not None:
        sign = -1 if relative.group(1) == "-" else 1
        delta = timedelta(**{_UNITS[relative.group(3)]: int(relative.group(2))})
        return now + sign * delta
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise JQLError(
        f"Date value '{text}' for field '{field}' is invalid. Valid formats include: "
        "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
        "format e.g. '-5d', '4w 2d'."
    )


class _Parser:
    def __init__(self, jql: str, now: datetime) -> None:
        self.tokens = _tokenize(jql)
        self.index = 0
        self.now = now

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise JQLError("Error in the JQL Query: Expecting more input at the end of the query.")
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text.lower() != text or token.kind == "string":
            raise JQLError(f"Error in the JQL Query: Expecting '{text}' but got '{token.text}' "
                           f"at position {token.position}.")  # fmt: skip

    def value(self) -> str:
        token = self.take()
        if token.kind not in ("word", "string"):
            raise JQLError(f"Error in the JQL Query: Expecting a value but got '{token.text}' "
                           f"at position {token.position}.")  # fmt: skip
        return token.text

    def query(self) -> Query:
        if not self.tokens:
            raise JQLError("Unbounded JQL queries are not allowed here. "
                           "Please add a search restriction to your query.")  # fmt: skip
        clauses: list[Clause] = []
        if self.peek() is not None and self.peek().word != "order":  # type: ignore[union-attr]
            clauses.append(self.clause())
            while self.peek() is not None and self.peek().word == "and":  # type: ignore[union-attr]
                self.take()
                clauses.append(self.clause())
        order: list[OrderBy] = []
        token = self.peek()
        if token is not None and token.word == "order":
            self.take()
            self.expect("by")
            order.append(self.order_item())
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                order.append(self.order_item())
        token = self.peek()
        if token is not None:
            hint = " (the sandbox supports only AND)" if token.word in ("or", "not") else ""
            raise JQLError(f"Error in the JQL Query: Unexpected '{token.text}' at position "
                           f"{token.position}{hint}.")  # fmt: skip
        if not clauses:
            raise JQLError("Unbounded JQL queries are not allowed here. "
                           "Please add a search restriction to your query.")  # fmt: skip
        return Query(tuple(clauses), tuple(order))

    def clause(self) -> Clause:
        token = self.take()
        if token.kind not in ("word", "string"):
            hint = " (the sandbox does not support parentheses)" if token.text == "(" else ""
            raise JQLError(f"Error in the JQL Query: Expecting a field name but got "
                           f"'{token.text}' at position {token.position}{hint}.")  # fmt: skip
        field = _FIELDS.get(token.text.lower().replace(" ", ""))
        if field is None:
            raise JQLError(f"Error in the JQL Query: Field '{token.text}' is not supported by the "
                           "sandbox (supported: labels, project, key, status, statusCategory, "
                           "updated, created).")  # fmt: skip
        op_token = self.take()
        if op_token.kind == "op":
            op = op_token.text
        elif op_token.word == "in":
            op = "in"
        elif op_token.word == "not":
            self.expect("in")
            op = "not in"
        else:
            raise JQLError(f"Error in the JQL Query: Expecting an operator but got "
                           f"'{op_token.text}' at position {op_token.position}.")  # fmt: skip
        allowed = ("=", "!=", ">", ">=", "<", "<=") if field in _DATE_FIELDS else _EQUALITY
        if op not in allowed:
            raise JQLError(f"The operator '{op}' is not supported by the '{token.text}' field.")
        if op in ("in", "not in"):
            self.expect("(")
            raw = [self.value()]
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                raw.append(self.value())
            self.expect(")")
        else:
            raw = [self.value()]
        values: tuple[Any, ...] = tuple(raw)
        if field in _DATE_FIELDS:
            values = tuple(parse_date(text, token.text, self.now) for text in raw)
        return Clause(field, op, values)

    def order_item(self) -> OrderBy:
        token = self.take()
        field = _ORDERABLE.get(token.text.lower())
        if field is None:
            raise JQLError(f"Error in the JQL Query: ORDER BY '{token.text}' is not supported by "
                           "the sandbox (supported: updated, created, key).")  # fmt: skip
        descending = False
        nxt = self.peek()
        if nxt is not None and nxt.word in ("asc", "desc"):
            descending = self.take().word == "desc"
        return OrderBy(field, descending)


def parse(jql: str, now: datetime | None = None) -> Query:
    """Parse ``jql``; relative dates count from ``now`` (default: the current time)."""
    return _Parser(jql, now or datetime.now(UTC)).query()


def _candidates(field: str, issue: dict[str, Any]) -> list[str]:
    """The values of ``field`` on an issue view, lower-cased, that a JQL value may name."""
    if field == "labels":
        return list(issue["labels"])
    if field == "project":
        return [
            issue["project_key"].lower(), str(issue["project_id"]), issue["project_name"].lower()
        ]  # fmt: skip
    if field == "key":
        return [issue["key"].lower(), str(issue["id"])]
    if field == "status":
        return [issue["status_name"].lower(), str(issue["status_id"])]
    return [
        issue["category_key"].lower(), issue["category_name"].lower(), str(issue["category_id"])
    ]  # fmt: skip


def _holds(clause: Clause, issue: dict[str, Any]) -> bool:
    if clause.field in _DATE_FIELDS:
        actual: datetime = issue[clause.field]
        expected: datetime = clause.values[0]
        return {
            "=": actual == expected, "!=": actual != expected, ">": actual > expected,
            ">=": actual >= expected, "<": actual < expected, "<=": actual <= expected,
        }[clause.op]  # fmt: skip
    have = _candidates(clause.field, issue)
    wanted = [v if clause.field == "labels" else v.lower() for v in clause.values]
    hit = any(value in have for value in wanted)
    if clause.op in ("=", "in"):
        return hit
    if clause.field == "labels" and not have:
        return False  # as Jira: an issue without labels matches no labels condition
    return not hit


def matches(query: Query, issue: dict[str, Any]) -> bool:
    """Whether an issue view (see ``sandbox.jira``) satisfies every clause."""
    return all(_holds(clause, issue) for clause in query.clauses)


def ordering(query: Query) -> list[OrderBy]:
    """The query's ORDER BY items, or the sandbox's default (``key ASC``)."""
    return list(query.order) or [OrderBy("key", False)]
