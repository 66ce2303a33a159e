"""Fixtures for the sandbox's own tests: a running sandbox and authenticated HTTP sessions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from sandbox import Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def zd(sb: Sandbox) -> Iterator[requests.Session]:
    """A session authenticated the way zenpy authenticates (``email/token``)."""
    with requests.Session() as session:
        session.auth = ("agent@example.com/token", "zd-token")
        yield session


@pytest.fixture
def jr(sb: Sandbox) -> Iterator[requests.Session]:
    """A session authenticated with a Jira email and API token."""
    with requests.Session() as session:
        session.auth = ("bot@example.com", "jira-token")
        yield session
