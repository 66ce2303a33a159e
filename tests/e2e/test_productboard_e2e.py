"""Feedback to product, end to end: the real hub and the real Productboard connector over HTTP
against the stand-in — one note per feedback ticket (one create call), the customer's later
words appended to the same note, an ambiguous or rate-limited create found instead of
duplicated, ticket text kept as data."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from sandbox import Sandbox
from sandbox.demo import load_sample, seed_organizations, zendesk_ticket
from sync.schema import productboard_notes
from tests.e2e.conftest import FIELD_IDS, calls, config_with, inbox, outbox, rows

SHIPPED = (config_with.__globals__["ROOT"] / "config.yaml").read_text(encoding="utf-8")
FEEDBACK_RULES = ("  - id: feedback-to-productboard"
                  + SHIPPED.split("  - id: feedback-to-productboard")[1]
                  .split("  - id: enterprise-down-page")[0])
IDS = {**FIELD_IDS, "feature_request": 360008, "feedback_summary": 360009}
CREATE = r"^/v2/notes$"


REQUESTER = 7501  # what sandbox.demo.zendesk_ticket makes the requester of org 501's tickets
EMAIL = "dana@acme.example"


@pytest.fixture
def pb_hub(sb: Sandbox, make_hub, tmp_path):
    seed_organizations(sb, load_sample())
    sb.zendesk.create_user({"id": REQUESTER, "name": "Dana Reyes", "email": EMAIL,
                            "role": "end-user", "organization_id": 501})
    sb.productboard.add_feature("Route export to CSV")
    # A workspace in use: it knows the tags and the customer already.
    sb.productboard.add_tags("feature-request", "routing", "zendesk")
    sb.productboard.add_user(EMAIL, "Dana Reyes")
    return make_hub(config_with(tmp_path, FEEDBACK_RULES))


def _request(sb: Sandbox, *, subject: str = "Please let us export routes to CSV",
             description: str = "We copy 300 routes by hand every Monday.",
             feature: str | None = "Route export to CSV", org: int = 501,
             tags: tuple[str, ...] = ("feature_request", "routing")) -> int:
    spec = {"subject": subject, "description": description, "priority": "normal",
            "type": "question", "status": "open", "tags": list(tags), "organization_id": org,
            "fields": {"feature_request": feature,
                       "feedback_summary": "Wants a CSV export of planned routes"}}
    ticket = int(sb.zendesk.create_ticket(zendesk_ticket(spec, IDS))["id"])
    sb.zendesk.deliver(ticket, style="trigger", event_type="ticket.created")
    return ticket


def _customer_says(sb: Sandbox, ticket: int, body: str, *, public: bool = True,
                   author: int | None = None) -> None:
    sb.zendesk.update_ticket(ticket, {"comment": {"body": body, "public": public}},
                             author_id=author if author is not None else REQUESTER)
    sb.zendesk.deliver(ticket, style="trigger", event_type="ticket.updated")


def _notes(sb: Sandbox, ticket: int) -> list[dict[str, Any]]:
    return sb.productboard.notes_for_record(f"zendesk-{ticket}-feedback-to-productboard")


def _content(note: dict[str, Any]) -> str:
    return str(note["fields"]["content"])


def test_a_feature_request_becomes_one_note_with_one_create_call(sb, pb_hub):
    hub = pb_hub
    ticket = _request(sb)
    assert hub.wait_idle(60)

    (note,) = _notes(sb, ticket)
    assert len(sb.productboard.notes()) == 1
    assert calls(sb, "productboard", "POST", CREATE) == 1  # the aim: one call per ticket
    fields = note["fields"]
    assert fields["name"] == "Please let us export routes to CSV"
    assert "We copy 300 routes by hand every Monday." in _content(note)
    assert "Wants a CSV export of planned routes" in _content(note)
    assert f"Zendesk ticket #{ticket}" in _content(note)
    assert note["metadata"]["source"]["system"] == "switchboard"
    assert note["metadata"]["source"]["url"].endswith(f"/tickets/{ticket}")
    tags = sorted(t["name"] if isinstance(t, dict) else t for t in fields.get("tags", []))
    assert tags == ["feature-request", "routing", "zendesk"]
    customer = sb.productboard.customer_of(note["id"])
    assert customer is not None and EMAIL in str(customer)
    (feature,) = [f for f in sb.productboard.entities("feature")
                  if f["fields"]["name"] == "Route export to CSV"]
    assert sb.productboard.linked_features(note["id"]) == [feature["id"]]
    assert "feedback_logged" in sb.zendesk.ticket(ticket)["tags"]
    (row,) = rows(hub, productboard_notes)
    assert (row.ticket_id, row.note_id, row.feature_id) == (ticket, note["id"], feature["id"])
    assert row.requester_email == EMAIL
    assert row.organization == "Acme Logistics"

    # Switchboard's own tag write comes back; a later agent edit too: no second note.
    sb.zendesk.deliver(ticket, style="trigger", event_type="ticket.updated")
    sb.zendesk.update_ticket(ticket, {"priority": "high"})
    sb.zendesk.deliver(ticket, style="trigger", event_type="ticket.updated")
    assert hub.wait_idle(30)
    assert len(sb.productboard.notes()) == 1
    assert calls(sb, "productboard", "POST", CREATE) == 1


def test_a_customer_and_tags_new_to_the_workspace_are_created_then_the_note(sb, pb_hub):
    hub = pb_hub
    sb.zendesk.create_user({"id": 7502, "name": "Lee Park", "email": "lee@beta.example",
                            "role": "end-user", "organization_id": 502})
    ticket = _request(sb, org=502, tags=("feature_request", "mobile"))
    assert hub.wait_idle(60)
    (note,) = _notes(sb, ticket)
    assert "lee@beta.example" in str(sb.productboard.customer_of(note["id"]))
    assert "mobile" in sb.productboard.tags()
    # Refused twice (unknown tag, unknown customer: nothing created), then created.
    assert calls(sb, "productboard", "POST", CREATE) == 3
    assert len(sb.productboard.notes()) == 1


def test_the_customers_later_words_are_appended_to_the_same_note_once(sb, pb_hub):
    hub = pb_hub
    ticket = _request(sb, feature=None)
    assert hub.wait_idle(60)
    _customer_says(sb, ticket, "Also: the export should include the driver's name.")
    assert hub.wait_idle(30)
    # An agent's public reply and an internal note are not the customer's words.
    _customer_says(sb, ticket, "Thanks, passed to product!", author=sb.zendesk.agent_author_id)
    _customer_says(sb, ticket, "internal: big account", public=False,
                   author=sb.zendesk.agent_author_id)
    assert hub.wait_idle(30)

    (note,) = _notes(sb, ticket)
    assert len(sb.productboard.notes()) == 1
    content = _content(note)
    assert content.count("the export should include the driver") == 1
    assert "passed to product" not in content and "big account" not in content
    assert content.index("We copy 300 routes") < content.index("driver's name")
    (row,) = rows(hub, productboard_notes)
    assert len(row.appended) == 1

    # The same webhook again: nothing appended twice.
    sb.zendesk.deliver(ticket, style="trigger", event_type="ticket.updated")
    assert hub.wait_idle(30)
    assert _content(_notes(sb, ticket)[0]).count("driver's name") == 1


def test_a_note_linked_to_a_feature_gets_later_words_as_a_linked_follow_up(sb, pb_hub):
    # Productboard does not let a note's content change once it is linked to a feature.
    hub = pb_hub
    ticket = _request(sb)
    assert hub.wait_idle(60)
    (note,) = _notes(sb, ticket)
    _customer_says(sb, ticket, "Also: the export should include the driver's name.")
    assert hub.wait_idle(30)
    assert "driver's name" not in _content(sb.productboard.note(note["id"]))
    (follow_up,) = [n for n in sb.productboard.notes() if n["id"] != note["id"]]
    assert "driver's name" in _content(follow_up)
    assert follow_up["fields"]["name"].endswith("(follow-up)")
    assert sb.productboard.linked_features(follow_up["id"]) == \
        sb.productboard.linked_features(note["id"])
    (intent,) = [r for r in rows(hub, outbox, outbox.c.action == "productboard.note")
                 if r.rule_id == "feedback-follow-up-to-productboard"]
    assert intent.status == "done"
    # Redelivered: not a second follow-up.
    sb.zendesk.deliver(ticket, style="trigger", event_type="ticket.updated")
    assert hub.wait_idle(30)
    assert len(sb.productboard.notes()) == 2


def test_an_ambiguous_create_is_found_not_duplicated(sb, pb_hub):
    hub = pb_hub
    sb.faults.add("productboard", "POST", CREATE, kind="reset_after_commit")
    ticket = _request(sb)
    assert hub.wait_idle(60)

    assert len(_notes(sb, ticket)) == 1
    assert len(sb.productboard.notes()) == 1
    assert calls(sb, "productboard", "POST", CREATE) == 1  # the lost answer: looked up, not resent
    assert calls(sb, "productboard", "GET", r"^/v2/notes$") >= 1
    (intent,) = rows(hub, outbox, outbox.c.action == "productboard.note")
    assert intent.status == "done" and intent.attempts >= 2
    (row,) = rows(hub, productboard_notes)
    assert row.note_id == _notes(sb, ticket)[0]["id"]


def test_a_rate_limited_create_waits_for_retry_after_and_lands_once(sb, pb_hub):
    hub = pb_hub
    sb.faults.add("productboard", "POST", CREATE, kind="status", status=429,
                  headers={"Retry-After": "1"},
                  body={"errors": [{"code": "rateLimit.exceeded", "title": "Too many"}]})
    ticket = _request(sb)
    assert hub.wait_idle(60)
    assert len(_notes(sb, ticket)) == 1
    (intent,) = rows(hub, outbox, outbox.c.action == "productboard.note")
    assert intent.status == "done"
    assert intent.attempts == 2
    assert calls(sb, "productboard", "POST", CREATE) == 2  # the refused one and the one that landed


def test_a_note_deleted_in_productboard_is_created_again_by_the_next_comment(sb, pb_hub):
    hub = pb_hub
    ticket = _request(sb)
    assert hub.wait_idle(60)
    (note,) = _notes(sb, ticket)
    # Someone deletes it in Productboard (its API, as the UI would).
    gone = requests.delete(f"{sb.productboard_url}/v2/notes/{note['id']}", timeout=5,
                           headers={"Authorization": "Bearer sandbox-token"})
    assert gone.status_code in (200, 204)
    _customer_says(sb, ticket, "Any news on the CSV export?")
    assert hub.wait_idle(30)
    (again,) = _notes(sb, ticket)
    assert again["id"] != note["id"]
    assert "Any news on the CSV export?" in _content(again)
    (row,) = rows(hub, productboard_notes)
    assert row.note_id == again["id"]


def test_ticket_text_is_data_in_the_note(sb, pb_hub):
    hub = pb_hub
    ticket = _request(sb, subject="Export {{ 7*7 }}",
                      description="<script>alert(1)</script> and {{ config }}")
    assert hub.wait_idle(60)
    (note,) = _notes(sb, ticket)
    assert note["fields"]["name"] == "Export {{ 7*7 }}"  # not 49
    content = _content(note)
    assert "<script>" not in content and "&lt;script&gt;" in content
    assert "{{ config }}" in content


def test_a_feature_productboard_does_not_know_leaves_the_note_unlinked(sb, pb_hub):
    hub = pb_hub
    ticket = _request(sb, feature="Teleportation")
    assert hub.wait_idle(60)
    (note,) = _notes(sb, ticket)
    assert sb.productboard.linked_features(note["id"]) == []
    (row,) = rows(hub, productboard_notes)
    assert row.feature_id is None
    assert not rows(hub, outbox, outbox.c.status.in_(["dead", "pending"]))


def test_productboard_refusing_the_token_dead_letters_with_a_clear_error(sb, pb_hub):
    hub = pb_hub
    sb.productboard.require_token("another-token")
    _request(sb)
    assert hub.wait_idle(60)
    (intent,) = rows(hub, outbox, outbox.c.action == "productboard.note")
    assert intent.status == "dead"
    assert re.search(r"401|auth", str(intent.last_error), re.I)
    assert "sandbox-token" not in str(intent.last_error)
    with hub.store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(productboard_notes)
                            ).scalar() == 0


def _feature_id(sb: Sandbox, name: str) -> str:
    (feature,) = [f for f in sb.productboard.entities("feature") if f["fields"]["name"] == name]
    return str(feature["id"])


def test_a_released_feature_drafts_a_reply_on_every_ticket_that_asked_for_it(sb, pb_hub):
    hub = pb_hub
    for org in (502, 503):
        sb.zendesk.create_user({"id": 7000 + org, "name": f"Customer {org}",
                                "email": f"c{org}@example.com", "role": "end-user",
                                "organization_id": org})
    sb.productboard.add_user("c502@example.com")
    sb.productboard.add_user("c503@example.com")
    asked = [_request(sb, org=org, subject=f"CSV export please ({org})")
             for org in (501, 502, 503)]
    other = _request(sb, feature=None, subject="Dark mode")
    assert hub.wait_idle(60)
    feature = _feature_id(sb, "Route export to CSV")
    assert hub.poll_productboard_now() == 0  # nothing changed yet

    sb.productboard.set_feature_status(feature, "In progress")
    assert hub.poll_productboard_now() == 1
    assert hub.wait_idle(30)
    assert not any("feature_released" in sb.zendesk.ticket(t)["tags"] for t in asked)

    sb.productboard.set_feature_status(feature, "Released")
    assert hub.poll_productboard_now() == 1
    assert hub.poll_productboard_now() == 0  # reported once
    assert hub.wait_idle(60)
    for ticket, org in zip(asked, (501, 502, 503), strict=True):
        notes = [c for c in sb.zendesk.comments(ticket)
                 if c.get("public") is False and "good news" in c["body"]]
        assert len(notes) == 1, ticket
        name = "Dana Reyes" if org == 501 else f"Customer {org}"
        assert f"Hi {name}, good news: Route export to CSV" in notes[0]["body"]
        assert f"CSV export please ({org})" in notes[0]["body"]
        assert "feature_released" in sb.zendesk.ticket(ticket)["tags"]
    assert "feature_released" not in sb.zendesk.ticket(other)["tags"]
    assert calls(sb, "zendesk", "PUT", r"update_many") == 1  # 3 tickets, one bulk update
    (fanout,) = rows(hub, outbox, outbox.c.action == "zendesk.update_linked")
    assert fanout.status == "done"

    # Its webhooks come back (Switchboard's own writes); the poll again: nothing more.
    for ticket in asked:
        sb.zendesk.deliver(ticket, style="trigger", event_type="ticket.updated")
    assert hub.poll_productboard_now() == 0
    assert hub.wait_idle(30)
    assert len(rows(hub, outbox, outbox.c.action == "zendesk.update_linked")) == 1


def test_a_feature_that_cannot_be_read_is_retried_at_the_next_poll(sb, pb_hub):
    hub = pb_hub
    _request(sb)
    assert hub.wait_idle(60)
    feature = _feature_id(sb, "Route export to CSV")
    sb.productboard.set_feature_status(feature, "Released")
    sb.faults.add("productboard", "GET", r"^/v2/entities/", kind="status", status=503, times=3)
    assert hub.poll_productboard_now() == 0  # not read: nothing lost, nothing reported
    sb.faults.clear()
    assert hub.poll_productboard_now() == 1
    assert hub.wait_idle(60)
    assert len(rows(hub, outbox, outbox.c.action == "zendesk.update_linked")) == 1


LINK = r"^/v2/notes/[^/]+/relationships$"


def test_a_feature_gone_when_the_note_is_linked_leaves_the_note_unlinked_and_known(sb, pb_hub):
    # The feature list is cached (feature_cache_seconds): a feature deleted meanwhile is found
    # by name, and Productboard answers the link with a 404. The note exists by then.
    hub = pb_hub
    sb.faults.add("productboard", "POST", LINK, kind="status", status=404)
    ticket = _request(sb)
    assert hub.wait_idle(60)
    (note,) = _notes(sb, ticket)
    assert sb.productboard.linked_features(note["id"]) == []
    (row,) = rows(hub, productboard_notes)
    assert (row.note_id, row.feature_id) == (note["id"], None)
    assert not rows(hub, outbox, outbox.c.status.in_(["dead", "pending"]))
    # The customer's later words go to that note: still one note for the ticket.
    _customer_says(sb, ticket, "Also: the export should include the driver's name.")
    assert hub.wait_idle(30)
    assert len(sb.productboard.notes()) == 1
    assert "driver's name" in _content(sb.productboard.note(note["id"]))


def test_a_link_that_fails_after_the_create_is_retried_without_creating_the_note_again(
        sb, pb_hub):
    # The note lands; linking it fails (a 503, then a reset: the link's answer is lost). The
    # retries link it; the note is not created again (its id is in the intent's progress).
    hub = pb_hub
    sb.faults.add("productboard", "POST", LINK, kind="status", status=503)
    sb.faults.add("productboard", "POST", LINK, kind="reset_after_commit")
    ticket = _request(sb)
    assert hub.wait_idle(60)
    (note,) = _notes(sb, ticket)
    assert len(sb.productboard.notes()) == 1
    assert calls(sb, "productboard", "POST", CREATE) == 1
    assert calls(sb, "productboard", "GET", r"^/v2/notes$") == 0  # not even looked for
    assert sb.productboard.linked_features(note["id"]) == [_feature_id(sb, "Route export to CSV")]
    (intent,) = [r for r in rows(hub, outbox, outbox.c.action == "productboard.note")]
    assert intent.status == "done" and intent.attempts == 3
    (row,) = rows(hub, productboard_notes)
    assert row.note_id == note["id"] and row.feature_id is not None


def test_a_link_refused_for_good_keeps_the_note_recorded_unlinked(sb, pb_hub):
    hub = pb_hub
    sb.faults.add("productboard", "POST", LINK, kind="status", status=403, times=None)
    ticket = _request(sb)
    assert hub.wait_idle(60)
    (note,) = _notes(sb, ticket)
    (row,) = rows(hub, productboard_notes)
    assert (row.note_id, row.feature_id) == (note["id"], None)
    assert not rows(hub, outbox, outbox.c.status.in_(["dead", "pending"]))


def test_a_follow_up_note_whose_link_failed_is_linked_when_the_intent_is_retried(sb, pb_hub):
    hub = pb_hub
    ticket = _request(sb)
    assert hub.wait_idle(60)
    (note,) = _notes(sb, ticket)
    # The follow-up note is created; linking it to the feature then fails once (a 503).
    sb.faults.add("productboard", "POST", LINK, kind="status", status=503)
    _customer_says(sb, ticket, "Also: the export should include the driver's name.")
    assert hub.wait_idle(30)
    (follow_up,) = [n for n in sb.productboard.notes() if n["id"] != note["id"]]
    assert "driver's name" in _content(follow_up)
    assert sb.productboard.linked_features(follow_up["id"]) == \
        sb.productboard.linked_features(note["id"]) != []
    (intent,) = [r for r in rows(hub, outbox, outbox.c.action == "productboard.note")
                 if r.rule_id == "feedback-follow-up-to-productboard"]
    assert intent.status == "done" and intent.attempts == 2


def test_a_deleted_note_created_again_stays_linked_to_the_tickets_feature(sb, pb_hub):
    hub = pb_hub
    ticket = _request(sb)
    assert hub.wait_idle(60)
    (note,) = _notes(sb, ticket)
    feature = _feature_id(sb, "Route export to CSV")
    gone = requests.delete(f"{sb.productboard_url}/v2/notes/{note['id']}", timeout=5,
                           headers={"Authorization": "Bearer sandbox-token"})
    assert gone.status_code in (200, 204)
    # The follow-up rule names no feature: the ticket's note keeps the one it had.
    _customer_says(sb, ticket, "Any news on the CSV export?")
    assert hub.wait_idle(30)
    (again,) = _notes(sb, ticket)
    assert sb.productboard.linked_features(again["id"]) == [feature]
    (row,) = rows(hub, productboard_notes)
    assert (row.note_id, row.feature_id) == (again["id"], feature)


def test_an_update_decided_before_the_first_note_landed_does_not_send_the_request_again(
        sb, pb_hub):
    # The ticket is updated while its note is being created: the rule still sees no
    # feedback_logged tag and matches again. The request is sent once all the same.
    hub = pb_hub
    hold = sb.faults.add("productboard", "POST", CREATE, kind="hold", phase="before")
    ticket = _request(sb, feature=None)
    assert hold.wait_reached(10)
    sb.zendesk.update_ticket(ticket, {"priority": "high"})
    sb.zendesk.deliver(ticket, style="trigger", event_type="ticket.updated")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(
            rows(hub, outbox, outbox.c.action == "productboard.note")) < 2:
        time.sleep(0.05)
    assert len(rows(hub, outbox, outbox.c.action == "productboard.note")) == 2
    hold.release()
    assert hub.wait_idle(60)
    (note,) = _notes(sb, ticket)
    assert len(sb.productboard.notes()) == 1
    assert _content(note).count("We copy 300 routes by hand every Monday.") == 1


def test_a_status_that_comes_back_is_reported_each_time(sb, pb_hub):
    # Released, back to In progress (a rollback), Released again: three changes, three events.
    hub = pb_hub
    _request(sb)
    assert hub.wait_idle(60)
    feature = _feature_id(sb, "Route export to CSV")
    for status in ("Released", "In progress", "Released"):
        sb.productboard.set_feature_status(feature, status)
        assert hub.poll_productboard_now() == 1, status
    assert hub.wait_idle(60)
    statuses = [r.outcome for r in rows(hub, inbox, inbox.c.source == "productboard")]
    assert len(statuses) == 3 and "-> Released" in statuses[2], statuses
    # Each release drafted the reply: the rule's own idempotency is per event.
    assert len(rows(hub, outbox, outbox.c.action == "zendesk.update_linked")) == 2
