"""Connectors: one module per vendor, plus the pieces they share (http, errors, models, settings).

``CONNECTORS`` is the explicit registry of connector classes by name; nothing is discovered by
naming convention.
"""

from __future__ import annotations

__all__ = [
    "CONNECTORS",
    "JiraConnector",
    "PagerDutyConnector",
    "ProductboardConnector",
    "SlackConnector",
    "ZendeskConnector",
]

from connectors.jira import JiraConnector
from connectors.pagerduty import PagerDutyConnector
from connectors.productboard import ProductboardConnector
from connectors.slack import SlackConnector
from connectors.zendesk import ZendeskConnector

CONNECTORS: dict[
    str,
    type[ZendeskConnector] | type[JiraConnector] | type[PagerDutyConnector] | type[SlackConnector]
    | type[ProductboardConnector],
] = {
    "zendesk": ZendeskConnector,
    "jira": JiraConnector,
    "pagerduty": PagerDutyConnector,
    "slack": SlackConnector,
    "productboard": ProductboardConnector,
}
