"""Reconciliation poller for Jira: webhooks are hints, this is the truth.

Every ``jira_poller.interval_seconds`` it searches the issues tickets are linked to that changed
since its last run (``/search/jql``, 100 keys per search, ``updated`` within the time since the
last run plus ``overlap_seconds``) and compares each with the last state Switchboard processed
(``jira_issues``). A difference in status, resolution, priority or fix versions becomes a stored
``jira:issue_updated`` event with those changes — the same event a webhook would have brought —
so a missed webhook is caught within one period. The webhook path records the state it processed
too, and an event not newer than the recorded state is not processed again: a change reported by
both a webhook and a poll reaches the rules once.

- An issue seen for the first time (no recorded state: newly linked) is read whatever its age
  and recorded, not reported: its history is not news, its next change is.
- Jira refuses a whole search when one key names an issue that no longer exists; the keys are
  then halved until the missing ones are found; one that a read confirms is gone (404 — not an
  issue the account merely lost sight of) is reported as ``jira:issue_deleted`` (once
  processed, an issue is recorded as gone and never searched again).
- A difference Switchboard made itself (a reopen, a raised priority: announced in
  ``sync.jira_own`` before the write) is not reported; the state is recorded.
- The time of the run is saved only after its events are stored: a failed run is redone.
"""

from __future__ import annotations

__all__ = ["JiraPoller", "changes_between", "issue_state", "put_issue", "stored_issue"]

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from connectors.errors import InvalidRequestError, NotFoundError
from connectors.jira_webhooks import FieldChange, FixVersion, JiraEvent
from connectors.models import IssueState
from sync import inbox
from sync.config import JiraPollerSettings
from sync.jira_own import take_own
from sync.schema import jira_issues, links
from sync.state import get_cursor, set_cursor
from sync.store import Store, utcnow

log = logging.getLogger("switchboard.jira_poller")

CURSOR = "jira"
#: Keys per search.
CHUNK = 100
#: The fields a state holds, with the changelog name of each.
TRACKED = (("status", "status"), ("resolution", "resolution"), ("priority", "priority"))


@dataclass(frozen=True, slots=True)
class StoredIssue:
    issue_id: str
    state: dict[str, Any]
    updated: datetime
    gone: bool


def issue_state(status: str | None, resolution: str | None, priority: str | None,
                versions: list[tuple[str, bool | None]]) -> dict[str, Any]:
    """The state Switchboard follows of an issue, as stored."""
    return {"status": status, "resolution": resolution, "priority": priority,
            "fix_versions": [[name, released] for name, released in versions]}


def event_state(event: JiraEvent) -> dict[str, Any]:
    """The state an issue event reports."""
    return issue_state(event.status, event.resolution, event.priority,
                       [(v.name, v.released) for v in event.fix_versions or ()])


def changes_between(old: dict[str, Any], new: dict[str, Any]) -> tuple[FieldChange, ...]:
    """What changed from ``old`` to ``new``, as changelog items would say it."""
    out = [FieldChange(name, None, old.get(key), None, new.get(key))
           for key, name in TRACKED if old.get(key) != new.get(key)]
    before = {v[0] for v in old.get("fix_versions") or []}
    after = {v[0] for v in new.get("fix_versions") or []}
    out += [FieldChange("fixVersions", None, None, None, name) for name in sorted(after - before)]
    out += [FieldChange("fixVersions", None, name, None, None) for name in sorted(before - after)]
    return tuple(out)


def stored_issue(conn: sa.Connection, key: str) -> StoredIssue | None:
    row = conn.execute(sa.select(jira_issues).where(jira_issues.c.key == key)).first()
    return None if row is None else StoredIssue(row.issue_id, dict(row.state), row.updated,
                                                bool(row.gone))


def put_issue(conn: sa.Connection, key: str, issue_id: str, state: dict[str, Any],
              updated: datetime, *, gone: bool = False) -> None:
    """Record the state processed of an issue, unless the recorded one is newer."""
    current = stored_issue(conn, key)
    values = {"issue_id": issue_id, "state": state, "updated": updated, "gone": gone,
              "saved_at": utcnow()}
    if current is None:
        conn.execute(sa.insert(jira_issues).values(key=key, **values))
    elif current.updated <= updated or gone:
        conn.execute(sa.update(jira_issues).where(jira_issues.c.key == key).values(**values))


def _event(key: str, issue_id: str, state: dict[str, Any], updated: datetime,
           changes: tuple[FieldChange, ...], event_type: str) -> JiraEvent:
    versions = tuple(FixVersion(name, None, released) for name, released
                     in state.get("fix_versions") or [])
    return JiraEvent(event_type=event_type, issue_id=issue_id, issue_key=key, timestamp=updated,
                     status=state.get("status"), resolution=state.get("resolution"),
                     priority=state.get("priority"), fix_versions=versions, changes=changes,
                     user_name="(found by Switchboard's reconciliation poll)")


class JiraPoller:
    """One poll of the linked issues (see the module docstring)."""

    def __init__(self, store: Store, jira: Any, settings: JiraPollerSettings) -> None:
        self.store = store
        self.jira = jira
        self.settings = settings

    def poll(self) -> int:
        """Run one poll; returns how many events it stored."""
        started = utcnow()
        with self.store.read() as conn:
            keys = [str(r.ref) for r in conn.execute(
                sa.select(links.c.ref).where(links.c.system == "jira").distinct()
                .order_by(links.c.ref))]
            gone = {str(r.key) for r in conn.execute(
                sa.select(jira_issues.c.key).where(jira_issues.c.gone))}
            cursor = get_cursor(conn, CURSOR)
            known = {str(r.key) for r in conn.execute(sa.select(jira_issues.c.key))}
        keys = [k for k in keys if k not in gone]
        since = datetime.fromisoformat(cursor["since"]) - timedelta(
            seconds=self.settings.overlap_seconds) if cursor else None
        found: list[IssueState] = []
        missing: list[str] = []
        # An issue with no recorded state (newly linked) is read whatever its age, so that its
        # state is recorded now and its next change is news even if its webhook is lost.
        fresh = [k for k in keys if k not in known]
        for start in range(0, len(fresh), CHUNK):
            self._search(fresh[start:start + CHUNK], None, found, missing)
        seen = [k for k in keys if k in known]
        for start in range(0, len(seen), CHUNK):
            self._search(seen[start:start + CHUNK], since, found, missing)
        deleted = [key for key in missing if self._deleted(key)]
        stored = 0
        with self.store.write() as conn:
            for state in found:
                stored += self._compare(conn, state)
            for key in deleted:
                stored += self._gone(conn, key)
            set_cursor(conn, CURSOR, {"since": started.isoformat()})
        log.info("jira poll: %s linked issue(s), %s changed since %s, %s gone; %s event(s)",
                 len(keys), len(found), since.isoformat() if since else "ever", len(missing),
                 stored)
        return stored

    def _search(self, keys: list[str], since: datetime | None, found: list[IssueState],
                missing: list[str]) -> None:
        if not keys:
            return
        try:
            found += self.jira.search_updated(keys, since)
        except InvalidRequestError:
            if len(keys) == 1:
                missing.append(keys[0])  # it names an issue that no longer exists
                return
            half = len(keys) // 2
            self._search(keys[:half], since, found, missing)
            self._search(keys[half:], since, found, missing)

    def _deleted(self, key: str) -> bool:
        """Whether a key Jira refused to search for names an issue that is gone: Jira also
        refuses an issue the account may no longer see, which is not a deletion."""
        try:
            self.jira.get_issue(key)
        except NotFoundError:
            return True
        except Exception as exc:  # cannot tell now: the next poll asks again
            log.warning("jira poll: %s could not be searched nor read (%s)", key, exc)
            return False
        log.warning("jira poll: %s exists but the search refused it; left for the next poll",
                    key)
        return False

    def _compare(self, conn: sa.Connection, state: IssueState) -> int:
        new = issue_state(state.status, state.resolution, state.priority,
                          list(state.fix_versions))
        known = stored_issue(conn, state.key)
        if known is None:
            put_issue(conn, state.key, state.id, new, state.updated)
            return 0
        if known.updated >= state.updated or known.state == new:
            return 0
        _, changes = take_own(conn, state.key, changes_between(known.state, new))
        if not changes:  # only what Switchboard changed itself: recorded, not reported
            put_issue(conn, state.key, state.id, new, state.updated)
            return 0
        event = _event(state.key, state.id, new, state.updated, changes, "jira:issue_updated")
        return self._store(conn, event, f"poll:{int(state.updated.timestamp() * 1000)}")

    def _gone(self, conn: sa.Connection, key: str) -> int:
        known = stored_issue(conn, key)
        if known is None:  # deleted before its state was ever recorded: never searched again
            put_issue(conn, key, "", issue_state(None, None, None, []), utcnow(), gone=True)
            return 0
        # Recorded as gone when the event is processed (``sync.jira_events``); until then a
        # poll that finds it again stores the same event, which the inbox drops.
        event = _event(key, known.issue_id, known.state, utcnow(), (), "jira:issue_deleted")
        return self._store(conn, event, "poll:deleted")

    @staticmethod
    def _store(conn: sa.Connection, event: JiraEvent, suffix: str) -> int:
        result = inbox.accept_in(
            conn, source="jira", kind=f"poll:{event.event_type}", entity_key=event.entity_key,
            change_key=f"jira:issue:{event.issue_id}:{suffix}"[:192],
            payload={"style": "jira", "event": event.to_payload()})
        return int(result.accepted)
