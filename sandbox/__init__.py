"""Local stand-ins for the Zendesk Support and Jira Cloud REST APIs, faithful to the contracts in
``api-notes/`` — for end-to-end tests (the real zenpy and jira clients talk to them over HTTP),
crash-safety tests (faults that reset or hold requests at exact points) and the demo.

    with Sandbox() as sb:
        sb.zendesk.create_ticket({"subject": "Login broken", "description": "..."})
        ... point the hub at sb.zendesk_url / sb.jira_url ...
"""

from __future__ import annotations

from sandbox.faults import Fault, FaultInjector, LoggedRequest, RequestLog
from sandbox.jira import JiraError, JiraState
from sandbox.jql import JQLError
from sandbox.productboard import ProductboardState
from sandbox.server import Sandbox
from sandbox.zendesk import ZendeskError, ZendeskState
from sandbox.zendesk_webhooks import event_payload, sign_zendesk, trigger_payload

__all__ = [
    "Fault",
    "FaultInjector",
    "JQLError",
    "JiraError",
    "JiraState",
    "LoggedRequest",
    "ProductboardState",
    "RequestLog",
    "Sandbox",
    "ZendeskError",
    "ZendeskState",
    "event_payload",
    "sign_zendesk",
    "trigger_payload",
]
