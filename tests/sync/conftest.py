"""Fixtures shared by the sync tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store in the test's temp dir (files that need another define their own)."""
    s = Store(f"sqlite:///{tmp_path / 'hub.db'}").open()
    yield s
    s.close()
