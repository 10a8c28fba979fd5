"""An account's balance for the send guard: one Redis GET while the cached reading is fresh.

A reading is cached in ``P:bal:{provider}:{name}`` for ``SMSD_BALANCE_CACHE_S``. When it
is missing, a gateway call is made only if the account's ``balance`` limit has a slot
free right now (never waited for: a send must not queue behind receipt polls), so all
producers together ask each gateway at most as often as its limit allows. A call that
cannot be made or fails gives an unknown balance, never an error: the guard then lets
the job through and says so.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from dispatcher.estimates import BalanceReading
from dispatcher.ledger import as_text
from dispatcher.providers import registry
from dispatcher.runtime import Runtime

log = structlog.get_logger("dispatcher.balances")


class BalanceCache:
    """Reads accounts' balances through the Redis cache and the rate limiter; shared by a process's producers."""

    def __init__(self, rt: Runtime, clock_ms: Callable[[], int]) -> None:
        self._rt = rt
        self._clock_ms = clock_ms

    def cached(self, provider: str, account: str) -> BalanceReading | None:
        """The cached reading (one Redis GET), or ``None`` when there is none."""
        raw = self._rt.redis.get(self._rt.keys.balance(provider, account))
        if raw is None:
            return None
        remaining, _, at_ms = as_text(raw).partition(":")
        age_s = max(0.0, (self._clock_ms() - int(at_ms)) / 1000.0)
        return BalanceReading(int(remaining), age_s, cached=True, note="cached")

    def read(self, provider: str, account: str) -> BalanceReading:
        """Ask the gateway now if the ``balance`` limit allows it, and cache the answer; else an unknown reading."""
        rt = self._rt
        if not registry.gateway(provider).has_balance:
            return BalanceReading(None, note=f"{provider} has no balance query")
        wait_ms = rt.limiter.try_acquire(provider, account, "balance")
        if wait_ms:
            return BalanceReading(None, note=f"balance query budget in use, next slot in {wait_ms / 1000:.0f} s")
        try:
            client = rt.client(provider, account)
            if not hasattr(client, "balance"):  # vsms: the manual has no balance query
                return BalanceReading(None, note=f"{provider} has no balance query")
            remaining = client.balance().total
        except Exception as exc:  # noqa: BLE001 - any failure means "unknown": the guard never blocks a send on it
            log.warning("balance.unreadable", provider=provider, account=account, error=type(exc).__name__)
            return BalanceReading(None, note=f"balance query failed: {type(exc).__name__}")
        now = self._clock_ms()
        ttl_ms = int(rt.settings.balance_cache_s * 1000)
        if ttl_ms > 0:
            rt.redis.set(rt.keys.balance(provider, account), f"{remaining}:{now}", px=ttl_ms)
        return BalanceReading(remaining, 0.0, cached=False, note="read now")

    def reading(self, provider: str, account: str, *, ask_gateway: bool) -> BalanceReading:
        """The cached reading, else (``ask_gateway``) a fresh one, else an unknown one."""
        found = self.cached(provider, account)
        if found is not None:
            return found
        if not ask_gateway:
            return BalanceReading(None, note="none cached, and an OTP does not wait for the gateway")
        return self.read(provider, account)
