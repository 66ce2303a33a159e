"""Run one action handler on the intent a test queued, as the dispatcher would record it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sync import outbox
from sync.actions import ActionContext, ActionOutcome
from sync.store import Store


def run_queued(store: Store, handler: Callable[[ActionContext], ActionOutcome], *,
               params: Any, zendesk: Any, jira: Any) -> dict[str, Any]:
    """Claim the one queued intent and run ``handler`` on it: its outcome and ``on_commit``
    commit with ``done``; when it raises, the intent goes back to pending (ready at once) and
    the error propagates, so the test can run it again as a retry."""
    (item,) = outbox.acquire(store, "w", 1, 60)
    ctx = ActionContext(store=store, item=item, params=params, zendesk=zendesk, jira=jira,
                        progress=dict(item.progress))
    try:
        outcome = handler(ctx)
    except Exception:
        with store.write() as conn:
            outbox.finish(conn, item.id, "pending", error="x", retry_in=0, owner=item.owner)
        raise
    with store.write() as conn:
        outbox.finish(conn, item.id, "done", result=outcome.result, owner=item.owner)
        if outcome.on_commit is not None:
            outcome.on_commit(conn)
    return dict(outcome.result)
