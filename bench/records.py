"""``python -m bench.records [--quick]``: every recipient's record with 1M stored: Redis bytes, lookup latency.

One 1,000,000-recipient opass job (200,000 with ``quick``) is stored through
``Dispatcher.send_template`` (validation and storing, phone index included:
``records_store_s``), every chunk is claimed and accepted with a vendor
message id as a worker records it, then every recipient gets its receipt:

* receipts as opass pushes them: pushes of 100 (``arriveResult`` ~95 % ``DELIVRD``,
  the rest a mix of the manual's failure states and carrier codes, ``arriveTime``
  the carrier delay after the chunk's send), in arrival order, so one push names
  ~100 chunks; each push body is read by the webhook's parser (``parse_push``),
  recorded on the receipt stream (``record``, what the webhook does) and applied
  by a :class:`~dispatcher.receipt_stream.StreamApplier` (what every worker's
  applier thread runs). That path, not ``apply_receipts``, because it is the
  one production takes and how it batches decides the records' shape: the
  applier merges entries into calls of ~1,000 receipts, and each call appends
  one outcome-feed entry per chunk it touches. The applier runs here, in this
  process, after every 100 pushes (a worker's step reads 100 entries), so the
  stream never holds a backlog the final figure would have to subtract.
* ``redis_bytes_per_recipient_final``: Redis ``used_memory`` growth per recipient
  from before the store to once every receipt is in (chunk hashes with phones and
  code tables, per-phone states and records, message-id keys, the phone index,
  the outcome feed, job events; the receipt-time ``ix`` tables are dropped by then,
  which is checked); ``records_bytes_breakdown`` says where it went, from
  ``MEMORY USAGE`` of samples of each kind of key.
* ``lookup_by_phone_p99_ms`` / ``lookup_by_message_id_p99_ms``: ``Dispatcher.lookup``
  from a separate process (as an app would call it, over loopback), ``LOOKUPS``
  random phones and message ids of the job, alternated; every answer is checked
  (the phone's one final record; the message id's chunk).

``python -m bench.records [--quick]`` runs it on its own stack.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import redis

from bench.common import dispatcher_for, evalsha_us, fresh_redis, main_of, percentile, write_accounts
from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.keys import DAY_MS, PHONE_BUCKETS, client_id
from dispatcher.ledger import Ledger
from dispatcher.local.demo import phones
from dispatcher.local.sandbox import demo as creds
from dispatcher.local.sandbox.timefmt import arrive_time
from dispatcher.local.stack import Stack, wait_for
from dispatcher.producer import Dispatcher
from dispatcher.providers.opass.push import parse_push
from dispatcher.receipt_stream import StreamApplier, record

TEMPLATE = "1000000000000000002"
#: Chunks accepted per second while the job goes out (the pipeline's ~460k recipients/s).
CHUNKS_PER_S = 460
#: An opass push carries up to 100 receipts (the sandbox's ``opass_push_batch``).
PUSH_RECEIPTS = 100
#: Pushes recorded before the applier drains them (one applier step reads 100 entries).
PUSHES_PER_DRAIN = 100
DELIVERED_SHARE = 0.95
#: What the 5 % that fail say: the manual's states (UNDELIV, EXPIRED, REJECTD, UNKNOWN, DELETED)
#: and carrier codes the gateways pass through (MK:/MI:/DB:/ID:), weighted roughly as seen in the field.
FAILURES = (("UNDELIV", 40), ("EXPIRED", 15), ("REJECTD", 10), ("UNKNOWN", 10), ("DELETED", 2), ("MK:0001", 8),
            ("MK:0005", 5), ("MI:0013", 4), ("DB:0141", 4), ("ID:0076", 2))
#: Lookups of each kind timed (after ``WARMUP`` untimed ones of each).
LOOKUPS = 3000
WARMUP = 100
#: Keys of each kind sampled with MEMORY USAGE for the breakdown.
SAMPLES = 200


def _failure_picker(rng: random.Random) -> Iterator[str]:
    codes = [c for c, _ in FAILURES]
    weights = [w for _, w in FAILURES]
    while True:
        yield from rng.choices(codes, weights, k=1000)


def accept_all(ledger: Ledger, job_id: str, chunks: int, *, now_ms: int,
               first_mid: int) -> list[tuple[tuple[str, ...], str, str]]:
    """Claim and accept every chunk as a worker records it; return ``(phones, message id, bid)`` per chunk.

    Raises ``RuntimeError`` if a chunk cannot be claimed or accepted.
    """
    out = []
    for n in range(chunks):
        claim = ledger.claim(job_id, n, provider="opass", account="demo", now_ms=now_ms, claimer="bench:1")
        mid = str(first_mid + n)  # opass message ids are 18-digit numbers
        if claim.status != "ok" or ledger.accept(job_id, n, attempt=claim.attempt, message_id=mid, failed_indexes=[],
                                                 now_ms=now_ms, provider="opass") != "ok":
            raise RuntimeError(f"chunk {n} could not be claimed and accepted: {claim}")
        out.append((claim.phones, mid, client_id(job_id, n, claim.attempt)))
    return out


def arrival_order(chunks: int, size: int, sent_s: float, rng: random.Random) -> list[int]:
    """Every ``(chunk, index)`` packed as ``(arrive_ms * chunks + chunk) * size + index``, in arrival order.

    Chunk ``n`` goes out at ``sent_s + n / CHUNKS_PER_S``; each receipt arrives a
    carrier delay later (log-normal: median ~4.5 s, tail ~20 s). Packed in one int
    each so sorting 1M of them stays cheap.
    """
    keys = []
    for n in range(chunks):
        at_s = sent_s + n / CHUNKS_PER_S
        for i in range(size):
            keys.append((int((at_s + rng.lognormvariate(1.5, 0.6)) * 1000) * chunks + n) * size + i)
    keys.sort()
    return keys


def push_bodies(accepted: Sequence[tuple[tuple[str, ...], str, str]], order: Sequence[int],
                rng: random.Random) -> Iterator[tuple[bytes, int]]:
    """opass status pushes of ``PUSH_RECEIPTS`` in arrival order: ``(body, DELIVRD receipts in it)``."""
    chunks, size = len(accepted), len(accepted[0][0])
    failures = _failure_picker(rng)
    for start in range(0, len(order), PUSH_RECEIPTS):
        data, delivered = [], 0
        for key in order[start : start + PUSH_RECEIPTS]:
            rest, i = divmod(key, size)
            at_ms, n = divmod(rest, chunks)
            chunk_phones, mid, bid = accepted[n]
            if i >= len(chunk_phones):
                continue  # the last chunk may be short
            ok = rng.random() < DELIVERED_SHARE
            delivered += ok
            data.append({"msgId": mid, "tel": chunk_phones[i], "arriveResult": "DELIVRD" if ok else next(failures),
                         "arriveTime": arrive_time(at_ms / 1000), "bid": bid})
        body = json.dumps({"apiKey": creds.OPASS_API_KEY, "data": data}, separators=(",", ":")).encode()
        yield body, delivered


def apply_receipts_as_pushed(d: Dispatcher, accepted: Sequence[tuple[tuple[str, ...], str, str]],
                             *, sent_s: float) -> tuple[int, int, float]:
    """Push every recipient's receipt through parse → stream → applier; return (receipts, delivered, seconds)."""
    client, stream = d.redis, d.keys.receipt_stream()
    applier = StreamApplier(d.ledger, "bench-records")
    applier.ensure_group()
    rng = random.Random(9)
    order = arrival_order(len(accepted), max(len(c[0]) for c in accepted), sent_s, rng)
    receipts = delivered = pending = 0
    started = time.perf_counter()
    for body, ok in push_bodies(accepted, order, rng):
        batch = parse_push(body, expected_api_key=creds.OPASS_API_KEY)
        receipts += record(client, stream, "opass", "demo", batch, source="push",  # type: ignore[arg-type]
                           now_ms=int(time.time() * 1000))
        delivered += ok
        pending += 1
        if pending == PUSHES_PER_DRAIN:
            applier.drain()
            pending = 0
    applier.drain()
    return receipts, delivered, time.perf_counter() - started


def _lookups(env: dict[str, str], doc: dict[str, Any], phone_sample: list[str],
             mid_sample: list[tuple[str, str]]) -> dict[str, Any]:
    """In its own process: time ``Dispatcher.lookup`` by phone and by message id, alternated; check each answer."""
    d = Dispatcher(Settings.from_env(env), accounts=parse_accounts(doc))
    by_phone: list[float] = []
    by_mid: list[float] = []
    wrong: list[str] = []
    for k, (phone, (mid, size)) in enumerate(zip(phone_sample, mid_sample, strict=True)):
        t0 = time.perf_counter()
        found = d.lookup(phone=phone)
        t1 = time.perf_counter()
        records = d.lookup(message_id=mid)
        t2 = time.perf_counter()
        if len(found) != 1 or found[0].phone != phone or found[0].state not in ("delivered", "failed"):
            wrong.append(f"phone lookup {k}: {len(found)} records")
        if len(records) != min(100, int(size)) or any(r.message_id != mid for r in records):
            wrong.append(f"message id lookup {k}: {len(records)} records")
        if k >= WARMUP:
            by_phone.append((t1 - t0) * 1000)
            by_mid.append((t2 - t1) * 1000)
    d.redis.close()
    return {"by_phone": by_phone, "by_mid": by_mid, "wrong": wrong[:5], "wrong_count": len(wrong)}


def settled_used_memory(client: redis.Redis, *, timeout_s: float = 120.0) -> int:
    """``used_memory`` once no AOF rewrite is under way: a rewrite's buffer (``mem_aof_buffer``) holds a copy
    of every write made meanwhile and would be counted as the records' bytes. Raises ``TimeoutError``."""
    wait_for(lambda: not int(client.info("persistence")["aof_rewrite_in_progress"]), timeout_s=timeout_s,
             what="the AOF rewrite", interval_s=0.1)
    return int(client.info("memory")["used_memory"])


def _usage(client: redis.Redis, keys: Sequence[str]) -> list[int]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key, samples=0)
    return [int(v or 0) for v in pipe.execute()]


def breakdown(d: Dispatcher, job_id: str, accepted: Sequence[tuple[tuple[str, ...], str, str]], *,
              day: int, recipients: int, rng: random.Random) -> dict[str, float]:
    """Bytes per recipient by kind of key: ``MEMORY USAGE`` of samples, scaled to every key of the kind."""
    client, keys = d.redis, d.keys
    ns = rng.sample(range(len(accepted)), min(SAMPLES, len(accepted)))
    buckets = rng.sample(range(PHONE_BUCKETS), min(SAMPLES, PHONE_BUCKETS))
    kinds = {
        "chunk_hash": ([keys.chunk(job_id, n) for n in ns], len(accepted)),
        "st": ([keys.chunk_states(job_id, n) for n in ns], len(accepted)),
        "rec": ([keys.chunk_record(job_id, n) for n in ns], len(accepted)),
        "mid": ([keys.message("opass", accepted[n][1]) for n in ns], len(accepted)),
        "phone_index": ([keys.phone_bucket(day, b) for b in buckets], int(sum(
            1 for _ in client.scan_iter(match=f"{keys.prefix}:ph:{day}:*", count=5000)))),
    }
    out: dict[str, float] = {}
    for name, (sample, count) in kinds.items():
        sizes = _usage(client, sample)
        out[name] = round(statistics.mean(sizes) * count / recipients, 2)
    for name, key in (("outcome_feed", keys.outcome_feed()), ("job_events", keys.job_events()),
                      ("job_hash", keys.job(job_id)), ("receipt_stream", keys.receipt_stream())):
        out[name] = round(_usage(client, [key])[0] / recipients, 3)
    out["outcome_feed_entries"] = int(client.xlen(keys.outcome_feed()))
    return out


def _check_final(d: Dispatcher, job_id: str, chunks: int, total: int, delivered: int) -> None:
    """Raise ``RuntimeError`` unless every recipient is final as pushed, no ``ix`` is left and the job finished."""
    counts = d.ledger.counts(job_id)
    want = {"delivered": delivered, "failed": total - delivered, "accepted": 0}
    if any(counts[k] != v for k, v in want.items()):
        raise RuntimeError(f"receipts did not add up: counts={counts} want={want}")
    pipe = d.redis.pipeline(transaction=False)
    for n in range(chunks):
        pipe.hexists(d.keys.chunk(job_id, n), "ix")
    if any(pipe.execute()) or d.redis.zcard(d.keys.awaiting()):
        raise RuntimeError("chunks with every receipt in still hold their ix table or await receipts")
    if d.redis.zscore(d.keys.job_events(), f"{job_id}|finished") is None:
        raise RuntimeError("the job's finished event was not queued")


def run(stack: Stack, *, quick: bool, recipients: int | None = None, lookups: int = LOOKUPS,
        **_: Any) -> dict[str, Any]:
    """Store, accept, receipt and look up one big job; return the figures.

    Raises ``RuntimeError`` when the ledger's counts, the finished event, the
    dropped ``ix`` tables or a lookup's answer are not what the receipts made them.
    """
    count = recipients or (200_000 if quick else 1_000_000)
    client = fresh_redis(stack)
    doc = write_accounts(stack)
    d = dispatcher_for(stack, doc, client)
    numbers = phones(count, seed=7)
    gc.collect()
    used_before = settled_used_memory(client)
    script_us, cpu = evalsha_us(client), time.process_time()
    t0 = time.perf_counter()
    job = d.send_template("demo", template_code=TEMPLATE, phones=numbers, params=["654321"])
    store_s = time.perf_counter() - t0
    # Where the store's time went: this process (validation, packing) and Redis inside the index script.
    cpu, script_us = time.process_time() - cpu, evalsha_us(client) - script_us
    stored = settled_used_memory(client) - used_before
    now_ms = int(time.time() * 1000)
    accepted = accept_all(d.ledger, job.job_id, job.chunks, now_ms=now_ms, first_mid=577951956854276096)
    after_accept = settled_used_memory(client) - used_before
    receipts, delivered, apply_s = apply_receipts_as_pushed(d, accepted, sent_s=now_ms / 1000)
    _check_final(d, job.job_id, job.chunks, count, delivered)
    final = settled_used_memory(client) - used_before
    memory = client.info("memory")
    rng = random.Random(13)
    day = (now_ms + (d.ledger.job_ttl_s + d.ledger.job_hash_grace_s) * 1000) // DAY_MS
    parts = breakdown(d, job.job_id, accepted, day=day, recipients=count, rng=rng)
    codes = Counter(r.code for r in d.lookup(message_id=accepted[0][1], limit=1000))
    phone_sample = [numbers[rng.randrange(count)] for _ in range(WARMUP + lookups)]
    mid_sample = [(accepted[n][1], str(len(accepted[n][0]))) for n in
                  (rng.randrange(len(accepted)) for _ in range(WARMUP + lookups))]
    del numbers
    # A separate process, as an app calls it: this one holds 1M phones and its own garbage.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        timed = pool.apply(_lookups, (dict(stack.env), doc, phone_sample, mid_sample))
    if timed["wrong_count"]:
        raise RuntimeError(f"{timed['wrong_count']} lookups answered wrongly, e.g. {timed['wrong']}")
    by_phone, by_mid = timed["by_phone"], timed["by_mid"]
    return {
        "records_recipients": count,
        "records_chunks": job.chunks,
        "records_store_s": round(store_s, 3),
        "records_store_recipients_per_s": round(count / store_s, 1),
        "records_store_client_cpu_s": round(cpu, 3),
        "records_store_redis_script_s": round(script_us / 1e6, 3),
        "records_redis_bytes_per_recipient_stored": round(stored / count, 1),
        "records_redis_bytes_per_recipient_accepted": round(after_accept / count, 1),
        "redis_bytes_per_recipient_final": round(final / count, 1),
        "records_bytes_breakdown": parts,
        # Redis's own split of used_memory at the end (dataset vs per-key and server overhead).
        "records_redis_memory": {k: memory.get(k) for k in (
            "used_memory", "used_memory_dataset", "used_memory_overhead", "mem_aof_buffer", "mem_clients_normal",
            "used_memory_scripts")},
        "records_redis_keys": int(client.dbsize()),
        "records_receipts": receipts,
        "records_receipts_delivered": delivered,
        "records_receipts_applied_per_s": round(receipts / apply_s, 1),
        "records_codes_in_a_chunk": dict(codes.most_common()),
        "lookup_by_phone_p50_ms": round(statistics.median(by_phone), 3),
        "lookup_by_phone_p99_ms": round(percentile(by_phone, 0.99) or 0.0, 3),
        "lookup_by_phone_max_ms": round(max(by_phone), 3),
        "lookup_by_message_id_p50_ms": round(statistics.median(by_mid), 3),
        "lookup_by_message_id_p99_ms": round(percentile(by_mid, 0.99) or 0.0, 3),
        "lookup_by_message_id_max_ms": round(max(by_mid), 3),
        "lookup_count": len(by_phone),
        # This host is shared: the load average when the lookups ended says how noisy their tail was.
        "records_load_average_1m": round(os.getloadavg()[0], 2),
        "lookup_p99_ms": round(max(percentile(by_phone, 0.99) or 0.0, percentile(by_mid, 0.99) or 0.0), 3),
    }


if __name__ == "__main__":
    main_of(run, __doc__)
