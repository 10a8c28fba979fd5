"""``python -m bench.soak [--quick] [--jobs N] [--ttl-s S]``: does Redis give back what expired jobs held?

Stores ``N`` single-recipient OTP jobs (200,000; 20,000 with ``quick``)
through the producer with a short job TTL (``SMSD_JOB_TTL_S``), and drives them
through the ledger as the workers would: half accepted and delivered, a quarter
accepted and still awaiting a receipt, a quarter left pending. A small set of
long-lived jobs (the default TTL; 100 pending, 100 delivered) stays throughout,
as live work would. Nothing is queued or sent: this measures state, not
throughput. While the short jobs expire, a "beat" runs the sweeps once a second.

Figures at ``baseline`` (long-lived jobs only), then per round (``--rounds``,
2) ``loaded`` (all jobs stored) and ``after`` (short jobs expired): Redis
memory, keys, the entries of every index, and the median time of one sweep
(every sweep the beat runs) and of one resume (an account's pending chunks).
``after`` should be back at ``baseline``, and the same after every round: what
is left (on Redis 6.2, the hash tables of the index sorted sets stay sized for
their peak) must not grow with history. Raises ``RuntimeError`` if the short jobs do not all
expire within three TTLs.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import redis

from bench.common import standalone
from dispatcher import sweeps
from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.local.demo import accounts_doc, phones
from dispatcher.local.stack import Stack
from dispatcher.producer import Dispatcher
from dispatcher.runtime import Runtime

OTP_TEMPLATE = "1000000000000000002"
LONG_LIVED = 100  # pending, and as many delivered
REPEATS = 11
#: INFO memory figures reported: the total, the data, and Redis's own bookkeeping (dict tables, clients).
MEMORY_FIGURES = ("used_memory", "used_memory_dataset", "used_memory_overhead", "mem_clients_normal")
#: How long to let Redis settle (its cron shrinks emptied hash tables) before the last snapshot.
SETTLE_S = 10.0
RECEIPT_BATCH = 500


def _noop_enqueue(job_id: str, queue: str, countdown_s: int) -> None:
    """Nothing is sent in this benchmark: the jobs stay as the ledger holds them."""


def _now_ms() -> int:
    return int(time.time() * 1000)


def _sweep_once(rt: Runtime) -> int:
    """Every sweep the beat runs (without re-queueing); return how much they touched."""
    now = _now_ms()
    touched = sweeps.stuck_to_ambiguous(rt, now_ms=now)
    touched += len(sweeps.due_ambiguous(rt, now_ms=now))
    touched += len(sweeps.orphaned_pending(rt, now_ms=now))
    touched += sweeps.expire_silent(rt, now_ms=now)
    touched += len(sweeps.due_scheduled(rt, now_ms=now))
    return touched + sweeps.trim_expired_jobs(rt, now_ms=now)


def _median_ms(action: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 3)


def _keys_without_ttl(client: redis.Redis) -> int:
    """Keys that would never expire (there should be none: every key has a TTL or a stated reason)."""
    keys = list(client.scan_iter(count=1000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.ttl(key)
    return sum(1 for ttl in pipe.execute() if ttl == -1)


def _snapshot(rt: Runtime, *, count_keys_without_ttl: bool = False) -> dict[str, Any]:
    client, keys = rt.redis, rt.keys
    indexes = {"jobs": keys.jobs(), "pending": keys.pending(), "sending": keys.sending(),
               "ambiguous": keys.ambiguous(), "awaiting": keys.awaiting(), "scheduled": keys.scheduled()}
    resumed: list[int] = []
    memory: Any = client.info("memory")
    figures: dict[str, Any] = {
        "sweep_ms": _median_ms(lambda: _sweep_once(rt)),
        "resume_ms": _median_ms(lambda: resumed.append(len(sweeps.pending_chunks(rt, "opass", "demo")))),
        "resume_chunks": resumed[-1],
        **{f"{name}_bytes": int(memory[name]) for name in MEMORY_FIGURES},
        "keys": int(client.dbsize()),
    }
    figures["index_entries"] = {name: int(client.zcard(key)) for name, key in indexes.items()}
    if count_keys_without_ttl:  # the index sorted sets (no TTL: they hold other jobs' entries) and stats
        figures["keys_without_ttl"] = _keys_without_ttl(client)
    return figures


def _soak_fate(i: int) -> str:
    return ("delivered", "delivered", "awaiting", "pending")[i % 4]


def _live_fate(i: int) -> str:
    # No awaiting ones: the short receipt horizon of the soak would make them unknown meanwhile.
    return ("delivered", "pending")[i % 2]


def _drive(rt: Runtime, job_ids: list[str], fate: Callable[[int], str]) -> None:
    """Move the jobs as workers and receipts would, job ``i`` to ``fate(i)``."""
    ledger, now = rt.ledger, _now_ms()
    receipts: list[tuple[str, int, int, list[tuple[str, bool]]]] = []
    for i, job_id in enumerate(job_ids):
        if fate(i) == "pending":
            continue
        claim = ledger.claim(job_id, 0, provider="opass", account="demo", now_ms=now)
        if claim.status != "ok":
            raise RuntimeError(f"job {i} not claimable: {claim.status}")
        ledger.accept(job_id, 0, attempt=claim.attempt, message_id=f"m{i}", failed_indexes=[], now_ms=now)
        if fate(i) == "delivered":
            receipts.append((job_id, 0, claim.attempt, [(claim.phones[0], True)]))
        if len(receipts) >= RECEIPT_BATCH:
            ledger.apply_receipt_groups(receipts, owner="opass:demo", now_ms=now)
            receipts = []
    ledger.apply_receipt_groups(receipts, owner="opass:demo", now_ms=now)


def _store(d: Dispatcher, numbers: list[str]) -> list[str]:
    return [d.send_template("demo", template_code=OTP_TEMPLATE, phones=[phone], params=[f"{i % 1_000_000:06d}"],
                            priority="otp").job_id for i, phone in enumerate(numbers)]


def run(stack: Stack, *, quick: bool, jobs: int | None = None, ttl_s: float | None = None,
        rounds: int = 2) -> dict[str, Any]:
    """Soak Redis ``rounds`` times with ``jobs`` short-lived OTP jobs; return the snapshots and load times."""
    count = jobs or (20_000 if quick else 200_000)
    ttl = ttl_s or (60.0 if quick else 600.0)
    rounds_count = rounds
    client = redis.Redis.from_url(stack.env["SMSD_REDIS_URL"])
    client.flushdb()
    accounts = parse_accounts(accounts_doc(stack.sandbox_url))
    base = Settings.from_env(stack.env)
    # One deployment's settings for every sweep; the long-lived jobs differ only in their TTL
    # (stored through a producer with the default). Half a TTL before the receipt horizon or
    # the orphan sweep touches a job, so "loaded" is measured before either has work.
    short_settings = dataclasses.replace(base, job_ttl_s=ttl, receipt_horizon_s=ttl / 2, orphan_after_s=ttl / 2)
    short = Runtime(short_settings, accounts=accounts, client=client)
    long_d = Dispatcher(dataclasses.replace(short_settings, job_ttl_s=base.job_ttl_s), accounts=accounts,
                        client=client, enqueue=_noop_enqueue)
    short_d = Dispatcher(short_settings, accounts=accounts, client=client, enqueue=_noop_enqueue)
    numbers = phones(count + 2 * LONG_LIVED, seed=31)
    try:
        _drive(short, _store(long_d, numbers[: 2 * LONG_LIVED]), _live_fate)
        _sweep_once(short)  # scripts loaded, first sweep paid for, before the baseline
        baseline = _snapshot(short, count_keys_without_ttl=True)
        rounds = [_round(short, short_d, numbers[2 * LONG_LIVED :], baseline["keys"], ttl)
                  for _ in range(rounds_count)]
    finally:
        client.close()
    for r in rounds:
        r["memory_after_minus_baseline_bytes"] = r["after"]["used_memory_bytes"] - baseline["used_memory_bytes"]
    return {"soak_jobs": count, "soak_job_ttl_s": ttl, "soak_rounds": rounds_count,
            "soak_bytes_per_job": round((rounds[0]["loaded"]["used_memory_bytes"]
                                         - baseline["used_memory_bytes"]) / count, 1),
            "baseline": baseline, "rounds": rounds}


def _round(short: Runtime, d: Dispatcher, numbers: list[str], baseline_keys: int, ttl: float) -> dict[str, Any]:
    """Store and drive the short jobs, snapshot, let them expire under a once-a-second beat, snapshot."""
    client = short.redis
    started = time.perf_counter()
    job_ids = _store(d, numbers)
    store_s = time.perf_counter() - started
    _drive(short, job_ids, _soak_fate)
    load_s = time.perf_counter() - started
    loaded = _snapshot(short)
    deadline = time.monotonic() + 3 * ttl
    swept = 0
    while True:
        touched = _sweep_once(short)
        swept += touched
        if client.dbsize() <= baseline_keys and not touched and client.zcard(short.keys.jobs()) <= 2 * LONG_LIVED:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{client.dbsize()} keys left after {3 * ttl:.0f} s (baseline {baseline_keys})")
        time.sleep(1.0)
    expired_after_s = time.perf_counter() - started
    time.sleep(SETTLE_S)
    return {"store_s": round(store_s, 1), "store_jobs_per_s": round(len(numbers) / store_s, 1),
            "load_s": round(load_s, 1), "all_expired_after_s": round(expired_after_s, 1), "swept_entries": swept,
            "loaded": loaded, "after": _snapshot(short, count_keys_without_ttl=True)}


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, help="how many OTP jobs per round (default 200,000)")
    parser.add_argument("--ttl-s", type=float, help="their job TTL in seconds (default 600)")
    parser.add_argument("--rounds", type=int, default=2, help="store-and-expire rounds (default 2)")


def main(argv: list[str] | None = None) -> int:
    """Start a redis-server and the sandbox in a temp dir, run the soak, print its JSON."""
    return standalone(run, __doc__, argv, options=_options, quick_help="20,000 jobs, 60 s TTL")


if __name__ == "__main__":
    sys.exit(main())
