"""Diffs and the subtraction of Switchboard's own writes (no loops, nothing of others' lost)."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.models import Ticket
from rules import Change
from sync.processor import diff_tickets, subtract_own

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 27, 10, 5, tzinfo=UTC)
OURS = {"add_tags": ["jira_linked", "switchboard_abc"], "remove_tags": ["needs_triage"],
        "fields": {"jira_key": "SUP-1"}, "status": "pending"}


def ticket(at: datetime, **kw) -> Ticket:
    return Ticket(id=1, updated_at=at, **kw)


def test_diff_lists_changed_fields_and_ignores_marker_tags():
    before = ticket(T0, status="new", tags=("a",), custom_fields={"error_code": None})
    after = ticket(T1, status="open", tags=("a", "switchboard_abc"),
                   custom_fields={"error_code": "E1"})
    changes = diff_tickets(before, after)
    assert changes == {"status": Change("new", "open"), "fields.error_code": Change(None, "E1")}


def test_a_pure_echo_of_our_write_leaves_no_change():
    before = ticket(T0, status="open", tags=("bug", "needs_triage"))
    after = ticket(T1, status="pending", tags=("bug", "jira_linked", "switchboard_abc"),
                   custom_fields={"jira_key": "SUP-1"})
    assert subtract_own(diff_tickets(before, after), [OURS]) == {}


def test_an_agents_change_mixed_into_the_echo_survives_the_subtraction():
    before = ticket(T0, status="open", priority="normal", tags=("bug", "needs_triage"))
    after = ticket(T1, status="pending", priority="urgent",
                   tags=("bug", "jira_linked", "switchboard_abc", "vip"),
                   custom_fields={"jira_key": "SUP-1"})
    left = subtract_own(diff_tickets(before, after), [OURS])
    assert left == {"priority": Change("normal", "urgent"),
                    "tags": Change(["bug", "needs_triage"], ["bug", "vip", "needs_triage"])}


def test_a_field_someone_else_set_to_another_value_is_not_ours():
    before = ticket(T0, custom_fields={"jira_key": None})
    after = ticket(T1, custom_fields={"jira_key": "OPS-9"})
    assert "fields.jira_key" in subtract_own(diff_tickets(before, after), [OURS])


def test_without_deltas_nothing_is_subtracted():
    before = ticket(T0, tags=("a",))
    after = ticket(T1, tags=("a", "jira_linked"))
    assert subtract_own(diff_tickets(before, after), []) == {"tags": Change(["a"],
                                                                            ["a", "jira_linked"])}


def test_two_writes_seen_at_once_are_both_subtracted():
    first = {"add_tags": ["jira_linked", "switchboard_aaa"], "fields": {"jira_key": "SUP-1"}}
    second = {"add_tags": ["switchboard_bbb"], "remove_tags": ["needs_triage"],
              "status": "pending"}
    before = ticket(T0, status="open", tags=("bug", "needs_triage"))
    after = ticket(T1, status="pending",
                   tags=("bug", "jira_linked", "switchboard_aaa", "switchboard_bbb"),
                   custom_fields={"jira_key": "SUP-1"})
    assert subtract_own(diff_tickets(before, after), [first, second]) == {}


def test_attaching_a_ticket_to_a_problem_is_subtracted_but_another_type_change_is_not():
    attach = {"add_tags": ["switchboard_ccc"], "ticket": {"type": "incident", "problem_id": 7}}
    before = ticket(T0, type="question", tags=("a",))
    after = ticket(T1, type="incident", tags=("a", "switchboard_ccc"))
    assert subtract_own(diff_tickets(before, after), [attach]) == {}
    other = ticket(T1, type="task", tags=("a", "switchboard_ccc"))
    assert subtract_own(diff_tickets(before, other), [attach]) == {
        "type": Change("question", "task")}


def test_durations_count_back_from_when_the_event_arrived_not_from_its_own_stamp(tmp_path):
    import sqlalchemy as sa

    from rules import load_rules
    from rules.source import load_yaml
    from sync import inbox
    from sync.processor import EventProcessor
    from sync.retry import RetryPolicy
    from sync.schema import decisions
    from sync.store import Store

    class Zendesk:
        def ticket_url(self, ticket_id: int) -> str:
            return f"https://sandbox.zendesk.com/agent/tickets/{ticket_id}"

    rules = load_rules([load_yaml(
        "rules:\n  - id: fresh\n    on: [ticket.created]\n"
        "    if: {field: ticket.updated_at, op: within, value: 1h}\n"
        "    then: [{zendesk.update: {note: fresh}}]\n", "rules.yaml")], custom_fields=())
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}").open()
    try:
        proc = EventProcessor(store, rules, Zendesk(), retry=RetryPolicy(3))
        stale = {"id": 7, "updated_at": "2020-01-01T00:00:00Z",
                 "created_at": "2020-01-01T00:00:00Z", "tags": []}
        inbox.accept(store, source="zendesk", kind="poll", entity_key="zendesk:ticket:7",
                     change_key="7:2020", payload={"style": "poll", "hint": "ticket.created",
                                                   "complete": True, "fields": stale})
        [item] = inbox.acquire(store, "t/w", 1, 60)
        proc.process(item)
        with store.read() as conn:
            [decision] = conn.execute(sa.select(decisions)).all()
        # Measured from its own stamp the change would look fresh; it arrived years later.
        assert decision.matched is False
    finally:
        store.close()
