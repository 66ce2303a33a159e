"""The store: migrations describe the live schema, SQLite runs in WAL, one hub per SQLite file."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from sync import schema
from sync.store import Store, StoreLockedError, utcnow


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'hub.db'}").open()
    yield s
    s.close()


def test_migrations_build_exactly_the_schema_the_code_queries(store):
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
    assert store.schema_version() == Store.head_version() is not None


def test_migrating_twice_is_a_no_op(store):
    store.migrate()
    assert store.schema_version() == Store.head_version()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(store):
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_a_second_hub_on_the_same_sqlite_file_is_refused(store, tmp_path):
    second = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    with pytest.raises(StoreLockedError, match="already served"):
        second.open()
    second.close()


def test_times_come_back_aware_utc_and_naive_ones_are_refused(store):
    with store.write() as conn:
        conn.execute(sa.insert(schema.cursors).values(name="c", value={}, updated_at=utcnow()))
    with store.read() as conn:
        stamp = conn.execute(sa.select(schema.cursors.c.updated_at)).scalar_one()
    assert stamp.tzinfo is not None and stamp.utcoffset().total_seconds() == 0
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), store.write() as conn:
        conn.execute(sa.insert(schema.cursors).values(name="d", value={},
                                                      updated_at=datetime(2026, 1, 1)))


def test_a_failed_write_transaction_rolls_back(store):
    with pytest.raises(RuntimeError), store.write() as conn:
        conn.execute(sa.insert(schema.cursors).values(name="c", value={}, updated_at=utcnow()))
        raise RuntimeError("boom")
    with store.read() as conn:
        assert conn.execute(sa.select(schema.cursors)).all() == []
