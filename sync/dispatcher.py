"""The dispatcher: executes claimed outbox intents, the only place where writes are retried.

For each claimed intent it renders the parameters (with the result of the intent it depends on),
runs the action's handler, and records the outcome in one transaction together with the
handler's own store update. Failures are classified by the ``connectors.errors`` tree:

- retriable (5xx, timeouts, 429): back to pending after a jittered exponential backoff that never
  undercuts ``Retry-After``; dead-lettered with the reason after ``max_attempts``;
- skippable (the ticket is gone): ``skipped`` with the reason;
- fatal (4xx, configuration, a template that cannot render): ``dead`` with the reason at once.
"""

from __future__ import annotations

__all__ = ["Dispatcher"]

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from connectors.errors import SwitchboardError
from rules import render_params
from rules.actions import ACTIONS
from sync import outbox
from sync.actions import ActionContext, ActionOutcome
from sync.leases import LeaseLost
from sync.retry import RetryPolicy
from sync.store import Store

log = logging.getLogger("switchboard.dispatcher")


class Dispatcher:
    """Runs intents through their handlers; safe to call from several worker threads."""

    def __init__(self, store: Store,
                 handlers: Mapping[str, Callable[[ActionContext], ActionOutcome]],
                 *, zendesk: Any, jira: Any, jira_search_lag: float, retry: RetryPolicy,
                 lease_seconds: float, sleep: Callable[[float], None] = time.sleep,
                 pagerduty: Any = None, slack: Any = None,
                 productboard: Any = None) -> None:
        self.store = store
        self.handlers = handlers
        self.zendesk = zendesk
        self.jira = jira
        self.pagerduty = pagerduty
        self.slack = slack
        self.productboard = productboard
        self.jira_search_lag = jira_search_lag
        self.retry = retry
        self.lease_seconds = lease_seconds
        self.sleep = sleep

    def _namespace(self, item: outbox.OutboxItem) -> dict[str, Any]:
        namespace = dict(item.context)
        if item.dependency_action and item.dependency_result is not None:
            produces = ACTIONS[item.dependency_action].produces
            if produces:
                namespace[produces] = dict(item.dependency_result)
        return namespace

    def execute(self, item: outbox.OutboxItem) -> str:
        """Execute one claimed intent and record what happened; returns the new status."""
        handler = self.handlers.get(item.action)
        if handler is None:
            return self._record(item, "dead", error=f"no handler for action {item.action!r}")
        try:
            params = render_params(item.action, item.params, self._namespace(item))
        except Exception as exc:  # a template that cannot render will never render
            return self._record(item, "dead", error=f"parameters could not be rendered: {exc}")
        ctx = ActionContext(store=self.store, item=item, params=params, zendesk=self.zendesk,
                            jira=self.jira, jira_search_lag=self.jira_search_lag,
                            sleep=self.sleep, progress=dict(item.progress),
                            pagerduty=self.pagerduty, slack=self.slack,
                            productboard=self.productboard)
        try:
            outcome = handler(ctx)
        except LeaseLost:
            log.warning("intent %s (%s): lease lost to another worker; leaving it to that one",
                        item.id, item.action)
            return "lease lost"
        except Exception as exc:
            if not isinstance(exc, SwitchboardError):
                log.exception("intent %s (%s) raised unexpectedly", item.id, item.action)
            verdict = self.retry.judge(exc, item.attempts)
            if verdict.kind == "retry":
                log.warning("intent %s (%s) attempt %s failed, retry in %.1fs: %s",
                            item.id, item.action, item.attempts, verdict.retry_in, exc)
                return self._record(item, "pending", error=verdict.reason,
                                    retry_in=verdict.retry_in)
            return self._record(item, "skipped" if verdict.kind == "skip" else "dead",
                                error=verdict.reason)
        try:
            with self.store.write() as conn:
                # Fenced: if another worker took the lease meanwhile, nothing here commits.
                outbox.finish(conn, item.id, "done", result=outcome.result, owner=item.owner)
                if outcome.on_commit is not None:
                    outcome.on_commit(conn)
        except LeaseLost:
            log.warning("intent %s (%s) finished after its lease was lost; its outcome is left "
                        "to the worker that holds it", item.id, item.action)
            return "lease lost"
        log.info("intent %s (%s) done: %s", item.id, item.action, dict(outcome.result))
        return "done"

    def _record(self, item: outbox.OutboxItem, status: str, *, error: str,
                retry_in: float | None = None) -> str:
        if status in ("dead", "skipped"):
            log.error("intent %s (%s) %s: %s", item.id, item.action, status, error)
        try:
            with self.store.write() as conn:
                outbox.finish(conn, item.id, status, error=error, retry_in=retry_in,
                              owner=item.owner)
        except LeaseLost:
            return "lease lost"
        return status
