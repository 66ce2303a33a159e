"""The registry of action handlers: which function runs each action, and whose rate limit paces
it (the hub runs a pool of dispatcher workers per vendor). Adding an action is one entry in
``rules.actions.ACTIONS`` plus one here."""

from __future__ import annotations

__all__ = ["HANDLERS", "VENDOR_OF"]

from collections.abc import Callable

from sync.actions import HANDLERS as TICKET_HANDLERS
from sync.actions import VENDOR_OF as TICKET_VENDORS
from sync.actions import ActionContext, ActionOutcome
from sync.escalation_actions import ESCALATION_HANDLERS, ESCALATION_VENDORS
from sync.fanout import FANOUT, zendesk_update_linked
from sync.impact import COMMENT, IMPACT, jira_comment, jira_impact
from sync.productboard_actions import NOTE, productboard_note
from sync.slack_post import POST, slack_post

HANDLERS: dict[str, Callable[[ActionContext], ActionOutcome]] = {
    **TICKET_HANDLERS, **ESCALATION_HANDLERS, FANOUT: zendesk_update_linked,
    IMPACT: jira_impact, COMMENT: jira_comment, NOTE: productboard_note, POST: slack_post}

VENDOR_OF: dict[str, str] = {**TICKET_VENDORS, **ESCALATION_VENDORS, FANOUT: "zendesk",
                             IMPACT: "jira", COMMENT: "jira", NOTE: "productboard",
                             POST: "slack"}
