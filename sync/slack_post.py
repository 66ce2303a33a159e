"""``slack.post``: one message to a channel, posted once.

The message carries the intent's idempotency key in its metadata (as every message Switchboard
posts). A first attempt notes ``sent`` in the intent's progress before posting; an attempt that
finds it (the answer of the earlier post was lost: a timeout, a reset, a crash) looks for the
key in the channel's recent history (``connectors.slack.find_lookback_seconds``) and posts only
if it is not there. Nothing is kept up to date afterwards: that is ``slack.thread``'s job.
"""

from __future__ import annotations

__all__ = ["POST", "slack_post"]

from connectors.models import SlackMessage, SlackPosted
from sync.actions import ActionContext, ActionOutcome

POST = "slack.post"


def slack_post(ctx: ActionContext) -> ActionOutcome:
    """Post ``params.text`` to ``params.channel`` unless an earlier attempt's post is found."""
    channel = ctx.slack.channel_id(str(ctx.params["channel"]))
    key = ctx.item.idem_key
    if ctx.progress.get("sent"):
        found: SlackPosted | None = ctx.slack.find_by_key(channel, key)
        if found is not None:
            return ActionOutcome({"channel": found.channel, "ts": found.ts, "found": True})
    ctx.save_progress(sent=True)
    posted: SlackPosted = ctx.slack.post(channel, SlackMessage(text=str(ctx.params["text"])),
                                         key=key)
    return ActionOutcome({"channel": posted.channel, "ts": posted.ts, "found": False})
