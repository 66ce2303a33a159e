"""The webhook receiver in a process of its own.

The receiver and the workers are both Python: in one process they share one GIL, so a busy
inbox worker delays every acknowledgement and halves the rate webhooks are accepted at. The hub
therefore serves ``sync.webhooks`` from a child process (uvicorn on httptools/uvloop) that shares
only the store with it:

- the child commits events through its own :class:`~sync.intake.InboxWriter` (SQLite serialises
  the two processes' writes; WAL lets the hub read meanwhile);
- after each commit it sends one byte on an event pipe, which wakes the hub's inbox workers;
- it exits when the hub's end of a control pipe closes — also when the hub is killed — so a
  receiver never outlives its hub; the hub owns the listening socket and restarts a child that
  died (backing off if children keep dying young).
"""

from __future__ import annotations

__all__ = ["ReceiverProcess"]

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sync.config import ReceiverSettings

log = logging.getLogger("switchboard.receiver")


def _serve(spec: Mapping[str, Any], listen_fd: int, control_fd: int, events_fd: int) -> None:
    """The child's main: serve until the control pipe closes or a signal stops uvicorn."""
    import uvicorn

    from sync.intake import InboxWriter
    from sync.store import Store
    from sync.webhooks import create_app

    logging.basicConfig(level=int(spec.get("log_level", logging.WARNING)),
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
    sock = socket.socket(fileno=listen_fd)  # the hub's listening socket: same port always
    server = uvicorn.Server(uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off",
        timeout_graceful_shutdown=5, http="httptools", loop="uvloop"))

    def watch_hub() -> None:
        with contextlib.suppress(OSError):
            os.read(control_fd, 1)  # returns b"" (EOF) when the hub closes it or dies
        server.should_exit = True

    def announce_ready() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.01)
        if server.started:
            send(b"R")

    threading.Thread(target=watch_hub, name="hub-watch", daemon=True).start()
    threading.Thread(target=announce_ready, name="ready", daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        writer.close()
        store.close()


#: Started with an explicit import path and ``-P`` (Python >= 3.11), so that a ``sync`` module in
#: the working directory can never shadow Switchboard's.
_BOOT = ("import sys; sys.path.insert(0, {root!r}); "
         "from sync.receiver import main; main(sys.argv)")
ROOT = str(Path(__file__).resolve().parents[1])
MAX_BACKOFF = 60.0


class ReceiverProcess:
    """Starts, watches, restarts and stops the receiver child of one hub.

    The hub binds and listens on the receiver's socket itself and hands it to every child: the
    port never changes across restarts, connections made while a child restarts wait in the
    backlog instead of being refused, and the hub is listening once :meth:`start` returns.
    """

    def __init__(self, settings: ReceiverSettings, store_url: str,
                 field_ids: Mapping[str, int], *, on_events: Callable[[], None]) -> None:
        self.settings = settings
        self.store_url = store_url
        self.field_ids = dict(field_ids)
        self.on_events = on_events
        self.port: int | None = None
        self._socket: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._control_w: int | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._failures = 0  # children in a row that died young
        self._ready = threading.Event()

    def _spec(self) -> bytes:
        settings = self.settings.model_dump(mode="json")
        # Secrets travel on the child's stdin (never argv or the environment).
        for name in ("zendesk_signing_secrets", "pagerduty_signing_secrets",
                     "jira_signing_secrets"):
            settings[name] = [s.get_secret_value() for s in getattr(self.settings, name)]
        return json.dumps({"settings": settings, "store_url": self.store_url,
                           "field_ids": self.field_ids,
                           "log_level": logging.getLogger("switchboard").getEffectiveLevel(),
                           }).encode()

    def start(self, timeout: float = 60.0) -> int:
        """Listen, start the child and wait until it serves; returns the port."""
        # IPPROTO_TCP explicitly: asyncio switches Nagle's algorithm off (TCP_NODELAY) only on
        # connections accepted from such a socket; without it every keep-alive answer waits
        # ~40 ms for the client's delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.settings.host, self.settings.port))
        sock.listen(2048)
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        self._spawn()
        if not self._ready.wait(timeout):
            # Not fatal: connections wait in the backlog, and a dead child is restarted.
            log.error("the webhook receiver is not serving after %.0fs", timeout)
        return self.port

    def _spawn(self) -> None:
        assert self._socket is not None
        with self._lock:
            if self._stopping.is_set():
                return
            control_r, control_w = os.pipe()
            events_r, events_w = os.pipe()
            listen_fd = self._socket.fileno()
            try:
                process = subprocess.Popen(
                    [sys.executable, "-P", "-c", _BOOT.format(root=ROOT), str(listen_fd),
                     str(control_r), str(events_w)],
                    stdin=subprocess.PIPE, pass_fds=(listen_fd, control_r, events_w),
                    start_new_session=True)  # stopped through the control pipe only
            finally:
                # The child's ends: closed here, so each side sees EOF when the other goes away.
                os.close(control_r)
                os.close(events_w)
            assert process.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                process.stdin.write(self._spec())
                process.stdin.close()
            self._process, self._control_w = process, control_w
        threading.Thread(target=self._relay, args=(os.fdopen(events_r, "rb", buffering=0),
                                                   process), name="receiver-events",
                         daemon=True).start()

    def _relay(self, events: Any, process: subprocess.Popen[bytes]) -> None:
        started = time.monotonic()
        with events:
            while data := events.read(4096):
                if b"R" in data:
                    self._ready.set()
                if b"w" in data:
                    self.on_events()
        status = process.wait()
        if self._stopping.is_set():
            return
        with self._lock:
            if self._control_w is not None:
                os.close(self._control_w)
                self._control_w = None
        # Back off when children keep dying young (a broken install, a bad setting).
        self._failures = 0 if time.monotonic() - started > MAX_BACKOFF else self._failures + 1
        delay = min(MAX_BACKOFF, 0.5 * 2 ** self._failures) if self._failures else 0.0
        log.error("the webhook receiver process exited (status %s); restarting it%s", status,
                  f" in {delay:.0f}s" if delay else "")
        if self._stopping.wait(delay):
            return
        try:
            self._spawn()
        except Exception:
            log.exception("could not restart the webhook receiver")

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the child to stop (it finishes its in-flight requests), then wait for it."""
        with self._lock:
            self._stopping.set()
            if self._control_w is not None:
                os.close(self._control_w)
                self._control_w = None
            process = self._process
        if process is not None:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def main(argv: list[str]) -> None:
    """The child: ``LISTEN_FD CONTROL_FD EVENTS_FD`` as arguments, the spec as JSON on stdin."""
    spec = json.loads(sys.stdin.buffer.read())
    _serve(spec, int(argv[1]), int(argv[2]), int(argv[3]))
