"""``python -m bench.webhook [--quick]``: push latency of the webhook under gunicorn at a fixed rate.

Starts the webhook (``stack.start_webhook``: gunicorn as configured in
:func:`dispatcher.stack.webhook_argv`) with the demo accounts, stores accepted
chunks for every receipt it will push, then sends pushes open-loop at
``RATE_PER_S`` for 20 s (8 s with ``quick``): push ``i`` is due at
``start + i / RATE_PER_S`` whatever the answers, and its latency runs from that
due time to the last byte of the answer, so time spent waiting for a free
connection counts. ``CONNECTIONS`` keep-alive connections, one per thread.

What is pushed, built by the sandbox's vendor-side encoders
(:mod:`dispatcher.sandbox.push_payloads`):

* 4 in 5 pushes: an opass status push of ``OPASS_RECEIPTS_PER_PUSH`` (100)
  receipts, the batch the sandbox (and so the demo) pushes; the receipts of
  ``INTERLEAVE_CHUNKS`` chunks are shuffled together, so one push names ~90 chunks;
* 1 in 5: an aiofish report, one receipt per request as the vendor sends them,
  in the fully encrypted variant (AES body, SHA256 sign: the costliest to check).

Raises ``RuntimeError`` when the ledger does not show every pushed receipt
applied exactly once afterwards.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import random
import statistics
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis

from bench.common import evalsha_us, main_of, percentile
from dispatcher.demo import AIOFISH_HOOK_TOKEN, OPASS_HOOK_TOKEN, accounts_doc, phones
from dispatcher.keys import client_id
from dispatcher.ledger import ChunkData, Ledger
from dispatcher.sandbox import demo as creds
from dispatcher.sandbox import push_payloads
from dispatcher.sandbox.config import initial_config, parse_config
from dispatcher.sandbox.receipts import Receipt
from dispatcher.stack import Stack

RATE_PER_S = 500.0
CONNECTIONS = 64
OPASS_RECEIPTS_PER_PUSH = 100
AIOFISH_EVERY = 5  # push i is an aiofish report when i % AIOFISH_EVERY == AIOFISH_EVERY - 1
CHUNK_SIZE = 1000
INTERLEAVE_CHUNKS = 200
DELIVERED_SHARE = 0.95
TIMEOUT_S = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class Push:
    """One request to send: its path, body and content type, and the body a success answers."""

    path: str
    body: bytes
    content_type: str
    ok_body: bytes | None  # None: any 2xx


def _accepted_job(ledger: Ledger, job_id: str, count: int, seed: int, now_ms: int) -> list[tuple[list[str], str]]:
    """Store ``count`` recipients as one job with every chunk accepted; ``(phones, bid)`` per chunk."""
    numbers = phones(count, seed=seed)
    chunks = [numbers[i : i + CHUNK_SIZE] for i in range(0, count, CHUNK_SIZE)]
    ledger.create_job(job_id, {"provider": "bench", "account": "demo"}, (ChunkData(c) for c in chunks), now_ms=now_ms)
    out = []
    for n, chunk in enumerate(chunks):
        claim = ledger.claim(job_id, n, provider="bench", account="demo", now_ms=now_ms)
        if claim.status != "ok" or ledger.accept(job_id, n, attempt=claim.attempt, message_id=f"m{n}",
                                                 failed_indexes=[], now_ms=now_ms) != "ok":
            raise RuntimeError(f"chunk {job_id}:{n} could not be accepted")
        out.append((chunk, client_id(job_id, n, claim.attempt)))
    return out


def _interleaved(chunks: list[tuple[list[str], str]], rng: random.Random) -> list[tuple[str, str]]:
    """Every ``(phone, bid)``, shuffled within windows of ``INTERLEAVE_CHUNKS`` chunks (arrival order)."""
    out: list[tuple[str, str]] = []
    for w in range(0, len(chunks), INTERLEAVE_CHUNKS):
        window = [(p, bid) for chunk, bid in chunks[w : w + INTERLEAVE_CHUNKS] for p in chunk]
        rng.shuffle(window)
        out += window
    return out


def _pushes(ledger: Ledger, total: int, now_ms: int, per_push: int, tag: str) -> tuple[list[Push], int, int]:
    """The pushes in send order, the receipts they carry, and how many of those say delivered."""
    aiofish_n = total // AIOFISH_EVERY
    opass_n = total - aiofish_n
    rng = random.Random(9)
    opass = _interleaved(_accepted_job(ledger, f"{tag}ko", opass_n * per_push, 21, now_ms), rng)
    fish = _interleaved(_accepted_job(ledger, f"{tag}ka", aiofish_n, 22, now_ms), rng)
    opass_path = f"/hooks/opass/demo/{OPASS_HOOK_TOKEN}"
    fish_path = f"/hooks/aiofish/demo/{AIOFISH_HOOK_TOKEN}"
    fish_account = dataclasses.replace(parse_config(initial_config()).aiofish_accounts[creds.AIOFISH_ACCOUNT],
                                       push_mode="full")
    now_s = now_ms / 1000
    pushes: list[Push] = []
    delivered = 0
    o = f = 0
    for i in range(total):
        if i % AIOFISH_EVERY == AIOFISH_EVERY - 1:
            phone, bid = fish[f]
            f += 1
            state = "DELIVRD" if rng.random() < DELIVERED_SHARE else "UNDELIV"
            delivered += state == "DELIVRD"
            report = push_payloads.aiofish_report(Receipt(bid, phone, state, now_s, bid))
            job = push_payloads.aiofish_push(fish_account, "report", report, fish_path, now_ms)
            pushes.append(Push(fish_path, job.body, job.content_type, b"0"))
            continue
        receipts = []
        for phone, bid in opass[o : o + per_push]:
            state = "DELIVRD" if rng.random() < DELIVERED_SHARE else "UNDELIV"
            delivered += state == "DELIVRD"
            receipts.append(Receipt(f"m{bid}", phone, state, now_s, bid))
        o += per_push
        job = push_payloads.opass_status(creds.OPASS_API_KEY, receipts, opass_path)
        pushes.append(Push(opass_path, job.body, job.content_type, None))
    return pushes, o + f, delivered


class _Sender:
    """Sends pushes at their due times over ``CONNECTIONS`` keep-alive connections; records latencies."""

    def __init__(self, base_url: str, pushes: list[Push], rate_per_s: float) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.pushes = pushes
        self.rate_per_s = rate_per_s
        self.latency_ms: list[float] = [0.0] * len(pushes)
        self.errors = 0
        self._next = 0
        self._lock = threading.Lock()
        self.start = 0.0

    def run(self) -> float:
        """Send every push; return the seconds from the first due time to the last answer."""
        self.start = time.perf_counter() + 0.2
        threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(CONNECTIONS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - self.start

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= len(self.pushes):
                return None
            self._next += 1
            return self._next - 1

    def _loop(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while (i := self._take()) is not None:
            due = self.start + i / self.rate_per_s
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            push = self.pushes[i]
            ok = False
            for _ in range(2):  # one reconnect: the server may have closed an idle keep-alive connection
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_S)
                    conn.request("POST", push.path, body=push.body, headers={"Content-Type": push.content_type})
                    answer = conn.getresponse()
                    body = answer.read()
                    ok = 200 <= answer.status < 300 and (push.ok_body is None or body.strip() == push.ok_body)
                    if answer.will_close:
                        conn.close()
                        conn = None
                    break
                except (OSError, http.client.HTTPException):
                    if conn is not None:
                        conn.close()
                    conn = None
            self.latency_ms[i] = (time.perf_counter() - due) * 1000
            if not ok:
                with self._lock:
                    self.errors += 1
        if conn is not None:
            conn.close()


def _cpu_s(root_pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its children (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(stat[11]) + int(stat[12])) / ticks
            todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
    return total


def measure(stack: Stack, *, rate_per_s: float, per_push: int, duration_s: float, tag: str) -> dict[str, Any]:
    """Push at ``rate_per_s`` for ``duration_s``, ``per_push`` receipts per opass push; return the figures.

    Raises ``RuntimeError`` if the receipts do not add up or a webhook already runs.
    """
    total = int(rate_per_s * duration_s)
    if "webhook" in stack.procs:
        raise RuntimeError("a webhook is already running on this stack")
    client = redis.Redis.from_url(stack.env["SMSD_REDIS_URL"])
    accounts = stack.base_dir / "bench-webhook-accounts.json"
    accounts.write_text(json.dumps(accounts_doc(stack.sandbox_url or "http://127.0.0.1:9")))
    saved = stack.env.get("SMSD_ACCOUNTS_FILE")
    try:
        client.flushdb()
        ledger = Ledger(client)
        pushes, receipts, delivered = _pushes(ledger, total, int(time.time() * 1000), per_push, tag)
        stack.env["SMSD_ACCOUNTS_FILE"] = str(accounts)
        try:
            url = stack.start_webhook()
        finally:
            if saved is None:
                stack.env.pop("SMSD_ACCOUNTS_FILE", None)
            else:
                stack.env["SMSD_ACCOUNTS_FILE"] = saved
        sender = _Sender(url, pushes, rate_per_s)
        pid = stack.procs["webhook"].pid
        cpu_s, script_us, own_cpu_s = _cpu_s(pid), evalsha_us(client), time.process_time()
        elapsed_s = sender.run()
        cpu_s, script_us = _cpu_s(pid) - cpu_s, evalsha_us(client) - script_us
        own_cpu_s = time.process_time() - own_cpu_s
        counts = {**ledger.counts(f"{tag}ko")}
        fish = ledger.counts(f"{tag}ka")
        got_delivered = counts["delivered"] + fish["delivered"]
        got_failed = counts["failed"] + fish["failed"]
        if not sender.errors and (got_delivered, got_failed) != (delivered, receipts - delivered):
            raise RuntimeError(f"pushed {receipts} receipts ({delivered} delivered) but the ledger shows "
                               f"{got_delivered} delivered, {got_failed} failed")
    finally:
        stack.stop("webhook")
        client.close()
    latency = sorted(sender.latency_ms)
    return {
        "p50_ms": round(statistics.median(latency), 2),
        "p99_ms": round(percentile(latency, 0.99) or 0.0, 2),
        "max_ms": round(latency[-1], 2),
        "push_rate": round(total / elapsed_s, 1),
        "pushes": total,
        "errors": sender.errors,
        "target_rate": rate_per_s,
        "receipts": receipts,
        "receipts_per_opass_push": per_push,
        "aiofish_share": round(1 / AIOFISH_EVERY, 2),
        "connections": CONNECTIONS,
        # Where the time went, per push: gunicorn's CPU, Redis inside the scripts, this load generator's CPU.
        "cpu_ms_per_push": round(cpu_s * 1000 / total, 3),
        "redis_ms_per_push": round(script_us / 1000 / total, 3),
        "sender_cpu_ms_per_push": round(own_cpu_s * 1000 / total, 3),
    }


#: Lighter and slower points measured after the headline one, to show where the knee is.
CURVE: tuple[tuple[float, int], ...] = ((500.0, 20), (250.0, 100))


def run(stack: Stack, *, quick: bool) -> dict[str, Any]:
    """The headline figures (``webhook_*``: ``RATE_PER_S`` pushes/s, ``OPASS_RECEIPTS_PER_PUSH`` receipts
    per opass push) and ``webhook_curve``: the same at the ``CURVE`` points (8 s each).

    Raises ``RuntimeError`` if the receipts do not add up.
    """
    head = measure(stack, rate_per_s=RATE_PER_S, per_push=OPASS_RECEIPTS_PER_PUSH,
                   duration_s=8.0 if quick else 20.0, tag="benchh")
    curve = [{k: head[k] for k in ("push_rate", "receipts_per_opass_push", "p50_ms", "p99_ms", "max_ms")}]
    for i, (rate, per_push) in enumerate(CURVE):
        point = measure(stack, rate_per_s=rate, per_push=per_push, duration_s=8.0, tag=f"benchc{i}")
        curve.append({k: point[k] for k in ("push_rate", "receipts_per_opass_push", "p50_ms", "p99_ms", "max_ms")})
    return {**{f"webhook_{k}": v for k, v in head.items()}, "webhook_curve": curve}


if __name__ == "__main__":
    main_of(run, __doc__)
