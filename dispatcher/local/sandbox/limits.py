"""Sliding-window rate limits that remember the busiest window they saw. Pure.

A window admits a request if fewer than ``max_count`` admitted requests fall in
the last ``window_s`` seconds; refused requests are not counted against the
limit (the vendors do not say, and counting them would let a throttled client
lock itself out). Every arrival is also kept apart, so the stats show the
busiest window of *attempts* and how many were refused: what a benchmark needs
to judge a client's limiter.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from dispatcher.local.sandbox.config import LimitSpec


class SlidingWindow:
    """The admitted request times of one (account, limit) pair."""

    __slots__ = ("arrivals", "hits", "max_attempted", "max_count", "max_seen", "refused", "window_s")

    def __init__(self, spec: LimitSpec) -> None:
        self.max_count = spec.max_count
        self.window_s = spec.window_s
        self.hits: deque[float] = deque()
        self.max_seen = 0
        self.arrivals: deque[float] = deque()
        self.max_attempted = 0
        self.refused = 0

    def arrive(self, now_s: float) -> None:
        """Count an attempt (admitted or not) and update the busiest window of attempts."""
        cutoff = now_s - self.window_s
        arrivals = self.arrivals
        while arrivals and arrivals[0] <= cutoff:
            arrivals.popleft()
        arrivals.append(now_s)
        if len(arrivals) > self.max_attempted:
            self.max_attempted = len(arrivals)

    def allows(self, now_s: float) -> bool:
        """Whether one more request fits in the window ending at ``now_s``."""
        cutoff = now_s - self.window_s
        hits = self.hits
        while hits and hits[0] <= cutoff:
            hits.popleft()
        return len(hits) < self.max_count

    def record(self, now_s: float) -> None:
        """Count an admitted request and update the busiest-window maximum."""
        self.hits.append(now_s)
        if len(self.hits) > self.max_seen:
            self.max_seen = len(self.hits)


class Limiter:
    """All windows of the sandbox, keyed by (gateway, account, limit name)."""

    def __init__(self) -> None:
        self.windows: dict[tuple[str, str, str], SlidingWindow] = {}

    def _window(self, key: tuple[str, str, str], spec: LimitSpec) -> SlidingWindow:
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = SlidingWindow(spec)
        elif window.max_count != spec.max_count or window.window_s != spec.window_s:
            # Reconfigured: keep the history, apply the new bounds from now on.
            window.max_count, window.window_s = spec.max_count, spec.window_s
        return window

    def admit(
        self, gateway: str, account: str, limits: Sequence[tuple[str, LimitSpec | None]], now_s: float
    ) -> str | None:
        """Admit a request against every named limit at once.

        Returns ``None`` and records the request in every window if all allow it,
        else the name of the first limit that refused (nothing is recorded).
        """
        windows: list[tuple[str, SlidingWindow]] = []
        for name, spec in limits:
            if spec is not None:
                window = self._window((gateway, account, name), spec)
                window.arrive(now_s)  # every limit sees the attempt, even if an earlier one refuses
                windows.append((name, window))
        for name, window in windows:
            if not window.allows(now_s):
                window.refused += 1
                return name
        for _, window in windows:
            window.record(now_s)
        return None

    def stats(self) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
        """``{gateway: {account: {limit: {max_seen, max_attempted, refused, limit, window_s}}}}``."""
        out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
        for (gateway, account, name), w in sorted(self.windows.items()):
            out.setdefault(gateway, {}).setdefault(account, {})[name] = {
                "max_seen": w.max_seen,
                "max_attempted": w.max_attempted,
                "refused": w.refused,
                "limit": w.max_count,
                "window_s": w.window_s,
            }
        return out
