"""TLS failures on real loopback sockets: before the handshake ends nothing was sent, after it maybe.

Each test starts a small TLS server with a throwaway self-signed certificate
(made by the ``openssl`` CLI) that misbehaves at one point of the exchange.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter

from dispatcher.errors import AmbiguousError, ConfigurationError, TransientError
from dispatcher.providers.http import HttpTransport

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

# An application-data record (type 23, TLS 1.2 framing) whose 32 bytes decrypt to nothing:
# the client fails its integrity check ("bad record mac").
BAD_RECORD = b"\x17\x03\x03\x00\x20" + bytes(range(32))


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (valid for one day)."""
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key_file), "-out", str(cert_file)],
        check=True, capture_output=True,
    )
    return cert_file, key_file


@contextlib.contextmanager
def tls_server(cert: tuple[Path, Path], behaviour: str) -> Iterator[tuple[str, list[bytes]]]:
    """A loopback server that misbehaves as ``behaviour`` says; yields its URL and the requests it read.

    ``tls``: completes the handshake, reads one request, then ``after`` decides:
    ``bad-record`` writes a corrupt TLS record on the raw socket, ``alert`` sends
    close_notify mid-answer. ``not-tls``: answers the ClientHello with plain text.
    ``silent``: accepts TCP and never speaks.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert[0]), str(cert[1]))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()
    seen: list[bytes] = []

    def handle(conn: socket.socket) -> None:
        if behaviour == "silent":
            stop.wait(5)
            return
        if behaviour == "not-tls":
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return
        tls = context.wrap_socket(conn, server_side=True)
        seen.append(read_request(tls))
        if behaviour == "bad-record":
            os.write(tls.fileno(), BAD_RECORD)  # bypasses TLS: a record the client cannot verify
        elif behaviour == "truncated-then-bad-record":
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"code\":")
            os.write(tls.fileno(), BAD_RECORD)
        tls.close()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            # OSError: the client gave up first; what it saw is what the test checks.
            with conn, contextlib.suppress(OSError):
                handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}", seen
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def read_request(sock: ssl.SSLSocket) -> bytes:
    """One whole HTTP request (headers, then ``Content-Length`` bytes of body).

    Closing with part of it unread would make the kernel answer with a reset,
    which the client may meet before the broken record the test is about.
    """
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += sock.recv(65536)
    return data


def _transport(url: str, *, trust: Path | None = None, session: requests.Session | None = None,
               connect_timeout_s: float = 2.0) -> HttpTransport:
    transport = HttpTransport(provider="opass", account="t", base_url=url, session=session,
                              connect_timeout_s=connect_timeout_s, read_timeout_s=2.0)
    if trust is not None:
        transport.session.verify = str(trust)
        transport.session.trust_env = False  # else REQUESTS_CA_BUNDLE would override ``verify``
    return transport


def test_a_gateway_with_an_untrusted_certificate_is_retried_even_for_a_send(cert) -> None:  # type: ignore[no-untyped-def]
    with tls_server(cert, "bad-record") as (url, seen):
        transport = _transport(url)  # the system CAs do not know the throwaway certificate
        with pytest.raises(TransientError, match="SSLError"):
            transport.request("POST", "/message/send", side_effect=True, body=b"{}")
    assert seen == []  # and indeed the server never read a request


def test_an_untrusted_certificate_is_retried_on_a_callers_own_session_too(cert) -> None:  # type: ignore[no-untyped-def]
    with tls_server(cert, "bad-record") as (url, seen), requests.Session() as session:
        transport = _transport(url, session=session)
        with pytest.raises(TransientError):
            transport.request("POST", "/message/send", side_effect=True, body=b"{}")
    assert seen == []


@pytest.mark.parametrize("behaviour", ["bad-record", "truncated-then-bad-record"])
def test_a_tls_stream_broken_after_the_request_was_read_is_ambiguous_for_a_send(cert, behaviour) -> None:  # type: ignore[no-untyped-def]
    with tls_server(cert, behaviour) as (url, seen):
        transport = _transport(url, trust=cert[0])
        with pytest.raises(AmbiguousError, match="SSLError"):
            transport.request("POST", "/message/send", side_effect=True, body=b'{"phones":"x"}')
    assert len(seen) == 1 and seen[0].startswith(b"POST /message/send")  # the gateway did get it


def test_a_tls_stream_broken_after_a_read_only_call_is_retried(cert) -> None:  # type: ignore[no-untyped-def]
    with tls_server(cert, "bad-record") as (url, _):
        transport = _transport(url, trust=cert[0])
        with pytest.raises(TransientError):
            transport.request("POST", "/sms/residueValue/qry", side_effect=False, body=b"{}")


def test_a_handshake_the_server_breaks_is_retried_even_for_a_send(cert) -> None:  # type: ignore[no-untyped-def]
    with tls_server(cert, "not-tls") as (url, _):
        transport = _transport(url, trust=cert[0])
        with pytest.raises(TransientError, match="SSLError"):
            transport.request("POST", "/message/send", side_effect=True, body=b"{}")


def test_without_phase_marking_a_broken_handshake_is_taken_as_maybe_sent(cert) -> None:  # type: ignore[no-untyped-def]
    # A caller's own session cannot tell a handshake failure from a read failure:
    # the safe answer for a send is ambiguous.
    with tls_server(cert, "not-tls") as (url, _), requests.Session() as session:
        transport = _transport(url, trust=cert[0], session=session)
        with pytest.raises(AmbiguousError):
            transport.request("POST", "/message/send", side_effect=True, body=b"{}")


def test_a_server_that_never_answers_the_tls_hello_is_a_connect_timeout(cert) -> None:  # type: ignore[no-untyped-def]
    with tls_server(cert, "silent") as (url, _):
        transport = _transport(url, trust=cert[0], connect_timeout_s=0.3)
        with pytest.raises(TransientError, match="ConnectTimeout"):
            transport.request("POST", "/message/send", side_effect=True, body=b"{}")


def test_a_retrying_session_would_post_again_after_a_tls_error_which_is_why_it_is_refused(cert) -> None:  # type: ignore[no-untyped-def]
    # urllib3 counts a TLS error as an "other" error and retries it whatever the method.
    with tls_server(cert, "bad-record") as (url, seen), requests.Session() as session:
        session.mount("https://", HTTPAdapter(max_retries=2))
        session.verify, session.trust_env = str(cert[0]), False
        with pytest.raises(requests.exceptions.SSLError):
            session.post(url + "/message/send", data=b"{}", timeout=2)
    assert len(seen) == 3  # one send became three at the gateway


@pytest.mark.parametrize("retries", [3, 1])
def test_a_session_that_resends_by_itself_is_refused(retries: int) -> None:
    session = requests.Session()
    session.mount("https://", HTTPAdapter(max_retries=retries))
    with session, pytest.raises(ConfigurationError, match="retries after sending"):
        _transport("https://127.0.0.1:1", session=session)


def test_a_session_that_retries_only_connects_is_accepted() -> None:
    from urllib3.util.retry import Retry

    with requests.Session() as session:
        session.mount("https://", HTTPAdapter(max_retries=Retry(total=None, connect=3, read=0, status=0, other=0)))
        session.mount("http://", HTTPAdapter())  # requests' default: no retries
        assert _transport("https://127.0.0.1:1", session=session).session is session
