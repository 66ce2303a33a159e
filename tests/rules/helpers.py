"""Builders shared by the rules tests."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from textwrap import dedent
from typing import Any

from connectors.models import Ticket
from rules import Change, EvalContext, RuleSet, load_rules, load_yaml

CUSTOM_FIELDS = ("error_code", "jira_key", "product_area", "steps_to_reproduce")


def make_ticket(**overrides: Any) -> Ticket:
    values: dict[str, Any] = {
        "id": 4012,
        "updated_at": datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
        "created_at": datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
        "subject": "Checkout fails",
        "description": "Clicking pay shows error E42.",
        "status": "open",
        "priority": "high",
        "type": "incident",
        "tags": ("bug_confirmed", "billing"),
        "requester_id": 7,
        "organization_id": 70,
        "custom_fields": {"error_code": "E42"},
        "url": "https://acme.zendesk.com/agent/tickets/4012",
    }
    values.update(overrides)
    return Ticket(**values)


def make_ctx(
    event_type: str = "ticket.updated",
    *,
    changes: Mapping[str, Change] | None = None,
    links: Mapping[str, tuple[str, ...]] | None = None,
    **ticket: Any,
) -> EvalContext:
    return EvalContext.for_ticket(
        make_ticket(**ticket), event_type=event_type, event_source="webhook",
        changes=changes, links=links,
    )


def load_text(*texts: str, custom_fields: Collection[str] = CUSTOM_FIELDS) -> RuleSet:
    """Load YAML texts as files ``a.yaml``, ``b.yaml``, ..."""
    sources = [load_yaml(dedent(t), f"{chr(ord('a') + i)}.yaml") for i, t in enumerate(texts)]
    return load_rules(sources, custom_fields=custom_fields)
