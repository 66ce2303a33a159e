"""The webhook receiver in a process of its own.

The receiver and the workers are both Python: in one process they share one GIL, so a busy
inbox worker delays every acknowledgement and halves the rate webhooks are accepted at. The hub
therefore serves ``sync.webhooks`` from a child process (uvicorn on httptools/uvloop) that shares
only the store with it:

- the child commits events through its own :class:`~sync.intake.InboxWriter` (SQLite serialises
  the two processes' writes; WAL lets the hub read meanwhile);
- after each commit it sends one byte on an event pipe, which wakes the hub's inbox workers;
- it exits when the hub's end of a control pipe closes — also when the hub is killed — so a
  receiver never outlives its hub and never holds the port against the hub's restart.
"""

from __future__ import annotations

__all__ = ["ReceiverProcess"]

import contextlib
import json
import logging
import os
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

from sync.config import ReceiverSettings

log = logging.getLogger("switchboard.receiver")
START_TIMEOUT = 60.0


def _serve(spec: Mapping[str, Any], control_fd: int, events_fd: int) -> None:
    """The child's main: serve until the control pipe closes or a signal stops uvicorn."""
    import uvicorn

    from sync.intake import InboxWriter
    from sync.store import Store
    from sync.webhooks import create_app

    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = ReceiverSettings(**spec["settings"])
    # The hub opened (locked, migrated) the store; the receiver only inserts, and retries a busy
    # write lock itself, finer-grained than SQLite's busy handler (see InboxWriter._commit).
    # WAL checkpoints are left to the hub's connections, off the acknowledgement path.
    store = Store(spec["store_url"], busy_timeout_ms=0, checkpoints=False)
    send_lock = threading.Lock()

    def send(data: bytes) -> None:
        with send_lock, contextlib.suppress(OSError):
            os.write(events_fd, data)

    writer = InboxWriter(store)
    app = create_app(store, settings, field_ids=spec["field_ids"], writer=writer,
                     on_accept=lambda: send(b"w"))
    # IPPROTO_TCP explicitly: asyncio switches Nagle's algorithm off (TCP_NODELAY) only on
    # connections accepted from such a socket; without it every keep-alive answer waits ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    server = uvicorn.Server(uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off",
        timeout_graceful_shutdown=5, http="httptools", loop="uvloop"))

    def watch_hub() -> None:
        with contextlib.suppress(OSError):
            os.read(control_fd, 1)  # returns b"" (EOF) when the hub closes it or dies
        server.should_exit = True

    threading.Thread(target=watch_hub, name="hub-watch", daemon=True).start()
    send(f"R{sock.getsockname()[1]}\n".encode())
    try:
        server.run(sockets=[sock])
    finally:
        writer.close()
        store.close()


class ReceiverProcess:
    """Starts, watches and stops the receiver child of one hub."""

    def __init__(self, settings: ReceiverSettings, store_url: str,
                 field_ids: Mapping[str, int], *, on_events: Callable[[], None]) -> None:
        self.settings = settings
        self.store_url = store_url
        self.field_ids = dict(field_ids)
        self.on_events = on_events
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._control_w: int | None = None
        self._stopping = threading.Event()

    def _spec(self) -> bytes:
        settings = self.settings.model_dump(mode="json")
        # Secrets travel on the child's stdin (never argv or the environment).
        settings["zendesk_signing_secrets"] = [
            s.get_secret_value() for s in self.settings.zendesk_signing_secrets]
        return json.dumps({"settings": settings, "store_url": self.store_url,
                           "field_ids": self.field_ids}).encode()

    def start(self) -> int:
        """Start the child and wait until it listens; returns its port."""
        control_r, control_w = os.pipe()
        events_r, events_w = os.pipe()
        process = subprocess.Popen(
            [sys.executable, "-m", "sync.receiver", str(control_r), str(events_w)],
            stdin=subprocess.PIPE, pass_fds=(control_r, events_w))
        # Close the child's ends here, so that each side sees EOF when the other goes away.
        os.close(control_r)
        os.close(events_w)
        assert process.stdin is not None
        process.stdin.write(self._spec())
        process.stdin.close()
        self._process, self._control_w = process, control_w
        events = os.fdopen(events_r, "rb", buffering=0)
        ready = select.select([events], [], [], START_TIMEOUT)[0]
        line = events.readline() if ready else b""
        if not line.startswith(b"R"):
            events.close()
            self._kill()
            raise RuntimeError(f"the webhook receiver did not start (exit status "
                               f"{process.poll()}); see its error above")
        self.port = int(line[1:])
        threading.Thread(target=self._relay, args=(events,), name="receiver-events",
                         daemon=True).start()
        return self.port

    def _relay(self, events: Any) -> None:
        with events:
            while events.read(4096):
                self.on_events()
        if not self._stopping.is_set():
            log.error("the webhook receiver process exited (status %s); restarting it",
                      self._process.poll() if self._process else None)
            try:
                self.start()
            except Exception:
                log.exception("could not restart the webhook receiver")

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the child to stop (it finishes its in-flight requests), then wait for it."""
        self._stopping.set()
        if self._control_w is not None:
            os.close(self._control_w)
            self._control_w = None
        if self._process is not None:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(5)


def main(argv: list[str]) -> None:
    """``python -m sync.receiver CONTROL_FD EVENTS_FD``, with the spec as JSON on stdin."""
    spec = json.loads(sys.stdin.buffer.read())
    _serve(spec, int(argv[1]), int(argv[2]))


if __name__ == "__main__":
    main(sys.argv)
