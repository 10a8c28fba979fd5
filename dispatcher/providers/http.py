"""The HTTP boundary: one place where `requests` and HTTP statuses become our errors.

The line that matters is whether the request could have reached the gateway:

* it never got through (connection refused, DNS failure, connect timeout, proxy
  refused, a TLS handshake that failed) → :class:`TransientError`, safe to retry;
* it went out and we lost the answer (read timeout, reset or close after send,
  a TLS error after the handshake, truncated or garbled body, 5xx) →
  :class:`AmbiguousError` for calls with side effects (sends),
  :class:`TransientError` for read-only calls, which are safe to repeat.

Where the phase cannot be known the answer is "may have been sent":

* TLS errors: see :mod:`dispatcher.providers.tls_phase`. A failed certificate
  check is always before sending; other handshake failures are known as such
  only on the sessions :func:`default_session` builds. Any other TLS error is
  ambiguous for a send.
* ``ProxyError``: urllib3 2.x raises it only while the connection to the proxy
  is being made (``not conn.has_connected_to_proxy``), so it is "not sent";
  urllib3 1.x raised it for any socket error through a proxy, even after
  sending, which is why ``urllib3>=2`` is a dependency.
* A session that retries by itself could resend a POST after a TLS error or a
  5xx and hide the first attempt (urllib3 retries "other" errors whatever the
  method): :class:`HttpTransport` refuses such a session.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
import urllib3.exceptions
from requests import exceptions as rex
from urllib3.util.retry import Retry

from dispatcher.errors import (
    AccountFatalError,
    AmbiguousError,
    ConfigurationError,
    DispatchError,
    ProviderError,
    RequestRejectedError,
    ThrottledError,
    TransientError,
)
from dispatcher.providers.tls_phase import PhaseMarkingAdapter, failed_before_sending
from dispatcher.redact import build_repr, size_repr

_SENT = "sent"  # marker: the request may have reached the gateway
_NOT_SENT = "not-sent"
_CONFIG = "config"

#: Every exception class `requests` defines, and what it tells us. A test fails if
#: `requests` grows a class that is missing here.
REQUESTS_EXCEPTIONS: Mapping[type[BaseException], str] = {
    rex.ConnectTimeout: _NOT_SENT,
    rex.ProxyError: _NOT_SENT,  # urllib3 2.x: only before the proxy connection was made
    rex.SSLError: _SENT,  # refined by failed_before_sending() below
    rex.ConnectionError: _SENT,  # refined by _refused_or_dns() below
    rex.ReadTimeout: _SENT,
    rex.Timeout: _SENT,
    rex.ChunkedEncodingError: _SENT,
    rex.ContentDecodingError: _SENT,
    rex.RetryError: _SENT,
    rex.HTTPError: _SENT,
    rex.JSONDecodeError: _SENT,
    rex.InvalidJSONError: _SENT,
    rex.StreamConsumedError: _SENT,
    rex.UnrewindableBodyError: _SENT,
    rex.RequestException: _SENT,
    rex.URLRequired: _CONFIG,
    rex.MissingSchema: _CONFIG,
    rex.InvalidSchema: _CONFIG,
    rex.InvalidURL: _CONFIG,
    rex.InvalidHeader: _CONFIG,
    rex.InvalidProxyURL: _CONFIG,
    rex.TooManyRedirects: _CONFIG,
}


def _refused_or_dns(exc: rex.ConnectionError) -> bool:
    """Whether a ConnectionError happened while opening the connection (nothing sent)."""
    reason: Any = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    # NewConnectionError covers refused and unreachable; NameResolutionError (DNS)
    # subclasses it in urllib3 2.x.
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def translate(
    exc: rex.RequestException, *, provider: str, account: str, side_effect: bool
) -> DispatchError:
    """Map a `requests` exception to the one error class a caller acts on."""
    kind = _CONFIG
    for cls in type(exc).__mro__:
        if cls in REQUESTS_EXCEPTIONS:
            kind = REQUESTS_EXCEPTIONS[cls]
            break
    if isinstance(exc, rex.SSLError):
        kind = _NOT_SENT if failed_before_sending(exc) else _SENT
    elif isinstance(exc, rex.ConnectionError) and kind == _SENT and _refused_or_dns(exc):
        kind = _NOT_SENT
    what = type(exc).__name__
    if kind == _CONFIG:
        return ConfigurationError(f"{provider}:{account} request could not be made ({what})")
    if kind == _NOT_SENT:
        return TransientError(f"connection not established ({what})", provider=provider, account=account)
    if side_effect:
        return AmbiguousError(
            f"request may have reached the gateway; answer lost ({what})",
            provider=provider,
            account=account,
        )
    return TransientError(f"read-only call failed after sending ({what})", provider=provider, account=account)


def error_for_status(
    status: int, *, provider: str, account: str, side_effect: bool
) -> ProviderError | ConfigurationError | None:
    """The error for a non-200 HTTP status, or ``None`` for 200."""
    if status == 200:
        return None
    kw: dict[str, Any] = {"provider": provider, "account": account, "code": f"http-{status}", "http_status": status}
    if 300 <= status < 400:
        return ConfigurationError(
            f"{provider}:{account} base URL answered a redirect ({status}); configure the final URL"
        )
    if status in (401, 403):
        return AccountFatalError("refused by the gateway (credentials or IP whitelist)", **kw)
    if status == 429:
        return ThrottledError("HTTP 429 too many requests", retry_after_s=1.0, **kw)
    if 400 <= status < 500:  # 405 wrong method, 415 wrong Content-Type, …
        return RequestRejectedError(f"HTTP {status}: the request is malformed", **kw)
    if side_effect:
        return AmbiguousError(f"HTTP {status}: the gateway may have taken the request", **kw)
    return TransientError(f"HTTP {status}", **kw)


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """What came back: HTTP status, raw body and the round-trip time."""

    status: int
    body: bytes  # may echo phones: the repr shows its size only
    elapsed_ms: float

    def __repr__(self) -> str:
        return build_repr(self, status=str(self.status), body=size_repr(self.body), elapsed_ms=f"{self.elapsed_ms:.1f}")


#: Connections a default session keeps per host: a worker's threads pool sets it to
#: its thread count (:func:`set_pool_size`), so each thread reuses a connection.
POOL_SIZE = 32


def set_pool_size(size: int) -> None:
    """Sessions built from now on in this process keep up to ``size`` connections per host (at least 32)."""
    global POOL_SIZE  # one value per process, set once by the worker before any client exists
    POOL_SIZE = max(32, size)


def default_session(pool_size: int | None = None) -> requests.Session:
    """A Session that never retries by itself (a retried POST could double-send).

    Its HTTPS connections mark TLS handshake failures as such
    (:class:`~dispatcher.providers.tls_phase.PhaseMarkingAdapter`), so they are
    retried instead of being taken as "may have been sent". It keeps up to
    ``pool_size`` (default :data:`POOL_SIZE`) connections per host.
    """
    session = requests.Session()
    adapter = PhaseMarkingAdapter(pool_connections=4, pool_maxsize=pool_size or POOL_SIZE, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def may_resend_after_sending(retry: Retry) -> bool:
    """Whether urllib3 ``retry`` could send a POST again after it may have reached the server.

    Connect retries are safe (nothing was sent). Read and status retries depend
    on the method (``allowed_methods`` empty means every method); "other"
    retries (a TLS error after the handshake, among others) ignore it.
    """
    if retry.total is False or retry.total == 0:
        return False

    def allows(count: int | bool | None) -> bool:
        return count is None or (count is not False and count > 0)  # None defers to total

    post_retried = not retry.allowed_methods or "POST" in retry.allowed_methods
    return allows(retry.other) or (post_retried and (allows(retry.read) or allows(retry.status)))


def check_session(session: requests.Session, *, provider: str, account: str) -> None:
    """Raise ConfigurationError if an HTTP(S) adapter of ``session`` may resend a request by itself."""
    for prefix, adapter in session.adapters.items():
        retry = getattr(adapter, "max_retries", None)
        if prefix.startswith("http") and isinstance(retry, Retry) and may_resend_after_sending(retry):
            raise ConfigurationError(
                f"{provider}:{account} session adapter for {prefix!r} retries after sending "
                "(a POST could reach the gateway twice): mount one with max_retries=0"
            )


class HttpTransport:
    """Sends one HTTP request and turns every failure into our error classes.

    ``session`` is injectable (tests and callers may mount their own adapters);
    raises ConfigurationError if it may resend a request by itself. Timeouts are separate: ``connect_timeout_s``
    bounds the handshake (a timeout there is safe to retry), ``read_timeout_s``
    bounds waiting for the answer (a timeout there is ambiguous).
    """

    def __init__(
        self,
        *,
        provider: str,
        account: str,
        base_url: str,
        session: requests.Session | None = None,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 15.0,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"{provider}:{account} base_url must start with http:// or https://")
        self.provider = provider
        self.account = account
        self.base_url = base_url.rstrip("/")
        if session is not None:
            check_session(session, provider=provider, account=account)
        self.session = session or default_session()
        self.timeout = (connect_timeout_s, read_timeout_s)
        if session is None:
            # requests reads the proxy and CA-bundle variables again for every request,
            # scanning the whole environment (0.35 of a send's 0.85 ms of CPU, measured):
            # every call of this transport goes to one host, so they are read once, here,
            # into the session's own settings. (Its netrc lookup goes too: no gateway
            # takes HTTP basic auth.)
            env = self.session.merge_environment_settings(self.base_url, {}, None, None, None)
            self.session.proxies.update(env["proxies"])
            self.session.verify = env["verify"]
            self.session.trust_env = False

    def request(
        self,
        method: str,
        path: str,
        *,
        side_effect: bool,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        files: Any = None,
        data: Any = None,
    ) -> HttpAnswer:
        """Send the request; return the answer only for HTTP 200.

        Raises the error class :func:`translate` or :func:`error_for_status` gives.
        """
        started = time.perf_counter()
        try:
            resp = self.session.request(
                method,
                self.base_url + path,
                data=body if body is not None else data,
                files=files,
                headers=dict(headers or {}),
                params=params,
                timeout=self.timeout,
                allow_redirects=False,
            )
            content = resp.content  # read inside the try: a reset mid-body is ambiguous
        except rex.RequestException as exc:
            raise translate(exc, provider=self.provider, account=self.account, side_effect=side_effect) from None
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        problem = error_for_status(
            resp.status_code, provider=self.provider, account=self.account, side_effect=side_effect
        )
        if problem is not None:
            raise problem
        return HttpAnswer(resp.status_code, content, elapsed_ms)

    def parse_json(self, answer: HttpAnswer, *, side_effect: bool) -> dict[str, Any]:
        """Decode a JSON object answer; a garbled body is ambiguous for sends."""
        try:
            doc = json.loads(answer.body)
        except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: a hostile, absurdly nested body
            doc = None
        if not isinstance(doc, dict):
            cls = AmbiguousError if side_effect else TransientError
            raise cls("answer is not a JSON object", provider=self.provider, account=self.account)
        return doc
