"""The Slack Web API stand-in: channels, messages, threads and per-channel pace, faithful to
``api-notes/slack.md``.

Methods live under ``/api/``: ``auth.test``, ``conversations.list``, ``chat.postMessage``,
``chat.update``, ``conversations.history``, ``conversations.replies``, ``chat.getPermalink``,
and files upload v2 — ``files.getUploadURLExternal``, the bytes POSTed to the ``upload_url`` it
hands out (``/upload/v1/<ticket>``), ``files.completeUploadExternal`` (``sandbox.slack_files``).
Arguments come as a JSON body, a form-encoded body or query parameters, as slack_sdk sends them
(it POSTs every method: JSON for ``chat.*`` writes, a form for the rest). Errors are **HTTP 200**
``{"ok": false, "error": "<code>"}``, except the pace limit: HTTP 429 ``ratelimited`` with
``Retry-After``. Message metadata is stored and returned only to ``include_all_metadata=true``.

Seeded channels: ``#support-escalations`` and ``#support-outages``, the bot a member of both.
"""

from __future__ import annotations

import copy
import math
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from sandbox import slack_api as api
from sandbox.base import Request, Response
from sandbox.slack_api import Channel, SlackError
from sandbox.slack_files import UPLOAD_PATH, FileStore

__all__ = ["BOT_USER", "SlackError", "SlackState"]

BOT_USER = "U0SBXBOT01"
BOT_ID = "B0SBXBOT01"
TEAM_ID = "T0SANDBOX1"
HUMAN_USER = "U0SBXHUMAN"
#: Per-channel posting pace by default: generous, so only tests that lower it meet a 429.
DEFAULT_POST_RATE = (50.0, 100)
_STATUS_ERRORS = {401: "invalid_auth", 403: "no_permission", 404: "unknown_method",
                  429: "ratelimited", 500: "internal_error",
                  503: "service_unavailable"}  # fmt: skip
#: ``files.completeUploadExternal`` takes encoded conversation ids only (not user ids).
_CONVERSATION_ID = re.compile(r"^[CGDZ][A-Z0-9]{8,}$")


class SlackState:
    """A workspace behind one lock. Tests may set ``clock`` (monotonic seconds, for the pace)."""

    vendor = "slack"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.base_url = "https://slack.com/api/"
        self.workspace_url = "https://sandbox.slack.com/"
        self.clock: Callable[[], float] = time.monotonic
        self._token: str | None = None
        self._channels: dict[str, Channel] = {}
        self._roots: dict[str, list[str]] = {}
        self._replies: dict[tuple[str, str], list[str]] = {}
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._last_us = 0
        self._rate = DEFAULT_POST_RATE
        self._buckets: dict[str, tuple[float, float]] = {}
        self._files = FileStore()
        self.add_channel("support-escalations")
        self.add_channel("support-outages")

    # -- configuration and test helpers (an unknown channel raises SlackError) -------------

    def set_base_url(self, url: str) -> None:
        """Set the URL the state is served at (``base_url`` becomes ``<url>/api/``)."""
        with self.lock:
            self.base_url = url.rstrip("/") + "/api/"

    def require_token(self, token: str) -> None:
        """Accept only this bot token (by default any non-empty token is accepted)."""
        with self.lock:
            self._token = token

    def set_post_rate(self, per_second: float, burst: int) -> None:
        """Per-channel pace of ``chat.postMessage``: a bucket of ``burst`` refilled at
        ``per_second``. Raises ValueError unless both are positive."""
        if per_second <= 0 or burst < 1:
            raise ValueError("per_second and burst must be positive")
        with self.lock:
            self._rate = (float(per_second), burst)
            self._buckets.clear()

    def add_channel(
        self, name: str, *, archived: bool = False, member: bool = True, private: bool = False
    ) -> str:
        """Create a channel and return its id. Raises ValueError for a name already taken."""
        with self.lock:
            name = name.removeprefix("#")
            if any(c.name == name for c in self._channels.values()):
                raise ValueError(f"channel #{name} exists")
            ident = f"C{0x5B000001 + len(self._channels):X}"
            self._channels[ident] = Channel(ident, name, private, archived, member,
                                             int(time.time()))  # fmt: skip
            self._roots[ident] = []
            return ident

    def add_message(
        self, channel: str, text: str, *, user: str = HUMAN_USER, thread_ts: str | None = None
    ) -> str:
        """Post a message as someone else (the bot cannot update it); returns its ``ts``."""
        with self.lock:
            ch = self._channel(channel, by_name=True)
            root = self._root_of(ch.id, thread_ts) if thread_ts else None
            return self._store(ch.id, {"user": user, "text": text}, root)

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """The channel's root messages, oldest first, with metadata (``channel``: id or name)."""
        with self.lock:
            ch = self._channel(channel, by_name=True)
            return [self._view(ch.id, ts, True) for ts in self._roots[ch.id]]

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """The replies under root ``ts``, oldest first, with metadata."""
        with self.lock:
            ch = self._channel(channel, by_name=True)
            return [self._view(ch.id, r, True) for r in self._replies.get((ch.id, ts), [])]

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """One message (root or reply) with metadata, or None."""
        with self.lock:
            ch = self._channel(channel, by_name=True)
            return self._view(ch.id, ts, True) if (ch.id, ts) in self._messages else None

    def files(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Every file shared (in ``channel``, id or name, when given), oldest first: ``id``,
        ``name``, ``title``, ``length`` and ``alt_txt`` as announced, ``content`` (bytes),
        ``channel`` (id), ``thread_ts``, ``initial_comment``, ``ts`` of the message that shares
        it."""
        with self.lock:
            wanted = self._channel(channel, by_name=True).id if channel is not None else None
            return [{"id": u.id, "name": u.filename, "title": u.title or u.filename,
                     "length": u.length, "alt_txt": u.alt_txt, "content": u.content,
                     "channel": u.channel, "thread_ts": u.thread_ts,
                     "initial_comment": u.initial_comment, "ts": u.shared_ts}
                    for u in self._files.all()
                    if u.shared_ts is not None and (wanted is None or u.channel == wanted)]

    # -- HTTP ----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Serve one Web API request (or the upload of a file's bytes to its upload URL)."""
        if request.path.startswith(UPLOAD_PATH):
            with self.lock:
                return self._files.receive(request)
        method = request.path.removeprefix("/api/")
        route = _ROUTES.get(method) if request.path.startswith("/api/") else None
        try:
            if route is None:
                raise SlackError("unknown_method")
            args = api.arguments(request)
            with self.lock:
                self._authorize(request, args)
                body = route(self, args)
        except SlackError as exc:
            return Response(exc.status, {"ok": False, "error": exc.code}, exc.headers)
        return Response(200, {"ok": True, **body})

    def error_body(self, status: int, message: str | None = None) -> dict[str, Any]:
        """A Slack-shaped error body for ``status`` (used by injected faults)."""
        return {"ok": False, "error": message or _STATUS_ERRORS.get(status, "fatal_error")}

    def _authorize(self, request: Request, args: dict[str, Any]) -> None:
        scheme, _, token = str(request.headers.get("Authorization", "")).partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            token = str(args.get("token") or "")
        if not token.strip():
            raise SlackError("not_authed")
        if self._token is not None and token.strip() != self._token:
            raise SlackError("invalid_auth")

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.workspace_url, "team": "Switchboard Sandbox", "user": "switchboard",
                "team_id": TEAM_ID, "user_id": BOT_USER, "bot_id": BOT_ID,
                "is_enterprise_install": False}  # fmt: skip

    def _conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        types = set(str(args.get("types") or "public_channel").split(","))
        if not types <= {"public_channel", "private_channel", "mpim", "im"}:
            raise SlackError("invalid_types")
        exclude_archived = api.flag(args.get("exclude_archived"))
        listed = [
            api.channel_view(c) for c in self._channels.values()
            if ("private_channel" if c.private else "public_channel") in types
            and (c.member or not c.private) and not (exclude_archived and c.archived)
        ]  # fmt: skip
        page, cursor = api.page(listed, args, default=100, maximum=1000)
        return {"channels": page, "response_metadata": {"next_cursor": cursor}}

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(args.get("channel"), by_name=True)
        if ch.archived:
            raise SlackError("is_archived")
        if not ch.member:
            raise SlackError("not_in_channel")
        content = api.content(args, required=True)
        thread_ts = args.get("thread_ts")
        root = self._root_of(ch.id, str(thread_ts)) if thread_ts else None
        self._pace(ch.id)
        ts = self._store(ch.id, {"user": BOT_USER, "bot_id": BOT_ID, **content}, root)
        return {"channel": ch.id, "ts": ts, "message": self._view(ch.id, ts, False)}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(args.get("channel"))
        if ch.archived:
            raise SlackError("is_inactive")
        ts = str(args.get("ts") or "")
        record = self._messages.get((ch.id, ts))
        if record is None:
            raise SlackError("message_not_found")
        if record.get("user") != BOT_USER:
            raise SlackError("cant_update_message")
        content = api.content(args, required=False)
        text = content.get("text", record.get("text"))
        blocks = content.get("blocks", record.get("blocks"))
        if not text and not blocks:
            raise SlackError("no_text")
        record["text"] = text or ""
        for name in ("blocks", "metadata"):  # absent: kept; empty: removed
            if name in content:
                record.pop(name, None)
                if content[name]:
                    record[name] = content[name]
        record["edited"] = {"user": BOT_USER, "ts": self._new_ts()}
        return {"channel": ch.id, "ts": ts, "text": record["text"],
                "message": self._view(ch.id, ts, False)}  # fmt: skip

    def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._readable(args)
        inclusive = api.flag(args.get("inclusive"))
        oldest = api.micros(args.get("oldest") or "0", "invalid_ts_oldest")
        latest = api.micros(args.get("latest"), "invalid_ts_latest") if args.get("latest") else None
        meta = api.flag(args.get("include_all_metadata"))

        def within(ts: str) -> bool:
            us = api.micros(ts, "invalid_ts")
            after = us >= oldest if inclusive else us > oldest
            return after and (latest is None or (us <= latest if inclusive else us < latest))

        roots = [self._view(ch.id, ts, meta) for ts in reversed(self._roots[ch.id]) if within(ts)]
        page, cursor = api.page(roots, args, default=100, maximum=999)
        return {"messages": page, "has_more": bool(cursor), "pin_count": 0,
                "response_metadata": {"next_cursor": cursor}}  # fmt: skip

    def _replies_of(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._readable(args)
        root = self._root_of(ch.id, str(args.get("ts") or ""))
        meta = api.flag(args.get("include_all_metadata"))
        thread = [root, *self._replies.get((ch.id, root), [])]
        page, cursor = api.page([self._view(ch.id, ts, meta) for ts in thread], args,
                             default=1000, maximum=1000)  # fmt: skip
        return {"messages": page, "has_more": bool(cursor),
                "response_metadata": {"next_cursor": cursor}}  # fmt: skip

    def _permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel(args.get("channel"))
        ts = str(args.get("message_ts") or "")
        record = self._messages.get((ch.id, ts))
        if record is None:
            raise SlackError("message_not_found")
        link = f"{self.workspace_url}archives/{ch.id}/p{ts.replace('.', '')}"
        if record.get("thread_ts") and record["thread_ts"] != ts:
            link += f"?thread_ts={record['thread_ts']}&cid={ch.id}"
        return {"channel": ch.id, "permalink": link}

    def _upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._files.begin(args, self.base_url.removesuffix("api/"))

    def _complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        uploads = self._files.pending(args)
        channel_id = args.get("channel_id")
        channel: Channel | None = None
        root: str | None = None
        if channel_id:
            if not _CONVERSATION_ID.match(str(channel_id)):
                raise SlackError("invalid_arguments")
            channel = self._channels.get(str(channel_id))
            if channel is None or channel.archived:
                raise SlackError("invalid_channel")
            if not channel.member:
                raise SlackError("not_in_channel")
            if args.get("thread_ts"):
                root = self._root_of(channel.id, str(args["thread_ts"]))
            self._pace(channel.id)
        comment = args.get("initial_comment")
        views = []
        for upload, title in uploads:
            upload.title = title or upload.filename
        if channel is not None:
            ts = self._store(channel.id, {
                "user": BOT_USER, "bot_id": BOT_ID, "text": str(comment or ""), "upload": True,
                "display_as_bot": False,
                "files": [u.view(BOT_USER, self.workspace_url) for u, _ in uploads],
            }, root)  # fmt: skip
            for upload, _ in uploads:
                upload.channel, upload.thread_ts, upload.shared_ts = channel.id, root, ts
                upload.initial_comment = None if comment is None else str(comment)
        else:  # private to the uploader: no channel, nothing posted
            for upload, _ in uploads:
                upload.shared_ts = ""
        for upload, _ in uploads:
            views.append(upload.view(BOT_USER, self.workspace_url))
        return {"files": views}

    # -- internals -----------------------------------------------------------------------------

    def _channel(self, ref: Any, *, by_name: bool = False) -> Channel:
        """The channel with id ``ref`` (or name, ``#name``, when ``by_name``)."""
        text = str(ref or "")
        found = self._channels.get(text)
        if found is None and by_name:
            name = text.removeprefix("#")
            found = next((c for c in self._channels.values() if c.name == name), None)
        if found is None:
            raise SlackError("channel_not_found")
        return found

    def _readable(self, args: dict[str, Any]) -> Channel:
        ch = self._channel(args.get("channel"))
        if not ch.member:
            raise SlackError("not_in_channel")
        return ch

    def _root_of(self, channel: str, ts: str | None) -> str:
        """The root of the thread ``ts`` belongs to (a reply's ts answers its root)."""
        record = self._messages.get((channel, ts or ""))
        if record is None:
            raise SlackError("thread_not_found")
        return str(record.get("thread_ts") or record["ts"])

    def _pace(self, channel: str) -> None:
        per_second, burst = self._rate
        now = self.clock()
        tokens, last = self._buckets.get(channel, (float(burst), now))
        tokens = min(float(burst), tokens + max(0.0, now - last) * per_second)
        if tokens < 1.0:
            self._buckets[channel] = (tokens, now)
            wait = max(1, math.ceil((1.0 - tokens) / per_second))
            raise SlackError("ratelimited", 429, {"Retry-After": str(wait)})
        self._buckets[channel] = (tokens - 1.0, now)

    def _new_ts(self) -> str:
        """A unique, increasing ``ts`` such as ``1700000000.000100`` (microseconds)."""
        self._last_us = max(int(time.time() * 1_000_000), self._last_us + 1)
        return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def _store(self, channel: str, fields: dict[str, Any], root: str | None) -> str:
        ts = self._new_ts()
        record: dict[str, Any] = {"type": "message", "ts": ts, "text": "", **fields}
        if root is None:
            self._roots[channel].append(ts)
        else:
            record["thread_ts"] = root
            replies = self._replies.setdefault((channel, root), [])
            replies.append(ts)
            parent = self._messages[(channel, root)]
            parent.update(thread_ts=root, reply_count=len(replies), latest_reply=ts)
            users = parent.setdefault("reply_users", [])
            if record["user"] not in users:
                users.append(record["user"])
        self._messages[(channel, ts)] = record
        return ts

    def _view(self, channel: str, ts: str, metadata: bool) -> dict[str, Any]:
        view = copy.deepcopy(self._messages[(channel, ts)])
        if not metadata:
            view.pop("metadata", None)
        return view


_ROUTES: dict[str, Callable[[SlackState, dict[str, Any]], dict[str, Any]]] = {
    "auth.test": SlackState._auth_test,
    "conversations.list": SlackState._conversations_list,
    "chat.postMessage": SlackState._post_message,
    "chat.update": SlackState._update,
    "conversations.history": SlackState._history,
    "conversations.replies": SlackState._replies_of,
    "chat.getPermalink": SlackState._permalink,
    "files.getUploadURLExternal": SlackState._upload_url,
    "files.completeUploadExternal": SlackState._complete_upload,
}
