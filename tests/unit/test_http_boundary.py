"""The requests boundary: what never got through is transient, what may have is ambiguous.

These use real loopback sockets that misbehave on purpose (never accept, never
answer, reset after reading), not mocks.
"""

from __future__ import annotations

import contextlib
import inspect
import socket
import struct
import threading
from collections.abc import Iterator

import pytest
import requests
import urllib3.exceptions
from requests import exceptions as rex

from dispatcher.errors import (
    AccountFatalError,
    AmbiguousError,
    ConfigurationError,
    RequestRejectedError,
    ThrottledError,
    TransientError,
)
from dispatcher.providers.http import REQUESTS_EXCEPTIONS, HttpAnswer, HttpTransport, error_for_status, translate


def _transport(url: str, *, read_timeout_s: float = 2.0, connect_timeout_s: float = 2.0) -> HttpTransport:
    return HttpTransport(
        provider="opass", account="t", base_url=url,
        connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s,
    )


@contextlib.contextmanager
def _server(behaviour: str) -> Iterator[str]:
    """A loopback TCP server that reads one request and then misbehaves."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.recv(65536)
            if behaviour == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            elif behaviour == "close":
                conn.close()
            elif behaviour == "silent":
                stop.wait(5)
                conn.close()
            elif behaviour == "garbage":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot json!")
                conn.close()
            elif behaviour == "truncated":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"code\":")
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_requests_exception_class_is_mapped() -> None:
    classes = {
        obj for _, obj in inspect.getmembers(rex, inspect.isclass)
        if issubclass(obj, rex.RequestException)
    }
    missing = sorted(c.__name__ for c in classes if c not in REQUESTS_EXCEPTIONS)
    assert missing == [], f"requests exceptions with no mapping: {missing}"


def test_connection_refused_is_transient_even_for_a_send() -> None:
    transport = _transport(f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(TransientError, match="connection not established"):
        transport.request("POST", "/message/send", side_effect=True, body=b"{}")


def test_connect_timeout_is_transient() -> None:
    # A listener with a full accept queue drops new SYNs: the connect times out.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(listener.getsockname())
            fillers.append(s)
        transport = _transport(f"http://127.0.0.1:{listener.getsockname()[1]}", connect_timeout_s=0.3)
        with pytest.raises(TransientError, match="ConnectTimeout"):
            transport.request("POST", "/message/send", side_effect=True, body=b"{}")
    finally:
        for s in fillers:
            s.close()
        listener.close()


@pytest.mark.parametrize("behaviour", ["reset", "close", "silent", "truncated"])
def test_losing_the_answer_after_sending_is_ambiguous_for_a_send(behaviour: str) -> None:
    with _server(behaviour) as url:
        transport = _transport(url, read_timeout_s=0.5)
        with pytest.raises(AmbiguousError) as err:
            transport.request("POST", "/message/send", side_effect=True, body=b"{}")
    assert not isinstance(err.value, TransientError)


@pytest.mark.parametrize("behaviour", ["reset", "silent"])
def test_losing_the_answer_of_a_read_only_call_is_transient(behaviour: str) -> None:
    with _server(behaviour) as url:
        transport = _transport(url, read_timeout_s=0.5)
        with pytest.raises(TransientError):
            transport.request("POST", "/sms/residueValue/qry", side_effect=False, body=b"{}")


def test_a_garbled_answer_to_a_send_is_ambiguous() -> None:
    with _server("garbage") as url:
        transport = _transport(url)
        answer = transport.request("POST", "/message/send", side_effect=True, body=b"{}")
        with pytest.raises(AmbiguousError, match="not a JSON object"):
            transport.parse_json(answer, side_effect=True)


def test_a_hostile_deeply_nested_answer_is_garbled_not_a_crash() -> None:
    # json.loads raises RecursionError, not ValueError, on absurd nesting: a
    # send must still come out ambiguous and a read-only call retryable.
    answer = HttpAnswer(200, b"[" * 100_000 + b"]" * 100_000, 1.0)
    transport = _transport("http://127.0.0.1:9")
    with pytest.raises(AmbiguousError, match="not a JSON object"):
        transport.parse_json(answer, side_effect=True)
    with pytest.raises(TransientError, match="not a JSON object"):
        transport.parse_json(answer, side_effect=False)


def test_dns_failure_is_transient() -> None:
    # Built from urllib3's own classes: a real lookup would leave loopback.
    reason = urllib3.exceptions.NameResolutionError("gateway.invalid", None, socket.gaierror("no"))  # type: ignore[arg-type]
    exc = rex.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))  # type: ignore[arg-type]
    assert isinstance(translate(exc, provider="opass", account="t", side_effect=True), TransientError)


def test_bad_urls_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        _transport("ftp://example")
    exc = rex.InvalidURL("bad")
    assert isinstance(translate(exc, provider="opass", account="t", side_effect=True), ConfigurationError)


@pytest.mark.parametrize(
    ("status", "side_effect", "expected"),
    [
        (401, True, AccountFatalError),
        (403, True, AccountFatalError),
        (405, True, RequestRejectedError),
        (415, True, RequestRejectedError),
        (429, True, ThrottledError),
        (500, True, AmbiguousError),
        (503, True, AmbiguousError),
        (503, False, TransientError),
        (301, True, ConfigurationError),
    ],
)
def test_http_statuses_map_to_one_class(status: int, side_effect: bool, expected: type) -> None:
    err = error_for_status(status, provider="aiofish", account="t", side_effect=side_effect)
    assert type(err) is expected
    assert error_for_status(200, provider="aiofish", account="t", side_effect=True) is None


def test_the_default_session_does_not_retry_by_itself() -> None:
    transport = _transport("http://127.0.0.1:1")
    adapter = transport.session.get_adapter("http://127.0.0.1:1")
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    assert adapter.max_retries.total == 0
