"""Reopening a Done bug (``jira.create_or_link_bug`` with ``when_done: reopen``).

Jira changes an issue's status only through its workflow's transitions, and offers, from the
issue's current status, only some of them (``GET /rest/api/2/issue/{key}/transitions``); their ids
are per workflow. :func:`reopen` picks the transition whose target status — or, failing that,
whose own name — is ``reopen_status`` (case-insensitively) and performs it (``POST
.../transitions`` with ``{"transition": {"id": ...}}``).

Once only: the caller has just read the bug and found it Done; a bug that is no longer Done when
its transitions are listed or performed (an engineer reopened it, or an earlier attempt of this
intent did before a crash) is not transitioned again — it is joined as an open bug. The write is
announced first (``sync.jira_own``), so that its webhook and the poll do not report it as an
engineering change.

No transition to ``reopen_status`` from the bug's status (or one that leads to a Done status) is
a :class:`~connectors.errors.ConfigurationError` naming the transitions Jira offers: the intent is
dead-lettered with that message, unless the rule's ``reopen_fallback`` opens a bug instead.
"""

from __future__ import annotations

__all__ = ["reopen"]

import dataclasses
import logging
from typing import TYPE_CHECKING

from connectors.errors import ConfigurationError, InvalidRequestError
from connectors.models import IssueRef, Transition
from sync.jira_own import announce, withdraw

if TYPE_CHECKING:
    from sync.actions import ActionContext

log = logging.getLogger("switchboard.actions")


def _pick(offered: list[Transition], target: str) -> Transition | None:
    wanted = target.strip().casefold()
    by_status = [t for t in offered if t.to_status.casefold() == wanted]
    by_name = [t for t in offered if t.name.casefold() == wanted]
    return next(iter(by_status or by_name), None)


def _refused(key: str, status: str | None, target: str, offered: list[Transition],
             why: str) -> ConfigurationError:
    listed = ", ".join(t.describe() for t in offered) or "none"
    return ConfigurationError(
        f"jira: cannot reopen {key} to {target!r}: {why} (from status {status!r} Jira offers: "
        f"{listed}); set reopen_status to a status or transition name the workflow offers from "
        "Done, or reopen_fallback: regression / new")


def reopen(ctx: ActionContext, bug: IssueRef, target: str) -> IssueRef:
    """Reopen ``bug`` (just read, Done) to ``target`` (a status, or a transition's name) and
    return it as it is now; a bug found no longer Done is returned as it is. Raises
    :class:`ConfigurationError` when the workflow offers no way there."""
    key = bug.key
    offered: list[Transition] = ctx.jira.transitions(key)
    chosen = _pick(offered, target)
    if chosen is None or (chosen.to_category or "").lower() == "done":
        current: IssueRef = ctx.jira.get_issue(key)
        if not current.is_done:
            return current  # reopened meanwhile: joined, not transitioned again
        why = "no such transition" if chosen is None else \
            f"{chosen.describe()} leads to a Done status"
        raise _refused(key, current.status, target, offered, why)
    with ctx.store.write() as conn:
        announce(conn, key, "status", chosen.to_status)
        announce(conn, key, "resolution", None)  # a reopen clears it, as the workflow says
    try:
        ctx.jira.transition_issue(key, chosen.id)
    except InvalidRequestError as exc:
        # 400: the bug moved between the list and the transition, or the workflow changed.
        with ctx.store.write() as conn:
            withdraw(conn, key, "status")
            withdraw(conn, key, "resolution")
        current = ctx.jira.get_issue(key)
        if not current.is_done:
            return current
        raise _refused(key, current.status, target, ctx.jira.transitions(key),
                       f"Jira refused {chosen.describe()}: {exc}") from exc
    log.info("reopened %s through %s", key, chosen.describe())
    return dataclasses.replace(bug, status=chosen.to_status, status_category=chosen.to_category)
