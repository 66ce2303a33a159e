"""Argument parsing and paging of the Slack stand-in (``sandbox.slack``): Slack's error type,
arguments from query, form or JSON, the content of a write, cursors and ``ts`` arithmetic.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from sandbox.base import Request

__all__ = ["MAX_TEXT", "Channel", "SlackError", "arguments", "channel_view", "content", "flag",
           "micros", "page"]

MAX_TEXT = 40_000


class SlackError(Exception):
    """A request Slack refuses: its error ``code``, HTTP ``status`` (200 but for 429) and
    extra headers."""

    def __init__(self, code: str, status: int = 200, headers: dict[str, str] | None = None):
        super().__init__(code)
        self.code = code
        self.status = status
        self.headers = headers or {}


@dataclass
class Channel:
    """One channel of the workspace."""

    id: str
    name: str
    private: bool
    archived: bool
    member: bool
    created: int


def arguments(request: Request) -> dict[str, Any]:
    """Query parameters, then a form-encoded or JSON body, later ones winning."""
    args: dict[str, Any] = {name: values[-1] for name, values in request.query.items()}
    kind = str(request.headers.get("Content-Type", "")).split(";")[0].strip().lower()
    if not request.body.strip():
        return args
    if kind == "application/json":
        if request.json_error or not isinstance(request.json, dict):
            raise SlackError("invalid_json")
        args.update(request.json)
    elif kind == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError as exc:
            raise SlackError("invalid_form_data") from exc
        args.update({name: values[-1] for name, values in form.items()})
    else:
        raise SlackError("invalid_post_type")
    return args


def content(args: dict[str, Any], *, required: bool) -> dict[str, Any]:
    """``text``, ``blocks`` and ``metadata`` of a write, validated as Slack does."""
    content: dict[str, Any] = {}
    if "text" in args and args["text"] is not None:
        if not isinstance(args["text"], str):
            raise SlackError("invalid_arguments")
        content["text"] = args["text"]
    if "blocks" in args and args["blocks"] is not None:
        blocks = _decoded(args["blocks"], "invalid_blocks")
        if not isinstance(blocks, list) or not all(
            isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks
        ):
            raise SlackError("invalid_blocks")
        content["blocks"] = blocks
    if "metadata" in args and args["metadata"] is not None:
        metadata = _decoded(args["metadata"], "invalid_metadata_format")
        if not isinstance(metadata, dict) or (metadata and not (
            isinstance(metadata.get("event_type"), str)
            and isinstance(metadata.get("event_payload"), dict)
        )):  # fmt: skip
            raise SlackError("invalid_metadata_format")
        content["metadata"] = metadata
    if required and not content.get("text") and not content.get("blocks"):
        raise SlackError("no_text")
    if len(content.get("text", "")) > MAX_TEXT:
        raise SlackError("msg_too_long")
    return content


def _decoded(value: Any, error: str) -> Any:
    """A JSON argument: as sent in a JSON body, or a JSON string in a form."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        raise SlackError(error) from exc


def page(items: list[Any], args: dict[str, Any], *, default: int, maximum: int
          ) -> tuple[list[Any], str]:  # fmt: skip
    """One page of ``items`` from ``cursor`` (opaque base64 offset) and ``limit``."""
    try:
        limit = int(args.get("limit") or default)
    except (TypeError, ValueError) as exc:
        raise SlackError("invalid_limit") from exc
    limit = max(1, min(limit, maximum))
    cursor = str(args.get("cursor") or "")
    offset = 0
    if cursor:
        try:
            kind, _, number = base64.b64decode(cursor, validate=True).decode().partition(":")
            offset = int(number)
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise SlackError("invalid_cursor") from exc
        if kind != "offset" or offset < 0:
            raise SlackError("invalid_cursor")
    end = offset + limit
    following = base64.b64encode(f"offset:{end}".encode()).decode() if end < len(items) else ""
    return items[offset:end], following


def micros(value: Any, error: str) -> int:
    """A ts (``"1700000000.000100"``) as integer microseconds; compares without float error."""
    seconds, _, fraction = str(value).strip().partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()) or len(fraction) > 6:
        raise SlackError(error)
    return int(seconds) * 1_000_000 + int(fraction.ljust(6, "0") or 0)


def flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def channel_view(channel: Channel) -> dict[str, Any]:
    return {"id": channel.id, "name": channel.name, "name_normalized": channel.name,
            "is_channel": True, "is_group": False, "is_im": False, "is_mpim": False,
            "is_private": channel.private, "is_archived": channel.archived,
            "is_member": channel.member, "created": channel.created}  # fmt: skip
