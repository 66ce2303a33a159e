"""Helpers shared by the connector tests: vendor payloads, settings, a fake clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connectors.settings import JiraSettings, ZendeskSettings

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

ZENDESK_TOKEN = "zd-secret-token-0123456789"
JIRA_TOKEN = "jira-secret-token-9876543210"
ZENDESK = "https://acme.zendesk.com"
JIRA = "https://acme.atlassian.net"


def load(vendor: str, name: str) -> Any:
    """A hand-written vendor payload from tests/fixtures/<vendor>/<name>.json."""
    return json.loads((FIXTURES / vendor / f"{name}.json").read_text(encoding="utf-8"))


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def zendesk_settings(**overrides: Any) -> ZendeskSettings:
    values: dict[str, Any] = {
        "subdomain": "acme",
        "email": "bot@acme.example",
        "api_token": ZENDESK_TOKEN,
        "custom_fields": {"error_code": 360001, "product_area": 360002, "jira_key": 360003},
    }
    values.update(overrides)
    return ZendeskSettings(**values)


def jira_settings(**overrides: Any) -> JiraSettings:
    values: dict[str, Any] = {
        "url": JIRA,
        "email": "bot@acme.example",
        "api_token": JIRA_TOKEN,
    }
    values.update(overrides)
    return JiraSettings(**values)
