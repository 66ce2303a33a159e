"""A ticket created and edited while its webhooks were missed still fires ``ticket.created``
rules once the poller catches it; an older ticket that is edited does not."""

from __future__ import annotations

from .conftest import config_with, internal_notes

WELCOME = """
  - id: welcome-new-ticket
    on: [ticket.created]
    if: {field: ticket.tags, op: contains, value: welcome_me}
    then:
      - zendesk.update: {note: "Welcome aboard.", add_tags: [welcomed]}
"""


def test_ticket_created_and_edited_between_polls_fires_created_rules_old_ticket_does_not(
        sb, make_hub, tmp_path):
    old = int(sb.zendesk.create_ticket({"subject": "old", "tags": ["welcome_me"]})["id"])
    hub = make_hub(config_with(tmp_path, WELCOME))  # starts with the backfill poll
    new = int(sb.zendesk.create_ticket({"subject": "new", "tags": ["welcome_me"]})["id"])
    # No webhook is delivered for either change: only the poller sees them.
    sb.zendesk.update_ticket(new, {"subject": "new, edited", "tags": ["welcome_me"]})
    sb.zendesk.update_ticket(old, {"subject": "old, edited", "tags": ["welcome_me"]})
    assert sb.zendesk.ticket(new)["created_at"] != sb.zendesk.ticket(new)["updated_at"]

    hub.poll_now()
    assert hub.wait_idle(15)

    assert "welcomed" in sb.zendesk.ticket(new)["tags"]
    assert [n["body"] for n in internal_notes(sb, new)] == ["Welcome aboard."]
    assert "welcomed" not in sb.zendesk.ticket(old)["tags"]
    assert internal_notes(sb, old) == []
