"""How long a chunk waits before its next attempt after a transient failure: pure, no I/O."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_s(attempt: int, *, base_s: float, cap_s: float, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter: ``min(cap_s, base_s·2^(attempt-1)) × [0.5, 1.5)``.

    ``attempt`` counts from 1 (the attempt that just failed); ``rng`` gives a float in
    [0, 1). Jitter spreads the retries of chunks that failed together (a gateway blip)
    so they do not come back as one burst; the cap bounds the wait of a long outage.
    """
    return min(cap_s, base_s * 2 ** max(0, attempt - 1)) * (0.5 + rng())
