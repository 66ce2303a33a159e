"""The root message of an escalation's Slack thread, rendered from the escalation's state.

The root is not a rule template: it always shows the live state — status (open, acknowledged by
whom, resolved), how many tickets, which organizations, the PagerDuty incident — so that whoever
opens the channel reads the current story in one message. Rules choose its title and what to say
in the thread (``slack.thread: {title, reply}``).

Ticket text reaches Slack as data: mrkdwn control characters (``<``, ``>``, ``&``) are escaped, so
a subject cannot turn into a mention or a link.
"""

from __future__ import annotations

__all__ = ["MAX_LISTED", "root_digest", "root_message"]

import hashlib
import json
from collections.abc import Sequence

from connectors.models import SlackMessage
from sync.escalations import Escalation, Member

#: Tickets and organizations named in the root; the rest are counted ("+12 more").
MAX_LISTED = 10


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _status(escalation: Escalation) -> tuple[str, str]:
    """(emoji, words) for the escalation's state."""
    if escalation.status == "resolved" or escalation.pd_status == "resolved":
        return ":white_check_mark:", "Resolved"
    if escalation.pd_status == "acknowledged":
        who = f" by {escalation.pd_agent}" if escalation.pd_agent else ""
        return ":eyes:", f"Acknowledged{who}"
    if escalation.pd_status == "triggered":
        return ":rotating_light:", "Paged, waiting for acknowledgement"
    return ":rotating_light:", "Open"


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    more = len(items) - MAX_LISTED
    return f"{shown} (+{more} more)" if more > 0 else shown


def _organizations(members: Sequence[Member]) -> list[str]:
    names: dict[str, None] = {}
    for member in members:
        if member.organization_name:
            names[_escape(member.organization_name)] = None
        elif member.organization_id is not None:
            names[f"organization {member.organization_id}"] = None
    return list(names)


def root_message(escalation: Escalation, members: Sequence[Member],
                 ticket_url: str | None = None, problem_url: str | None = None) -> SlackMessage:
    """Block Kit root message (with its plain-text fallback) for the escalation's state.

    ``ticket_url`` links the ticket the escalation was opened for, ``problem_url`` its Zendesk
    problem ticket.
    """
    emoji, status = _status(escalation)
    title = _escape(escalation.title)
    tickets = [f"#{m.ticket_id}" for m in members]
    organizations = _organizations(members)
    fields = [
        {"type": "mrkdwn", "text": f"*Status*\n{emoji} {status}"},
        {"type": "mrkdwn", "text": f"*Tickets*\n{len(members)}"},
    ]
    if organizations:
        fields.append({"type": "mrkdwn", "text": f"*Organizations*\n{_listed(organizations)}"})
    if escalation.pd_status is not None:
        incident = (f"<{escalation.pd_url}|incident>" if escalation.pd_url
                    else f"`{_escape(escalation.dedup_key)}`")
        fields.append({"type": "mrkdwn",
                       "text": f"*PagerDuty*\n{incident} ({escalation.pd_status})"})
    if escalation.zd_problem_id is not None:
        problem = f"problem #{escalation.zd_problem_id}"
        fields.append({"type": "mrkdwn", "text": "*Zendesk*\n" + (
            f"<{problem_url}|{problem}>" if problem_url else problem)})
    context = f"Tickets: {_listed(tickets)}" if tickets else "No tickets yet"
    if ticket_url and escalation.ticket_id is not None:
        context += f" · opened for <{ticket_url}|ticket #{escalation.ticket_id}>"
    blocks = (
        {"type": "header", "text": {"type": "plain_text", "text": escalation.title[:150]}},
        {"type": "section", "fields": fields},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
    )
    text = f"{emoji} {title} — {status}; {len(members)} ticket(s)"
    if organizations:
        text += f" from {_listed(organizations)}"
    return SlackMessage(text=text, blocks=blocks)


def root_digest(message: SlackMessage) -> str:
    """A fingerprint of a root message: an update that would change nothing is not sent."""
    data = json.dumps([message.text, list(message.blocks)], sort_keys=True)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()
