"""A worker process's view of an account failing too often (dispatcher.account_health). Pure: a fake clock."""

from __future__ import annotations

from dispatcher.account_health import ErrorWindow


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def _window(clock: Clock) -> ErrorWindow:
    return ErrorWindow(window_s=60, min_calls=10, max_share=0.5, clock_s=clock)


def test_an_account_is_failing_once_half_its_calls_in_the_window_failed_and_not_before() -> None:
    clock = Clock()
    w = _window(clock)
    assert [w.note("opass:a", ok=True) for _ in range(5)] == [None] * 5
    told = [w.note("opass:a", ok=False) for _ in range(5)]
    assert told[:4] == [None] * 4  # 4 of 9, then 5 of 10: the tenth call is the first that counts
    assert told[4] == "error rate: 5 of the last 10 calls in 60 s failed"


def test_too_few_calls_never_make_an_account_failing() -> None:
    clock = Clock()
    w = _window(clock)
    assert [w.note("opass:a", ok=False) for _ in range(9)] == [None] * 9


def test_calls_older_than_the_window_no_longer_count() -> None:
    clock = Clock()
    w = _window(clock)
    for _ in range(9):
        w.note("opass:a", ok=False)
    clock.now_s += 61
    assert w.note("opass:a", ok=False) is None  # one call in the window now


def test_the_mark_is_renewed_at_most_once_a_second_and_each_account_counts_apart() -> None:
    clock = Clock()
    w = _window(clock)
    told = [w.note("opass:a", ok=False) for _ in range(12)]
    assert sum(t is not None for t in told) == 1
    clock.now_s += 1.5
    assert w.note("opass:a", ok=False) is not None
    assert w.note("aiofish:b", ok=False) is None
