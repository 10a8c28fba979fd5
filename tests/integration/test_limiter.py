"""The Redis limiter holds a limit across threads and slows down after a throttle answer.

Slots are read on the limiter's own clock (Redis ``TIME``, its GCRA state keys),
never timed from this process: a slow host cannot fail these tests.
"""

from __future__ import annotations

import threading
import time

import pytest
import redis

from dispatcher import limiter_scripts as lua
from dispatcher.limiter import Limit, RateLimiter
from dispatcher.local.stack import wait_for

# The production slot logic with one more value in its answer: the slot taken, on the Redis clock.
TAKE_AND_SHOW_SLOT = lua.TAKE_SLOT + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local taken, wait = take_slot(0, 1, tonumber(ARGV[1]))
return {taken and 1 or 0, string.format('%.3f', wait), string.format('%.3f', now + wait)}
"""


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _redis_now_ms(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds * 1000 + micros / 1000


def _tat(client: redis.Redis, limiter: RateLimiter, provider: str, account: str, kind: str) -> float:
    """The limit's next free slot (its theoretical arrival time), in Redis ms."""
    return float(client.get(limiter.keys.limiter(provider, account, kind)) or 0)


def test_four_threads_never_exceed_the_limit_in_any_window(redis_client) -> None:  # type: ignore[no-untyped-def]
    """Four threads taking slots as fast as they are given get at most 20 in any 0.5 s of the slots' times."""
    limiter = RateLimiter(redis_client, overrides={("opass", "a", "send"): (Limit("send", 20, 0.5),)})
    take = redis_client.register_script(TAKE_AND_SHOW_SLOT)
    script = limiter.slot_script_args("opass", "a", "send", reserve_ms=1000.0)
    assert script is not None
    slots: list[float] = []
    lock = threading.Lock()
    wanted = 60  # three windows' worth: enough to press the limit (a count, not a rate)
    deadline = time.monotonic() + 120.0  # a failure bound only

    def worker() -> None:
        while len(slots) < wanted and time.monotonic() < deadline:
            taken, wait_ms, slot_ms = take(keys=script[0], args=script[1])
            if int(taken):
                with lock:
                    slots.append(float(slot_ms))
            time.sleep(float(wait_ms) / 1000.0 if int(taken) else 0.01)  # sleep-ok: paces like acquire, to the slot

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(slots) >= wanted, f"only {len(slots)} slots taken before the deadline"
    assert _max_in_window(slots, 500.0) <= 20


def test_one_call_takes_every_limit_it_needs_or_none(redis_client) -> None:  # type: ignore[no-untyped-def]
    limiter = RateLimiter(redis_client, overrides={
        ("opass", "a", "balance"): (Limit("balance", 1, 30.0), Limit("query", 3, 60.0)),
        ("opass", "a", "statistics"): (Limit("statistics", 4, 60.0), Limit("query", 3, 60.0)),
    })
    assert limiter.try_acquire("opass", "a", "balance") == 0
    assert limiter.try_acquire("opass", "a", "balance") > 0  # its own 1/30 s slot is used
    # statistics shares the query budget (3/min = one per ~20.4 s): not yet
    assert limiter.try_acquire("opass", "a", "statistics") > 0


def test_a_throttle_answer_doubles_the_interval(redis_client) -> None:  # type: ignore[no-untyped-def]
    """After two throttle answers the slot after the one already reserved is four intervals out, not one."""
    limiter = RateLimiter(redis_client, overrides={("aiofish", "a", "send"): (Limit("send", 1, 600.0),)}, jitter_s=0.0,
                          slow_hold_s=0.0)  # each answer its own event here (see the test below)
    interval_ms = 600_000.0  # long, so every slot below is still ahead when the next caller asks
    assert limiter.reserve("aiofish", "a", "send", within_s=86_400) == 0.0
    first = _tat(redis_client, limiter, "aiofish", "a", "send")
    assert limiter.reserve("aiofish", "a", "send", within_s=86_400) is not None  # one interval on
    assert _tat(redis_client, limiter, "aiofish", "a", "send") == pytest.approx(first + interval_ms, abs=0.01)
    assert limiter.slow_down("aiofish", "a", "send") == 2.0
    assert limiter.slow_down("aiofish", "a", "send") == 4.0
    assert limiter.reserve("aiofish", "a", "send", within_s=86_400) is not None  # the slot already due
    after = _tat(redis_client, limiter, "aiofish", "a", "send")
    assert after == pytest.approx(first + interval_ms + 4 * interval_ms, abs=0.01)


def test_the_throttle_answers_of_one_window_halve_the_pace_once(redis_client) -> None:  # type: ignore[no-untyped-def]
    """Twelve throttle answers within the limit's window (the calls in flight at the time) double the interval
    once; an answer after the window doubles it again; the factor lapses three windows after the last doubling.
    Time passing is the factor's time to live run down on the Redis clock (PEXPIRE), not a sleep."""
    limiter = RateLimiter(redis_client, overrides={("opass", "t", "send"): (Limit("send", 300, 1.0),)})
    key = limiter.keys.slowdown("opass", "t", "send")
    assert [limiter.slow_down("opass", "t", "send") for _ in range(12)] == [2.0] * 12
    assert limiter.factor("opass", "t", "send") == 2.0
    assert 2_000 < redis_client.pttl(key) <= 3_000  # raised once, for three 1 s windows: not renewed
    redis_client.pexpire(key, 1_900)  # 1.1 s on: past the 1 s window, the gateway still throttles
    assert limiter.slow_down("opass", "t", "send") == 4.0
    assert limiter.slow_down("opass", "t", "send") == 4.0
    redis_client.pexpire(key, 1)  # three windows after the last doubling
    wait_for(lambda: limiter.factor("opass", "t", "send") == 1.0, what="the factor to lapse", timeout_s=5)


def test_waiting_callers_reserve_consecutive_slots_and_a_far_slot_takes_nothing(redis_client) -> None:  # type: ignore[no-untyped-def]
    """A second caller gets the very next slot (one interval on), and asking for a far slot changes nothing."""
    limiter = RateLimiter(redis_client, overrides={("opass", "r", "send"): (Limit("send", 1, 600.0),)}, jitter_s=0.0)
    assert limiter.reserve("opass", "r", "send", within_s=3_600) == 0.0
    first = _tat(redis_client, limiter, "opass", "r", "send")
    wait_s = limiter.reserve("opass", "r", "send", within_s=3_600)
    assert wait_s is not None and wait_s > 0  # taken now for a slot ahead
    second = _tat(redis_client, limiter, "opass", "r", "send")
    assert second == pytest.approx(first + 600_000, abs=0.01)  # consecutive: right after the first
    # The next slot is ~20 minutes out: a caller that waits at most 10 ms takes nothing.
    assert limiter.acquire("opass", "r", "send", max_wait_s=0.01) < 0
    assert limiter.try_acquire("opass", "r", "send") > 0
    assert _tat(redis_client, limiter, "opass", "r", "send") == second


def test_acquire_returns_no_earlier_than_the_slot_it_reserved(redis_client) -> None:  # type: ignore[no-untyped-def]
    """A caller whose slot is ahead sleeps until it: on the Redis clock, it is back at or after the slot."""
    limiter = RateLimiter(redis_client, overrides={("opass", "s", "send"): (Limit("send", 1, 1.0),)}, jitter_s=0.0)
    assert limiter.acquire("opass", "s", "send", max_wait_s=5.0) == 0.0
    slot = _tat(redis_client, limiter, "opass", "s", "send")  # the next caller's slot (or now, if later)
    assert limiter.acquire("opass", "s", "send", max_wait_s=5.0) >= 0
    assert _redis_now_ms(redis_client) >= slot


def test_a_call_that_woke_late_moves_the_next_slots_back_one_spacing(redis_client) -> None:  # type: ignore[no-untyped-def]
    """The late call takes a slot again where it goes out: the next caller waits two spacings, not the overrun too."""
    limiter = RateLimiter(redis_client, overrides={("opass", "l", "send"): (Limit("send", 1, 1.0),)}, jitter_s=0.005)
    ticks = iter([0.0, 3.0])  # asked at 0 s, back from the (zero) wait 3 s later: a stalled process
    assert limiter.acquire("opass", "l", "send", max_wait_s=1.0, clock_s=lambda: next(ticks)) == 0.0
    wait_ms = limiter.try_acquire("opass", "l", "send")
    # One spacing (1005 ms) for the slot taken, one for the late call's new one; 4005 under the old rule.
    assert 1005 < wait_ms <= 2011, wait_ms


def test_a_call_late_past_every_reserved_slot_moves_the_next_one_past_now(redis_client) -> None:  # type: ignore[no-untyped-def]
    """Re-based at the moment it goes out: a call that really stalled does not let the next one follow it at once."""
    limiter = RateLimiter(redis_client, overrides={("opass", "p", "send"): (Limit("send", 1, 1.0),)}, jitter_s=0.005)
    assert limiter.acquire("opass", "p", "send", max_wait_s=1.0) == 0.0
    key = limiter.keys.limiter("opass", "p", "send")
    # Its slot, and the one after, went by 5 s ago while the caller stalled.
    redis_client.set(key, f"{_redis_now_ms(redis_client) - 5000:.3f}", px=60_000)
    limiter.defer("opass", "p", "send", late_s=5.0)
    assert limiter.try_acquire("opass", "p", "send") > 900  # a spacing (1005 ms) from now, not due at once


def test_a_stall_that_made_thirty_reserved_calls_late_moves_the_limit_back_thirty_spacings(redis_client) -> None:  # type: ignore[no-untyped-def]
    """Not thirty stalls: one process holding 30 reservations, stalled 50 ms, must not cost the account 1.5 s."""
    limiter = RateLimiter(redis_client, overrides={("opass", "b", "send"): (Limit("send", 300, 1.0),)}, jitter_s=0.05)
    spacing_ms = 1050 / 300
    for _ in range(30):
        assert limiter.reserve("opass", "b", "send", within_s=1.0) is not None
    before = _tat(redis_client, limiter, "opass", "b", "send")
    for _ in range(30):
        limiter.defer("opass", "b", "send", late_s=0.05)
    after = _tat(redis_client, limiter, "opass", "b", "send")
    moved = after - max(before, _redis_now_ms(redis_client))
    assert after - before >= 30 * spacing_ms - 0.01
    assert moved <= 30 * spacing_ms + 0.01, f"moved {moved:.1f} ms (30 x 50 = 1500 under the old rule)"
