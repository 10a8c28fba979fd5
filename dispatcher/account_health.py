"""An account failing too often: each worker process watches its own calls, and marks the account in Redis.

A route moves an account's recipients not yet submitted to its next account when
that account is paused (an account-fatal answer, an operator) or failing: more than
``SMSD_ERROR_RATE_MAX`` of its last calls within ``SMSD_ERROR_WINDOW_S`` came back
transient, ambiguous or refused whole (at least ``SMSD_ERROR_MIN_CALLS`` of them).
Each worker process counts the calls it makes (:class:`ErrorWindow`, no Redis on the
hot path) and, once its window passes the threshold, sets ``P:acct:…:failing``
(:meth:`Keys.failing`) with the window as its TTL, so the mark lasts while some
process keeps seeing failures and goes by itself once none does. Throttle answers do
not count (the limiter slows down for them); account-fatal answers pause the account.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import redis
import structlog

from dispatcher.keys import Keys

log = structlog.get_logger("dispatcher.account_health")


class ErrorWindow:
    """Each account's calls of the last ``window_s`` (ok or failed), in this process. Thread-safe.

    :meth:`note` returns a reason once the failed share reaches ``max_share`` over at
    least ``min_calls`` calls, and again at most once a second while it stays there.
    """

    def __init__(self, *, window_s: float, min_calls: int, max_share: float,
                 clock_s: Callable[[], float] = time.monotonic) -> None:
        self.window_s, self.min_calls, self.max_share = window_s, min_calls, max_share
        self._clock_s = clock_s
        self._calls: dict[str, deque[tuple[float, bool]]] = {}
        #: failed calls now in each account's deque (kept, not counted: a deque holds a window of calls)
        self._failed: dict[str, int] = {}
        self._told_s: dict[str, float] = {}
        self._lock = threading.Lock()

    def note(self, account: str, *, ok: bool) -> str | None:
        """Count one call of ``account``; its reason if the account is failing and should be (re)marked."""
        now = self._clock_s()
        with self._lock:
            calls = self._calls.setdefault(account, deque())
            calls.append((now, ok))
            failed = self._failed.get(account, 0) + (not ok)
            while calls and calls[0][0] < now - self.window_s:
                failed -= not calls.popleft()[1]
            self._failed[account] = failed
            if ok or len(calls) < self.min_calls or failed < self.max_share * len(calls):
                return None
            if now - self._told_s.get(account, float("-inf")) < 1.0:
                return None
            self._told_s[account] = now
            return f"error rate: {failed} of the last {len(calls)} calls in {self.window_s:g} s failed"


def observe(rt: Any, provider: str, account: str, *, ok: bool) -> None:
    """Count one gateway call of ``provider:account`` in this process (``rt``: the ``Runtime``), and
    mark the account failing when its error rate calls for it (one Redis write then, none otherwise)."""
    reason = rt.errors.note(f"{provider}:{account}", ok=ok)
    if reason is not None:
        mark_failing(rt.redis, rt.keys, provider, account, reason, rt.settings.error_window_s)


def mark_failing(client: redis.Redis, keys: Keys, provider: str, account: str, reason: str,
                 window_s: float) -> None:
    """Mark ``provider:account`` failing for ``window_s`` (renewed by the next failing call). Never raises:
    a mark that cannot be written leaves the route as it is."""
    try:
        client.set(keys.failing(provider, account), reason, px=max(1, int(window_s * 1000)))
    except redis.RedisError as exc:
        log.warning("account.failing_not_marked", provider=provider, account=account, error=type(exc).__name__)
        return
    log.warning("account.failing", provider=provider, account=account, reason=reason)
