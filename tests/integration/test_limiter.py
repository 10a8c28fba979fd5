"""The Redis limiter holds a limit across threads and slows down after a throttle answer."""

from __future__ import annotations

import threading
import time

from dispatcher.limiter import Limit, RateLimiter


def _max_in_window(times: list[float], window_s: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_four_threads_never_exceed_the_limit_in_any_window(redis_client) -> None:  # type: ignore[no-untyped-def]
    limit = Limit("send", 20, 0.5)  # 20 per 0.5 s
    limiter = RateLimiter(redis_client, overrides={("opass", "a", "send"): (limit,)})
    taken: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 2.0

    def worker() -> None:
        while time.monotonic() < deadline:
            if limiter.acquire("opass", "a", "send", max_wait_s=1.0) >= 0:
                with lock:
                    taken.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _max_in_window(taken, 0.5) <= 20
    # and the limiter is not needlessly slow: over 2 s it lets most of 80 through
    assert len(taken) >= 60


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
    limiter = RateLimiter(redis_client, overrides={("aiofish", "a", "send"): (Limit("send", 10, 1.0),)}, jitter_s=0.0)
    assert limiter.try_acquire("aiofish", "a", "send") == 0
    normal_wait = limiter.try_acquire("aiofish", "a", "send")
    assert limiter.slow_down("aiofish", "a", "send") == 2.0
    assert limiter.slow_down("aiofish", "a", "send") == 4.0
    assert limiter.acquire("aiofish", "a", "send", max_wait_s=1.0) >= 0  # the token already due
    slowed_wait = limiter.try_acquire("aiofish", "a", "send")  # the next one is 4 intervals out
    assert 0 < normal_wait <= 100
    assert slowed_wait > 300


def test_waiting_callers_reserve_consecutive_slots_and_a_far_slot_takes_nothing(redis_client) -> None:  # type: ignore[no-untyped-def]
    limiter = RateLimiter(redis_client, overrides={("opass", "r", "send"): (Limit("send", 10, 1.0),)}, jitter_s=0.0)
    assert limiter.acquire("opass", "r", "send", max_wait_s=1.0) == 0.0
    # The next slot is one interval (100 ms) out: taken now, slept until.
    assert 0.05 < limiter.acquire("opass", "r", "send", max_wait_s=1.0) <= 0.1
    # Two more slots out is beyond 10 ms: refused, and nothing was reserved by asking.
    assert limiter.acquire("opass", "r", "send", max_wait_s=0.01) < 0
    assert 0 < limiter.try_acquire("opass", "r", "send") <= 100


def test_a_call_that_woke_late_moves_the_next_slots_back(redis_client) -> None:  # type: ignore[no-untyped-def]
    limiter = RateLimiter(redis_client, overrides={("opass", "l", "send"): (Limit("send", 10, 1.0),)}, jitter_s=0.05)
    ticks = iter([0.0, 0.8])  # asked at 0 s, back from the (zero) wait 0.8 s later: a stalled process
    assert limiter.acquire("opass", "l", "send", max_wait_s=1.0, clock_s=lambda: next(ticks)) == 0.0
    assert limiter.try_acquire("opass", "l", "send") > 800  # one interval (105 ms) + the 800 ms overrun
