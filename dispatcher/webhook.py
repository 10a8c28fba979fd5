"""The receipt webhook: a WSGI app (gunicorn in production and tests) taking every push.

Routes (``TOKEN`` is the account's ``callback_secret``, compared in constant time)::

    POST /hooks/opass/{account}/{TOKEN}            status and uplink pushes (JSON)
    POST /hooks/aiofish/{account}/{TOKEN}          reports and uplinks, all three variants
    GET  /healthz                                  readiness (accounts loaded, Redis up)

What is checked: the path token; for opass the body's ``apiKey`` equals the
account's; for aiofish the sign of the fully encrypted variant and that
encrypted phones decrypt with the account's key. Receipts are applied with one
Lua call per chunk, so the answer goes back in milliseconds, far inside opass's
1-second limit (three slow answers in a row stop its pushes).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from config.settings import Settings
from dispatcher.errors import ConfigurationError, PushVerificationError
from dispatcher.providers import opass_push
from dispatcher.providers.base import system_clock_ms
from dispatcher.providers.results import Receipt, Uplink
from dispatcher.receipts import apply_receipts, store_uplinks
from dispatcher.redis_connection import FAIL_FAST_RETRIES, connect_url, redis_url
from dispatcher.runtime import LazyRuntime, Runtime

log = structlog.get_logger("dispatcher.webhook")

MAX_BODY_BYTES = 1 << 20
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _Reject(Exception):
    def __init__(self, status: str, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise _Reject("400 Bad Request", "bad Content-Length") from None
    if length > MAX_BODY_BYTES:
        raise _Reject("413 Payload Too Large", f"body over {MAX_BODY_BYTES} bytes")
    return environ["wsgi.input"].read(length) if length else b""


def _account(rt: Runtime, provider: str, name: str, token: str) -> Any:
    try:
        account = rt.accounts.get(provider, name)
    except ConfigurationError:
        raise _Reject("404 Not Found", "unknown hook") from None
    secret = account.callback_secret
    if not secret or not hmac.compare_digest(secret.encode(), token.encode()):
        raise _Reject("404 Not Found", "unknown hook")
    return account


def _parse_opass(account: Any, body: bytes, _environ: dict[str, Any]) -> tuple[list[Any], bytes, str]:
    items = opass_push.parse_push(body, expected_api_key=account.gateway.api_key)
    return list(items), opass_push.PUSH_ANSWER_BODY, opass_push.PUSH_ANSWER_CONTENT_TYPE


def _parse_aiofish(account: Any, body: bytes, environ: dict[str, Any]) -> tuple[list[Any], bytes, str]:
    from dispatcher.providers import aiofish_push

    item = aiofish_push.parse_sms_push(body, environ.get("CONTENT_TYPE", ""), account.gateway,
                                       now_ms=system_clock_ms())
    return [item], aiofish_push.PUSH_OK_BODY.encode(), "text/plain"


PARSERS: dict[str, Callable[[Any, bytes, dict[str, Any]], tuple[list[Any], bytes, str]]] = {
    "opass": _parse_opass,
    "aiofish": _parse_aiofish,
}


def handle_push(
    rt: Runtime, provider: str, name: str, token: str, environ: dict[str, Any]
) -> tuple[bytes, str, dict[str, int]]:
    """Verify, parse and apply one push; return the answer body, its content type and what was applied.

    Raises ``_Reject`` (answered 4xx) for an unknown hook, a bad body or a failed verification.
    """
    if provider not in PARSERS:
        raise _Reject("404 Not Found", "unknown hook")
    account = _account(rt, provider, name, token)
    body = _read_body(environ)
    try:
        items, answer, content_type = PARSERS[provider](account, body, environ)
    except PushVerificationError as exc:
        raise _Reject("400 Bad Request", str(exc)) from None
    receipts = [i for i in items if isinstance(i, Receipt)]
    uplinks = [i for i in items if isinstance(i, Uplink)]
    applied = apply_receipts(rt.ledger, receipts, now_ms=system_clock_ms()) if receipts else None
    if uplinks:
        store_uplinks(rt.redis, rt.keys, provider, name, uplinks)
    done = {"receipts": len(receipts), "uplinks": len(uplinks), "applied": applied.applied if applied else 0,
            "ignored": applied.ignored if applied else 0, "unmatched": applied.unmatched if applied else 0}
    return answer, content_type, done


WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _fail_fast_runtime() -> Runtime:
    """A runtime whose Redis client gives up after ~0.5 s, not ~20 s.

    A vendor waits at most 1 s for the answer and opass stops pushing after
    three slow ones; during a Redis outage a fast 503 keeps the pushes coming
    (both vendors retry a failed push), where a patient client would not.
    """
    settings = Settings.from_env()
    return Runtime(settings, client=connect_url(redis_url(settings), retries=FAIL_FAST_RETRIES))


#: The webhook process's runtime (built on the first request).
webhook_runtime = LazyRuntime(_fail_fast_runtime)


def make_app(runtime: Callable[[], Runtime] = webhook_runtime) -> WsgiApp:
    """Build the WSGI app; ``runtime`` is called per request (cached by default)."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "GET")
        parts = [p for p in environ.get("PATH_INFO", "").split("/") if p]
        status, body, content_type = "200 OK", b"ok", "text/plain"
        provider = name = "-"
        done: dict[str, int] = {}
        try:
            if parts == ["healthz"] and method == "GET":
                # Ready only when the accounts loaded and Redis answers: a webhook that
                # cannot apply receipts must fail its start, not every push.
                runtime().redis.ping()
            elif len(parts) == 4 and parts[0] == "hooks" and method == "POST":
                _, provider, name, token = parts
                body, content_type, done = handle_push(runtime(), provider, name, token, environ)
            else:
                raise _Reject("404 Not Found", "unknown hook")
        except _Reject as exc:
            status, body, content_type = exc.status, exc.reason.encode(), "text/plain; charset=utf-8"
            log.warning("webhook.refused", provider=provider, account=name, status=status, reason=exc.reason)
        except Exception as exc:  # noqa: BLE001 - answer 503 so the vendor retries; log why
            status, body, content_type = "503 Service Unavailable", b"not ready", "text/plain"
            log.error("webhook.unavailable", provider=provider, account=name, error=type(exc).__name__,
                      detail=str(exc))
        elapsed_ms = (time.perf_counter() - started) * 1000
        # One line per request, the push's counts included: each line is a locked, flushed
        # write shared by all threads of the worker, so a second line per push cost latency.
        log.info("webhook.answer", provider=provider, account=name, status=status.split()[0],
                 answer_ms=round(elapsed_ms, 2), **done)
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    return app


def _configured_app() -> WsgiApp:
    """The app gunicorn serves, with our JSON logging (phones masked) set up first."""
    from config.settings import Settings
    from dispatcher.logs import configure

    configure(Settings.from_env().log_level)
    return make_app()


app = _configured_app()
