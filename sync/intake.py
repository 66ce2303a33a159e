"""Group commit for the webhook receiver: many inbound events, one transaction.

Each request handler submits its event and awaits the result; one writer thread takes every
event waiting at that moment (up to ``max_batch``), inserts them in ONE write transaction and
commits, then answers them all. A request is still answered only after *its* event is committed
(invariant 1) — it just shares the commit (and the store's write lock) with its neighbours, which
is what lets the receiver accept a burst at the rate of the disk rather than of one fsync-sized
transaction per webhook. If the commit fails, every event of the batch gets the error (the
receiver answers 503 and Zendesk delivers again); nothing of the batch is stored. The thread
survives any error, and a waiter that gave up (timeout) is skipped.
"""

from __future__ import annotations

__all__ = ["InboxWriter"]

import asyncio
import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

from sqlalchemy.exc import OperationalError

from sync.inbox import AcceptResult, accept_in
from sync.store import Store

log = logging.getLogger("switchboard.intake")
_STOP = object()


class InboxWriter:
    """One thread that writes submitted inbox events in batches."""

    def __init__(self, store: Store, *, max_batch: int = 256,
                 lock_wait_seconds: float = 8.0) -> None:
        self.store = store
        self.max_batch = max_batch
        self.lock_wait_seconds = lock_wait_seconds
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
        self._thread.start()

    def submit(self, **event: Any) -> Future[AcceptResult]:
        """Queue one event (the keyword arguments of ``inbox.accept_in``)."""
        future: Future[AcceptResult] = Future()
        self._queue.put((event, future))
        return future

    async def accept(self, **event: Any) -> AcceptResult:
        """Submit and wait, without blocking the event loop, until the event is committed."""
        return await asyncio.wrap_future(self.submit(**event))

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            try:
                if self._step():
                    return
            except Exception:  # never let the writer die: every later webhook would hang
                log.exception("the inbox writer failed; carrying on")

    def _step(self) -> bool:
        """Write one batch (all that is waiting, up to ``max_batch``); True when told to stop."""
        first = self._queue.get()
        if first is _STOP:
            return True
        batch = [first]
        stop = False
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            batch.append(item)
        self._write(batch)
        return stop

    def _commit(self, events: list[dict[str, Any]]) -> list[AcceptResult]:
        """Insert and commit, retrying while another process holds the store's write lock.

        The receiver's store is opened with no busy timeout (see ``sync.receiver``): SQLite's own
        busy handler sleeps 1, 2, 5, 10, ... 100 ms between tries, which is most of a webhook's
        latency budget; retrying here every half millisecond keeps acknowledgements quick.
        """
        deadline = time.monotonic() + self.lock_wait_seconds
        while True:
            try:
                with self.store.write() as conn:
                    return [accept_in(conn, **event) for event in events]
            except OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.0005)

    def _write(self, batch: list[tuple[dict[str, Any], Future[AcceptResult]]]) -> None:
        # A request that gave up waiting (its future cancelled) is still written: its sender
        # will deliver it again, and the inbox dedupes the redelivery.
        try:
            results = self._commit([event for event, _ in batch])
        except Exception as exc:
            log.exception("committing %s inbound event(s) failed", len(batch))
            for _, future in batch:
                if future.set_running_or_notify_cancel():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.set_running_or_notify_cancel():
                future.set_result(result)
