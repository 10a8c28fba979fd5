"""The receipt webhook: a WSGI app (gunicorn in production and tests) taking every push.

Routes (``TOKEN`` is the account's ``callback_secret``, compared in constant time)::

    GET  /metrics                                  Prometheus metrics of the webhook's processes

    POST /hooks/opass/{account}/{TOKEN}            status and uplink pushes (JSON)
    POST /hooks/aiofish/{account}/{TOKEN}          reports and uplinks, in the account's push_variant
    POST /hooks/aiofish-isms/{account}/{TOKEN}     international SMS status pushes (JSON)
    GET  /healthz                                  readiness (accounts loaded and servable, Redis up)

What is checked before anything is kept: the path token (an account whose
secret is short or was shipped in this repository is not served at all); for
opass the body's ``apiKey``; for aiofish that the push is in the form the
account's console is set to (``push_variant``), and for the fully encrypted
form its sign, ``ts`` and that it opens with the account's key.

Receipts are then recorded on the receipt stream (one ``XADD``) and the answer
goes back: workers apply them behind it (:mod:`dispatcher.receipt_stream`),
where the ledger checks that each names an attempt really sent of this
account's jobs. The answer time does not depend on load: opass stops pushing
for good after three answers slower than 1 s.

Answers: 200 with the vendor's success body for every push recorded (whether
or not its receipts will prove anything, so probing learns nothing); 404 for an
unknown hook or token; 400/413 for a body that is malformed or fails
verification; 503 when Redis cannot take the push, or when a push that names only the
vendor's message id (isms) names one the ledger does not know yet, so the vendor retries.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis
import structlog
from prometheus_client import CollectorRegistry

from dispatcher import metrics
from dispatcher.config.accounts import AccountConfig
from dispatcher.config.settings import load_settings
from dispatcher.errors import ConfigurationError, PushVerificationError
from dispatcher.metrics_export import render, scrape_registry
from dispatcher.providers import registry
from dispatcher.providers.base import system_clock_ms
from dispatcher.providers.results import Receipt, Uplink
from dispatcher.receipt_stream import record
from dispatcher.receipts import adopt_by_phone, resolve_by_message_id, store_uplinks
from dispatcher.records import RecordReader
from dispatcher.redis_connection import FAIL_FAST_RETRIES, connect, replicated
from dispatcher.runtime import LazyRuntime, Runtime
from dispatcher.suppression import KeptUplinks

log = structlog.get_logger("dispatcher.webhook")

MAX_BODY_BYTES = 1 << 20
#: The longest a push waits for a replica (``SMSD_REDIS_WAIT_TIMEOUT_MS`` if shorter): with no
#: replica every push waits this long for its 503, and opass stops pushing after three answers
#: slower than 1 s, which a queue of such pushes behind busy threads would soon give it.
PUSH_WAIT_MAX_MS = 200
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


def _account(rt: Runtime, provider: str, name: str, token: str) -> AccountConfig:
    try:
        account = rt.accounts.get(provider, name)
    except ConfigurationError:
        raise _Reject("404 Not Found", "unknown hook") from None
    secret = account.callback_secret
    # A weak or published secret proves nothing: that account is not served (healthz says why).
    if not secret or account.hook_problem or not hmac.compare_digest(secret.encode(), token.encode()):
        raise _Reject("404 Not Found", "unknown hook")
    return account


def _parse(provider: str, account: AccountConfig, body: bytes, environ: dict[str, Any]) -> tuple[list[Any], bytes, str]:
    """Run the provider's parser; any failure of a hostile body is a 400, never a 503."""
    try:
        parse = registry.gateway(provider).parse_push
        if parse is None:
            raise PushVerificationError(f"{provider} pushes nothing we take")
        return parse(account, body, environ)
    except PushVerificationError as exc:
        raise _Reject("400 Bad Request", str(exc)) from None
    except (ValueError, TypeError, LookupError, RecursionError, UnicodeError, OverflowError) as exc:
        # A parser bug met a body nobody foresaw: still the body's fault, and a
        # retry of the same bytes cannot succeed. The type is logged, not the body.
        raise _Reject("400 Bad Request", f"malformed push ({type(exc).__name__})") from None


def handle_push(
    rt: Runtime, provider: str, name: str, token: str, environ: dict[str, Any]
) -> tuple[bytes, str, dict[str, int]]:
    """Verify, parse and record one push; return the answer body, its content type and what was kept.

    Raises ``_Reject`` (answered 4xx) for an unknown hook, a bad body or a failed
    verification, ``redis.RedisError`` (answered 503) when the push cannot be recorded.
    """
    if provider not in registry.names() or registry.gateway(provider).parse_push is None:
        raise _Reject("404 Not Found", "unknown hook")
    account = _account(rt, provider, name, token)
    body = _read_body(environ)
    items, answer, content_type = _parse(provider, account, body, environ)
    receipts = [i for i in items if isinstance(i, Receipt)]
    uplinks = [i for i in items if isinstance(i, Uplink)]
    others = [i for i in items if not isinstance(i, Receipt | Uplink)]
    # A receipt that echoes none of our ids names its chunk by the vendor's message id.
    resolved, unknown = resolve_by_message_id(rt.redis, rt.keys, provider,
                                              [r for r in receipts if r.client_id is None])
    if unknown:  # an ambiguous chunk's message id was never recorded: its phones can still name it
        adopted, unknown = adopt_by_phone(RecordReader(rt.ledger), provider, name, unknown,
                                          since_slack_ms=int((rt.settings.stuck_after_s + 60) * 1000))
        resolved += adopted
    if unknown:  # a receipt adopted a moment ago may have settled the chunk and indexed its id meanwhile
        late, unknown = resolve_by_message_id(rt.redis, rt.keys, provider, unknown)
        resolved += late
    receipts = [r for r in receipts if r.client_id is not None] + resolved
    recorded = 0
    kept = KeptUplinks()
    if receipts:
        recorded = record(rt.redis, rt.keys.receipt_stream(), provider, name, receipts, source="push",
                          now_ms=system_clock_ms())
    if uplinks:  # a reply that unsubscribes lists its phone in the same step (once, however often pushed)
        kept = store_uplinks(rt.redis, rt.keys, provider, name, uplinks, account.unsubscribe)
    keep = registry.gateway(provider).keep_items
    if others and keep is not None:
        keep(rt, account, others)
    waited = rt.settings.replicas_to_wait
    if waited and (receipts or uplinks or others):
        # Answered 200, the vendor never pushes it again: the push must outlive a failover.
        held = replicated(rt.redis, rt.keys.stats(), replicas=waited,
                          timeout_ms=min(rt.settings.redis_wait_timeout_ms, PUSH_WAIT_MAX_MS))
        if held < waited:
            # Kept on the master only: 503 so the vendor pushes it again (applying twice changes nothing).
            raise _Reject("503 Service Unavailable", f"push kept by {held} of {waited} replicas")
    if unknown:
        # Its push overtook the recording of the send's answer: not kept, so the vendor
        # pushes it again later (the rest of this push is recorded; applying is idempotent).
        raise _Reject("503 Service Unavailable", "message id not known yet")
    return answer, content_type, {"receipts": recorded, "uplinks": len(uplinks), "unsubscribed": kept.unsubscribed}


def readiness_problems(rt: Runtime) -> list[str]:
    """Why the webhook is not ready: accounts it refuses to serve (named, never their secrets).

    Once per accounts-file entry: a channel sharing another gateway's accounts (video and
    international SMS) shares its callback secret, so its problem is that entry's.
    """
    return [f"{a.provider}:{a.name}: {a.hook_problem}" for a in rt.accounts
            if a.hook_problem and registry.gateway(a.provider).accounts_of is None]


WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _fail_fast_runtime() -> Runtime:
    """A runtime whose Redis client gives up after ~0.5 s, not ~20 s.

    A vendor waits at most 1 s for the answer and opass stops pushing after
    three slow ones; during a Redis outage a fast 503 keeps the pushes coming
    (both vendors retry a failed push), where a patient client would not.
    """
    settings = load_settings()
    return Runtime(settings, client=connect(settings, retries=FAIL_FAST_RETRIES))


def metrics_registry() -> CollectorRegistry:
    """What ``/metrics`` serves: every webhook process's metrics (gunicorn's workers share
    ``PROMETHEUS_MULTIPROC_DIR``, cleared by the master at start: :mod:`dispatcher.gunicorn_hooks`)."""
    global _metrics_registry
    if _metrics_registry is None:
        _metrics_registry = scrape_registry()
    return _metrics_registry


_metrics_registry: CollectorRegistry | None = None


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
        route = "other"
        done: dict[str, int] = {}
        try:
            if parts == ["metrics"] and method == "GET":
                route = "metrics"
                body, content_type = render(metrics_registry())
            elif parts == ["healthz"] and method == "GET":
                route = "healthz"
                # Ready only when the accounts loaded, each can be served and Redis
                # answers: a webhook that cannot take pushes must fail its start.
                rt = runtime()
                problems = readiness_problems(rt)
                if problems:
                    raise _Reject("503 Service Unavailable", "not ready: " + "; ".join(problems))
                rt.redis.ping()
            elif len(parts) == 4 and parts[0] == "hooks" and method == "POST":
                route = "hook"
                _, provider, name, token = parts
                body, content_type, done = handle_push(runtime(), provider, name, token, environ)
            else:
                raise _Reject("404 Not Found", "unknown hook")
        except _Reject as exc:
            status, body, content_type = exc.status, exc.reason.encode(), "text/plain; charset=utf-8"
            log.warning("webhook.refused", provider=provider, account=name, status=status, reason=exc.reason)
        except (redis.RedisError, OSError) as exc:
            # Only a push we could not keep gets 503, so the vendor retries it.
            status, body, content_type = "503 Service Unavailable", b"not ready", "text/plain"
            log.error("webhook.unavailable", provider=provider, account=name, error=type(exc).__name__,
                      detail=str(exc))
        except ConfigurationError as exc:
            status, body, content_type = "503 Service Unavailable", b"not ready", "text/plain"
            log.error("webhook.misconfigured", provider=provider, account=name, detail=str(exc))
        except Exception as exc:  # our bug: 500, logged with its type, never the body
            status, body, content_type = "500 Internal Server Error", b"error", "text/plain"
            log.exception("webhook.error", provider=provider, account=name, error=type(exc).__name__)
        elapsed_ms = (time.perf_counter() - started) * 1000
        metrics.webhook_answer(route, provider, status, elapsed_ms / 1000)
        # One line per request, the push's counts included: each line is a locked, flushed
        # write shared by all threads of the worker, so a second line per push cost latency.
        log.info("webhook.answer", provider=provider, account=name, status=status.split()[0],
                 answer_ms=round(elapsed_ms, 2), **done)
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    return app


def _configured_app() -> WsgiApp:
    """The app gunicorn serves, with our JSON logging (phones masked) set up first.

    Accounts whose callback secret is refused are logged once, at start, with why.
    """
    from dispatcher.logs import configure

    configure(load_settings().log_level)
    try:
        for problem in readiness_problems(webhook_runtime()):
            log.error("webhook.account_refused", problem=problem)
    except Exception as exc:  # noqa: BLE001 - /healthz reports it again on every call
        log.error("webhook.not_ready", error=type(exc).__name__, detail=str(exc))
    return make_app()


app = _configured_app()
