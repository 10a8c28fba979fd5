"""``python -m bench.receipts [--quick]``: receipts applied per second, from the stream and direct.

``receipts_applied_per_s`` (the target): the receipt stream is filled, in one
``MULTI``, with ``STREAM_RECEIPTS`` receipts (500,000; 100,000 with ``quick``)
in entries of 100 (what the webhook records for an opass push; receipts of 200
accepted chunks shuffled together, so an entry names ~90 chunks) while
``appliers`` real Celery workers wait on it; timed from ``EXEC`` to the stream
empty (every entry applied, acknowledged and deleted by the applier threads).
Counters and per-phone states are checked afterwards.

``receipts_direct_*``: the ledger's script alone, no stream. Stores one accepted opass
job straight through the ledger (200,000 recipients in 1000-phone chunks, 50,000 with
``quick``), each chunk claimed and accepted with a message id as the worker records it.
Then builds the pull answers the gateway would return: every receipt's arrival time is
its chunk's acceptance time (one chunk per ~3.3 ms, the 300/s send limit) plus a carrier
delay of seconds, so one 600-receipt answer holds a few receipts of each of many chunks.
Each answer is parsed by the real client's
:func:`~dispatcher.providers.opass.parse_receipts_answer` (what ``pull_receipts``
returns to ``poll_receipts``) and only :func:`dispatcher.receipts.apply_receipts` over
all answers is timed.

Raises ``RuntimeError`` when the job's counters do not show every recipient
delivered or failed afterwards, or when replaying answers changes anything.
"""

from __future__ import annotations

import collections
import json
import random
import statistics
import time
from typing import Any

import redis

from bench.common import cpu_s, evalsha_us, main_of, redis_usec, write_accounts
from dispatcher.keys import Keys, client_id
from dispatcher.ledger import ChunkData, Ledger
from dispatcher.local.demo import phones
from dispatcher.local.sandbox.defaults import DEFAULTS
from dispatcher.local.sandbox.push_load import accepted_job, interleaved
from dispatcher.local.sandbox.receipts import OutcomeMix
from dispatcher.local.sandbox.timefmt import arrive_time
from dispatcher.local.stack import Stack, wait_for
from dispatcher.providers.opass.client import parse_receipts_answer
from dispatcher.providers.results import Receipt
from dispatcher.receipt_stream import record
from dispatcher.receipts import apply_receipts

JOB_ID = "benchrcpt"
CHUNK_SIZE = 1000
PULL_MAX = 600  # opass answers at most 600 receipts per pull call
SEND_INTERVAL_S = 1 / 300  # opass ~300 sends/s: one chunk accepted every 3.3 ms
REPLAYED_ANSWERS = 5
STREAM_RECEIPTS = 500_000
ENTRY_RECEIPTS = 100
APPLIERS = 1


def _store_accepted_job(ledger: Ledger, recipients: int, now_ms: int) -> list[tuple[list[str], str, str]]:
    """Store the job and accept every chunk; return ``(phones, msg_id, bid)`` per chunk."""
    numbers = phones(recipients, seed=11)
    chunks = [numbers[i : i + CHUNK_SIZE] for i in range(0, recipients, CHUNK_SIZE)]
    ledger.create_job(JOB_ID, {"provider": "opass", "account": "demo", "priority": "bulk"},
                      (ChunkData(c) for c in chunks), now_ms=now_ms)
    accepted = []
    for n, chunk in enumerate(chunks):
        claim = ledger.claim(JOB_ID, n, provider="opass", account="demo", now_ms=now_ms)
        if claim.status != "ok":
            raise RuntimeError(f"chunk {n} not claimable: {claim}")
        msg_id = f"2024{now_ms:013d}{n:06d}"
        if ledger.accept(JOB_ID, n, attempt=claim.attempt, message_id=msg_id, failed_indexes=[],
                         now_ms=now_ms) != "ok":
            raise RuntimeError(f"chunk {n} not accepted")
        accepted.append((chunk, msg_id, client_id(JOB_ID, n, claim.attempt)))
    return accepted


def _pull_answers(accepted: list[tuple[list[str], str, str]], start_s: float) -> tuple[list[list[Receipt]], int]:
    """The pull answers in arrival order, parsed as the client parses them; and how many are DELIVRD."""
    mix = OutcomeMix.from_mapping({k: v for k, v in DEFAULTS["outcomes"].items() if k != "none"})
    seed = int(DEFAULTS["seed"])
    rng = random.Random(5)
    items: list[tuple[float, dict[str, str]]] = []
    for n, (chunk, msg_id, bid) in enumerate(accepted):
        sent_s = start_s + n * SEND_INTERVAL_S
        for phone in chunk:
            state = mix.pick(seed, msg_id, phone) or "DELIVRD"
            at_s = sent_s + rng.lognormvariate(1.5, 0.6)  # carrier delay: median ~4.5 s, tail ~20 s
            items.append((at_s, {"msgId": msg_id, "tel": phone, "arrive": state, "arriveTime": arrive_time(at_s),
                                 "bid": bid}))
    items.sort(key=lambda t: t[0])
    answers = []
    for i in range(0, len(items), PULL_MAX):
        doc = {"code": "200", "message": "查询成功", "data": [item for _, item in items[i : i + PULL_MAX]]}
        answers.append(parse_receipts_answer(json.loads(json.dumps(doc)), account="demo"))
    delivered = sum(1 for _, item in items if item["arrive"] == "DELIVRD")
    return answers, delivered


def run(stack: Stack, *, quick: bool, appliers: int = APPLIERS) -> dict[str, Any]:
    """Both measurements; raise ``RuntimeError`` if the counts do not add up."""
    return {**stream_drain(stack, quick=quick, appliers=appliers), **direct(stack, quick=quick)}


def stream_drain(stack: Stack, *, quick: bool, appliers: int = APPLIERS) -> dict[str, Any]:
    """Fill the stream at once with entries of ``ENTRY_RECEIPTS``; time ``appliers`` workers emptying it."""
    receipts = 100_000 if quick else STREAM_RECEIPTS
    client = redis.Redis.from_url(stack.env["SMSD_REDIS_URL"])
    keys = Keys()
    stream = keys.receipt_stream()
    names = [f"drain{i}" for i in range(appliers)]
    try:
        client.flushdb()
        ledger = Ledger(client, keys)
        now_ms = int(time.time() * 1000)
        pairs = interleaved(accepted_job(ledger, JOB_ID, receipts, provider="opass", seed=12, now_ms=now_ms),
                            random.Random(6))
        rng = random.Random(7)
        delivered = 0
        entries = []
        for i in range(0, receipts, ENTRY_RECEIPTS):
            batch = []
            for phone, bid in pairs[i : i + ENTRY_RECEIPTS]:
                ok = rng.random() < 0.95
                batch.append(Receipt("opass", f"m{bid}", phone, "DELIVRD" if ok else "UNDELIV", ok, client_id=bid))
            delivered += sum(r.delivered for r in batch)
            entries.append(batch)
        write_accounts(stack)
        for name in names:
            stack.start_worker(name, concurrency=1)
        pids = [stack.procs[n].pid for n in names]
        wait_for(lambda: client.exists(stream) and len(client.xinfo_groups(stream)) > 0, timeout_s=30,
                 what="the appliers' consumer group", interval_s=0.05)
        workers_cpu, script_us = sum(cpu_s(p) for p in pids), redis_usec(client, "evalsha")
        pipe = client.pipeline(transaction=True)
        for batch in entries:
            record(pipe, stream, "opass", "demo", batch, source="push", now_ms=now_ms)  # type: ignore[arg-type]
        pipe.execute()
        started = time.perf_counter()
        while client.xlen(stream):
            time.sleep(0.002)
        elapsed_s = time.perf_counter() - started
        workers_cpu = sum(cpu_s(p) for p in pids) - workers_cpu
        script_us = redis_usec(client, "evalsha") - script_us
        counts = ledger.counts(JOB_ID)
        states = collections.Counter(state for _, state in ledger.phone_states(JOB_ID))
        want = {"delivered": delivered, "failed": receipts - delivered, "accepted": 0}
        if any(counts[k] != v or states.get(k, 0) != v for k, v in want.items()):
            raise RuntimeError(f"stream receipts did not add up: counts={counts} states={dict(states)} want={want}")
    finally:
        for name in names:
            stack.stop(name)
        client.close()
    return {
        "receipts_applied_per_s": round(receipts / elapsed_s, 1),
        "receipts_stream_receipts": receipts,
        "receipts_stream_entries": len(entries),
        "receipts_stream_appliers": appliers,
        "receipts_stream_elapsed_s": round(elapsed_s, 3),
        # Where the time went, per receipt: the workers' CPU (applier threads) and Redis in the script.
        "receipts_stream_applier_cpu_us_per_receipt": round(workers_cpu * 1e6 / receipts, 2),
        "receipts_stream_redis_us_per_receipt": round(script_us / receipts, 2),
    }


def direct(stack: Stack, *, quick: bool) -> dict[str, Any]:
    """Pull answers applied straight through :func:`apply_receipts`; only that is timed."""
    recipients = 50_000 if quick else 200_000
    client = redis.Redis.from_url(stack.env["SMSD_REDIS_URL"])
    try:
        client.flushdb()
        ledger = Ledger(client)
        now_ms = int(time.time() * 1000)
        accepted = _store_accepted_job(ledger, recipients, now_ms)
        answers, delivered = _pull_answers(accepted, now_ms / 1000)
        chunks_per_answer = statistics.mean(len({r.client_id for r in a}) for a in answers)
        batch_ms: list[float] = []
        applied = ignored = 0
        script_us = evalsha_us(client)
        cpu = time.process_time()
        started = time.perf_counter()
        for answer in answers:
            t0 = time.perf_counter()
            done = apply_receipts(ledger, answer, provider="opass", account="demo", now_ms=now_ms)
            batch_ms.append((time.perf_counter() - t0) * 1000)
            applied, ignored = applied + done.applied, ignored + done.ignored
        elapsed_s = time.perf_counter() - started
        cpu = time.process_time() - cpu
        script_us = evalsha_us(client) - script_us
        counts = ledger.counts(JOB_ID)
        expected = {"delivered": delivered, "failed": recipients - delivered, "accepted": 0}
        if applied != recipients or ignored or any(counts[k] != v for k, v in expected.items()):
            raise RuntimeError(f"receipts did not add up: applied={applied} ignored={ignored} counts={counts} "
                               f"expected={expected}")
        replayed = [apply_receipts(ledger, a, provider="opass", account="demo", now_ms=now_ms)
                    for a in answers[:REPLAYED_ANSWERS]]
        if any(r.applied for r in replayed) or ledger.counts(JOB_ID) != counts:
            raise RuntimeError("replaying pull answers changed the ledger")
        if client.zcard(ledger.keys.awaiting()):
            raise RuntimeError("fully receipted chunks are still awaiting receipts")
    finally:
        client.close()
    batch_ms.sort()
    return {
        "receipts_direct_applied_per_s": round(recipients / elapsed_s, 1),
        "receipts_direct_applied": applied,
        "receipts_direct_batches": len(answers),
        "receipts_direct_batch_size": PULL_MAX,
        "receipts_direct_chunks_per_batch": round(chunks_per_answer, 1),
        "receipts_direct_batch_p50_ms": round(statistics.median(batch_ms), 2),
        "receipts_direct_batch_max_ms": round(batch_ms[-1], 2),
        "receipts_direct_elapsed_s": round(elapsed_s, 3),
        # Where the time went: this process's CPU, and Redis's time inside the scripts.
        "receipts_direct_client_cpu_us_per_receipt": round(cpu * 1e6 / recipients, 2),
        "receipts_direct_redis_us_per_receipt": round(script_us / recipients, 2),
    }


if __name__ == "__main__":
    main_of(run, __doc__)
