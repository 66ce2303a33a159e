"""Switchboard's own changes to Jira issues (a reopen, a raised priority), so that they never
come back as ``jira.issue.updated`` events that fan out as if engineering had made them.

A change reaches Switchboard twice over: as Jira's ``jira:issue_updated`` webhook, whose ``user``
is the account Switchboard acts as (recognised by ``sync.jira_events``), and through the
reconciliation poll (``sync.jira_poller``), which sees only that the issue's state differs and not
who changed it. For the poll, each write is announced here *before* it is sent — field and the
value it sets, in the store (``cursors``, ``jira-own:<key>``) — and a difference the poll finds
that a pending announcement explains is taken out of the event (and the announcement used up).
The webhook of the write uses its announcement up too. An announcement no change ever used up
(the write failed, or its webhook and every poll missed it) expires after
:data:`OWN_CHANGE_SECONDS`.
"""

from __future__ import annotations

__all__ = ["OWN_CHANGE_SECONDS", "announce", "take_own", "withdraw"]

import time
from collections.abc import Iterable, Mapping

import sqlalchemy as sa

from connectors.jira_webhooks import FieldChange
from sync.schema import cursors
from sync.state import get_cursor, set_cursor

#: How long an announced change waits for the webhook or poll that reports it.
OWN_CHANGE_SECONDS = 24 * 3600.0


def _name(key: str) -> str:
    return f"jira-own:{key}"[:64]


def announce(conn: sa.Connection, key: str, field: str, value: str | None) -> None:
    """Switchboard is about to set ``field`` (``status``, ``resolution``, ``priority``) of issue
    ``key`` to ``value`` (``None``: to whatever its write leads to — a transition may set or
    clear the resolution): a change to it that the poll finds is Switchboard's own."""
    pending = get_cursor(conn, _name(key)) or {}
    pending[field] = {"to": value, "at": time.time()}
    set_cursor(conn, _name(key), pending)


def withdraw(conn: sa.Connection, key: str, field: str) -> None:
    """The announced write of ``field`` did not happen (Jira refused it)."""
    pending = get_cursor(conn, _name(key))
    if pending and pending.pop(field, None) is not None:
        _save(conn, key, pending)


def take_own(conn: sa.Connection, key: str, changes: Iterable[FieldChange], *,
             all_own: bool = False) -> tuple[tuple[FieldChange, ...], tuple[FieldChange, ...]]:
    """Split ``changes`` of issue ``key`` into Switchboard's own and the others, using up the
    announcements that explain them. ``all_own``: the changes are known to be Switchboard's
    (its webhook); their announcements are used up whatever the values."""
    pending = get_cursor(conn, _name(key))
    changes = tuple(changes)
    if not pending:
        return ((changes, ()) if all_own else ((), changes))
    now = time.time()
    live = {field: entry for field, entry in pending.items()
            if isinstance(entry, dict) and now - float(entry.get("at") or 0) < OWN_CHANGE_SECONDS}
    own: list[FieldChange] = []
    others: list[FieldChange] = []
    for change in changes:
        entry = live.get(change.field)
        if all_own or (entry is not None and (entry.get("to") is None
                                              or _same(entry.get("to"), change.to_string))):
            own.append(change)
            live.pop(change.field, None)
        else:
            others.append(change)
    if live != pending:
        _save(conn, key, live)
    return tuple(own), tuple(others)


def _same(announced: object, reported: str | None) -> bool:
    return isinstance(announced, str) and reported is not None \
        and announced.casefold() == reported.casefold()


def _save(conn: sa.Connection, key: str, pending: Mapping[str, object]) -> None:
    if pending:
        set_cursor(conn, _name(key), dict(pending))
    else:
        conn.execute(sa.delete(cursors).where(cursors.c.name == _name(key)))
