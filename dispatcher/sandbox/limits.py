"""Sliding-window rate limits that remember the busiest window they saw. Pure.

A window admits a request if fewer than ``max_count`` admitted requests fall in
the last ``window_s`` seconds; refused requests are not counted (the vendors do
not say, and counting them would let a throttled client lock itself out).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from dispatcher.sandbox.config import LimitSpec


class SlidingWindow:
    """The admitted request times of one (account, limit) pair."""

    __slots__ = ("hits", "max_count", "max_seen", "window_s")

    def __init__(self, spec: LimitSpec) -> None:
        self.max_count = spec.max_count
        self.window_s = spec.window_s
        self.hits: deque[float] = deque()
        self.max_seen = 0

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
        windows = []
        for name, spec in limits:
            if spec is None:
                continue
            window = self._window((gateway, account, name), spec)
            if not window.allows(now_s):
                return name
            windows.append(window)
        for window in windows:
            window.record(now_s)
        return None

    def stats(self) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
        """``{gateway: {account: {limit: {max_seen, limit, window_s}}}}``."""
        out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
        for (gateway, account, name), w in sorted(self.windows.items()):
            out.setdefault(gateway, {}).setdefault(account, {})[name] = {
                "max_seen": w.max_seen,
                "limit": w.max_count,
                "window_s": w.window_s,
            }
        return out
