"""End-to-end fixtures: the real hub (receiver, workers, real connectors) in this process, talking
HTTP to the sandbox's Zendesk and Jira stand-ins on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sandbox import Sandbox
from sandbox.demo import sandboxed_config, subscribe_pagerduty, zendesk_ticket
from sync.config import LoadedConfig, load_config
from sync.hub import Hub
from sync.schema import decisions, inbox, outbox

ROOT = Path(__file__).resolve().parents[2]
FIELD_IDS = {"error_code": 360001, "product_area": 360002, "steps_to_reproduce": 360003,
             "expected_result": 360004, "actual_result": 360005, "environment": 360006,
             "jira_key": 360007}


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(jira_search_lag=0.2, zendesk_subdomain="sandbox") as sandbox:
        yield sandbox


def fast(config: LoadedConfig, **sections: dict[str, Any]) -> LoadedConfig:
    """The shipped config with quick retries, no background polls, and any overrides."""
    app = config.app
    updates: dict[str, Any] = {
        "dispatcher": app.dispatcher.model_copy(update={
            "backoff_base_seconds": 0.05, "backoff_max_seconds": 0.5, "max_attempts": 4,
            **sections.pop("dispatcher", {})}),
        "poller": app.poller.model_copy(update={"interval_seconds": 3600,
                                                **sections.pop("poller", {})}),
    }
    connectors = app.connectors.model_copy(update={"jira": app.connectors.jira.model_copy(
        update={"search_lag_seconds": 0.4})})
    updates["connectors"] = connectors
    for name, values in sections.items():
        updates[name] = getattr(app, name).model_copy(update=values)
    return LoadedConfig(path=config.path, app=app.model_copy(update=updates),
                        rules=config.rules)


@pytest.fixture
def make_hub(sb: Sandbox, tmp_path: Path) -> Iterator[Callable[..., Hub]]:
    hubs: list[Hub] = []

    def start(config_path: Path | None = None, env: dict[str, str] | None = None,
              **sections: dict[str, Any]) -> Hub:
        if config_path is None:
            config_path = config_with(tmp_path, "")
        loaded = load_config(config_path, env=env or {})
        hub = Hub(fast(sandboxed_config(loaded, sb, tmp_path / f"hub{len(hubs)}.db"),
                       **sections))
        hub.start()
        hubs.append(hub)
        secret = hub.config.app.receiver.zendesk_signing_secrets[0].get_secret_value()
        sb.zendesk.configure_webhook(f"{hub.url}/webhooks/zendesk", secret)
        subscribe_pagerduty(hub, sb)
        hub.wait_idle(10)  # the start-up backfill poll
        return hub

    yield start
    for hub in hubs:
        hub.stop()


def config_with(tmp_path: Path, extra_rules: str) -> Path:
    """The shipped config.yaml with its bug-escalation rule only (not the cookbook's, which
    the demo's test covers), and more rules appended to its ``rules:`` list."""
    path = tmp_path / "config.yaml"
    shipped = (ROOT / "config.yaml").read_text(encoding="utf-8")
    path.write_text(shipped.split(COOKBOOK)[0].rstrip("\n") + "\n" + extra_rules,
                    encoding="utf-8")
    return path


#: Where the cookbook's rules start in the shipped config.yaml.
COOKBOOK = "  # The cookbook"


def bug_ticket(sb: Sandbox, *, error_code: str | None = "E1042", priority: str = "high",
               tags: tuple[str, ...] = ("bug_confirmed", "routing"), **extra: Any) -> int:
    spec = {"subject": extra.pop("subject", f"Import fails with {error_code}"),
            "description": "Uploading depots.csv fails.", "priority": priority,
            "type": "problem", "status": "open", "tags": list(tags), "organization_id": 501,
            "fields": {"error_code": error_code, "product_area": "routing",
                       "steps_to_reproduce": "Upload depots.csv", "expected_result": "imported",
                       "actual_result": "error", "environment": "Chrome"}, **extra}
    return int(sb.zendesk.create_ticket(zendesk_ticket(spec, FIELD_IDS))["id"])


def internal_notes(sb: Sandbox, ticket_id: int) -> list[dict[str, Any]]:
    return [c for c in sb.zendesk.comments(ticket_id) if c.get("public") is False]


def calls(sb: Sandbox, vendor: str, method: str, path_regex: str) -> int:
    return sb.requests.count(vendor, method=method, path_regex=path_regex)


def rows(hub: Hub, table: sa.Table, *where: Any) -> list[sa.Row]:
    with hub.store.read() as conn:
        return conn.execute(sa.select(table).where(*where).order_by(table.c.id)).all()


__all__ = ["FIELD_IDS", "bug_ticket", "calls", "config_with", "decisions", "inbox",
           "internal_notes", "outbox", "rows"]
