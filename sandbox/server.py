"""The sandbox's HTTP plumbing and its public entry point, :class:`Sandbox`.

One stdlib ``ThreadingHTTPServer`` per vendor, each on a free loopback port in a daemon thread,
speaking HTTP/1.1 with keep-alive. The plumbing reads the request, consults the fault injector,
lets the vendor state apply it, logs it and writes the answer; stdlib rather than a framework so
that a fault can abort the socket (RST) after a write has landed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import socketserver
import ssl
import struct
import sys
import tempfile
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import trustme

from sandbox.base import Request, Response, VendorApp
from sandbox.faults import Fault, FaultInjector, LoggedRequest, RequestLog
from sandbox.jira import JiraState
from sandbox.pagerduty import PagerDutyState
from sandbox.productboard import ProductboardState
from sandbox.slack import SlackState
from sandbox.zendesk import ZendeskState

__all__ = ["Sandbox"]

#: Vendors whose stand-in serves HTTPS with the sandbox's own CA.
_TLS_VENDORS = frozenset({"pagerduty"})

_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class _VendorServer(ThreadingHTTPServer):
    """An HTTP server bound to one vendor's state, faults and request log."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, port: int, app: VendorApp, faults: FaultInjector, log: RequestLog,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:  # fmt: skip
        self.app = app
        self.faults = faults
        self.log = log
        self.ssl_context = ssl_context
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)
        if ssl_context is not None:
            # Serve TLS. The handshake is deferred to each connection's handler thread
            # (_Handler.setup), so a silent or failing client cannot stall the accept loop.
            self.socket = ssl_context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse-DNS lookup (getfqdn); skip it on loopback.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanished (killed hub, aborted test) is normal here, not an error.
        if isinstance(sys.exc_info()[1], _CLIENT_GONE + (OSError,)):
            return
        super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        """Shut every open client connection, waking handler threads blocked on keep-alive reads."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Reads one request at a time off a keep-alive connection and runs it through the pipeline."""

    protocol_version = "HTTP/1.1"
    server: _VendorServer

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()  # an SSLError here is a client that does not trust us
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle plus the client's
        # delayed ACK would add ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the stdlib access log; the RequestLog is the record."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._run()

    def do_POST(self) -> None:  # noqa: N802
        self._run()

    def do_PUT(self) -> None:  # noqa: N802
        self._run()

    def do_DELETE(self) -> None:  # noqa: N802
        self._run()

    def do_PATCH(self) -> None:  # noqa: N802
        self._run()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _build_request(self) -> Request:
        parts = urlsplit(self.path)
        body = self._read_body()
        request = Request(
            method=self.command.upper(),
            path=unquote(parts.path),
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
        )
        if body.strip():
            try:
                request.json = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                request.json_error = True
        return request

    def _run(self) -> None:
        arrived = time.time()
        server = self.server
        app = server.app
        request = self._build_request()
        fault = server.faults.take(app.vendor, request.method, request.path)
        kind = fault.kind if fault is not None else None
        if fault is not None and kind == "delay":
            time.sleep(fault.delay)
        if fault is not None and kind == "hold" and fault.phase == "before":
            fault.hold()
            if fault.aborted:  # the request is lost: nothing applied, nothing answered
                self._log(request, arrived, None, "aborted")
                with contextlib.suppress(*_CLIENT_GONE):
                    self._reset()
                return
        if fault is not None and kind == "status":
            response = self._fault_response(fault, app)
        else:
            response = self._apply(app, request)
        if fault is not None and kind == "hold" and fault.phase == "after":
            fault.hold()
        # Logged before answering, so a client that has its answer also finds the entry.
        reset = kind == "reset_after_commit"
        self._log(request, arrived, None if reset else response.status, kind)
        try:
            if reset:
                self._reset()
            else:
                self._send(response)
        except _CLIENT_GONE:
            self.close_connection = True

    def _log(self, request: Request, arrived: float, status: int | None, kind: str | None) -> None:
        self.server.log.record(
            LoggedRequest(
                vendor=self.server.app.vendor,
                method=request.method,
                path=request.path,
                query={name: values[-1] for name, values in request.query.items()},
                query_all={name: list(values) for name, values in request.query.items()},
                json=request.json,
                status=status,
                time=arrived,
                fault=kind,
            )
        )

    @staticmethod
    def _apply(app: VendorApp, request: Request) -> Response:
        try:
            return app.handle(request)
        except Exception:  # a sandbox bug: answer 500 and say why on stderr
            traceback.print_exc()
            return Response(500, app.error_body(500, "sandbox internal error"))

    @staticmethod
    def _fault_response(fault: Fault, app: VendorApp) -> Response:
        body = fault.body if fault.body is not None else app.error_body(fault.status)
        headers = dict(fault.headers)
        if fault.status == 429 and not any(k.lower() == "retry-after" for k in headers):
            headers["Retry-After"] = "1"
        return Response(fault.status, body, headers)

    def _send(self, response: Response) -> None:
        payload = response.encoded()
        self.send_response(response.status, HTTPStatus(response.status).phrase)
        if payload:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()

    def _reset(self) -> None:
        """Abort the connection with a TCP RST and no answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        # Drop the file objects' references so close() really closes the socket (sending RST),
        # and leave harmless stand-ins for the stdlib's trailing flush/close.
        self.rfile.close()
        self.wfile.close()
        self.connection.close()
        self.rfile = io.BytesIO()
        self.wfile = io.BytesIO()


class Sandbox:
    """Local stand-ins for the Zendesk Support and Jira Cloud REST APIs, faithful to api-notes.

    ``start()`` serves each vendor on its own loopback port (``zendesk_url``, ``jira_url``);
    ``stop()`` releases held requests and shuts both down. Usable as a context manager.
    ``zendesk`` / ``jira`` are the vendor states (seed and inspect them directly), ``faults`` the
    fault injector, ``requests`` the log of every request received. ``pagerduty`` is the
    PagerDuty Events API stand-in, served over HTTPS (``pagerduty_url``; trust ``ca_bundle``).
    ``slack`` is the Slack Web API stand-in (``slack_url``). ``productboard`` is the
    Productboard Public API v2 stand-in (``productboard_url``).
    """

    def __init__(
        self,
        jira_search_lag: float = 0.0,
        jira_projects: tuple[str, ...] = ("SUP",),
        zendesk_subdomain: str = "sandbox",
        export_exclude_recent_seconds: float = 0,
        *,
        zendesk_port: int = 0,
        jira_port: int = 0,
        pagerduty_port: int = 0,
        slack_port: int = 0,
        productboard_port: int = 0,
    ) -> None:
        self.faults = FaultInjector()
        self.requests = RequestLog()
        self.zendesk = ZendeskState(
            subdomain=zendesk_subdomain,
            export_exclude_recent_seconds=export_exclude_recent_seconds,
        )
        self.jira = JiraState(projects=jira_projects, search_lag=jira_search_lag)
        self._ports = {"zendesk": zendesk_port, "jira": jira_port}
        # PagerDuty's client refuses http:// base URLs: its stand-in serves HTTPS (see ca_bundle).
        self.pagerduty = PagerDutyState()
        self._ports["pagerduty"] = pagerduty_port
        self.slack = SlackState()
        self._ports["slack"] = slack_port
        self.productboard = ProductboardState()
        self._ports["productboard"] = productboard_port
        self._tls: ssl.SSLContext | None = None
        self._ca_path: str | None = None
        self._servers: dict[str, _VendorServer] = {}
        self._threads: list[threading.Thread] = []

    def start(self) -> Sandbox:
        """Bind both servers and serve them in daemon threads. Raises RuntimeError if running."""
        if self._servers:
            raise RuntimeError("sandbox already started")
        apps: dict[str, VendorApp] = {"zendesk": self.zendesk, "jira": self.jira}
        apps["pagerduty"] = self.pagerduty
        apps["slack"] = self.slack
        apps["productboard"] = self.productboard
        try:
            for vendor, app in apps.items():
                tls = self._tls_context() if vendor in _TLS_VENDORS else None
                server = _VendorServer(
                    self._ports[vendor], app, self.faults, self.requests, ssl_context=tls
                )
                self._servers[vendor] = server
                app.set_base_url(self._url(vendor))
        except OSError:
            for server in self._servers.values():
                server.server_close()
            self._servers.clear()
            self._forget_ca()
            raise
        for vendor, server in self._servers.items():
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name=f"sandbox-{vendor}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Release held requests, stop serving and close every socket. Safe to call twice."""
        self.faults.release_all()
        stoppers = [threading.Thread(target=s.shutdown) for s in self._servers.values()]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in self._servers.values():
            server.drop_connections()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()
        self._forget_ca()

    def _tls_context(self) -> ssl.SSLContext:
        """The server-side TLS context of this run, made on first use: a certificate for
        127.0.0.1 and localhost signed by a CA made with trustme, whose PEM is written to a
        temporary file (``ca_bundle``) that :meth:`stop` removes."""
        if self._tls is None:
            ca = trustme.CA()
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
            fd, path = tempfile.mkstemp(prefix="switchboard-sandbox-ca-", suffix=".pem")
            with os.fdopen(fd, "wb") as handle:
                handle.write(ca.cert_pem.bytes())
            self._tls, self._ca_path = context, path
        return self._tls

    def _forget_ca(self) -> None:
        if self._ca_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._ca_path)
        self._tls = self._ca_path = None

    def _url(self, vendor: str) -> str:
        server = self._servers.get(vendor)
        if server is None:
            raise RuntimeError("sandbox not started")
        scheme = "https" if server.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{server.server_port}"

    @property
    def pagerduty_url(self) -> str:
        """Base URL of the PagerDuty Events API stand-in, ``https://127.0.0.1:PORT`` (trust it
        with :attr:`ca_bundle`)."""
        return self._url("pagerduty")

    @property
    def ca_bundle(self) -> str:
        """Path of the PEM file holding the CA behind the sandbox's TLS certificate (the value
        for ``http.verify_tls``). Exists while the sandbox runs; raises RuntimeError otherwise."""
        if self._ca_path is None:
            raise RuntimeError("sandbox not started")
        return self._ca_path

    @property
    def zendesk_url(self) -> str:
        """Base URL of the Zendesk stand-in, e.g. ``http://127.0.0.1:54321``."""
        return self._url("zendesk")

    @property
    def zendesk_netloc(self) -> str:
        """``host:port`` of the Zendesk stand-in (the value for ``ZENPY_FORCE_NETLOC``)."""
        return self._url("zendesk").removeprefix("http://")

    @property
    def jira_url(self) -> str:
        """Base URL of the Jira stand-in (the ``server`` for ``jira.JIRA``)."""
        return self._url("jira")

    @property
    def slack_url(self) -> str:
        """Web API base URL of the Slack stand-in, ``http://127.0.0.1:PORT/api/`` (the
        ``base_url`` of ``slack_sdk.WebClient``)."""
        return self._url("slack") + "/api/"

    @property
    def productboard_url(self) -> str:
        """Base URL of the Productboard stand-in, ``http://127.0.0.1:PORT`` (the ``base_url``
        of ``connectors.productboard``; the API lives under ``/v2``)."""
        return self._url("productboard")

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
