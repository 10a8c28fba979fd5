"""Helpers shared by the sandbox tests (no tests here): plain-requests callers and a push receiver.

Callers use ``requests`` and the project's pure crypto helpers only — never the
protocol clients under test elsewhere.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from dispatcher.local.sandbox import demo
from dispatcher.local.stack import wait_for
from dispatcher.providers.aiofish.crypto import aes_encrypt_hex, biz_sign, password_md5, x_sign
from dispatcher.providers.opass.sign import new_nonce, signed_headers

TPL_NO_VARS = "1000000000000000001"  # 您有一个事务需要处理。
TPL_CODE = "1000000000000000002"  # 您的验证码是{验证码,6}，5分钟内有效。
TPL_TWO = "1000000000000000003"  # {姓名,10}您好，您本次收入{金额,10}元。


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return int(time.time() * 1000)


def phones(n: int, prefix: str = "139") -> list[str]:
    """``n`` distinct mainland numbers."""
    return [f"{prefix}{i:08d}" for i in range(n)]


def opass(base: str, path: str, body: dict[str, Any], *, access_key: str = demo.OPASS_ACCESS_KEY,
          method: str = "HmacSHA256", ts_ms: int | None = None, timeout_s: float = 10.0) -> dict[str, Any]:
    """POST a correctly signed opass request (our own signer) and return the decoded answer."""
    headers = signed_headers(api_key=demo.OPASS_API_KEY, access_key=access_key, body=body,
                             timestamp_ms=ts_ms or now_ms(), nonce=new_nonce(), method=method)
    answer: dict[str, Any] = requests.post(base + path, json=body, headers=headers, timeout=timeout_s).json()
    return answer


def fish_plain(base: str, path: str, body: dict[str, Any], **kw: Any) -> requests.Response:
    """POST an aiofish plain-SMS request with the demo account and MD5 password."""
    full = {"account": demo.AIOFISH_ACCOUNT, "password": password_md5(demo.AIOFISH_PASSWORD), **body}
    return requests.post(base + path, json=full, timeout=10, **kw)


def fish_envelope(biz: dict[str, Any], *, ts_ms: int | None = None, key: str = demo.AIOFISH_AES_KEY,
                  secret: str = demo.AIOFISH_APP_SECRET) -> dict[str, Any]:
    """An ``…/encryption`` body: bizContent AES-encrypted, signed with SHA256."""
    ts = str(ts_ms or now_ms())
    content = aes_encrypt_hex(key, json.dumps(biz, ensure_ascii=False))
    sign = biz_sign(account=demo.AIOFISH_ACCOUNT, app_secret=secret, biz_content=content, ts=ts)
    return {"account": demo.AIOFISH_ACCOUNT, "ts": ts, "bizContent": content, "sign": sign}


def vsms_headers(ts: str, secret: str = demo.AIOFISH_APP_SECRET) -> dict[str, str]:
    """The vsms/isms ``x-sign`` header for the demo appKey."""
    return {"x-sign": x_sign(app_key=demo.AIOFISH_APP_KEY, ts=ts, app_secret=secret)}


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


@dataclass
class Receiver:
    """A tiny threaded HTTP server standing in for our webhook: records, then answers as told.

    ``answers`` are used in order (the last one repeats); each is (status, body, delay_s).
    """

    answers: list[tuple[int, bytes, float]] = field(default_factory=lambda: [(200, b"0", 0.0)])
    got: list[Received] = field(default_factory=list)
    url: str = ""

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                index = len(receiver.got)
                receiver.got.append(Received(self.path, dict(self.headers), body))
                status, answer, delay_s = receiver.answers[min(index, len(receiver.answers) - 1)]
                time.sleep(delay_s)  # sleep-ok: a slow webhook is the behaviour under test
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the sandbox gave up waiting (slow-answer tests)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        """Serve on a free loopback port for the duration of the ``with`` block."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        server.daemon_threads = True
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Received]:
        """Wait until at least ``count`` requests arrived; return them all."""
        wait_for(lambda: len(self.got) >= count, timeout_s=timeout_s, what=f"{count} pushes received")
        return self.got
