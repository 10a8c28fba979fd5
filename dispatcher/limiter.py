"""Global per-account rate limiter in Redis (GCRA, one Lua script, the Redis clock).

Every documented limit is a default here; an account may override them. A
limit of ``count`` per ``window_s`` becomes one token every
``(window_s + jitter_s) / count``, burst 1. Tokens are spaced exactly, but the
time from taking a token to the request reaching the gateway varies (process
scheduling, network); widening the window by ``jitter_s`` keeps *any* window the
gateway sees at or under ``count`` as long as that variation stays below
``jitter_s``, however many workers share the account. The default 50 ms keeps
≥ 95 % of a 1-second limit usable; a busy host needs more (SMSD_LIMITER_JITTER_S).

:meth:`RateLimiter.acquire` *reserves* the next free slot (up to ``max_wait_s``
ahead) and sleeps until it, rather than sleeping and asking again: waiting
workers line up for consecutive slots, so the limit is used at its full
``count / (window_s + jitter_s)`` instead of losing the wake-up and Redis round
trip of every token (``python -m bench.limiter``: 0.91 → 0.95 of a 50/s limit).
A slot is never earlier than its spacing allows, so the bound above is unchanged.
Using the whole budget leaves ``jitter_s`` as the only slack, so a caller that
wakes more than ``jitter_s / 2`` after its slot (a stalled process) moves the
account's next free slot to where its call really goes out, one spacing on
(:meth:`RateLimiter.defer`): the allowance then only has to cover the rest of
the way to the gateway.

When the gateway answers a throttle code, :meth:`RateLimiter.slow_down` doubles
that operation's intervals (up to 16×) for ``slow_windows`` (3) of each limit's
windows after the last doubling: 3 s for opass's 300/s, 3 min for a 3/min query
budget. The throttle answers of one window count once: the requests in flight
when the first came were sent at the old pace (``SLOW_DOWN``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

import redis

from dispatcher import limiter_scripts as lua
from dispatcher import metrics
from dispatcher.keys import Keys
from dispatcher.limits import Limit
from dispatcher.providers.registry import documented_limits


class RateLimiter:
    """Takes tokens for gateway calls; shared by every worker through Redis."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys | None = None,
        *,
        overrides: Mapping[tuple[str, str, str], tuple[Limit, ...]] | None = None,
        jitter_s: float = 0.05,
        slow_max: float = 16.0,
        slow_windows: float = 3.0,
        slow_hold_s: float | None = None,
    ) -> None:
        self.r = client
        self.keys = keys or Keys()
        self.overrides = dict(overrides or {})
        self.jitter_s = jitter_s
        self.slow_max = slow_max
        #: A doubled factor lasts this many of its limit's windows after its last doubling.
        self.slow_windows = slow_windows
        #: Throttle answers within this long of a doubling are that doubling's (None: the limit's window).
        self.slow_hold_s = slow_hold_s
        self._acquire = client.register_script(lua.ACQUIRE)
        self._slow = client.register_script(lua.SLOW_DOWN)
        self._defer = client.register_script(lua.DEFER)

    def limits(self, provider: str, account: str, op: str) -> tuple[Limit, ...]:
        """The limits one ``op`` call of ``account`` consumes: the account's override, else what
        the gateway's plug documents (:func:`~dispatcher.providers.registry.documented_limits`)."""
        override = self.overrides.get((provider, account, op))
        return override if override is not None else documented_limits(provider, op)

    def interval_s(self, provider: str, account: str, op: str) -> float:
        """Seconds between two ``op`` calls of ``account`` at its limits (the widest spacing; 0 if unlimited)."""
        return max((limit.interval_ms(self.jitter_s) for limit in self.limits(provider, account, op)),
                   default=0.0) / 1000.0

    def _keys(self, provider: str, account: str, limits: tuple[Limit, ...]) -> list[str]:
        return [self.keys.limiter(provider, account, limit.kind) for limit in limits]

    def slot_script_args(self, provider: str, account: str, op: str,
                         reserve_ms: float) -> tuple[list[str], list[float]] | None:
        """KEYS and ARGV of ``take_slot`` for one ``op`` call (``None`` when ``op`` has no limit).

        For scripts that take a slot along with their own work (the ledger's claim).
        """
        limits = self.limits(provider, account, op)
        if not limits:
            return None
        keys: list[str] = []
        args: list[float] = [reserve_ms]
        for limit in limits:
            keys.append(self.keys.limiter(provider, account, limit.kind))
            keys.append(self.keys.slowdown(provider, account, limit.kind))
            args += [limit.interval_ms(self.jitter_s), 1]
        return keys, args

    def _take(self, provider: str, account: str, op: str, reserve_ms: float) -> tuple[bool, float]:
        """Run ACQUIRE: (taken, wait_ms); taken for a slot ``wait_ms`` ahead if that is ≤ ``reserve_ms``."""
        script = self.slot_script_args(provider, account, op, reserve_ms)
        if script is None:
            return True, 0.0
        taken, wait_ms = self._acquire(keys=script[0], args=script[1])
        return bool(int(taken)), float(wait_ms)

    def reserve(self, provider: str, account: str, op: str, *, within_s: float) -> float | None:
        """Take the tokens of the next free slot if it is at most ``within_s`` away; return its wait in s.

        ``None`` when the next slot is further (nothing taken). The caller must
        make its call no earlier than the wait, and report lateness with :meth:`defer`.
        """
        taken, wait_ms = self._take(provider, account, op, within_s * 1000.0)
        return wait_ms / 1000.0 if taken else None

    def try_acquire(self, provider: str, account: str, op: str) -> int:
        """Take the tokens for one call now; return 0, or the wait in ms (≥ 1) if not yet due."""
        taken, wait_ms = self._take(provider, account, op, 0.0)
        return 0 if taken else max(1, math.ceil(wait_ms))

    def acquire(self, provider: str, account: str, op: str, *, max_wait_s: float,
                clock_s: Callable[[], float] = time.monotonic) -> float:
        """Take the tokens of the next free slot and sleep until it; return seconds waited.

        Returns ``-wait_s`` without taking anything if that slot is further than
        ``max_wait_s`` away, so a Celery task can retry later instead of
        holding a worker. If the sleep overran the slot by more than half the
        jitter allowance (a busy host), the account's next slots move back by
        the overrun: see :meth:`defer`.
        """
        asked = clock_s()
        taken, wait_ms = self._take(provider, account, op, max_wait_s * 1000.0)
        if not taken:
            return -wait_ms / 1000.0
        self.sleep_until_slot(provider, account, op, wait_ms / 1000.0, asked_s=asked, clock_s=clock_s)
        return wait_ms / 1000.0

    def sleep_until_slot(self, provider: str, account: str, op: str, wait_s: float, *, asked_s: float,
                         clock_s: Callable[[], float] = time.monotonic) -> None:
        """Sleep until a slot just reserved, ``wait_s`` ahead, is due; call right after the reply.

        ``asked_s`` (``clock_s`` time) is when the reserving call was sent. If
        the wake overran the slot by more than half the jitter allowance (a busy
        host), the account's next slots move back by the overrun: see :meth:`defer`.
        """
        metrics.limiter_slot(provider, account, op, wait_s)
        if wait_s > 0:
            # The whole wait from the reply: the slot is wait_s after the script
            # ran, which was before the reply came, so the call never goes out early.
            time.sleep(wait_s)
        # The slot is wait_s after the script ran, which was after `asked_s`.
        late_s = clock_s() - asked_s - wait_s
        if late_s > self.jitter_s / 2:
            self.defer(provider, account, op, late_s)

    def defer(self, provider: str, account: str, op: str, late_s: float) -> None:
        """A token was used ``late_s`` late: ``op``'s next free slot moves to now plus one spacing (or ``late_s``).

        The late call takes a slot again, where it really goes out, so the
        allowance ``jitter_s`` need not cover this lateness. Slots already
        reserved keep their time (the reservation horizon is short next to a
        window). A stall that makes B reserved calls late moves the limit back
        by B spacings, not B times the stall (``DEFER`` in
        :mod:`dispatcher.limiter_scripts`).
        """
        script = self.slot_script_args(provider, account, op, reserve_ms=0.0)
        if script is not None:
            keys, args = script  # args: reserve_ms, then interval and burst of each limit
            self._defer(keys=keys, args=[late_s * 1000.0, *args[1::2]])

    def factor(self, provider: str, account: str, op: str) -> float:
        """The current slow-down factor of ``op`` (1.0 when not slowed)."""
        keys = [self.keys.slowdown(provider, account, limit.kind) for limit in self.limits(provider, account, op)]
        values = self.r.mget(keys) if keys else []
        return max([float(v) for v in values if v is not None] or [1.0])

    def slow_down(self, provider: str, account: str, op: str) -> float:
        """Double the intervals of ``op``'s limits after a throttle answer; return the factor in force.

        A limit already doubled within its own window is left as it is: the
        answers to calls sent before that doubling are the same event. The
        factor lasts ``slow_windows`` of the limit's windows after the last
        doubling, then the full limit is tried again (a gateway whose real limit
        is lower throttles again). Measured on opass's 1 s window: one overfull
        second used to halve the pace for 10 s, most of a 1M job's remaining send.
        """
        factor = 1.0
        for limit in self.limits(provider, account, op):
            key = self.keys.slowdown(provider, account, limit.kind)
            ttl_ms = max(1, int(limit.window_s * self.slow_windows * 1000))
            hold_s = limit.window_s if self.slow_hold_s is None else self.slow_hold_s
            hold_ms = min(hold_s * 1000.0, ttl_ms)
            factor = max(factor, float(self._slow(keys=[key], args=[self.slow_max, ttl_ms, hold_ms])))
        return factor
