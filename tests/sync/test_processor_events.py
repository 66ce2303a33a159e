"""The processor with the new event types and roots, over the real Zendesk connector talking
HTTP to the sandbox: one change is several event types (each rule decided once), comments are
looked for only when a rule listens to them, and requesters / organizations are read only when a
rule that can fire reads them — in one call, then from the cache."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from textwrap import dedent
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.settings import ZendeskSettings
from connectors.zendesk import ZendeskConnector
from rules import load_rules, load_yaml
from sandbox import Sandbox
from sync import inbox
from sync.processor import DEEP_COMMENTS, RECENT_COMMENTS, EventProcessor
from sync.retry import RetryPolicy
from sync.schema import decisions
from sync.schema import inbox as inbox_table
from sync.store import Store

USER_FIELDS = ("seats",)
ORG_FIELDS = ("plan_tier",)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        sandbox.zendesk.create_organization(
            {"id": 501, "name": "Globex", "organization_fields": {"plan_tier": "enterprise"}})
        sandbox.zendesk.create_user({"id": 7501, "name": "Dana Reyes", "organization_id": 501,
                                     "email": "dana@globex.example",
                                     "user_fields": {"seats": 250}})
        yield sandbox


class Hub:
    """A processor over the real connector, fed events the way the poller feeds them."""

    def __init__(self, sb: Sandbox, store: Store, rules_text: str) -> None:
        self.sb, self.store = sb, store
        self.zendesk = ZendeskConnector(ZendeskSettings(
            subdomain="sandbox", email="agent@example.com", api_token="zd-token",
            base_url=sb.zendesk_url, user_fields=USER_FIELDS, organization_fields=ORG_FIELDS))
        rules = load_rules([load_yaml(dedent(rules_text), "rules.yaml")], custom_fields=(),
                           user_fields=USER_FIELDS, organization_fields=ORG_FIELDS)
        self.proc = EventProcessor(store, rules, self.zendesk, retry=RetryPolicy(3),
                                   user_fields=USER_FIELDS, organization_fields=ORG_FIELDS)

    def ticket(self, **data: Any) -> int:
        data = {"subject": "Import fails", "description": "E1042", "requester_id": 7501,
                "organization_id": 501, **data}
        return int(self.sb.zendesk.create_ticket(data)["id"])

    def feed(self, ticket_id: int, **kwargs: Any) -> str:
        """Queue the ticket's current state as one event and process it."""
        self.queue(ticket_id, **kwargs)
        return self.run()

    def run(self) -> str:
        """Process the queued event; the sandbox's request log is cleared first, so that it
        then shows what processing the event cost."""
        [item] = inbox.acquire(self.store, "t/w", 1, 60)
        self.sb.requests.clear()
        return self.proc.process(item)

    def queue(self, ticket_id: int, *, style: str = "poll", hint: str = "ticket.updated",
              partial: bool = False, comment: dict[str, Any] | None = None) -> None:
        """Accept the ticket's current state as one event, as the poller or receiver would."""
        fields = self.zendesk.get_ticket(ticket_id).to_dict()
        if partial:  # an event subscription: no custom fields
            del fields["fields"]
        payload: dict[str, Any] = {"style": style, "hint": hint, "complete": not partial,
                                   "fields": fields}
        if comment is not None:
            payload["comment"] = comment
        inbox.accept(self.store, source="zendesk", kind=style,
                     entity_key=f"zendesk:ticket:{ticket_id}",
                     change_key=f"zendesk:ticket:{ticket_id}:{fields['updated_at']}",
                     payload=payload)

    def calls(self) -> list[str]:
        """``METHOD path?query`` of each request Zendesk received (parameters sorted)."""
        out = []
        for entry in self.sb.requests.entries("zendesk"):
            query = "&".join(f"{k}={v}" for k, v in sorted(entry.query.items()))
            out.append(f"{entry.method} {entry.path}" + (f"?{query}" if query else ""))
        return out

    def decisions(self) -> list[tuple[str, str, bool]]:
        with self.store.read() as conn:
            rows = conn.execute(sa.select(decisions).order_by(decisions.c.id)).all()
        return [(r.rule_id, r.event_type, r.matched) for r in rows]

    def outcomes(self) -> list[str]:
        with self.store.read() as conn:
            return [r.outcome for r in conn.execute(
                sa.select(inbox_table).order_by(inbox_table.c.id)).all()]


SOLVED_RULES = """\
    rules:
      - id: on-update
        on: [ticket.updated]
        then: [{zendesk.update: {add_tags: [updated]}}]
      - id: on-solve
        on: [ticket.solved]
        if: {field: changes.status.from, op: equals, value: pending}
        then: [{zendesk.update: {add_tags: [solved_after_pending]}}]
      - id: either
        on: [ticket.updated, ticket.solved]
        if: {field: event.type, op: equals, value: ticket.solved}
        then: [{zendesk.update: {add_tags: [either]}}]
"""


def test_a_change_to_solved_fires_update_and_solve_rules_each_once(sb, store) -> None:
    hub = Hub(sb, store, SOLVED_RULES)
    ticket_id = hub.ticket(status="pending")
    hub.feed(ticket_id, hint="ticket.created")
    sb.zendesk.update_ticket(ticket_id, {"status": "solved"})
    outcome = hub.feed(ticket_id)
    assert outcome.startswith("ticket.updated + ticket.solved;")
    assert hub.decisions()[-3:] == [
        ("on-update", "ticket.updated", True),
        ("on-solve", "ticket.solved", True),
        ("either", "ticket.solved", True),  # tried as ticket.updated first: no match
    ]
    assert hub.calls() == []  # a complete poll payload and no people: nothing read


def test_a_change_not_to_solved_is_only_an_update(sb, store) -> None:
    hub = Hub(sb, store, SOLVED_RULES)
    ticket_id = hub.ticket(status="open")
    hub.feed(ticket_id, hint="ticket.created")
    sb.zendesk.update_ticket(ticket_id, {"status": "pending"})
    hub.feed(ticket_id)
    assert hub.decisions()[-2:] == [("on-update", "ticket.updated", True),
                                    ("either", "ticket.updated", False)]


COMMENT_RULES = """\
    rules:
      - id: customer-replied
        on: [ticket.comment_added]
        if: {field: comment.public, op: equals, value: true}
        then: [{zendesk.update: {note: "Customer wrote: {{ comment.body }}"}}]
"""


def test_a_comment_alone_is_found_by_one_read_and_fires_comment_rules(sb, store) -> None:
    hub = Hub(sb, store, COMMENT_RULES)
    ticket_id = hub.ticket()
    hub.feed(ticket_id, hint="ticket.created")
    sb.zendesk.update_ticket(ticket_id, {"comment": {"body": "Any news?", "public": True}},
                             author_id=7501)
    outcome = hub.feed(ticket_id)
    assert outcome.startswith("ticket.comment_added;") and "1 intent(s) planned" in outcome
    assert hub.decisions()[-1] == ("customer-replied", "ticket.comment_added", True)
    assert hub.calls() == [
        f"GET /api/v2/tickets/{ticket_id}/comments.json?page[size]=5&sort=-created_at",
        "GET /api/v2/users/me.json",
    ]
    with store.read() as conn:
        context = conn.execute(sa.text("SELECT context FROM outbox")).scalar_one()
    assert "Any news?" in str(context)


def test_switchboards_own_note_is_not_a_new_comment(sb, store) -> None:
    hub = Hub(sb, store, COMMENT_RULES)
    ticket_id = hub.ticket()
    hub.feed(ticket_id, hint="ticket.created")
    sb.zendesk.update_ticket(ticket_id, {"comment": {"body": "Linked to SUP-1", "public": True}},
                             author_id=sb.zendesk.api_author_id)
    assert hub.feed(ticket_id) == "no field changed; no rule run"
    assert [d for d in hub.decisions() if d[1] == "ticket.comment_added"] == []


def test_without_comment_rules_no_comment_is_read(sb, store) -> None:
    hub = Hub(sb, store, SOLVED_RULES)
    ticket_id = hub.ticket()
    hub.feed(ticket_id, hint="ticket.created")
    sb.zendesk.update_ticket(ticket_id, {"comment": {"body": "Any news?", "public": True}},
                             author_id=7501)
    assert hub.feed(ticket_id) == "no field changed; no rule run"
    assert hub.calls() == []


ESCALATED_COMMENT_RULES = """\
    rules:
      - id: eng-note
        on: [ticket.comment_added]
        if:
          all:
            - {field: ticket.tags, op: contains, value: escalated}
            - {field: comment.body, op: matches, value: "^#eng"}
        then: [{zendesk.update: {add_tags: [eng_note]}}]
"""


def test_no_comment_is_read_when_no_comment_rule_could_match_the_ticket(sb, store) -> None:
    hub = Hub(sb, store, ESCALATED_COMMENT_RULES)
    plain = hub.ticket()
    hub.feed(plain, hint="ticket.created")
    sb.zendesk.update_ticket(plain, {"comment": {"body": "#eng hi", "public": False}})
    assert hub.feed(plain) == "no field changed; no rule run"
    assert hub.calls() == []  # the rule needs the tag the ticket lacks: nothing to read
    escalated = hub.ticket(tags=["escalated"])
    hub.feed(escalated, hint="ticket.created")
    sb.zendesk.update_ticket(escalated, {"comment": {"body": "#eng hi", "public": False}})
    assert hub.feed(escalated).startswith("ticket.comment_added;")
    assert hub.decisions()[-1] == ("eng-note", "ticket.comment_added", True)
    assert any("/comments" in call for call in hub.calls())


def test_a_comment_the_webhook_carries_costs_no_comment_read(sb, store) -> None:
    hub = Hub(sb, store, COMMENT_RULES)
    ticket_id = hub.ticket()
    hub.feed(ticket_id, hint="ticket.created")
    sb.zendesk.update_ticket(ticket_id, {"comment": {"body": "Thanks!", "public": True}},
                             author_id=7501)
    carried = {"id": 1, "body": "Thanks!", "public": True, "author_id": 7501,
               "created_at": sb.zendesk.ticket(ticket_id)["updated_at"]}
    hub.feed(ticket_id, style="event", partial=True, comment=carried)
    assert hub.decisions()[-1] == ("customer-replied", "ticket.comment_added", True)
    assert not any("/comments" in call for call in hub.calls())


def comments_call(ticket_id: int, page_size: int) -> str:
    """The request for a ticket's newest comments, as :meth:`Hub.calls` shows it."""
    return f"GET /api/v2/tickets/{ticket_id}/comments.json?page[size]={page_size}&sort=-created_at"


def a_note_buried_by_own_notes(hub: Hub, own_notes: int) -> int:
    """An escalated ticket Switchboard has seen, then an agent's ``#eng`` note whose event is
    queued, then ``own_notes`` notes by Switchboard's user landing before it is processed (the
    notes fanned out for earlier changes, say). Returns the ticket's id."""
    ticket_id = hub.ticket(tags=["escalated"])
    hub.feed(ticket_id, hint="ticket.created")
    hub.sb.zendesk.update_ticket(ticket_id, {"comment": {"body": "#eng still E1042",
                                                         "public": False}})
    hub.queue(ticket_id)
    for n in range(own_notes):
        hub.sb.zendesk.update_ticket(ticket_id, {"comment": {"body": f"Posted to Slack ({n})",
                                                             "public": False}},
                                     author_id=hub.sb.zendesk.api_author_id)
    return ticket_id


@pytest.mark.parametrize("own_notes", [
    pytest.param(RECENT_COMMENTS, id="first-page-all-newer"),
    pytest.param(DEEP_COMMENTS - 1, id="note-last-of-the-deep-page"),
])
def test_a_note_buried_under_newer_comments_is_found_by_one_deeper_read(
        sb, store, own_notes: int) -> None:
    hub = Hub(sb, store, ESCALATED_COMMENT_RULES)
    ticket_id = a_note_buried_by_own_notes(hub, own_notes)
    outcome = hub.run()
    assert outcome.startswith("ticket.comment_added;") and "1 intent(s) planned" in outcome
    assert [d for d in hub.decisions() if d[1] == "ticket.comment_added"] == [
        ("eng-note", "ticket.comment_added", True)]
    assert hub.calls() == [comments_call(ticket_id, RECENT_COMMENTS),
                           comments_call(ticket_id, DEEP_COMMENTS),
                           "GET /api/v2/users/me.json"]
    with store.read() as conn:
        [(rule_id,)] = conn.execute(sa.text("SELECT rule_id FROM outbox")).all()
    assert rule_id == "eng-note"


def test_a_note_buried_deeper_than_the_deep_read_is_warned_about_not_raised(
        sb, store, caplog: pytest.LogCaptureFixture) -> None:
    hub = Hub(sb, store, ESCALATED_COMMENT_RULES)
    ticket_id = a_note_buried_by_own_notes(hub, DEEP_COMMENTS)
    caplog.set_level(logging.WARNING, logger="switchboard.processor")
    assert hub.run() == "no field changed; no rule run"
    assert hub.calls() == [comments_call(ticket_id, RECENT_COMMENTS),
                           comments_call(ticket_id, DEEP_COMMENTS)]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"ticket {ticket_id}: its newest {DEEP_COMMENTS} comments are all newer than the "
        "state last processed; a comment this change added may be missed"]
    assert [d for d in hub.decisions() if d[1] == "ticket.comment_added"] == []


def test_a_comment_and_a_solve_in_one_update_are_three_event_types(sb, store) -> None:
    hub = Hub(sb, store, dedent(SOLVED_RULES) + dedent(COMMENT_RULES).split("rules:\n", 1)[1])
    ticket_id = hub.ticket(status="pending")
    hub.feed(ticket_id, hint="ticket.created")
    sb.zendesk.update_ticket(ticket_id, {"status": "solved",
                                         "comment": {"body": "Fixed!", "public": True}})
    outcome = hub.feed(ticket_id)
    assert outcome.startswith("ticket.updated + ticket.solved + ticket.comment_added;")
    assert {d[0] for d in hub.decisions() if d[2]} >= {"on-update", "on-solve",
                                                       "customer-replied"}


PEOPLE_RULES = """\
    rules:
      - id: enterprise
        on: [ticket.updated]
        if: {field: organization.fields.plan_tier, op: equals, value: enterprise}
        then: [{zendesk.update: {note: "for {{ requester.name }} ({{ requester.fields.seats }})"}}]
"""


def test_people_are_read_in_one_call_only_when_a_rule_reads_them_then_cached(sb, store) -> None:
    hub = Hub(sb, store, PEOPLE_RULES)
    first, second = hub.ticket(), hub.ticket(subject="Another")
    for ticket_id in (first, second):
        hub.feed(ticket_id, hint="ticket.created")  # no rule listens to ticket.created
        assert hub.calls() == []
    sb.zendesk.update_ticket(first, {"priority": "high"})
    outcome = hub.feed(first)
    assert hub.calls() == [
        f"GET /api/v2/tickets/{first}.json?include=users,organizations"]
    assert ("read the requester and organization: rule enterprise may match, depending on "
            "organization.fields.plan_tier") in outcome
    assert hub.decisions()[-1] == ("enterprise", "ticket.updated", True)
    with store.read() as conn:
        context = conn.execute(sa.text("SELECT context FROM outbox")).scalar_one()
    assert "Dana Reyes" in str(context) and "250" in str(context)
    sb.zendesk.update_ticket(second, {"priority": "high"})
    hub.feed(second)
    assert hub.calls() == []  # same requester and organization: cached
    assert hub.decisions()[-1] == ("enterprise", "ticket.updated", True)


def test_a_partial_event_needing_only_the_requester_costs_one_read_of_the_requester(
        sb, store) -> None:
    hub = Hub(sb, store, """\
        rules:
          - id: vip-bug
            on: [ticket.updated]
            if:
              all:
                - {field: ticket.priority, op: equals, value: urgent}
                - {field: requester.fields.seats, op: gte, value: 100}
            then: [{zendesk.update: {add_tags: [vip_bug]}}]
        """)
    hub.proc.custom_fields = ("error_code",)
    ticket_id = hub.ticket()
    hub.feed(ticket_id, hint="ticket.created")
    sb.zendesk.update_ticket(ticket_id, {"priority": "low"})
    hub.feed(ticket_id, style="event", partial=True)
    assert hub.calls() == []  # the priority rules the rule out: no read at all
    sb.zendesk.update_ticket(ticket_id, {"priority": "urgent"})
    hub.feed(ticket_id, style="event", partial=True)
    assert hub.calls() == ["GET /api/v2/users/7501.json"]  # not the organization
    assert hub.decisions()[-1] == ("vip-bug", "ticket.updated", True)


def test_people_used_only_by_actions_are_read_only_for_a_match(sb, store) -> None:
    hub = Hub(sb, store, """\
        rules:
          - id: greet
            on: [ticket.updated]
            if: {field: ticket.priority, op: equals, value: urgent}
            then: [{zendesk.update: {note: "Hello {{ requester.name }}"}}]
        """)
    ticket_id = hub.ticket()
    hub.feed(ticket_id, hint="ticket.created")
    sb.zendesk.update_ticket(ticket_id, {"priority": "low"})
    hub.feed(ticket_id)
    assert hub.calls() == []
    sb.zendesk.update_ticket(ticket_id, {"priority": "urgent"})
    outcome = hub.feed(ticket_id)
    assert len(hub.calls()) == 1
    assert "matched rule greet uses requester.name" in outcome


def test_a_deleted_requester_reads_as_unset(sb, store) -> None:
    hub = Hub(sb, store, PEOPLE_RULES.replace("organization.fields.plan_tier", "requester.name")
              .replace("value: enterprise", "value: Dana Reyes"))
    ticket_id = hub.ticket()
    hub.feed(ticket_id, hint="ticket.created")
    sb.zendesk.delete_user(7501)
    sb.zendesk.update_ticket(ticket_id, {"priority": "high"})
    hub.feed(ticket_id)
    assert hub.decisions()[-1] == ("enterprise", "ticket.updated", False)


def test_a_rate_limited_people_read_retries_the_event_later(sb, store) -> None:
    hub = Hub(sb, store, PEOPLE_RULES)
    ticket_id = hub.ticket()
    hub.feed(ticket_id, hint="ticket.created")
    sb.zendesk.update_ticket(ticket_id, {"priority": "high"})
    hub.queue(ticket_id)
    sb.faults.add("zendesk", "GET", r"/tickets/\d+\.json", kind="status", status=429,
                  headers={"Retry-After": "30"}, body={"error": "APIRateLimitExceeded"})
    outcome = hub.run()
    assert outcome.startswith("retry in ") and "429" in outcome
    assert hub.decisions() == []
    with store.read() as conn:
        assert conn.execute(sa.select(inbox_table.c.status)
                            .order_by(inbox_table.c.id.desc())).first().status == "pending"
