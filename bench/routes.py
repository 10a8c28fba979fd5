"""``python -m bench.routes [--quick]``: what routing costs: a 1M job stored direct vs through a route; its failover.

* ``routes_store_direct_recipients_per_s``: one 1,000,000-recipient job (200,000 with ``quick``)
  stored through ``Dispatcher.send_template`` on opass:demo (the same values for all).
* ``routes_store_route_recipients_per_s``: the same phones through ``Dispatcher.send("drill", …)``,
  the route 3:1 over opass:demo and aiofish:demo (:func:`dispatcher.local.drill.with_route`): the
  template check, the split, two jobs (750,000 as opass template sends, 250,000 as aiofish texts)
  and the route's record. Each stored :data:`STORES` times, alternately, on an emptied Redis: the
  figure is the fastest; ``*_s`` lists every time, ``*_client_cpu_s`` / ``*_redis_cpu_s`` the
  median CPU of this process and of redis-server. ``*_bytes_per_recipient``: ``used_memory`` growth.
* ``routes_store_route_per_phone_*``: the route with a value per phone (``recipients=``), once: the
  route also keeps each phone's values (``P:route:{id}:v``) for a failover to send again, against
  ``routes_store_direct_per_phone_*`` (``send_template(recipients=…)``).
* ``routes_failover_s``: the last route store's opass account paused (cooldown 0), one failover pass moving all of
  its 750,000 pending recipients to aiofish (the REROUTE script, the phones read back, the new job
  stored); ``routes_failover_recipients_per_s``.

All stores pass ``force=True`` (no balance query). No worker runs: nothing is sent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import redis

from bench.common import fresh_redis, main_of, write_accounts
from bench.stores import Store, store_figures, storing_dispatcher, timed_store
from dispatcher import pauses
from dispatcher.local.demo import phones
from dispatcher.local.drill import ONE_PARAM_TEMPLATE, with_route
from dispatcher.local.stack import Stack
from dispatcher.producer import Dispatcher
from dispatcher.providers.base import system_clock_ms
from dispatcher.route_failover import failover

STORES = 3


def run(stack: Stack, *, quick: bool, recipients: int | None = None, stores: int = STORES, **_: Any) -> dict[str, Any]:
    """Store the job direct and through the route, alternately; then per phone once each; then a failover."""
    count = recipients or (200_000 if quick else 1_000_000)
    numbers = phones(count, seed=19)
    doc = with_route(write_accounts(stack), cooldown_s=0)  # the failover moves on its first pass
    sends: dict[str, Callable[[Dispatcher], Any]] = {
        "direct": lambda d: d.send_template("demo", template_code=ONE_PARAM_TEMPLATE, phones=numbers,
                                            params=["654321"], force=True),
        "route": lambda d: d.send("drill", template="otp", phones=numbers, params=["654321"], force=True),
    }
    timed: dict[str, list[Store]] = {name: [] for name in sends}
    for _ in range(stores):
        for name, send in sends.items():
            timed[name].append(timed_store(storing_dispatcher(stack, doc, fresh_redis(stack)), send))
    # The last store was the route's: one failover pass moves opass's whole share.
    d = storing_dispatcher(stack, doc, redis.Redis.from_url(stack.env["SMSD_REDIS_URL"]))
    pauses.pause_after_fatal(d.runtime, "opass", "demo", "40002: bench")
    t0 = time.perf_counter()
    moved = failover(d, now_ms=system_clock_ms())
    failover_s = time.perf_counter() - t0
    if moved != count - count // 4:
        raise RuntimeError(f"the failover moved {moved} of {count - count // 4}")

    values = [(p, [f"{i % 1_000_000:06d}"]) for i, p in enumerate(numbers)]
    per_phone: dict[str, Callable[[Dispatcher], Any]] = {
        "direct_per_phone": lambda d: d.send_template("demo", template_code=ONE_PARAM_TEMPLATE, recipients=values,
                                                      force=True),
        "route_per_phone": lambda d: d.send("drill", template="otp", recipients=values, force=True),
    }
    for name, send in per_phone.items():
        timed[name] = [timed_store(storing_dispatcher(stack, doc, fresh_redis(stack)), send)]
    fresh_redis(stack)
    figures: dict[str, Any] = {"routes_recipients": count, "routes_stores": stores}
    figures.update(store_figures("routes", timed, count))
    figures.update({"routes_failover_moved": moved, "routes_failover_s": round(failover_s, 3),
                    "routes_failover_recipients_per_s": round(moved / failover_s, 1),
                    "routes_load_average_1m": round(os.getloadavg()[0], 2)})
    return figures


if __name__ == "__main__":
    main_of(run, __doc__)
