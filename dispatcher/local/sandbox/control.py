"""``SandboxControl``: the test-side client of the sandbox's ``/_sandbox/`` API.

Every call retries while the connection is refused (the ``refuse`` fault closes
the listener) until ``timeout_s`` has passed; a call the sandbox rejects raises
``requests.HTTPError``.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

RETRY_PAUSE_S = 0.02


def _caused_by(exc: requests.ConnectionError, kinds: tuple[type[BaseException], ...]) -> bool:
    """Whether one of ``kinds`` is somewhere in the chain of causes of ``exc``."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, kinds):
            return True
        reason = getattr(cause, "reason", None)
        nested = reason if isinstance(reason, BaseException) else None
        args_exc = next((a for a in getattr(cause, "args", ()) if isinstance(a, BaseException)), None)
        cause = nested or args_exc or cause.__cause__ or cause.__context__
    return False


def _refused(exc: requests.ConnectionError) -> bool:
    """Whether the error is a refused (never established) connection, safe to retry."""
    return _caused_by(exc, (NewConnectionError, ConnectionRefusedError))


def _reset(exc: requests.ConnectionError) -> bool:
    """Whether the connection was reset: a refuse cycle closing the listener drops the connections
    still queued for accept, so the request was never read; retried for idempotent calls only."""
    return _caused_by(exc, (ConnectionResetError,))


class SandboxControl:
    """Drive a running sandbox: ledger, reset, faults, config, stats, messages, uplinks."""

    def __init__(self, base_url: str, session: requests.Session | None = None, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any) -> Any:
        """One control request, retried while refused (and, if ``idempotent``, when reset).

        Raises ``requests.HTTPError`` on 4xx/5xx.
        """
        deadline = time.monotonic() + self.timeout_s
        url = f"{self.base_url}/_sandbox/{path}"
        while True:
            try:
                response = self.session.request(method, url, timeout=self.timeout_s, **kwargs)
                break
            except requests.ConnectionError as exc:
                retryable = _refused(exc) or (idempotent and _reset(exc))
                if not retryable or time.monotonic() >= deadline:
                    raise
                time.sleep(RETRY_PAUSE_S)
        if response.status_code >= 400:
            detail = response.text[:500]
            raise requests.HTTPError(f"{method} {path}: HTTP {response.status_code}: {detail}", response=response)
        return response.json()

    def ledger(self) -> dict[str, Any]:
        """``{"accepted": {gateway: {phone: times}}, "requests": {path: count}}``."""
        result: dict[str, Any] = self._call("GET", "ledger")
        return result

    def reset(self) -> None:
        """Clear everything and restore the config the sandbox started with."""
        self._call("POST", "reset")

    def set_faults(self, *rules: dict[str, Any]) -> None:
        """Replace all fault rules with ``rules``."""
        self._call("POST", "faults", json={"rules": list(rules)})

    def faults(self) -> list[dict[str, Any]]:
        """The active rules, each with how often it fired (``injected``)."""
        rules: list[dict[str, Any]] = self._call("GET", "faults")["rules"]
        return rules

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._call("DELETE", "faults")

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Deep-merge ``settings`` into the config; return the effective config."""
        result: dict[str, Any] = self._call("POST", "config", json=settings)
        return result

    def config(self) -> dict[str, Any]:
        """The effective config."""
        result: dict[str, Any] = self._call("GET", "config")
        return result

    def stats(self) -> dict[str, Any]:
        """Push counters and timings, stopped accounts, limiter maxima, pending receipts."""
        result: dict[str, Any] = self._call("GET", "stats")
        return result

    def messages(self, phone: str) -> list[dict[str, Any]]:
        """What the sandbox accepted for ``phone``, newest last."""
        result: list[dict[str, Any]] = self._call("GET", "messages", params={"phone": phone})["messages"]
        return result

    def inject_uplink(self, gateway: str, account: str, phone: str, content: str, ext: str | None = None) -> None:
        """Make ``phone`` send ``content`` to ``account`` (opass apiKey or aiofish account)."""
        body = {"gateway": gateway, "account": account, "phone": phone, "content": content, "ext": ext}
        self._call("POST", "uplink", idempotent=False, json=body)  # a second one would be a second reply

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Wait until no push is in flight or scheduled and no due push is waiting; ``False`` on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            stats = self.stats()
            queue = stats["push_queue"]
            if queue["in_flight"] == 0 and queue["scheduled"] == 0 and stats["pending_receipts"]["push"] == 0:
                return True
            time.sleep(0.05)
        return False
