"""What a rate limit is: at most ``count`` calls in any ``window_s``. Pure.

Gateways declare their documented limits with it (:mod:`dispatcher.providers.registry`);
the limiter (:mod:`dispatcher.limiter`) enforces them through Redis.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` calls in any ``window_s``; ``kind`` names the shared budget."""

    kind: str
    count: int
    window_s: float

    def interval_ms(self, jitter_s: float) -> float:
        """Spacing between tokens, in milliseconds, the window widened by ``jitter_s``."""
        return (self.window_s + jitter_s) * 1000.0 / self.count
