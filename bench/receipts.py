"""``python -m bench.receipts [--quick]``: receipts applied per second from opass pull batches.

Stores one accepted opass job straight through the ledger (200,000 recipients in
1000-phone chunks, 50,000 with ``quick``), each chunk claimed and accepted with a
message id as the worker records it. Then builds the pull answers the gateway
would return: every receipt's arrival time is its chunk's acceptance time (one
chunk per ~3.3 ms, the 300/s send limit) plus a carrier delay of seconds, so one
600-receipt answer holds a few receipts of each of many chunks. Each answer is
parsed by the real client's :func:`~dispatcher.providers.opass.parse_receipts_answer`
(what ``pull_receipts`` returns to ``poll_receipts``) and only
:func:`dispatcher.receipts.apply_receipts` over all answers is timed.

Raises ``RuntimeError`` when the job's counters do not show every recipient
delivered or failed afterwards, or when replaying answers changes anything.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from typing import Any

import redis

from bench.common import evalsha_us, main_of
from dispatcher.demo import phones
from dispatcher.keys import client_id
from dispatcher.ledger import ChunkData, Ledger
from dispatcher.providers.opass import parse_receipts_answer
from dispatcher.providers.results import Receipt
from dispatcher.receipts import apply_receipts
from dispatcher.sandbox.defaults import DEFAULTS
from dispatcher.sandbox.receipts import OutcomeMix
from dispatcher.sandbox.timefmt import arrive_time
from dispatcher.stack import Stack

JOB_ID = "benchrcpt"
CHUNK_SIZE = 1000
PULL_MAX = 600  # opass answers at most 600 receipts per pull call
SEND_INTERVAL_S = 1 / 300  # opass ~300 sends/s: one chunk accepted every 3.3 ms
REPLAYED_ANSWERS = 5


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


def run(stack: Stack, *, quick: bool) -> dict[str, Any]:
    """Measure receipts applied per second; raise ``RuntimeError`` if the counts do not add up."""
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
        cpu_s = time.process_time()
        started = time.perf_counter()
        for answer in answers:
            t0 = time.perf_counter()
            done = apply_receipts(ledger, answer, provider="opass", account="demo", now_ms=now_ms)
            batch_ms.append((time.perf_counter() - t0) * 1000)
            applied, ignored = applied + done.applied, ignored + done.ignored
        elapsed_s = time.perf_counter() - started
        cpu_s = time.process_time() - cpu_s
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
        "receipts_applied_per_s": round(recipients / elapsed_s, 1),
        "receipts_applied": applied,
        "receipts_recipients": recipients,
        "receipts_batches": len(answers),
        "receipts_batch_size": PULL_MAX,
        "receipts_chunks_per_batch": round(chunks_per_answer, 1),
        "receipts_batch_p50_ms": round(statistics.median(batch_ms), 2),
        "receipts_batch_max_ms": round(batch_ms[-1], 2),
        "receipts_elapsed_s": round(elapsed_s, 3),
        # Where the time went: this process's CPU, and Redis's time inside the scripts.
        "receipts_client_cpu_us_per_receipt": round(cpu_s * 1e6 / recipients, 2),
        "receipts_redis_us_per_receipt": round(script_us / recipients, 2),
    }


if __name__ == "__main__":
    main_of(run, __doc__)
