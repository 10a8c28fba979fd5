"""Timing one producer store of a big job: what the suppress and routes sections share.

Each store runs on a producer that stores and queues nothing (no worker runs), and is
measured in wall time, this process's CPU, Redis's CPU and the Redis bytes it left.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from bench.records import settled_used_memory
from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.local.stack import Stack
from dispatcher.producer import Dispatcher


@dataclass(frozen=True, slots=True)
class Store:
    """One store: wall time, this process's CPU, Redis's CPU, bytes grown, and what the send returned."""

    wall_s: float
    client_cpu_s: float
    redis_cpu_s: float
    grown: int
    result: Any = None


def storing_dispatcher(stack: Stack, doc: dict[str, Any], client: redis.Redis) -> Dispatcher:
    """A producer that stores and does not queue (no worker runs: the fan-out would only sit in the broker)."""
    return Dispatcher(Settings.from_env(stack.env), accounts=parse_accounts(doc), client=client,
                      enqueue=lambda job_id, queue, countdown: None)


def redis_cpu_s(client: redis.Redis) -> float:
    """CPU seconds (user + system) Redis has used so far."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def timed_store(d: Dispatcher, send: Callable[[Dispatcher], Any]) -> Store:
    """Run ``send(d)`` and say what it cost."""
    gc.collect()
    before = settled_used_memory(d.redis)
    redis_cpu, cpu = redis_cpu_s(d.redis), time.process_time()
    t0 = time.perf_counter()
    result = send(d)
    wall = time.perf_counter() - t0
    cpu, redis_cpu = time.process_time() - cpu, redis_cpu_s(d.redis) - redis_cpu
    return Store(wall, cpu, redis_cpu, settled_used_memory(d.redis) - before, result)


def store_figures(prefix: str, timed: Mapping[str, Sequence[Store]], count: int) -> dict[str, Any]:
    """``{prefix}_store_{name}_…`` figures of each kind of store: the fastest's rate, every wall time,
    median CPU of this process and Redis, bytes a recipient of the last."""
    figures: dict[str, Any] = {}
    for name, runs in timed.items():
        best = min(s.wall_s for s in runs)
        figures.update({
            f"{prefix}_store_{name}_recipients_per_s": round(count / best, 1),
            f"{prefix}_store_{name}_s": [round(s.wall_s, 3) for s in runs],
            f"{prefix}_store_{name}_client_cpu_s": round(statistics.median(s.client_cpu_s for s in runs), 3),
            f"{prefix}_store_{name}_redis_cpu_s": round(statistics.median(s.redis_cpu_s for s in runs), 3),
            f"{prefix}_store_{name}_bytes_per_recipient": round(runs[-1].grown / count, 1),
        })
    return figures
