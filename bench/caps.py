"""``python -m bench.caps [--quick]``: what per-phone frequency caps cost a 1M job: claim time, Redis bytes.

The caps are the issue's example for bulk, ``[[1, 60], [3, 3600], [5, 86400]]`` (so each phone
keeps up to five send times, in day slices). Two parts:

* **The claims** (``caps_claim_*``), in this process as a worker calls the ledger: a
  1,000,000-recipient opass job (200,000 with ``quick``) stored, every chunk claimed and
  accepted, caps off; then, on a flushed Redis, the same phones under caps three times over:
  ``first`` (no phone has a count yet), ``repeat`` (a second job 61 s later: every phone has
  one, is under every cap, and gets a second time) and ``capped`` (a third job a second after
  that: every phone over ``1 per 60 s``, so every chunk is rejected whole, no rate slot taken).
  Per phase: Redis time inside the claim script per chunk (``INFO commandstats`` over the
  claim loop, the whole-chunk rejection of a capped chunk included; a mean, so a host busy
  with other work inflates it), the median claim round trip from this process (robust to such
  bursts), claims/s (one round trip each, in a loop), the accepts' Redis time per chunk, and
  Redis bytes per recipient the claims and accepts added (``used_memory`` over the phase;
  caps on minus off is what the counts take).
* **The pipeline** (``caps_pipeline_*``): the job through ``Dispatcher`` and the Celery
  workers (1x3, the opass section's set) against the sandbox, caps off and on alternated,
  each run on a flushed Redis and a reset sandbox with fresh workers (they read the accounts
  file when they start): recipients/s from the call (validation and storing, phone index
  included) to the last chunk accepted, and Redis bytes per recipient once accepted. Every run
  checks the sandbox took each phone exactly once.

``python -m bench.caps [--quick]`` runs it on its own stack.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import redis

from bench.common import (
    CONCURRENCY,
    QUIET_RECEIPTS,
    UNLIMITED_SANDBOX,
    UNLIMITED_SEND,
    WORKERS,
    dispatcher_for,
    evalsha_us,
    fresh_redis,
    main_of,
    reset_sandbox,
    workers,
    write_accounts,
)
from bench.records import settled_used_memory
from dispatcher.caps import CAPPED
from dispatcher.ledger import Ledger
from dispatcher.local.demo import phones
from dispatcher.local.stack import Stack, wait_for
from dispatcher.producer import Dispatcher

TEMPLATE = "1000000000000000002"
#: The issue's example caps for bulk jobs.
ISSUE_CAPS = {"bulk": [[1, 60], [3, 3600], [5, 86400]]}
#: Pipeline runs of each kind (alternated: off, on, off, on …); medians reported.
PIPELINE_ROUNDS = 2


def claim_phase(d: Dispatcher, job_id: str, chunks: int, *, now_ms: int, capped: bool) -> dict[str, float]:
    """Claim every chunk of a job (caps as the accounts say), then accept those sent: the claims'
    Redis time per chunk (mean), the median claim round trip, claims/s, the accepts' Redis time
    per chunk, and how many recipients were capped.

    Raises ``RuntimeError`` if a chunk is not claimed as the phase expects.
    """
    ledger: Ledger = d.ledger
    rule = d.accounts.cap_rule("opass", "demo", "bulk")
    claims, trips = [], []
    us, t0 = evalsha_us(ledger.r), time.perf_counter()
    for n in range(chunks):
        t = time.perf_counter()
        claims.append(ledger.claim(job_id, n, provider="opass", account="demo", now_ms=now_ms, caps=rule,
                                   claimer="bench:1"))
        trips.append(time.perf_counter() - t)
    wall_s, us = time.perf_counter() - t0, evalsha_us(ledger.r) - us
    expected = CAPPED if capped else "ok"
    if any(c.status != expected for c in claims):
        raise RuntimeError(f"a claim answered {next(c for c in claims if c.status != expected)}, not {expected}")
    accept_us = evalsha_us(ledger.r)
    for n, claim in enumerate(claims):
        if claim.status == "ok":
            ledger.accept(job_id, n, attempt=claim.attempt, message_id=str(10**17 + n), failed_indexes=[],
                          now_ms=now_ms + 500, provider="opass")
    return {"claim_us_per_chunk": us / chunks, "claim_p50_us": statistics.median(trips) * 1e6,
            "claims_per_s": chunks / wall_s, "accept_us_per_chunk": (evalsha_us(ledger.r) - accept_us) / chunks,
            "capped": float(ledger.counts(job_id)["rejected"])}


def claims(stack: Stack, count: int) -> dict[str, Any]:
    """The claim figures of the module doc: caps off, then first / repeat / capped with caps on."""
    out: dict[str, Any] = {}
    numbers = phones(count, seed=7)
    for caps_on in (False, True):
        client = fresh_redis(stack)
        doc = write_accounts(stack, opass={"caps": ISSUE_CAPS} if caps_on else {})
        d = dispatcher_for(stack, doc, client)
        now_ms = int(time.time() * 1000)
        phases = [("first", 0, False), ("repeat", 61_000, False), ("capped", 62_000, True)] if caps_on \
            else [("off", 0, False)]
        for name, later_ms, capped in phases:
            job = d.send_template("demo", template_code=TEMPLATE, phones=numbers, params=["654321"])
            before = settled_used_memory(client)
            figures = claim_phase(d, job.job_id, job.chunks, now_ms=now_ms + later_ms, capped=capped)
            grown = settled_used_memory(client) - before
            if figures["capped"] != (count if capped else 0):
                raise RuntimeError(f"{name}: {figures['capped']:.0f} of {count} capped")
            out[f"caps_claim_us_per_chunk_{name}"] = round(figures["claim_us_per_chunk"], 1)
            out[f"caps_claim_p50_us_{name}"] = round(figures["claim_p50_us"], 1)
            out[f"caps_claims_per_s_{name}"] = round(figures["claims_per_s"], 1)
            out[f"caps_accept_us_per_chunk_{name}"] = round(figures["accept_us_per_chunk"], 1)
            out[f"caps_claim_redis_bytes_per_recipient_{name}"] = round(grown / count, 1)
        if caps_on:
            out["caps_count_keys"] = len(list(client.scan_iter(match=f"{d.ledger.keys.prefix}:cap:*", count=1000)))
    for name in ("first", "repeat"):
        out[f"caps_bytes_per_recipient_{name}"] = round(
            out[f"caps_claim_redis_bytes_per_recipient_{name}"] - out["caps_claim_redis_bytes_per_recipient_off"], 1)
    return out


def pipeline_run(stack: Stack, *, caps_on: bool, count: int, workers_n: int, concurrency: int) -> tuple[float, float]:
    """One job through the workers: ``(recipients/s, Redis bytes per recipient once accepted)``.

    Raises ``RuntimeError`` unless the sandbox took every phone exactly once.
    """
    client: redis.Redis = fresh_redis(stack)
    control = reset_sandbox(stack, limits={"opass_send": UNLIMITED_SANDBOX}, **QUIET_RECEIPTS)
    extra: dict[str, Any] = {"limits": {"send": UNLIMITED_SEND}}
    if caps_on:
        extra["caps"] = ISSUE_CAPS
    d = dispatcher_for(stack, write_accounts(stack, opass=extra), client)
    numbers = phones(count, seed=9)
    with workers(stack, "caps", workers_n, concurrency):
        before = settled_used_memory(client)
        t0 = time.perf_counter()
        job = d.send_template("demo", template_code=TEMPLATE, phones=numbers, params=["654321"])
        wait_for(lambda: d.status(job.job_id).submitted, timeout_s=1800, what="caps job", interval_s=0.01)
        elapsed = time.perf_counter() - t0
        grown = settled_used_memory(client) - before
    seen = control.ledger()["accepted"]["opass"]
    once = sum(1 for n in seen.values() if n == 1)
    if d.status(job.job_id).counts["accepted"] != count or once != count or len(seen) != count:
        raise RuntimeError(f"caps {'on' if caps_on else 'off'}: {once} phones taken once by the sandbox, of {count}")
    return count / elapsed, grown / count


def run(stack: Stack, *, quick: bool, workers_n: int = WORKERS, concurrency: int = CONCURRENCY,
        recipients: int | None = None, **_: Any) -> dict[str, Any]:
    """The claim figures, then the pipeline's with caps off and on; return them all."""
    count = recipients or (200_000 if quick else 1_000_000)
    out: dict[str, Any] = {"caps": ISSUE_CAPS["bulk"], "caps_recipients": count}
    out.update(claims(stack, count))
    runs: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    for _ in range(1 if quick else PIPELINE_ROUNDS):
        for name in ("off", "on"):
            runs[name].append(pipeline_run(stack, caps_on=name == "on", count=count, workers_n=workers_n,
                                           concurrency=concurrency))
    for name, values in runs.items():
        out[f"caps_pipeline_recipients_per_s_{name}"] = round(statistics.median(v[0] for v in values), 1)
        out[f"caps_pipeline_redis_bytes_per_recipient_{name}"] = round(statistics.median(v[1] for v in values), 1)
        out[f"caps_pipeline_runs_{name}"] = [round(v[0], 1) for v in values]
    out["caps_pipeline_on_vs_off"] = round(out["caps_pipeline_recipients_per_s_on"]
                                           / out["caps_pipeline_recipients_per_s_off"], 3)
    out["caps_pipeline_workers"] = f"{workers_n}x{concurrency}"
    return out


if __name__ == "__main__":
    main_of(run, __doc__)
