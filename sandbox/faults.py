"""Fault injection and the request log, shared by both sandbox vendors.

Faults let tests put a vendor into the states that break integrations: an error status
(``status``), a write that lands but whose answer never arrives (``reset_after_commit``), a
request parked at an exact point so a test can kill the hub there (``hold``), and a slow answer
(``delay``). The request log records what each vendor was asked and what it answered, so tests
can assert "exactly one create reached Jira".
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["Fault", "FaultInjector", "LoggedRequest", "RequestLog"]

VENDORS = ("zendesk", "jira", "pagerduty", "slack", "productboard")
KINDS = ("status", "reset_after_commit", "hold", "delay")
PHASES = ("before", "after")


class Fault:
    """One injected fault. Built by :meth:`FaultInjector.add`; tests keep it to observe and steer.

    ``hits`` counts the requests it has taken. For ``kind="hold"``: ``reached`` is set once a
    request is being held, ``wait_reached(timeout)`` waits for that, and ``release()`` lets every
    held (and any later) request continue and be answered normally.
    """

    def __init__(
        self,
        vendor: str,
        method: str | None,
        path_regex: str,
        *,
        kind: str,
        times: int | None,
        status: int,
        headers: dict[str, str] | None,
        body: Any,
        delay: float,
        phase: str,
    ) -> None:
        self.vendor = vendor
        self.method = method.upper() if method and method != "*" else None
        self.path_regex = path_regex
        self.pattern = re.compile(path_regex)
        self.kind = kind
        self.times = times
        self.status = status
        self.headers = dict(headers or {})
        self.body = body
        self.delay = delay
        self.phase = phase
        self.hits = 0
        self.reached = threading.Event()
        self._released = threading.Event()

    def __repr__(self) -> str:
        return (
            f"Fault({self.vendor} {self.method or '*'} {self.path_regex!r} kind={self.kind} "
            f"phase={self.phase} hits={self.hits} times={self.times})"
        )

    @property
    def exhausted(self) -> bool:
        """True once the fault has taken its ``times`` requests."""
        return self.times is not None and self.hits >= self.times

    def matches(self, vendor: str, method: str, path: str) -> bool:
        """Whether a request (``vendor``, ``method``, ``path``) is one this fault targets."""
        return (
            vendor == self.vendor
            and (self.method is None or self.method == method.upper())
            and self.pattern.search(path) is not None
        )

    def wait_reached(self, timeout: float | None = None) -> bool:
        """Wait until a request is being held; True if one is, False on timeout."""
        return self.reached.wait(timeout)

    def release(self) -> None:
        """Let held requests continue (and stop holding later ones)."""
        self._released.set()

    def abort(self) -> None:
        """Drop held requests: a ``before`` hold is then never applied and its connection is
        reset, as if the request had been lost on the way (the client saw nothing)."""
        self.aborted = True
        self._released.set()

    @property
    def released(self) -> bool:
        """True once :meth:`release` was called (or the sandbox stopped)."""
        return self._released.is_set()

    aborted = False

    def hold(self) -> None:
        """Block the calling request thread until released (or aborted)."""
        self.reached.set()
        self._released.wait()


class FaultInjector:
    """The faults active on a sandbox; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        vendor: str,
        method: str | None,
        path_regex: str,
        *,
        kind: str,
        times: int | None = 1,
        status: int = 503,
        headers: dict[str, str] | None = None,
        body: Any = None,
        delay: float = 0.0,
        phase: str = "before",
    ) -> Fault:
        """Inject a fault for the first ``times`` matching requests (None: for ever).

        ``method`` None or ``"*"`` matches any method; ``path_regex`` is searched in the request
        path (no query string). Raises ValueError for an unknown vendor, kind or phase.
        """
        if vendor not in VENDORS:
            raise ValueError(f"unknown vendor {vendor!r}; expected one of {VENDORS}")
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {KINDS}")
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; expected one of {PHASES}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        fault = Fault(
            vendor,
            method,
            path_regex,
            kind=kind,
            times=times,
            status=status,
            headers=headers,
            body=body,
            delay=delay,
            phase=phase,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, vendor: str, method: str, path: str) -> Fault | None:
        """Claim the first active fault matching this request (counting it as a hit), if any."""
        with self._lock:
            for fault in self._faults:
                if not fault.exhausted and fault.matches(vendor, method, path):
                    fault.hits += 1
                    return fault
        return None

    def remove(self, fault: Fault) -> None:
        """Deactivate one fault (releasing it if it holds requests)."""
        fault.release()
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def clear(self) -> None:
        """Deactivate every fault, releasing any held requests."""
        with self._lock:
            faults, self._faults = self._faults, []
        for fault in faults:
            fault.release()

    def release_all(self) -> None:
        """Release every held request without removing the faults."""
        with self._lock:
            faults = list(self._faults)
        for fault in faults:
            fault.release()

    def active(self) -> list[Fault]:
        """The faults that can still take requests."""
        with self._lock:
            return [fault for fault in self._faults if not fault.exhausted]


@dataclass(frozen=True)
class LoggedRequest:
    """A request a vendor received and what it did with it.

    ``query`` holds the last value of each parameter, ``query_all`` every value. ``json`` is the
    decoded body (None if absent or not JSON). ``status`` is the status answered, or None when
    a ``reset_after_commit`` fault withheld the answer (an entry is written just before the answer
    goes out, so a client that went away meanwhile still shows the status it would have got).
    ``fault`` names the fault kind applied, if any. ``time`` is when the request arrived (unix s).
    """

    vendor: str
    method: str
    path: str
    query: dict[str, str]
    query_all: dict[str, list[str]]
    json: Any
    status: int | None
    time: float
    fault: str | None = None


class RequestLog:
    """Every request both vendors received, in arrival order; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []

    def record(self, entry: LoggedRequest) -> None:
        """Append one entry (called by the HTTP plumbing)."""
        with self._lock:
            self._entries.append(entry)

    def entries(
        self,
        vendor: str | None = None,
        method: str | None = None,
        path_regex: str | None = None,
    ) -> list[LoggedRequest]:
        """The entries matching every given filter (``path_regex`` is searched in the path)."""
        pattern = re.compile(path_regex) if path_regex is not None else None
        with self._lock:
            entries = list(self._entries)
        return [
            entry
            for entry in sorted(entries, key=lambda e: e.time)
            if (vendor is None or entry.vendor == vendor)
            and (method is None or entry.method == method.upper())
            and (pattern is None or pattern.search(entry.path) is not None)
        ]

    def count(
        self, vendor: str, method: str | None = None, path_regex: str | None = None
    ) -> int:
        """How many requests matched (see :meth:`entries`)."""
        return len(self.entries(vendor, method, path_regex))

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
