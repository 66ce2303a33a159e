"""Connectors: one module per vendor, plus the pieces they share (http, errors, models, settings).

``CONNECTORS`` is the explicit registry of connector classes by name; nothing is discovered by
naming convention.
"""

from __future__ import annotations

__all__ = ["CONNECTORS", "JiraConnector", "ZendeskConnector"]

from connectors.jira import JiraConnector
from connectors.zendesk import ZendeskConnector

CONNECTORS: dict[str, type[ZendeskConnector] | type[JiraConnector]] = {
    "zendesk": ZendeskConnector,
    "jira": JiraConnector,
}
