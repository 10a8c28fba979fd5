"""A proxy named in the environment is used by the gateway clients, though the environment is read once.

The transport reads the proxy variables when it is built (requests would scan the
whole environment on every call: a third of a send's CPU). A loopback socket plays
the proxy: it records the request line and answers 200.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from dispatcher.errors import TransientError
from dispatcher.providers.http import HttpTransport


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[str]]]:
    """A one-shot HTTP proxy on loopback: its URL and the request lines it received."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(10)
    seen: list[str] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(65536)
            seen.append(head.split(b"\r\n", 1)[0].decode())
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", seen
    listener.close()
    thread.join(5)


def test_a_proxy_set_in_the_environment_carries_the_gateway_calls(proxy, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    transport = HttpTransport(provider="opass", account="t", base_url="http://gateway.invalid:8080")
    answer = transport.request("POST", "/health/info", side_effect=False, body=b"{}")
    assert answer.status == 200
    assert seen == ["POST http://gateway.invalid:8080/health/info HTTP/1.1"]


def test_no_proxy_for_the_gateways_host_is_honoured(proxy, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.setenv("NO_PROXY", "gateway.invalid")
    transport = HttpTransport(provider="opass", account="t", base_url="http://gateway.invalid:8080",
                              connect_timeout_s=2.0)
    # Straight to the gateway's name, which does not resolve: nothing was sent.
    with pytest.raises(TransientError, match="connection not established"):
        transport.request("POST", "/health/info", side_effect=False, body=b"{}")
    assert seen == []
