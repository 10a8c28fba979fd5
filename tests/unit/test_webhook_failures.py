"""The webhook's answer when it cannot take a push for a reason of its own, not the body's.

A push it could not keep must get a 5xx, so the vendor retries it: 503 when its accounts
cannot be loaded (an operator fixes the file), 500 when our code fails (a bug, logged with
its type and never with the body). These run the WSGI app in process: the runtime it is
given fails before any Redis is needed.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
import structlog

from dispatcher.errors import ConfigurationError
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


def _accounts_unloadable() -> Any:
    raise ConfigurationError("SMSD_ACCOUNTS_FILE: /etc/sms/accounts.json: no such file")


def _bug() -> Any:
    raise KeyError("a bug of ours")


@pytest.mark.parametrize("path", ["/hooks/opass/demo/token", "/healthz"])
def test_accounts_that_cannot_be_loaded_are_a_503_so_the_vendor_retries(path: str) -> None:
    with structlog.testing.capture_logs() as logs:
        status, body = _call(_accounts_unloadable, path, "GET" if path == "/healthz" else "POST")
    assert (status, body) == ("503 Service Unavailable", b"not ready")
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["webhook.misconfigured"]


def test_a_bug_in_our_code_is_a_500_logged_by_type_without_the_body() -> None:
    with structlog.testing.capture_logs() as logs:
        status, body = _call(_bug, "/hooks/opass/demo/token")
    assert (status, body) == ("500 Internal Server Error", b"error")
    [error] = [e for e in logs if e["event"] == "webhook.error"]
    assert error["error"] == "KeyError"
    assert "13800000001" not in repr(logs)
