"""The wait before a chunk's next attempt after a transient failure (dispatcher.backoff).

Documented: ``min(cap_s, base_s·2^(attempt-1)) × [0.5, 1.5)``, ``attempt`` counting from 1
and ``rng`` giving a float in [0, 1). Every expected number below is worked out by hand
from that formula, with the jitter source pinned to its two ends.
"""

from __future__ import annotations

import pytest

from dispatcher.backoff import backoff_s

LOWEST = 0.0  # rng() at the bottom of [0, 1): jitter factor 0.5
HIGH = 0.999  # rng() near the top of [0, 1): jitter factor 1.499


@pytest.mark.parametrize(
    ("attempt", "expected"),
    # base 2 s, cap 60 s, factor 0.5: 2·2^(attempt-1)·0.5 = 2^(attempt-1)
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0)],
)
def test_the_wait_doubles_from_base_with_each_attempt(attempt: int, expected: float) -> None:
    """Attempt 1 waits base·0.5 at the lowest jitter, attempt 2 twice that, and so on."""
    assert backoff_s(attempt, base_s=2.0, cap_s=60.0, rng=lambda: LOWEST) == expected


@pytest.mark.parametrize(
    ("attempt", "expected"),
    # base 2 s, factor 1.499: 2·2^(attempt-1)·1.499
    [(1, 2.998), (2, 5.996), (3, 11.992)],
)
def test_the_highest_jitter_waits_almost_one_and_a_half_times(attempt: int, expected: float) -> None:
    """rng() near 1 stretches the wait to just under 1.5× its un-jittered value."""
    assert backoff_s(attempt, base_s=2.0, cap_s=60.0, rng=lambda: HIGH) == pytest.approx(expected, rel=1e-12)


def test_jitter_scales_linearly_between_its_ends() -> None:
    """rng() = 0.25 gives factor 0.75: attempt 3 with base 1 s waits 4·0.75 = 3 s."""
    assert backoff_s(3, base_s=1.0, cap_s=60.0, rng=lambda: 0.25) == 3.0


@pytest.mark.parametrize(("attempt", "rng", "expected"), [
    (6, LOWEST, 30.0),  # 2·2^5 = 64 > 60: capped to 60, then ·0.5
    (7, LOWEST, 30.0),  # 128 → 60
    (40, LOWEST, 30.0),  # a long outage stays at the cap
    (6, HIGH, 89.94),  # the cap bounds the un-jittered wait; jitter still spreads it: 60·1.499
    (5, LOWEST, 16.0),  # 2·2^4 = 32 < 60: under the cap, untouched
])
def test_the_cap_bounds_the_wait_of_a_long_outage(attempt: int, rng: float, expected: float) -> None:
    """Past the cap the wait stops growing: min(cap, base·2^(attempt-1)) before the jitter."""
    assert backoff_s(attempt, base_s=2.0, cap_s=60.0, rng=lambda: rng) == pytest.approx(expected, rel=1e-12)


def test_a_cap_equal_to_the_grown_wait_changes_nothing() -> None:
    """base 3 s, attempt 3: 3·4 = 12 s, cap 12 s: exactly 12·0.5 = 6 s."""
    assert backoff_s(3, base_s=3.0, cap_s=12.0, rng=lambda: LOWEST) == 6.0


@pytest.mark.parametrize("attempt", [0, -3])
def test_an_attempt_below_one_waits_like_the_first(attempt: int) -> None:
    """The exponent never goes negative: no wait shorter than the first attempt's (base 2 s · 0.5)."""
    assert backoff_s(attempt, base_s=2.0, cap_s=60.0, rng=lambda: LOWEST) == 1.0


def test_without_an_rng_the_wait_lies_in_the_documented_jitter_range() -> None:
    """The default jitter source keeps every wait of attempt 2 (base 1 s: 2 s) within [1 s, 3 s)."""
    waits = [backoff_s(2, base_s=1.0, cap_s=60.0) for _ in range(200)]
    assert [w for w in waits if not 1.0 <= w < 3.0] == []
    assert len(set(waits)) > 1  # jittered, so chunks that failed together do not return as one burst
