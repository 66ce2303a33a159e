"""The durable store: one SQLAlchemy engine, migrations, and short transactions.

SQLite (the embedded default) runs in WAL mode with ``synchronous=NORMAL`` — a commit survives the
process being killed (SIGKILL), which is the guarantee webhooks are acknowledged on — and a busy
timeout. Writers are serialised inside the process (one lock) and open their transactions with
``BEGIN IMMEDIATE``, so "database is locked" cannot surface from lock upgrades. A SQLite file is
served by one hub process at a time: :meth:`Store.open` takes an exclusive lock file beside it.

PostgreSQL uses the same code path; only the SQLite specifics above are switched off for it.
"""

from __future__ import annotations

__all__ = ["Store", "StoreLockedError", "utcnow"]

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


class StoreLockedError(RuntimeError):
    """Another hub process already serves this SQLite file."""


class Store:
    """Engine, schema version and transactions for one database URL."""

    def __init__(self, url: str, *, busy_timeout_ms: int = 30_000,
                 checkpoints: bool = True) -> None:
        self.url = url
        self._is_sqlite = url.startswith("sqlite")
        self._write_lock = threading.Lock()
        self._lock_fd: int | None = None
        if self._is_sqlite:
            path = sa.engine.make_url(url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
            self._install_sqlite_pragmas(busy_timeout_ms, checkpoints)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)

    def _install_sqlite_pragmas(self, busy_timeout_ms: int, checkpoints: bool) -> None:
        @sa.event.listens_for(self.engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when transactions begin (see "begin").
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA foreign_keys=ON")
            if not checkpoints:
                # Leave WAL checkpoints (an fsync of the database) to the other connections.
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

        @sa.event.listens_for(self.engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            immediate = conn.get_execution_options().get("sqlite_immediate", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> Store:
        """Take the single-process lock (SQLite) and bring the schema to the newest version."""
        if self._is_sqlite:
            self._take_file_lock()
        self.migrate()
        return self

    def _take_file_lock(self) -> None:
        path = sa.engine.make_url(self.url).database
        if not path or path == ":memory:":
            return
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise StoreLockedError(
                f"{path} is already served by another Switchboard process "
                "(a SQLite store allows one hub; use PostgreSQL for several replicas)"
            ) from exc
        self._lock_fd = fd

    @property
    def single_process(self) -> bool:
        """True when this process is known to be the store's only user (locked SQLite file)."""
        return self._lock_fd is not None

    def close(self) -> None:
        self.engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def migrate(self) -> None:
        """Upgrade the schema to ``head`` (Alembic); a no-op when already there."""
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self._write_lock, self.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()

    def checkpoint(self) -> None:
        """Copy the WAL back into the database file (SQLite; never blocks readers or writers)."""
        if self._is_sqlite:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def schema_version(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @staticmethod
    def head_version() -> str | None:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        return ScriptDirectory.from_config(cfg).get_current_head()

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A short write transaction; commits on success, rolls back on any exception."""
        if self._is_sqlite:
            with self._write_lock, self.engine.connect() as conn:
                conn = conn.execution_options(sqlite_immediate=True)
                with conn.begin():
                    yield conn
        else:
            with self.engine.begin() as conn:
                yield conn

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A read-only transaction (a consistent snapshot in WAL mode)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn
