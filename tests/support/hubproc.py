"""Run a Switchboard hub as a SUBPROCESS against an in-process sandbox — for crash-safety and
end-to-end tests that must kill the hub for real (SIGKILL) and restart it on the same store.

    with Sandbox(jira_search_lag=1.0) as sb:
        cfg = hub_config(sb, tmp_path, secret="hub-webhook-secret", jira_search_lag=1.5)
        hub = HubProcess(write_config(tmp_path / "hub.yaml", cfg), log_path=tmp_path / "hub.log")
        hub.start()                      # returns once GET /healthz answers 200
        sb.zendesk.configure_webhook(hub.webhook_url, "hub-webhook-secret")
        ...
        hub.kill()                       # SIGKILL + wait
        hub.start()                      # same config, same store, same port
        hub.close()                      # stop (SIGTERM, then SIGKILL) and close the log file

:class:`StoreReader` looks into the hub's SQLite store read-only (outbox / inbox states, the
poller cursor) while the hub runs. Everything here closes what it opens: the suite runs with
warnings as errors, so a leaked socket, file or child process fails the test.
"""

from __future__ import annotations

__all__ = [
    "REPO_ROOT",
    "HubProcess",
    "StoreReader",
    "bug_ticket",
    "free_port",
    "hub_config",
    "shipped_config",
    "wait_until",
    "write_config",
]

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

import requests
import sqlalchemy as sa
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], T], timeout: float, *, interval: float = 0.1,
               message: str | Callable[[], str] = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Raises AssertionError (with ``message``) on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for: {text}")
        time.sleep(interval)


def shipped_config() -> dict[str, Any]:
    """The repository's ``config.yaml`` as plain data (rules and custom fields are reused)."""
    return dict(yaml.safe_load((REPO_ROOT / "config.yaml").read_text(encoding="utf-8")))


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def hub_config(sb: Any, tmp_path: Path, *, secret: str = "crash-test-secret",
               port: int | None = None, jira_search_lag: float = 1.5,
               poll_interval: float = 3600, backoff_base: float = 0.2,
               rules: list[dict[str, Any]] | None = None,
               overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A hub config pointed at a running sandbox ``sb``: sandbox mode off (the hub talks to
    ``sb.zendesk_url`` / ``sb.jira_url``), store ``tmp_path/hub.db``, receiver on 127.0.0.1 and
    ``port`` (default: a free one), the shipped custom fields and bug-escalation rule (``rules``
    replaces it), quick retries. ``overrides`` is deep-merged last. The first poll (at start) is the
    backfill; ``poll_interval`` defaults to an hour so no other poll interferes."""
    shipped = shipped_config()
    zendesk = shipped["connectors"]["zendesk"]
    config: dict[str, Any] = {
        "sandbox": {"enabled": False},
        "store": {"url": f"sqlite:///{(tmp_path / 'hub.db').resolve()}"},
        "receiver": {"host": "127.0.0.1", "port": port if port is not None else free_port(),
                     "zendesk_signing_secrets": [secret]},
        "poller": {"enabled": True, "interval_seconds": poll_interval},
        "dispatcher": {"workers": 4, "backoff_base_seconds": backoff_base,
                       "backoff_max_seconds": 2.0, "lease_seconds": 60},
        "inbox": {"workers": 2},
        "connectors": {
            "zendesk": {"subdomain": "sandbox", "email": "hub@example.com",
                        "api_token": "sandbox-token", "base_url": sb.zendesk_url,
                        "custom_fields": dict(zendesk["custom_fields"])},
            "jira": {"url": sb.jira_url, "email": "hub@example.com",
                     "api_token": "sandbox-token", "search_lag_seconds": jira_search_lag},
        },
        # The shipped bug-escalation rule: the crash tests are about its side effects (those
        # of creating and linking; the impact roll-up has tests of its own).
        "rules": copy.deepcopy(rules if rules is not None else [_without_impact(
            shipped["rules"][0])]),
    }
    return _merge(config, overrides or {})


def _without_impact(rule: dict[str, Any]) -> dict[str, Any]:
    return {**rule, "then": [step for step in rule["then"] if "jira.impact" not in step]}


def write_config(path: Path, config: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    return path


def bug_ticket(field_ids: Mapping[str, int], *, subject: str, error_code: str | None,
               priority: str = "high", tags: tuple[str, ...] = ("bug_confirmed",),
               **extra_fields: str) -> dict[str, Any]:
    """Ticket data for ``sb.zendesk.create_ticket`` that the shipped rule escalates."""
    values = {"error_code": error_code, **extra_fields}
    return {
        "subject": subject, "description": f"{subject} (reported by a customer)",
        "priority": priority, "type": "problem", "status": "open", "tags": list(tags),
        "custom_fields": [{"id": fid, "value": values.get(name)}
                          for name, fid in field_ids.items()],
    }


class HubProcess:
    """``python main.py run --config FILE`` as a child process; restartable, killable.

    stdout and stderr of every run go to ``log_path`` (appended, one banner per start), so a
    failing test can show the hub's whole story (:meth:`log_text`).
    """

    def __init__(self, config_path: Path, *, log_path: Path, cwd: Path = REPO_ROOT,
                 env: Mapping[str, str] | None = None, verbose: bool = False) -> None:
        self.config_path = Path(config_path)
        self.log_path = Path(log_path)
        self.cwd = cwd
        config = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        receiver = config.get("receiver") or {}
        self.host = str(receiver.get("host", "127.0.0.1"))
        self.port = int(receiver.get("port") or 0)
        if not self.port:
            raise ValueError("HubProcess needs a fixed receiver.port (use free_port())")
        base_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SWITCHBOARD_", "ZENPY_FORCE_"))}
        base_env["PYTHONUNBUFFERED"] = "1"
        self.env = {**base_env, **(env or {})}
        self.verbose = verbose
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    # -- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhooks/zendesk"

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 30.0) -> HubProcess:
        """Spawn the hub and return once ``GET /healthz`` answers 200."""
        if self.running:
            raise RuntimeError("hub already running")
        self._reap()
        self.starts += 1
        if self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in close()
        self._log.write(f"\n===== hub start #{self.starts} =====\n".encode())
        self._log.flush()
        cmd = [sys.executable, "main.py", "run", "--config", str(self.config_path)]
        if self.verbose:
            cmd.append("--verbose")
        self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise RuntimeError(f"hub exited (status {code}) before it was healthy:\n"
                                   + self.log_text()[-4000:])
            try:
                with requests.get(f"{self.url}/healthz", timeout=1) as resp:
                    if resp.status_code == 200:
                        return
            except requests.RequestException:
                pass
            if time.monotonic() >= deadline:
                raise RuntimeError(f"hub not healthy after {timeout:.0f}s:\n"
                                   + self.log_text()[-4000:])
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the hub (no clean-up of any kind runs) and reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._note(f"===== hub killed (SIGKILL), status {self.proc.returncode} =====")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (graceful stop); SIGKILL if it does not exit within ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._note(f"===== hub stopped, status {self.proc.returncode} =====")
        return self.proc.returncode

    def _reap(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            self.proc = None

    def _note(self, text: str) -> None:
        if self._log is not None and not self._log.closed:
            self._log.write(f"{text}\n".encode())
            self._log.flush()

    def close(self) -> None:
        """Make sure the child is gone (kill if need be) and close the log file. Idempotent."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.kill()
        finally:
            if self.proc is not None:
                self.proc.wait(timeout=10)
            if self._log is not None:
                self._log.close()
                self._log = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> HubProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StoreReader:
    """Read-only SQL access to a (running) hub's SQLite store; ``close()`` when done."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self.engine = sa.create_engine(
            f"sqlite:///file:{self.db_path.resolve()}?mode=ro&uri=true",
            poolclass=sa.pool.NullPool)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rows(self, sql: str, **params: Any) -> list[sa.Row[Any]]:
        if not self.db_path.exists():
            return []
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))

    def counts(self, table: str) -> dict[str, int]:
        """Rows per status of ``inbox`` or ``outbox``."""
        if table not in ("inbox", "outbox"):
            raise ValueError(table)
        try:
            return {r.status: r.n for r in self.rows(
                f"SELECT status, count(*) AS n FROM {table} GROUP BY status")}  # noqa: S608
        except sa.exc.OperationalError:
            return {}  # not migrated yet

    def intents(self) -> list[sa.Row[Any]]:
        return self.rows("SELECT id, action, ticket_id, status, attempts, last_error, progress, "
                         "result FROM outbox ORDER BY id")

    def backfilled(self) -> bool:
        """True once the poller's first (backfill) poll has completed."""
        try:
            rows = self.rows("SELECT value FROM cursors WHERE name = 'zendesk.tickets'")
        except sa.exc.OperationalError:
            return False
        if not rows:
            return False
        value = rows[0].value
        if isinstance(value, str):
            value = json.loads(value)
        return not value.get("backfill")

    def settled(self, *, min_done: int = 0) -> bool:
        """No inbox event or outbox intent pending, and at least ``min_done`` intents done."""
        inbox, outbox = self.counts("inbox"), self.counts("outbox")
        return (not inbox.get("pending") and not outbox.get("pending")
                and outbox.get("done", 0) >= min_done)

    def describe(self) -> str:
        """A short dump for failure messages."""
        lines = [f"inbox: {self.counts('inbox')}", f"outbox: {self.counts('outbox')}"]
        try:
            lines += [f"  intent {r.id} {r.action} ticket={r.ticket_id} {r.status} "
                      f"attempts={r.attempts} error={r.last_error} progress={r.progress}"
                      for r in self.intents()]
        except sa.exc.OperationalError as exc:
            lines.append(f"  (cannot read intents: {exc})")
        return "\n".join(lines)


def receiver_pids(hub_pid: int) -> list[int]:
    """Child processes of the hub that run the webhook receiver (from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if int(stat[1]) == hub_pid and b"sync.receiver" in cmdline:
            pids.append(int(entry.name))
    return pids
