"""``python -m bench.sentinel [--quick] [--recipients N]``: what a replica and the claim's WAIT cost.

Two setups, each on servers of its own (AOF on everywhere), the same work in each:

* ``standalone``: one redis-server, as without Sentinel;
* ``sentinel``: a Sentinel group (a master, one replica, three sentinels), our clients finding the
  master through the sentinels.

The work, in this process, no HTTP and no Celery (their costs do not change with Redis's
topology; BENCHMARKS.md has them): store a job of ``recipients`` in 1000-phone chunks
(``Ledger.create_job``, the producer's path with the phone index); claim each chunk (with a
rate-limit slot out of the way) and accept it, one after another, as a pool process does
around its gateway call; record every recipient's receipt on the stream in pushes of 100
shuffled receipts (the webhook's XADD) and drain the stream with one
:class:`~dispatcher.receipt_stream.StreamApplier`.

Under Sentinel the chunks alternate between a claim followed by ``WAIT 1`` in the same round
trip (``SMSD_REDIS_WAIT_REPLICAS=1``, the default) and a bare claim (``=0``), so both are timed
under the same load on this shared host: ``claim_wait_*`` and ``claim_bare_*`` are their round
trips (p50/p99, µs) and the sender's CPU per claim; each push is followed by the webhook's
barrier (``push_barrier_*``). Per setup and phase: the master's and the replica's CPU per
recipient (``INFO cpu``: the whole server process, its AOF threads included). One JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from kombu import Connection

from bench.common import percentile
from dispatcher.config.settings import Settings
from dispatcher.enqueue import Enqueuer
from dispatcher.keys import Keys, client_id
from dispatcher.ledger import ChunkData, Ledger
from dispatcher.limiter import RateLimiter
from dispatcher.limits import Limit
from dispatcher.local.demo import phones
from dispatcher.local.sentinels import SentinelGroup
from dispatcher.providers.results import Receipt
from dispatcher.receipt_stream import StreamApplier, record
from dispatcher.redis_connection import broker_of, connect, replicated
from dispatcher.redis_server import EmbeddedRedis

CHUNK = 1000
PUSH = 100
PROVIDER, ACCOUNT = "opass", "demo"
#: A send limit no loop here reaches: the slot is taken in the claim, as in production, but never waited for.
OUT_OF_THE_WAY = {(PROVIDER, ACCOUNT, "send"): (Limit("send", 1_000_000, 1.0),)}
WAIT_TIMEOUT_MS = 500
QUEUE = "sms.otp"


def cpu_s(client: redis.Redis) -> float:
    """CPU seconds the server has used so far (user + system, every thread)."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@contextmanager
def servers(setup: str, base: Path) -> Iterator[tuple[Settings, redis.Redis, redis.Redis | None]]:
    """(the settings our processes would have, the master's one-try client, the replica's or None)
    for ``setup``; stopped after."""
    if setup == "standalone":
        with EmbeddedRedis(base / setup) as server:
            yield Settings(redis_url=server.url), redis.Redis.from_url(server.url), None
        return
    with SentinelGroup(base / setup, replicas=1) as group:
        master = group.master_port() or group.first_master
        replica = next(port for port in group.nodes if port != master)
        yield Settings.from_env(group.env()), group.node_client(master), group.node_client(replica)


def _phase(name: str, work: Callable[[], None], master: redis.Redis, replica: redis.Redis | None,
           count: int, out: dict[str, Any], per: str = "recipient") -> None:
    """Run ``work``; note the servers' CPU per recipient (or ``per`` job, µs) and the wall time it took."""
    m0, r0, t0 = cpu_s(master), cpu_s(replica) if replica else 0.0, time.perf_counter()
    work()
    wall = time.perf_counter() - t0
    out[f"{name}_master_us_per_{per}"] = round((cpu_s(master) - m0) * 1e6 / count, 3)
    if replica is not None:
        out[f"{name}_replica_us_per_{per}"] = round((cpu_s(replica) - r0) * 1e6 / count, 3)
    out[f"{name}_s"] = round(wall, 3)


def run_setup(setup: str, base: Path, recipients: int, otps: int, *, seed: int = 7) -> dict[str, Any]:
    """Store, send and receipt one bulk job and ``otps`` one-recipient jobs on ``setup``; return its figures."""
    with servers(setup, base) as (settings, master, replica):
        client = connect(settings)
        out = bulk(client, master, replica, recipients, wait=1 if setup == "sentinel" else 0, seed=seed)
        out.update(otp_jobs(settings, client, master, replica, otps, seed=seed + 1))
        client.close()
    return out


def bulk(client: redis.Redis, master: redis.Redis, replica: redis.Redis | None, recipients: int, *, wait: int,
         seed: int) -> dict[str, Any]:
    """One job of ``recipients`` in 1000-phone chunks: stored, claimed and accepted, every receipt pushed and
    applied; the figures of each phase (under Sentinel, claims alternate between WAIT and bare)."""
    numbers = phones(recipients, seed=seed)
    chunks = [numbers[i:i + CHUNK] for i in range(0, len(numbers), CHUNK)]
    out: dict[str, Any] = {"recipients": recipients, "chunks": len(chunks)}
    keys = Keys(prefix="bench")
    ledger = Ledger(client, keys, wait_replicas=wait, wait_timeout_ms=WAIT_TIMEOUT_MS)
    limiter = RateLimiter(client, keys, overrides=OUT_OF_THE_WAY)
    job = "sentinel-bench"
    now = int(time.time() * 1000)
    _phase("store", lambda: ledger.create_job(
        job, {"provider": PROVIDER, "account": ACCOUNT, "kind": "opass.template"},
        [ChunkData(c) for c in chunks], now_ms=now), master, replica, recipients, out)

    plain = Ledger(client, keys)  # the bare claim, beside the waiting one
    timed: dict[str, tuple[list[float], list[float]]] = {"wait": ([], []), "bare": ([], [])}
    unconfirmed: list[int] = []

    def send() -> None:
        for n in range(len(chunks)):
            mode = "wait" if wait and n % 2 == 0 else "bare"
            slot = limiter.slot_script_args(PROVIDER, ACCOUNT, "send", reserve_ms=2000)
            cpu, t = time.process_time(), time.perf_counter()
            claim = (ledger if mode == "wait" else plain).claim(
                job, n, provider=PROVIDER, account=ACCOUNT, now_ms=now, slot=slot, claimer="bench")
            timed[mode][0].append((time.perf_counter() - t) * 1e6)
            timed[mode][1].append((time.process_time() - cpu) * 1e6)
            if claim.status != "ok":
                unconfirmed.append(n)
                continue
            ledger.accept(job, n, attempt=claim.attempt, message_id=f"m{n}", failed_indexes=[], now_ms=now,
                          provider=PROVIDER)

    _phase("send", send, master, replica, recipients, out)
    for mode, (wall, cpu) in timed.items():
        if wall:
            out[f"claim_{mode}_p50_us"] = round(percentile(wall, 0.5) or 0.0, 1)
            out[f"claim_{mode}_p99_us"] = round(percentile(wall, 0.99) or 0.0, 1)
            out[f"claim_{mode}_cpu_us"] = round(sum(cpu) / len(cpu), 1)
    out["claims_not_confirmed"] = len(unconfirmed)

    receipts = [Receipt(PROVIDER, f"m{n}", phone, "DELIVRD", True, now, client_id(job, n, 1))
                for n, chunk in enumerate(chunks) for phone in chunk]
    random.Random(seed).shuffle(receipts)
    barrier_us: list[float] = []

    def push() -> None:
        for i in range(0, len(receipts), PUSH):
            record(client, keys.receipt_stream(), PROVIDER, ACCOUNT, receipts[i:i + PUSH], source="push",
                   now_ms=now)
            if wait:
                t = time.perf_counter()
                replicated(client, keys.stats(), replicas=1, timeout_ms=WAIT_TIMEOUT_MS)
                barrier_us.append((time.perf_counter() - t) * 1e6)

    _phase("push", push, master, replica, recipients, out)
    if barrier_us:
        out["push_barrier_p50_us"] = round(percentile(barrier_us, 0.5) or 0.0, 1)
        out["push_barrier_p99_us"] = round(percentile(barrier_us, 0.99) or 0.0, 1)
    _phase("apply", lambda: StreamApplier(ledger, "bench").drain(), master, replica, recipients, out)
    delivered = ledger.counts(job)["delivered"]
    out["delivered"] = delivered
    if delivered != recipients:
        raise RuntimeError(f"{delivered} of {recipients} recipients delivered")
    total = ("store", "send", "push", "apply")
    out["master_us_per_recipient"] = round(sum(out[f"{p}_master_us_per_recipient"] for p in total), 3)
    return out


def otp_jobs(settings: Settings, client: redis.Redis, master: redis.Redis, replica: redis.Redis | None,
             count: int, *, seed: int) -> dict[str, Any]:
    """``count`` one-recipient jobs as an OTP travels: stored and its fan-out task published (the
    producer's :class:`~dispatcher.enqueue.Enqueuer`, Celery's message on the configured broker, the
    same Redis), the task taken and acknowledged off the queue (kombu, as a worker does), the chunk
    claimed (WAIT under Sentinel) and accepted, receipts pushed in 100s and applied. Redis CPU per job."""
    keys = Keys(prefix="otp")
    ledger = Ledger(client, keys, wait_replicas=settings.replicas_to_wait, wait_timeout_ms=WAIT_TIMEOUT_MS)
    limiter = RateLimiter(client, keys, overrides=OUT_OF_THE_WAY)
    enqueue = Enqueuer(settings)
    url, options = broker_of(settings)
    numbers = phones(count, seed=seed)
    now = int(time.time() * 1000)
    meta = {"provider": PROVIDER, "account": ACCOUNT, "kind": "opass.template", "priority": "otp"}
    out: dict[str, Any] = {"otp_jobs": count}

    def store() -> None:
        for i, phone in enumerate(numbers):
            ledger.create_job(f"otp{i}", meta, [ChunkData([phone])], now_ms=now)
            enqueue(f"otp{i}", QUEUE)

    def send() -> None:
        with Connection(url, transport_options=options) as connection:
            queue = connection.SimpleQueue(QUEUE)
            for _ in range(count):
                message = queue.get(timeout=10)
                job_id = message.payload[0][0]  # Celery protocol 2: [args, kwargs, embed]
                slot = limiter.slot_script_args(PROVIDER, ACCOUNT, "send", reserve_ms=2000)
                claim = ledger.claim(job_id, 0, provider=PROVIDER, account=ACCOUNT, now_ms=now, slot=slot)
                if claim.status != "ok":
                    raise RuntimeError(f"OTP {job_id} not claimed: {claim}")
                ledger.accept(job_id, 0, attempt=claim.attempt, message_id=job_id, failed_indexes=[], now_ms=now,
                              provider=PROVIDER)
                message.ack()
            queue.close()

    def receipts() -> None:
        found = [Receipt(PROVIDER, f"otp{i}", phone, "DELIVRD", True, now, client_id(f"otp{i}", 0, 1))
                 for i, phone in enumerate(numbers)]
        for i in range(0, count, PUSH):
            record(client, keys.receipt_stream(), PROVIDER, ACCOUNT, found[i:i + PUSH], source="push", now_ms=now)
            if settings.replicas_to_wait:
                replicated(client, keys.stats(), replicas=1, timeout_ms=WAIT_TIMEOUT_MS)
        StreamApplier(ledger, "bench").drain()

    _phase("otp_store", store, master, replica, count, out, per="job")
    _phase("otp_send", send, master, replica, count, out, per="job")
    _phase("otp_receipts", receipts, master, replica, count, out, per="job")
    delivered = sum(ledger.counts(f"otp{i}")["delivered"] for i in range(0, count, max(1, count // 100)))
    if delivered != len(range(0, count, max(1, count // 100))):
        raise RuntimeError(f"OTP jobs not all delivered: {delivered} of a sample")
    out["otp_master_us_per_job"] = round(sum(out[f"otp_{p}_master_us_per_job"]
                                             for p in ("store", "send", "receipts")), 3)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run both setups; print one JSON object."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 recipients instead of 600,000")
    parser.add_argument("--recipients", type=int, default=None)
    parser.add_argument("--otps", type=int, default=None, help="one-recipient jobs (default 20,000; quick 5,000)")
    args = parser.parse_args(argv)
    recipients = args.recipients or (100_000 if args.quick else 600_000)
    otps = args.otps or (5_000 if args.quick else 20_000)
    base = Path(tempfile.mkdtemp(prefix="smsd-bench-sentinel-"))
    results: dict[str, Any] = {}
    for setup in ("standalone", "sentinel"):
        print(f"[bench.sentinel] {setup}: {recipients} recipients, {otps} OTP jobs", file=sys.stderr, flush=True)
        results[setup] = run_setup(setup, base, recipients, otps)
    print(json.dumps({"sentinel": results, "load_avg_1m": round(os.getloadavg()[0], 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
