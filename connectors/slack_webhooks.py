"""Inbound requests from Slack (interactive components): signature check and payload parsing.

Slack signs every request it sends: ``X-Slack-Request-Timestamp`` (unix seconds) and
``X-Slack-Signature`` = ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}`` under the app's
signing secret. :func:`verify_slack_request` checks it with slack_sdk's ``SignatureVerifier``
(which refuses a timestamp more than five minutes away from now, either way), against any of
several secrets while one is being rotated.

A button click arrives as ``application/x-www-form-urlencoded`` with one ``payload`` field, a
JSON ``block_actions`` object; :func:`parse_interaction` turns it into a
:class:`SlackInteraction` or raises :class:`WebhookPayloadError`.
"""

from __future__ import annotations

__all__ = [
    "SlackInteraction",
    "WebhookPayloadError",
    "parse_interaction",
    "sign_slack",
    "verify_slack_request",
]

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import Clock, SignatureVerifier

TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"


class WebhookPayloadError(ValueError):
    """A correctly signed request whose body is not a usable interaction; answer 400."""


@dataclass(frozen=True, slots=True)
class SlackInteraction:
    """One ``block_actions`` interaction: which action a user took on which message.

    ``value`` is the button's ``value`` (or a select menu's selected value); ``channel_id``,
    ``message_ts`` and ``team_id`` are ``None`` when the payload does not carry them (an action
    in a modal has no message).
    """

    action_id: str
    value: str | None
    user_id: str
    user_name: str | None
    channel_id: str | None
    message_ts: str | None
    team_id: str | None


class _FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def sign_slack(secret: str, timestamp: str | int, body: bytes) -> str:
    """The ``X-Slack-Signature`` value Slack would send for ``body`` at ``timestamp``."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify_slack_request(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    *,
    now: float | None = None,
) -> bool:
    """True when ``body`` is signed by any of ``secrets`` and its timestamp is within five
    minutes of ``now`` (unix seconds; default: the current time).

    Missing or garbled headers, a body that is not UTF-8, and blank secrets give
    False; never raises for anything in the request. Every secret is tried (constant-time
    comparisons), so the answer's timing does not tell which one matched.
    """
    lowered = {str(name).lower(): value for name, value in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER)
    signature = lowered.get(SIGNATURE_HEADER)
    if not isinstance(timestamp, str) or not isinstance(signature, str):
        return False
    timestamp = timestamp.strip()
    signature = signature.strip()
    # int() would also take "+5", " 5" or "1_700"; Slack sends plain digits.
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if not (signature.isascii() and signature.startswith("v0=")):
        return False
    try:
        body.decode("utf-8")  # SignatureVerifier decodes the body as UTF-8
    except UnicodeDecodeError:
        return False
    clock = _FixedClock(now) if now is not None else Clock()
    valid = False
    for secret in secrets:
        if not isinstance(secret, str) or not secret.strip():
            continue
        verifier = SignatureVerifier(secret, clock=clock)
        valid |= verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    return valid


def parse_interaction(body: bytes) -> SlackInteraction:
    """The ``block_actions`` interaction in a form-encoded ``payload=<json>`` body (the first
    action when there are several).

    Raises :class:`WebhookPayloadError` saying what is wrong: the body is not form-encoded, has
    no (or more than one) ``payload`` field, the payload is not a JSON object, its ``type`` is
    not ``block_actions``, it has no action, or an action or the user lacks an id.
    """
    try:
        text = body.decode("utf-8")
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookPayloadError(
            "body is not application/x-www-form-urlencoded (expected payload=<json>)"
        ) from exc
    values = fields.get("payload")
    if not values:
        raise WebhookPayloadError("body has no payload field")
    if len(values) > 1:
        raise WebhookPayloadError("body has more than one payload field")
    try:
        payload = json.loads(values[0])
    except ValueError as exc:
        raise WebhookPayloadError(f"payload is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise WebhookPayloadError(f"payload must be a JSON object, not {type(payload).__name__}")
    kind = payload.get("type")
    if kind != "block_actions":
        raise WebhookPayloadError(f"payload type is {kind!r}, expected 'block_actions'")
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions:
        raise WebhookPayloadError("block_actions payload has no actions")
    action = actions[0]
    if not isinstance(action, dict) or not _text(action.get("action_id")):
        raise WebhookPayloadError("the action has no action_id")
    user = _object(payload, "user")
    user_id = _text(user.get("id"))
    if user_id is None:
        raise WebhookPayloadError("block_actions payload has no user id")
    channel = _object(payload, "channel")
    message = _object(payload, "message")
    container = _object(payload, "container")
    team = _object(payload, "team")
    selected = action.get("selected_option")
    value = _text(action.get("value"))
    if value is None and isinstance(selected, dict):
        value = _text(selected.get("value"))
    return SlackInteraction(
        action_id=str(action["action_id"]),
        value=value,
        user_id=user_id,
        user_name=_text(user.get("username")) or _text(user.get("name")),
        channel_id=_text(channel.get("id")) or _text(container.get("channel_id")),
        message_ts=_text(message.get("ts")) or _text(container.get("message_ts")),
        team_id=_text(team.get("id")) or _text(user.get("team_id")),
    )


def _object(payload: dict[str, Any], name: str) -> dict[str, Any]:
    """``payload[name]`` when it is an object; ``{}`` when absent or null."""
    value = payload.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WebhookPayloadError(f"payload {name} must be an object, not {type(value).__name__}")
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
