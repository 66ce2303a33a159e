"""Fixtures for the connector tests: a fake HTTP transport, a fake clock, a clean environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from tests.connectors.support import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    """Fake HTTP at the transport; unregistered URLs raise ConnectionError."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture(autouse=True)
def _no_zenpy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The connectors must reach the sandbox without zenpy's process-global overrides.
    monkeypatch.delenv("ZENPY_FORCE_SCHEME", raising=False)
    monkeypatch.delenv("ZENPY_FORCE_NETLOC", raising=False)
