"""The webhook's answer when our own code fails: 500 (the vendor retries a 5xx), logged with the
error's type and never with the body.

A bug cannot be caused in a real gunicorn without changing the code, so this runs the WSGI app in
process with a runtime that raises; the 503 for accounts that cannot be loaded is tested on a real
gunicorn in tests/integration/test_webhook.py.
"""

from __future__ import annotations

import io
from typing import Any

import structlog

from dispatcher.webhook import make_app

SECRET_BODY = b'{"apiKey": "k", "data": [{"tel": "13800000001"}]}'


def _call(runtime: Any, path: str, method: str = "POST") -> tuple[str, bytes]:
    app = make_app(runtime)
    seen: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = status

    body = b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_LENGTH": str(len(SECRET_BODY)),
                         "CONTENT_TYPE": "application/json", "wsgi.input": io.BytesIO(SECRET_BODY)}, start_response))
    return seen["status"], body


def _bug() -> Any:
    raise KeyError("a bug of ours")


def test_a_bug_in_our_code_is_a_500_logged_by_type_without_the_body() -> None:
    with structlog.testing.capture_logs() as logs:
        status, body = _call(_bug, "/hooks/opass/demo/token")
    assert (status, body) == ("500 Internal Server Error", b"error")
    [error] = [e for e in logs if e["event"] == "webhook.error"]
    assert error["error"] == "KeyError"
    assert "13800000001" not in repr(logs)
