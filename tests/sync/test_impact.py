"""``jira.impact``: the customer impact of a bug, on the bug, as ONE comment kept current in
place. The real Zendesk and Jira connectors over HTTP against the sandbox's stand-ins."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.errors import InvalidRequestError, RetriableError
from connectors.jira import JiraConnector
from connectors.settings import JiraSettings
from connectors.zendesk import ZendeskConnector
from rules.actions import JiraImpactParams
from rules.planner import idempotency_key
from sandbox import Sandbox
from sync import outbox
from sync.impact import IMPACT, MARKER, jira_impact
from sync.links import add_link
from sync.state import get_cursor, put_snapshot
from sync.store import Store
from tests.connectors.support import zendesk_settings
from tests.support.intents import run_queued

COMMENTS = r"^/rest/api/2/issue/[^/]+/comment"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        sandbox.zendesk.create_organization({"id": 501, "name": "Acme Logistics",
                                             "organization_fields": {"plan_tier": "enterprise"}})
        sandbox.zendesk.create_organization({"id": 502, "name": "Brightside Dental",
                                             "organization_fields": {"plan_tier": "growth"}})
        yield sandbox


class Rig:
    def __init__(self, sb: Sandbox, store: Store) -> None:
        self.sb, self.store = sb, store
        self.zendesk = ZendeskConnector(zendesk_settings(base_url=sb.zendesk_url,
                                                         organization_fields=("plan_tier",)))
        self.jira = JiraConnector(JiraSettings(url=sb.jira_url, email="hub@example.com",
                                               api_token="sandbox-token"))
        self.key = str(sb.jira.create_issue({"project": {"key": "SUP"},
                                             "issuetype": {"name": "Bug"},
                                             "summary": "Import fails"})["key"])
        self.runs = 0

    def ticket(self, *, priority: str, org: int, description: str = "It fails") -> int:
        ticket_id = int(self.sb.zendesk.create_ticket(
            {"subject": "Import fails", "description": description, "priority": priority,
             "organization_id": org})["id"])
        self.seen(ticket_id)
        with self.store.write() as conn:
            add_link(conn, ticket_id, "jira", self.key, None)
        return ticket_id

    def seen(self, ticket_id: int) -> None:
        """Switchboard has processed the ticket's current state."""
        with self.store.write() as conn:
            put_snapshot(conn, self.zendesk.get_ticket(ticket_id))

    def run(self, *, retry: bool = False, **extra: Any) -> dict[str, Any]:
        """Run a new ``jira.impact`` intent (``retry``: the last one again, as the dispatcher
        retries it)."""
        params = JiraImpactParams.model_validate({"issue": self.key, **extra}).model_dump(
            mode="json")
        if not retry:
            self.runs += 1
            key = idempotency_key("impact", 0, IMPACT, f"run-{self.runs}")
            with self.store.write() as conn:
                outbox.add_intent(conn, idem_key=key, inbox_id=1, rule_id="impact",
                                  action=IMPACT, ticket_id=None,
                                  order_key=f"jira-linked:{self.key}", depends_on=None,
                                  params=params, context={})
        return run_queued(self.store, jira_impact, params=params, zendesk=self.zendesk,
                          jira=self.jira)

    def comments(self) -> list[dict[str, Any]]:
        return self.sb.jira.comments(self.key)


def test_the_roll_up_is_one_comment_edited_in_place_only_when_it_changes(sb, store):
    rig = Rig(sb, store)
    first = rig.ticket(priority="urgent", org=501, description="Depots upload fails with E1042")
    result = rig.run()
    assert result["created"] is True
    [comment] = rig.comments()
    body = comment["body"]
    assert MARKER in body and "*Linked tickets:* 1 — 1 open, 0 solved" in body
    assert "Acme Logistics (enterprise)" in body and "urgent 1" in body
    assert f"*Oldest waiting:* [#{first}|" in body and "Depots upload fails with E1042" in body

    rig.ticket(priority="high", org=502, description="Same here since this morning")
    rig.ticket(priority="high", org=501)
    sb.requests.clear()
    result = rig.run()
    assert (result["changed"], result["created"]) == (True, False)
    [comment] = rig.comments()  # still one comment, edited
    assert "*Linked tickets:* 3 — 3 open, 0 solved" in comment["body"]
    assert "urgent 1, high 2" in comment["body"]
    assert "Acme Logistics (enterprise) ×2, Brightside Dental (growth)" in comment["body"]
    assert sb.requests.count("jira", method="PUT", path_regex=COMMENTS) == 1
    assert sb.requests.count("jira", method="POST", path_regex=COMMENTS) == 0

    sb.requests.clear()
    assert rig.run()["changed"] is False  # nothing new: no call to Jira at all
    assert sb.requests.entries("jira") == []

    sb.zendesk.update_ticket(first, {"status": "solved"})
    rig.seen(first)
    rig.run()
    [comment] = rig.comments()
    assert "*Linked tickets:* 3 — 2 open, 1 solved" in comment["body"]


def test_a_lost_answer_to_the_create_is_found_by_the_marker_not_repeated(sb, store):
    rig = Rig(sb, store)
    rig.ticket(priority="normal", org=501)
    # The comment lands but its answer is lost: the retry finds it instead of adding another.
    sb.faults.add("jira", "POST", COMMENTS, kind="reset_after_commit")
    with pytest.raises(Exception):  # noqa: B017 - the ambiguous failure, whatever its class
        rig.run()
    rig.ticket(priority="urgent", org=502)
    result = rig.run()
    assert len(rig.comments()) == 1
    assert "*Linked tickets:* 2" in rig.comments()[0]["body"]
    assert result["comment"] == rig.comments()[0]["id"]


def test_a_roll_up_deleted_in_jira_starts_again(sb, store):
    rig = Rig(sb, store)
    rig.ticket(priority="normal", org=501)
    first = rig.run()
    sb.jira.delete_comment(rig.key, first["comment"])  # someone deletes it in Jira
    rig.ticket(priority="high", org=501)
    assert rig.run()["created"] is True
    [comment] = rig.comments()
    assert "*Linked tickets:* 2" in comment["body"]


def test_customer_text_cannot_turn_into_jira_markup(sb, store):
    rig = Rig(sb, store)
    rig.ticket(priority="low", org=501, description="{noformat}[click|http://evil] h1. boom")
    rig.run()
    body = rig.comments()[0]["body"]
    assert body.count("{noformat}") == 2  # only Switchboard's own pair
    assert "[click|http://evil]" in body.split("{noformat}")[1]


# --- raise_priority ---------------------------------------------------------------------------

ISSUE = r"^/rest/api/2/issue/SUP-\d+$"
BY_COUNT = [{"tickets": 10, "to": "High"}]
BY_BOTH = [{"tickets": 10, "to": "High"}, {"tier": "enterprise", "to": "Highest"}]


def _priority(sb: Sandbox, key: str) -> str:
    return str(sb.jira.issue(key)["fields"]["priority"]["name"])


def _writes(sb: Sandbox) -> int:
    return sb.requests.count("jira", method="PUT", path_regex=ISSUE)


def test_nine_tickets_raise_nothing_and_the_tenth_raises_the_priority_once(sb, store):
    rig = Rig(sb, store)
    assert _priority(sb, rig.key) == "Medium"
    for _ in range(9):
        rig.ticket(priority="normal", org=502)
        assert rig.run(raise_priority=BY_COUNT)["priority"] == {"raised": False, "crossed": []}
    assert _writes(sb) == 0
    rig.ticket(priority="normal", org=502)
    result = rig.run(raise_priority=BY_COUNT)["priority"]
    assert result == {"crossed": ["tickets>=10"], "from": "Medium", "to": "High",
                      "raised": True}
    assert _priority(sb, rig.key) == "High" and _writes(sb) == 1
    sb.requests.clear()
    rig.ticket(priority="normal", org=502)  # the 11th: the crossing is recorded, nothing asked
    assert rig.run(raise_priority=BY_COUNT)["priority"] == {"raised": False, "crossed": []}
    assert sb.requests.count("jira", method="GET", path_regex=ISSUE) == 0
    assert _writes(sb) == 0
    [change] = sb.jira.changelog(rig.key)  # Switchboard's account made it
    assert change["accountId"] == sb.jira.account_id
    with store.read() as conn:
        impact = get_cursor(conn, f"impact:{rig.key}")
        assert impact["raised"]["tickets>=10"]["done"] is True
        assert impact["comment_id"]  # kept with the roll-up's state
        assert get_cursor(conn, f"jira-own:{rig.key}")["priority"]["to"] == "High"


def test_an_enterprise_customer_raises_the_bug_to_highest(sb, store):
    rig = Rig(sb, store)
    rig.ticket(priority="low", org=502)
    assert rig.run(raise_priority=BY_BOTH)["priority"]["raised"] is False
    rig.ticket(priority="low", org=501)  # Acme Logistics, plan tier enterprise
    result = rig.run(raise_priority=BY_BOTH)["priority"]
    assert (result["to"], result["crossed"], result["raised"]) == (
        "Highest", ["tier=enterprise"], True)
    assert _priority(sb, rig.key) == "Highest"
    for _ in range(8):  # the 10th ticket: High is below Highest, so nothing is written
        rig.ticket(priority="low", org=502)
        rig.run(raise_priority=BY_BOTH)
    assert _writes(sb) == 1 and _priority(sb, rig.key) == "Highest"


def test_an_engineers_priority_at_or_above_the_target_is_left_alone(sb, store):
    rig = Rig(sb, store)
    sb.jira.edit_issue(rig.key, {"priority": {"name": "Highest"}})  # an engineer's choice
    rig.ticket(priority="urgent", org=501)
    result = rig.run(raise_priority=BY_BOTH)["priority"]
    assert (result["raised"], result["why"]) == (False, "already Highest")
    assert _writes(sb) == 0
    sb.jira.edit_issue(rig.key, {"priority": {"name": "Low"}})  # lowered later on purpose
    rig.ticket(priority="urgent", org=501)
    assert rig.run(raise_priority=BY_BOTH)["priority"]["raised"] is False
    assert _priority(sb, rig.key) == "Low" and _writes(sb) == 0  # the crossing was used


def test_a_raise_whose_answer_was_lost_is_not_written_again_on_retry(sb, store):
    rig = Rig(sb, store)
    rig.ticket(priority="high", org=501)
    sb.faults.add("jira", "PUT", ISSUE, kind="reset_after_commit")
    with pytest.raises(RetriableError):
        rig.run(raise_priority=BY_BOTH)
    assert _priority(sb, rig.key) == "Highest"  # it landed
    result = rig.run(retry=True, raise_priority=BY_BOTH)["priority"]
    assert (result["raised"], result["why"]) == (False, "already Highest")
    assert _writes(sb) == 1
    assert len(sb.jira.changelog(rig.key)) == 1


def test_a_priority_jira_refuses_is_fatal_and_the_announcement_withdrawn(sb, store):
    rig = Rig(sb, store)
    rig.ticket(priority="high", org=501)
    with pytest.raises(InvalidRequestError) as info:
        rig.run(raise_priority=[{"tier": "enterprise", "to": "P0"}],
                priority_order=["P0", "Highest", "High", "Medium", "Low", "Lowest"])
    assert "priority selected is invalid" in str(info.value)
    with store.read() as conn:
        assert get_cursor(conn, f"jira-own:{rig.key}") is None
    assert _priority(sb, rig.key) == "Medium"


def test_a_priority_outside_priority_order_is_never_overruled(sb, store):
    rig = Rig(sb, store)
    rig.ticket(priority="high", org=501)
    result = rig.run(raise_priority=[{"tier": "enterprise", "to": "P1"}],
                     priority_order=["P1", "P2", "P3"])["priority"]
    assert result["raised"] is False
    assert result["why"] == "its priority 'Medium' is not in priority_order; left as it is"
    assert _writes(sb) == 0
