"""``python -m bench.suppress [--quick]``: what suppression lists cost: a 1M job stored against a list; Redis bytes.

* ``suppress_store_none_recipients_per_s``: one 1,000,000-recipient opass job (200,000 with
  ``quick``) stored through ``Dispatcher.send_template`` (validation and storing, phone index
  included) while the account's list is empty: the check is one ``SCARD``.
* ``suppress_store_listed_recipients_per_s``: the same job, Redis emptied, with 100,000 of its
  phones (10 %) on the list: the list, shorter than the job, is read whole (``SSCAN``) and the
  phones looked up in the producer, then the listed ones are stored in chunks of their own
  (final, in the phone index, on the outcome feed). ``suppress_check_s`` times that check alone.
  Each is stored :data:`STORES` times, alternately, on an emptied Redis: the figure is the fastest;
  ``*_s`` lists every time, ``*_client_cpu_s`` / ``*_redis_cpu_s`` the median CPU of this process
  and of redis-server (less swayed by the machine's load than the wall time).
* The other ways to check, timed on the same job and list: ``suppress_check_script_s`` (the
  ``CHECK_LISTED`` script, 10,000 phones a call: what a list longer than the job gets) with its
  Redis time ``suppress_check_script_redis_s``, and ``suppress_check_smismember_s`` (pipelined
  ``SMISMEMBER`` of 10,000 phones, not used: the client parses one reply element per phone) with
  ``suppress_check_smismember_redis_s``. ``suppress_check_long_list_s``: a job of a tenth of the
  phones against a list of all of them (the script path).
* ``suppress_list_bytes_per_phone``: ``used_memory`` growth per phone of a list of 100,000 and of
  1,000,000 phones (one Redis SET each), and ``suppress_store_*_bytes_per_recipient`` the job's.

Both stores pass ``force=True`` (no balance query: the same work in both runs). Each store runs on
an emptied Redis. ``python -m bench.suppress [--quick]`` runs it on its own stack.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import redis

from bench.common import fresh_redis, main_of, redis_usec, write_accounts
from bench.records import settled_used_memory
from bench.stores import Store, store_figures, storing_dispatcher, timed_store
from dispatcher.local.demo import phones
from dispatcher.local.stack import Stack
from dispatcher.producer import Dispatcher
from dispatcher.suppression import CHECK_BATCH, CHECK_PHONES_PER_CALL

TEMPLATE = "1000000000000000002"
#: Share of the job's phones on the list in the "listed" run.
LISTED_SHARE = 0.10
#: Stores of each kind, alternated (none, listed, none, …): this shared machine's load swings
#: by 2-5x within a minute, so the fastest of each is compared, with the CPU each one used.
STORES = 3


def _store(d: Dispatcher, numbers: list[str]) -> Store:
    """Store the job (the suppression check included) and say what it cost (``result``: how many it set aside)."""
    return timed_store(d, lambda d: d.send_template("demo", template_code=TEMPLATE, phones=numbers, params=["654321"],
                                                    force=True).suppressed)


def _list_bytes(d: Dispatcher, numbers: list[str]) -> float:
    """Bytes of Redis per phone of a list holding ``numbers`` (added in 10,000-phone SADDs)."""
    before = settled_used_memory(d.redis)
    d.suppressions.add("opass", "demo", numbers)
    return (settled_used_memory(d.redis) - before) / len(numbers)


def _timed(client: redis.Redis, command: str, check: Callable[[], Any]) -> tuple[Any, float, float]:
    """``(what check returned, wall seconds, Redis seconds in command)``."""
    usec = redis_usec(client, command)
    t0 = time.perf_counter()
    result = check()
    return result, time.perf_counter() - t0, (redis_usec(client, command) - usec) / 1e6


def _smismember(client: redis.Redis, key: str, phones: list[str]) -> bytearray:
    """The check as pipelined ``SMISMEMBER`` of ``CHECK_BATCH`` phones (the way not taken)."""
    out = bytearray()
    for call in range(0, len(phones), CHECK_PHONES_PER_CALL):
        pipe = client.pipeline(transaction=False)
        for start in range(call, min(len(phones), call + CHECK_PHONES_PER_CALL), CHECK_BATCH):
            pipe.execute_command("SMISMEMBER", key, *phones[start : start + CHECK_BATCH])
        for reply in pipe.execute():
            out += bytes(reply)
    return out


def run(stack: Stack, *, quick: bool, recipients: int | None = None, stores: int = STORES, **_: Any) -> dict[str, Any]:
    """Store the job without and with a list, alternately; return the figures. Raises ``RuntimeError``
    if a listed store did not set exactly the listed phones aside."""
    count = recipients or (200_000 if quick else 1_000_000)
    numbers = phones(count, seed=17)
    listed = numbers[:: int(1 / LISTED_SHARE)]
    doc = write_accounts(stack)
    timed: dict[str, list[Store]] = {"none": [], "listed": []}
    list_100k = 0.0
    for _ in range(stores):
        d = storing_dispatcher(stack, doc, fresh_redis(stack))
        timed["none"].append(_store(d, numbers))
        d = storing_dispatcher(stack, doc, fresh_redis(stack))
        list_100k = _list_bytes(d, listed)
        timed["listed"].append(_store(d, numbers))
    if {s.result for s in timed["none"]} != {0} or {s.result for s in timed["listed"]} != {len(listed)}:
        raise RuntimeError(f"suppressed {[s.result for s in timed['listed']]} of {len(listed)} listed")

    # The check alone, three ways, on the last listed run's Redis (its list of 100k).
    key = d.suppressions.key("opass", "demo")
    checks = {name: _timed(d.redis, command, check) for name, command, check in (
        ("check", "sscan", lambda: d.suppressions.flags("opass", "demo", numbers)),
        ("check_script", "evalsha", lambda: d.suppressions.flags_by_script(key, numbers)),
        ("check_smismember", "smismember", lambda: _smismember(d.redis, key, numbers)))}
    if len({bytes(flags) for flags, _, _ in checks.values()}) != 1 or sum(checks["check"][0]) != len(listed):
        raise RuntimeError("the checks disagree, or not every listed phone was flagged")

    d = storing_dispatcher(stack, doc, fresh_redis(stack))
    list_all = _list_bytes(d, numbers)
    long_flags, long_s, _ = _timed(d.redis, "evalsha", lambda: d.suppressions.flags("opass", "demo", listed))
    if sum(long_flags) != len(listed):
        raise RuntimeError("a phone of the long list was not flagged")
    fresh_redis(stack)
    figures: dict[str, Any] = {"suppress_recipients": count, "suppress_listed": len(listed), "suppress_stores": stores}
    figures.update(store_figures("suppress", timed, count))
    figures.update({
        **{f"suppress_{name}_s": round(wall, 3) for name, (_, wall, _) in checks.items()},
        **{f"suppress_{name}_redis_s": round(busy, 3) for name, (_, _, busy) in checks.items()},
        "suppress_check_long_list_s": round(long_s, 3),
        "suppress_list_bytes_per_phone": {f"{len(listed)}": round(list_100k, 1), f"{count}": round(list_all, 1)},
        "suppress_load_average_1m": round(os.getloadavg()[0], 2),
    })
    return figures


if __name__ == "__main__":
    main_of(run, __doc__)
