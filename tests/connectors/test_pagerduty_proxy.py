"""The PagerDuty connector honours the environment's proxies (HTTPS_PROXY, NO_PROXY) as the
vendor client would have without our transport; loopback (the sandbox) is always direct."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx2
import pytest

from connectors.errors import RetriableError
from connectors.httpx_hygiene import EnvProxyTransport
from connectors.models import Alert
from connectors.pagerduty import PagerDutyConnector
from connectors.settings import PagerDutySettings

PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
             "all_proxy", "NO_PROXY", "no_proxy")


@pytest.fixture(autouse=True)
def _clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[str]]]:
    """A proxy that records each request line and refuses it (502)."""
    seen: list[str] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                seen.append(data.split(b"\r\n", 1)[0].decode())
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", seen
    server.close()


def _settings() -> PagerDutySettings:
    return PagerDutySettings(routing_keys={"platform": "R0UT1NGKEY0000000000000000000001"},
                             default_service="platform")


def _alert() -> Alert:
    return Alert(dedup_key="switchboard/ticket:1", summary="down", source="switchboard",
                 severity="critical")


def test_a_page_goes_through_the_https_proxy_the_environment_names(
        monkeypatch: pytest.MonkeyPatch, proxy: tuple[str, list[str]]) -> None:
    url, seen = proxy
    monkeypatch.setenv("HTTPS_PROXY", url)
    pd = PagerDutyConnector(_settings())
    try:
        with pytest.raises(RetriableError):
            pd.trigger("platform", _alert())
    finally:
        pd.close()
    assert seen == ["CONNECT events.pagerduty.com:443 HTTP/1.1"]


def test_no_proxy_and_loopback_are_reached_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    transport = EnvProxyTransport(True)
    try:
        assert transport.proxy_for(httpx2.URL("https://events.pagerduty.com/v2/enqueue")) \
            == "http://proxy.corp.example:3128"
        assert transport.proxy_for(httpx2.URL("https://pd.internal.example/v2/enqueue")) is None
        assert transport.proxy_for(httpx2.URL("https://127.0.0.1:8443/v2/enqueue")) is None
        assert transport.proxy_for(httpx2.URL("https://localhost:8443/v2/enqueue")) is None
        monkeypatch.setenv("HTTPS_PROXY", "proxy.corp.example:3128")  # no scheme: http
        assert transport.proxy_for(httpx2.URL("https://events.pagerduty.com/")) \
            == "http://proxy.corp.example:3128"
        monkeypatch.delenv("HTTPS_PROXY")
        assert transport.proxy_for(httpx2.URL("https://events.pagerduty.com/")) is None
        monkeypatch.setenv("ALL_PROXY", "http://all.corp.example:8080")
        assert transport.proxy_for(httpx2.URL("https://events.pagerduty.com/")) \
            == "http://all.corp.example:8080"
    finally:
        transport.close()
