"""Helpers shared by the webhook receiver tests: a store, a test client over the receiver app,
the inbox rows it left behind."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from starlette.testclient import TestClient

from sync.config import ReceiverSettings
from sync.schema import inbox
from sync.store import Store
from sync.webhooks import create_app

FIELD_IDS = {"error_code": 360001}


def open_store(tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store in ``tmp_path``, closed afterwards (``yield from`` it)."""
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}").open()
    yield store
    store.close()


def receiver_client(store: Store, settings: Mapping[str, Any]) -> TestClient:
    """A client of the receiver app over ``store``, with ``ReceiverSettings(**settings)``."""
    return TestClient(create_app(store, ReceiverSettings(**settings), field_ids=FIELD_IDS))


def inbox_rows(store: Store) -> list[sa.Row[Any]]:
    """Every inbox row, oldest first."""
    with store.read() as conn:
        return list(conn.execute(sa.select(inbox).order_by(inbox.c.id)).all())


def chunked(body: bytes, size: int = 2000) -> Iterator[bytes]:
    """``body`` in pieces, so that the request goes without a Content-Length."""
    for start in range(0, len(body), size):
        yield body[start:start + size]
