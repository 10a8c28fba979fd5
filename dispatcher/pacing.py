"""Many requests in flight per process, the account's limit still the pace: one gate per account.

A worker process runs many send tasks at once (Celery's threads pool, see
``dispatcher/workers/app.py``), each sending its chunks in turn: with the
gateway 200 ms away, an account at 300 requests/s needs ~60 requests in flight.
The rate-limit slot is still taken with each chunk's claim, in one Redis round
trip (:meth:`dispatcher.ledger.Ledger.claim`), so "one chunk, one slot, at most
one request per slot" holds as before. What the gate adds, per process and account:

* a bulk chunk claims only while holding one of the gate's permits, and gives
  it back when its slot is due (as its request leaves). There are as many
  permits as slots in ``ahead_s`` (``SMSD_SEND_AHEAD_S``) at the account's
  limit, so the slots this process holds reserved never reach further than
  that: an OTP (which passes no gate) finds the next free slot at most about
  ``ahead_s`` away per sending process, however many bulk chunks are waiting.
  The others wait for a permit in this process instead of reserving slots
  seconds ahead. Permits are taken in parallel, not one after another, so a
  thread that is slow to get the GIL back delays only its own chunk;
* a task arriving when the queue for permits is already longer than it may
  wait (``SMSD_LIMITER_MAX_WAIT_S``) is told to come back later: its chunks are
  re-queued with that countdown and its thread freed for other accounts' and
  for OTP tasks, instead of sitting in a queue the account's limit drains slowly.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Gate:
    """The bulk senders of one account in one process: ``permits`` of them hold a reserved slot at once."""

    def __init__(self, permits: int) -> None:
        self.permits = max(1, permits)
        self._free = threading.BoundedSemaphore(self.permits)
        self._count = threading.Lock()
        #: Threads waiting for a permit right now.
        self.waiting = 0

    def _queued(self, delta: int) -> int:
        with self._count:
            self.waiting += delta
            return self.waiting

    @contextmanager
    def turn(self, *, max_wait_s: float, interval_s: float) -> Iterator[float | None]:
        """Hold a permit for the block; yield ``None``, or (holding none) how long to come back after.

        Without a permit within ``max_wait_s`` (or a queue ahead longer than that
        at ``interval_s`` a slot) the block gets that estimate instead.
        """
        ahead = (self._queued(1) - 1) * interval_s
        try:
            got = ahead <= max_wait_s and self._free.acquire(timeout=max_wait_s)
        finally:
            self._queued(-1)
        if not got:
            yield max(ahead, interval_s)
            return
        try:
            yield None
        finally:
            self._free.release()


class Gates:
    """One :class:`Gate` per (provider, account), created on first use (thread-safe)."""

    def __init__(self) -> None:
        self._gates: dict[tuple[str, str], Gate] = {}
        self._lock = threading.Lock()

    def __call__(self, provider: str, account: str, *, ahead_s: float, interval_s: float) -> Gate:
        """The gate of ``provider:account`` in this process: as many permits as slots in ``ahead_s``."""
        key = (provider, account)
        with self._lock:
            gate = self._gates.get(key)
            if gate is None:
                permits = math.ceil(ahead_s / interval_s) if interval_s > 0 else 1_000_000
                gate = self._gates[key] = Gate(permits)
            return gate
