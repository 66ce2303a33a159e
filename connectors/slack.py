"""Slack connector: one thread per incident, its root message updated in place.

:meth:`SlackConnector.post` writes a root message or a reply, :meth:`SlackConnector.update`
rewrites a message in place, and :meth:`SlackConnector.find_by_key` finds a message whose answer
was lost. :meth:`SlackConnector.upload_file` shares a file in a channel (files upload v2:
``files.getUploadURLExternal``, the bytes to the returned URL, ``files.completeUploadExternal``)
and :meth:`SlackConnector.find_file` finds one shared earlier by its file name. Every message
carries its action's idempotency key as message metadata (``event_type``
``switchboard_intent``), so after an ambiguous failure the dispatcher looks for the key before
posting again.

Pace: posts and updates wait on a per-channel :class:`~connectors.http.RateLimiter`
(``messages_per_minute``; Slack allows about one message a second per channel), every other call
on one shared limiter (``requests_per_minute``). The limiters sleep: call from worker threads.
Transport, logging and error translation live in :mod:`connectors.slack_client`. Vendor JSON
stops here: callers get :class:`~connectors.models.SlackPosted`.
"""

from __future__ import annotations

__all__ = ["EVENT_TYPE", "SlackConnector"]

import functools
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from slack_sdk.web.slack_response import SlackResponse

from connectors.errors import FatalError, InvalidRequestError, NotFoundError
from connectors.http import RateLimiter
from connectors.models import SlackFile, SlackMessage, SlackPosted
from connectors.settings import SlackSettings
from connectors.slack_client import VENDOR, SlackClient

#: ``metadata.event_type`` of every message Switchboard writes.
EVENT_TYPE = "switchboard_intent"
#: Page size of conversations.list / history / replies (Slack recommends at most 200).
PAGE_SIZE = 200
#: A channel name not found is looked up again at most this often (seconds).
RELIST_INTERVAL = 60.0

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


class SlackConnector:
    """Posts, updates and finds Slack messages in channels the bot is a member of.

    Every method raises the :mod:`connectors.errors` tree: :class:`RateLimitedError` (HTTP 429 or
    ``ratelimited``; the limiter that call waited on is paused for ``retry_after``),
    :class:`RetriableError` (``ambiguous=True`` for 5xx, ``internal_error`` and friends, a lost
    answer; ``False`` when the connection was never made), :class:`AuthError`,
    :class:`NotFoundError` (unknown channel, message or thread), :class:`InvalidRequestError`
    (every other ``ok: false`` code, and blank text or key refused before sending) and
    :class:`ConfigurationError` (an unreadable CA bundle).
    """

    name = VENDOR

    def __init__(
        self,
        settings: SlackSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Build the client; no network call (raises :class:`ConfigurationError` for an
        unreadable CA bundle). ``clock``/``sleep`` drive the limiters and the
        re-list interval, ``wall_clock`` (unix seconds) the look-back of :meth:`find_by_key`."""
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._api = SlackClient(settings)
        self._limiter = RateLimiter(settings.requests_per_minute, clock=clock, sleep=sleep)
        self._channel_limiters: dict[str, RateLimiter] = {}
        self._limiters_lock = threading.Lock()
        self._names: dict[str, str] = {}
        self._listed_at: float | None = None
        self._names_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SlackConnector(base_url={self.settings.base_url!r})"

    # -- channels --------------------------------------------------------------------------

    def channel_id(self, channel: str) -> str:
        """The id of ``channel``: an id (``C…``/``G…``/``D…``) as is, a name (``#name`` or
        ``name``) through ``conversations.list`` (public and private, not archived), cached for
        the life of the process; a name not found is looked up again at most once a minute.

        Raises :class:`NotFoundError` naming the channel when it is unknown (or archived, or a
        private channel the bot is not in).
        """
        if _CHANNEL_ID.match(channel):
            return channel
        name = channel.strip().removeprefix("#").lower()
        if not name:
            raise InvalidRequestError(f"{VENDOR}: empty channel name", vendor=VENDOR)
        with self._names_lock:
            found = self._names.get(name)
            if found is None and (
                self._listed_at is None or self._clock() - self._listed_at >= RELIST_INTERVAL
            ):
                self._names.update(self._list_channels())
                self._listed_at = self._clock()
                found = self._names.get(name)
        if found is None:
            raise NotFoundError(
                f"{VENDOR}: channel {channel!r} not found (unknown, archived, or private "
                "without the bot)",
                vendor=VENDOR,
            )
        return found

    def _list_channels(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for page in self._pages("conversations.list", None, lambda cursor: (
            self._api.web.conversations_list(
                types="public_channel,private_channel", exclude_archived=True,
                limit=PAGE_SIZE, cursor=cursor))):  # fmt: skip
            for item in page.get("channels") or ():
                if isinstance(item, dict) and item.get("name") and item.get("id"):
                    names[str(item["name"]).lower()] = str(item["id"])
        return names

    # -- messages ----------------------------------------------------------------------------

    def post(
        self, channel: str, message: SlackMessage, *, key: str, thread_ts: str | None = None
    ) -> SlackPosted:
        """Post ``message`` (exactly one ``chat.postMessage``) carrying ``key`` as metadata; a
        reply when ``thread_ts`` is given (Slack files a reply to a reply under its root)."""
        channel_id = self.channel_id(channel)
        args = _content(message, key, replace_blocks=False)
        if thread_ts is not None:
            args["thread_ts"] = thread_ts
        data = self._api.call(
            "chat.postMessage", channel_id, self._channel_limiter(channel_id),
            lambda: self._api.web.chat_postMessage(channel=channel_id, **args))  # fmt: skip
        posted = _posted(data, channel_id, "chat.postMessage")
        if thread_ts is not None and posted.thread_ts is None:
            posted = SlackPosted(channel=posted.channel, ts=posted.ts, thread_ts=thread_ts)
        return posted

    def update(self, channel: str, ts: str, message: SlackMessage, *, key: str) -> SlackPosted:
        """Rewrite the message ``ts`` in place (exactly one ``chat.update``): its text, its
        blocks (none given removes the old ones) and its metadata; ``ts`` stays the same."""
        channel_id = self.channel_id(channel)
        args = _content(message, key, replace_blocks=True)
        data = self._api.call(
            "chat.update", channel_id, self._channel_limiter(channel_id),
            lambda: self._api.web.chat_update(channel=channel_id, ts=ts, **args))  # fmt: skip
        return _posted(data, channel_id, "chat.update")

    def find_by_key(
        self, channel: str, key: str, *, thread_ts: str | None = None,
        oldest: float | None = None,
    ) -> SlackPosted | None:
        """The message carrying idempotency ``key``, or ``None``: for a root message, the
        channel's history since ``oldest`` (unix seconds; default: the last
        ``find_lookback_seconds``); for a reply, the thread of ``thread_ts``. Both read with
        ``include_all_metadata=true`` and follow every cursor.

        Caveats (api-notes/slack.md): Slack's reference says bot tokens may lack permission for
        ``conversations.replies`` on public and private channels (its scope pages list bot
        tokens for ``channels:history``/``groups:history``); if Slack refuses, this raises
        :class:`AuthError` and a lost reply cannot be reconciled by key. Apps distributed
        commercially outside the Marketplace are held to 1 history/replies request a minute
        with pages of 15, so a long look-back is slow there.
        """
        channel_id = self.channel_id(channel)
        if not key:
            raise InvalidRequestError(f"{VENDOR}: empty idempotency key", vendor=VENDOR)
        pages: Iterator[dict[str, Any]]
        if thread_ts is None:
            pages = self._history(channel_id, oldest, metadata=True)
        else:
            pages = self._pages("conversations.replies", channel_id, lambda cursor: (
                self._api.web.conversations_replies(
                    channel=channel_id, ts=thread_ts, include_all_metadata=True,
                    limit=PAGE_SIZE, cursor=cursor)))  # fmt: skip
        for page in pages:
            for item in page.get("messages") or ():
                if isinstance(item, dict) and _key_of(item) == key and item.get("ts"):
                    ts = str(item["ts"])
                    root = item.get("thread_ts")
                    return SlackPosted(channel=channel_id, ts=ts,
                                       thread_ts=str(root) if root and root != ts else None)
        return None

    # -- files -------------------------------------------------------------------------------

    def upload_file(
        self, channel: str, filename: str, content: bytes, *, title: str,
        initial_comment: str | None = None, alt_text: str | None = None,
        thread_ts: str | None = None,
    ) -> SlackFile:
        """Share ``content`` in ``channel`` as ``filename`` with files upload v2, the way
        slack_sdk's ``files_upload_v2`` does it, one step at a time through the client (three
        requests, three log lines): ``files.getUploadURLExternal`` (``filename``, ``length``,
        ``alt_txt``), a POST of the raw bytes to the ``upload_url`` it returns, and
        ``files.completeUploadExternal`` with ``files=[{"id", "title"}]``, ``channel_id`` and
        ``initial_comment`` (the message introducing the file; ``thread_ts`` files it as a reply).

        Not idempotent: Slack has no key for files. After an ambiguous failure, look for the
        file with :meth:`find_file` before uploading again (Slack shares a completed upload
        asynchronously, so a file completed a moment ago may not be listed yet).
        Raises as the class docstring says; an empty ``content`` or ``filename`` is an
        :class:`InvalidRequestError` before any request (Slack refuses a zero ``length``).
        """
        if not content:
            raise InvalidRequestError(f"{VENDOR}: empty file {filename!r}", vendor=VENDOR)
        if not filename.strip():
            raise InvalidRequestError(f"{VENDOR}: a file needs a name", vendor=VENDOR)
        channel_id = self.channel_id(channel)
        ticket = self._api.call(
            "files.getUploadURLExternal", channel_id, self._limiter,
            lambda: self._api.web.files_getUploadURLExternal(
                filename=filename, length=len(content), alt_txt=alt_text))  # fmt: skip
        upload_url, file_id = ticket.get("upload_url"), ticket.get("file_id")
        if not isinstance(upload_url, str) or not isinstance(file_id, str) or not file_id:
            raise FatalError(f"{VENDOR}: files.getUploadURLExternal: answer has no upload_url "
                             "or file_id", vendor=VENDOR)  # fmt: skip
        self._api.upload(upload_url, content, self._limiter)
        done = self._api.call(
            "files.completeUploadExternal", channel_id, self._channel_limiter(channel_id),
            lambda: self._api.web.files_completeUploadExternal(
                files=[{"id": file_id, "title": title}], channel_id=channel_id,
                initial_comment=initial_comment, thread_ts=thread_ts))  # fmt: skip
        files = done.get("files")
        if not isinstance(files, list) or not any(
            isinstance(f, dict) and f.get("id") == file_id for f in files
        ):
            raise FatalError(f"{VENDOR}: files.completeUploadExternal: answer does not list "
                             f"file {file_id}", vendor=VENDOR)  # fmt: skip
        return SlackFile(id=file_id, channel=channel_id, name=filename, title=title)

    def find_file(
        self, channel: str, filename: str, *, oldest: float | None = None
    ) -> SlackFile | None:
        """A file named ``filename`` that the bot shared in ``channel`` since ``oldest`` (unix
        seconds; default: the last ``find_lookback_seconds``), from the channel's history, or
        ``None``. Replies in threads are not searched."""
        channel_id = self.channel_id(channel)
        for page in self._history(channel_id, oldest, metadata=False):
            for item in page.get("messages") or ():
                if not isinstance(item, dict) or not item.get("bot_id"):
                    continue
                for shared in item.get("files") or ():
                    if isinstance(shared, dict) and shared.get("name") == filename \
                            and shared.get("id"):
                        return SlackFile(id=str(shared["id"]), channel=channel_id,
                                         name=filename, title=str(shared.get("title") or ""))
        return None

    # -- plumbing ----------------------------------------------------------------------------

    def _history(
        self, channel_id: str, oldest: float | None, *, metadata: bool
    ) -> Iterator[dict[str, Any]]:
        since = self._wall_clock() - self.settings.find_lookback_seconds \
            if oldest is None else oldest
        start = f"{max(0.0, since):.6f}"
        return self._pages("conversations.history", channel_id, lambda cursor: (
            self._api.web.conversations_history(
                channel=channel_id, oldest=start, include_all_metadata=metadata,
                limit=PAGE_SIZE, cursor=cursor)))  # fmt: skip

    def _channel_limiter(self, channel_id: str) -> RateLimiter:
        with self._limiters_lock:
            limiter = self._channel_limiters.get(channel_id)
            if limiter is None:
                limiter = RateLimiter(self.settings.messages_per_minute, clock=self._clock,
                                      sleep=self._sleep)  # fmt: skip
                self._channel_limiters[channel_id] = limiter
            return limiter

    def _pages(
        self, method: str, channel: str | None, fetch: Callable[[str | None], SlackResponse]
    ) -> Iterator[dict[str, Any]]:
        """Each page of a cursor-paginated method, one request (and one token) per page."""
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = self._api.call(method, channel, self._limiter, functools.partial(fetch, cursor))
            yield page
            metadata = page.get("response_metadata")
            cursor = metadata.get("next_cursor") if isinstance(metadata, dict) else None
            if not cursor:
                return
            if cursor in seen:
                raise FatalError(f"{VENDOR}: {method} repeated cursor {cursor!r}", vendor=VENDOR)
            seen.add(cursor)


def _content(message: SlackMessage, key: str, *, replace_blocks: bool) -> dict[str, Any]:
    """``text``, ``blocks`` and ``metadata`` arguments; refuses blank text or key."""
    if not message.text.strip():
        raise InvalidRequestError(
            f"{VENDOR}: a message needs text (the notification fallback)", vendor=VENDOR
        )
    if not key:
        raise InvalidRequestError(f"{VENDOR}: empty idempotency key", vendor=VENDOR)
    args: dict[str, Any] = {
        "text": message.text,
        "metadata": {"event_type": EVENT_TYPE, "event_payload": {"idempotency_key": key}},
    }
    if message.blocks or replace_blocks:
        # chat.update keeps a message's blocks when the argument is absent: [] removes them.
        args["blocks"] = [_plain(block) for block in message.blocks]
    return args


def _plain(value: Any) -> Any:
    """JSON-able copy: frozen mappings (``MappingProxyType``) and tuples become dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _posted(data: dict[str, Any], channel_id: str, method: str) -> SlackPosted:
    ts = data.get("ts")
    if not isinstance(ts, str) or not ts:
        raise FatalError(f"{VENDOR}: {method}: answer has no ts", vendor=VENDOR)
    message = data.get("message")
    root = message.get("thread_ts") if isinstance(message, dict) else None
    return SlackPosted(channel=str(data.get("channel") or channel_id), ts=ts,
                       thread_ts=str(root) if root and root != ts else None)  # fmt: skip


def _key_of(message: dict[str, Any]) -> str | None:
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != EVENT_TYPE:
        return None
    payload = metadata.get("event_payload")
    key = payload.get("idempotency_key") if isinstance(payload, dict) else None
    return key if isinstance(key, str) else None
