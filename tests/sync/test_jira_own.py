"""Switchboard's own Jira changes, announced before they are written, are taken out of what the
reconciliation poll reports — once each, and not after they expire."""

from __future__ import annotations

import pytest

from connectors.jira_webhooks import FieldChange
from sync import jira_own
from sync.jira_own import announce, take_own, withdraw
from sync.state import get_cursor

STATUS = FieldChange("status", None, "Done", None, "Reopened")
RESOLUTION = FieldChange("resolution", None, "Done", None, None)
PRIORITY = FieldChange("priority", None, "Medium", None, "High")


def test_an_announced_change_is_own_once_and_the_rest_is_reported(store) -> None:
    with store.write() as conn:
        announce(conn, "SUP-1", "status", "reopened")  # compared case-insensitively
        announce(conn, "SUP-1", "resolution", None)  # whatever the transition does to it
        own, others = take_own(conn, "SUP-1", [STATUS, RESOLUTION, PRIORITY])
        assert (own, others) == ((STATUS, RESOLUTION), (PRIORITY,))
        assert get_cursor(conn, "jira-own:SUP-1") is None  # used up
        assert take_own(conn, "SUP-1", [STATUS]) == ((), (STATUS,))


def test_a_different_value_is_not_explained_by_the_announcement(store) -> None:
    with store.write() as conn:
        announce(conn, "SUP-1", "priority", "Highest")
        assert take_own(conn, "SUP-1", [PRIORITY]) == ((), (PRIORITY,))
        assert take_own(conn, "SUP-2", [PRIORITY]) == ((), (PRIORITY,))  # another issue


def test_switchboards_webhook_uses_the_announcements_up(store) -> None:
    with store.write() as conn:
        announce(conn, "SUP-1", "priority", "Highest")
        assert take_own(conn, "SUP-1", [PRIORITY], all_own=True) == ((PRIORITY,), ())
        assert get_cursor(conn, "jira-own:SUP-1") is None


def test_a_withdrawn_or_expired_announcement_explains_nothing(
        store, monkeypatch: pytest.MonkeyPatch) -> None:
    with store.write() as conn:
        announce(conn, "SUP-1", "status", "Reopened")
        withdraw(conn, "SUP-1", "status")
        assert take_own(conn, "SUP-1", [STATUS]) == ((), (STATUS,))
        announce(conn, "SUP-1", "status", "Reopened")
    now = jira_own.time.time()
    monkeypatch.setattr(jira_own.time, "time", lambda: now + jira_own.OWN_CHANGE_SECONDS + 1)
    with store.write() as conn:
        assert take_own(conn, "SUP-1", [STATUS]) == ((), (STATUS,))
        assert get_cursor(conn, "jira-own:SUP-1") is None  # the stale one is dropped
