"""``python -m bench.webhook [--quick]``: the webhook's answer times and how soon its
receipts are applied.

Starts the webhook under gunicorn (``stack.start_webhook``, as configured in
:func:`dispatcher.webhook_server.webhook_argv`) and ``appliers`` real Celery workers
whose applier threads apply the receipt stream, stores accepted chunks for
every receipt it will push, then pushes open-loop at ``RATE_PER_S`` for 20 s
(8 s with ``quick``): push ``i`` is due at ``start + i / RATE_PER_S`` whatever
the answers, and its latency runs from that due time to the last byte of the
answer, so waiting for a free connection counts.

The load comes from ``SENDERS`` forked processes, each an asyncio loop with a
minimal HTTP/1.1 client (``CONNECTIONS`` keep-alive connections in all) sending
every ``SENDERS``-th push; each reports how late it issued its pushes
(``webhook_sender_late_p99_ms``) and its CPU, so a generator that falls behind
shows in the figures instead of passing for a slow webhook.

What is pushed, built by the sandbox's vendor-side encoders
(:mod:`dispatcher.local.sandbox.push_payloads`):

* 4 in 5 pushes: an opass status push of ``OPASS_RECEIPTS_PER_PUSH`` (100)
  receipts, the sandbox's batch; receipts of 200 chunks shuffled together, so
  one push names ~90 chunks;
* 1 in 5: an aiofish report, one receipt per request as the vendor sends them,
  in the demo account's ``push_variant`` (fully encrypted: AES body, SHA256 sign).

``receipt_apply_lag_*``: one opass push in ``LAG_SAMPLE_EVERY`` is sampled; after its
200 the sender reads the state byte of one of its receipts every ``LAG_POLL_MS`` until
it is no longer ``A`` (accepted, awaiting a receipt). So it measures answer → applied as
a client reading the ledger sees it, up to ``LAG_POLL_MS`` late (only the ``LAG_WATCH``
oldest samples are read each time: the stream is applied in order, so a newer one may be
seen a poll later). Every entry of one push is applied in one script call, so one
receipt stands for its push.

Raises ``RuntimeError`` when, once the stream is drained, the ledger does not
show every pushed receipt applied exactly once (counters and per-phone states).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import multiprocessing
import statistics
import time
from typing import Any
from urllib.parse import urlsplit

import redis

from bench.common import cpu_s, main_of, percentile, redis_usec
from dispatcher.keys import Keys
from dispatcher.ledger import Ledger
from dispatcher.local.demo import accounts_doc
from dispatcher.local.sandbox.push_load import Push, build_pushes, check_applied
from dispatcher.local.stack import Stack, wait_for

RATE_PER_S = 1000.0
OPASS_RECEIPTS_PER_PUSH = 100
AIOFISH_EVERY = 5  # push i is an aiofish report when i % AIOFISH_EVERY == AIOFISH_EVERY - 1
SENDERS = 2
CONNECTIONS = 128
APPLIERS = 1
#: gunicorn worker processes and threads of each (dispatcher.local.stack defaults: 2 x 16).
HOOK_WORKERS = 2
HOOK_THREADS = 16
TIMEOUT_S = 10.0
LAG_SAMPLE_EVERY = 10
LAG_POLL_MS = 5.0
LAG_WATCH = 64
DRAIN_TIMEOUT_S = 300.0


# -- the load generator (forked processes) --------------------------------------------------


class _Http:
    """A minimal HTTP/1.1 keep-alive client over asyncio streams: the request bytes are built once
    per push, so the generator spends its CPU on sockets, not on an HTTP library (aiohttp cost
    ~1.5 ms of CPU per 13 KB push here, as much as the webhook itself)."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(limit)

    async def post(self, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        """Send one POST; return the status and body. Raises ``OSError``/``asyncio`` errors."""
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        async with self.slots:
            conn = self.idle.pop() if self.idle else await asyncio.open_connection(self.host, self.port)
            reader, writer = conn
            try:
                writer.write(head + body)
                raw = await reader.readuntil(b"\r\n\r\n")
                status = int(raw[9:12])
                lower = raw.lower()
                at = lower.find(b"content-length:")
                length = int(lower[at + 15 : lower.find(b"\r\n", at)]) if at >= 0 else 0
                answer = await reader.readexactly(length)
            except BaseException:
                writer.close()
                raise
            if b"connection: close" in lower:
                writer.close()
            else:
                self.idle.append(conn)
            return status, answer

    def close(self) -> None:
        """Close every idle connection."""
        for _, writer in self.idle:
            writer.close()


async def _send_share(url: str, redis_url: str, pushes: list[Push], mine: range, start: float, rate_per_s: float,
                      connections: int) -> dict[str, Any]:
    import redis.asyncio as aioredis

    parts = urlsplit(url)
    http = _Http(parts.hostname or "127.0.0.1", parts.port or 80, connections)
    latency: list[float] = []
    late: list[float] = []
    lags: list[float] = []
    errors = 0
    waiting: dict[int, tuple[float, str, int]] = {}  # insertion order = answer order
    sending = True
    r = aioredis.Redis.from_url(redis_url)

    async def one(i: int, due: float) -> None:
        nonlocal errors
        push = pushes[i]
        try:
            status, body = await asyncio.wait_for(http.post(push.path, push.body, push.content_type), TIMEOUT_S)
            ok = 200 <= status < 300 and (push.ok_body is None or body.strip() == push.ok_body)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            ok = False
        done = time.monotonic()
        latency.append((done - due) * 1000)
        if not ok:
            errors += 1
        elif push.sample is not None:
            waiting[i] = (done, *push.sample)

    async def watch() -> None:
        # Every LAG_POLL_MS, one pipelined read of the LAG_WATCH oldest sampled receipts still
        # awaited: the stream is applied in order, so the newer ones cannot be done much sooner,
        # and the reads stay cheap however far the appliers fall behind.
        deadline = None
        while sending or waiting:
            if not sending and deadline is None:
                deadline = time.monotonic() + DRAIN_TIMEOUT_S
            if deadline is not None and time.monotonic() > deadline:
                break
            if waiting:
                items = list(itertools.islice(waiting.items(), LAG_WATCH))
                pipe = r.pipeline(transaction=False)
                for _, (_, key, idx) in items:
                    pipe.getrange(key, idx, idx)
                values = await pipe.execute()
                now = time.monotonic()
                for (i, (answered, _, _)), value in zip(items, values, strict=True):
                    if value and value != b"A":
                        lags.append((now - answered) * 1000)
                        del waiting[i]
            await asyncio.sleep(LAG_POLL_MS / 1000)

    watcher = asyncio.create_task(watch())
    tasks = []
    for i in mine:
        due = start + i / rate_per_s
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        late.append((time.monotonic() - due) * 1000)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    sending = False
    last_answer = time.monotonic()
    http.close()
    await watcher
    await r.aclose()
    return {"latency": latency, "late": late, "lags": lags, "lag_missing": len(waiting), "errors": errors,
            "last_answer": last_answer}


def _sender_main(k: int, senders: int, url: str, redis_url: str, pushes: list[Push], start: float,
                 rate_per_s: float, connections: int, out: Any) -> None:
    cpu = time.process_time()
    result = asyncio.run(_send_share(url, redis_url, pushes, range(k, len(pushes), senders), start, rate_per_s,
                                     connections))
    result["cpu_s"] = time.process_time() - cpu
    out.put(result)


def send_all(url: str, redis_url: str, pushes: list[Push], rate_per_s: float, *, senders: int = SENDERS,
             connections: int = CONNECTIONS) -> dict[str, Any]:
    """Send ``pushes`` open-loop from ``senders`` forked processes; merge what they measured.

    Raises ``RuntimeError`` if a sender process fails.
    """
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start = time.monotonic() + 0.5  # CLOCK_MONOTONIC is system-wide: every sender shares this origin
    procs = [ctx.Process(target=_sender_main, args=(k, senders, url, redis_url, pushes, start, rate_per_s,
                                                     max(1, connections // senders), out), daemon=True)
             for k in range(senders)]
    for p in procs:
        p.start()
    results = [out.get(timeout=len(pushes) / rate_per_s + DRAIN_TIMEOUT_S + 60) for _ in procs]
    for p in procs:
        p.join(timeout=10)
        if p.exitcode not in (0, None):
            raise RuntimeError(f"a sender process exited with {p.exitcode}")
    merged: dict[str, Any] = {"latency": [], "late": [], "lags": [], "lag_missing": 0, "errors": 0, "cpu_s": 0.0}
    for res in results:
        for key in ("latency", "late", "lags"):
            merged[key] += res[key]
        for key in ("lag_missing", "errors", "cpu_s"):
            merged[key] += res[key]
    merged["elapsed_s"] = max(r["last_answer"] for r in results) - start
    return merged


# -- one measurement -----------------------------------------------------------------------


def _drained(client: redis.Redis, stream: str) -> bool:
    if client.xlen(stream):
        return False
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return True
    return all(int(g["pending"]) == 0 for g in groups)


def measure(stack: Stack, *, rate_per_s: float, per_push: int, duration_s: float, tag: str,
            appliers: int = APPLIERS, senders: int = SENDERS) -> dict[str, Any]:
    """Push at ``rate_per_s`` for ``duration_s`` with ``appliers`` workers applying; return the figures.

    Raises ``RuntimeError`` if the receipts do not add up or a webhook already runs.
    """
    total = int(rate_per_s * duration_s)
    if "webhook" in stack.procs:
        raise RuntimeError("a webhook is already running on this stack")
    redis_url = stack.env["SMSD_REDIS_URL"]
    client = redis.Redis.from_url(redis_url)
    keys = Keys()
    accounts = stack.base_dir / "bench-webhook-accounts.json"
    accounts.write_text(json.dumps(accounts_doc(stack.sandbox_url or "http://127.0.0.1:9")))
    saved = stack.env.get("SMSD_ACCOUNTS_FILE")
    names = [f"apply{i}" for i in range(appliers)]
    try:
        client.flushdb()
        ledger = Ledger(client)
        built = build_pushes(ledger, total, int(time.time() * 1000), per_push=per_push, tag=tag,
                             aiofish_every=AIOFISH_EVERY, sample_every=LAG_SAMPLE_EVERY)
        stack.env["SMSD_ACCOUNTS_FILE"] = str(accounts)
        try:
            url = stack.start_webhook(workers=HOOK_WORKERS, threads=HOOK_THREADS)
            for name in names:  # no send work: one pool process each; the applier is a thread of the main one
                stack.start_worker(name, concurrency=1)
        finally:
            if saved is None:
                stack.env.pop("SMSD_ACCOUNTS_FILE", None)
            else:
                stack.env["SMSD_ACCOUNTS_FILE"] = saved
        hook_pid = stack.procs["webhook"].pid
        worker_pids = [stack.procs[n].pid for n in names]
        hook_cpu, xadd_us, eval_us = cpu_s(hook_pid), redis_usec(client, "xadd"), redis_usec(client, "evalsha")
        worker_cpu = sum(cpu_s(p) for p in worker_pids)
        sent = send_all(url, redis_url, built.pushes, rate_per_s, senders=senders)
        hook_cpu = cpu_s(hook_pid) - hook_cpu
        wait_for(lambda: _drained(client, keys.receipt_stream()), timeout_s=DRAIN_TIMEOUT_S,
                 what="the receipt stream drained", interval_s=0.05)
        worker_cpu = sum(cpu_s(p) for p in worker_pids) - worker_cpu
        xadd_us, eval_us = redis_usec(client, "xadd") - xadd_us, redis_usec(client, "evalsha") - eval_us
        # With pushes unanswered (timed out) nobody knows which were recorded: no exact count to check.
        checked = not sent["errors"]
        if checked:
            check_applied(ledger, built)
    finally:
        stack.stop("webhook")
        for name in names:
            stack.stop(name)
        client.close()
    latency, lags, late = sent["latency"], sent["lags"], sent["late"]
    return {
        "p50_ms": round(statistics.median(latency), 2),
        "p99_ms": round(percentile(latency, 0.99) or 0.0, 2),
        "max_ms": round(max(latency), 2),
        "push_rate": round(total / sent["elapsed_s"], 1),
        "pushes": total,
        "errors": sent["errors"],
        "ledger_checked": checked,
        "target_rate": rate_per_s,
        "receipts": built.receipts,
        "receipts_per_opass_push": per_push,
        "aiofish_share": round(1 / AIOFISH_EVERY, 2),
        "senders": senders,
        "connections": CONNECTIONS,
        "appliers": appliers,
        "gunicorn": f"{HOOK_WORKERS}x{HOOK_THREADS}",
        # The load generator kept its schedule: how late it issued pushes, and its CPU share of one core.
        "sender_late_p99_ms": round(percentile(late, 0.99) or 0.0, 2),
        "sender_cpu_per_core": round(sent["cpu_s"] / sent["elapsed_s"], 2),
        "apply_lag_p50_ms": round(statistics.median(lags), 1) if lags else None,
        "apply_lag_p99_ms": round(percentile(lags, 0.99) or 0.0, 1) if lags else None,
        "apply_lag_max_ms": round(max(lags), 1) if lags else None,
        "apply_lag_samples": len(lags),
        "apply_lag_unseen": sent["lag_missing"],
        # Where the time went, per push: gunicorn's CPU, Redis in XADD, the appliers (workers' CPU,
        # Redis in the apply script), this load generator's CPU.
        "cpu_ms_per_push": round(hook_cpu * 1000 / total, 3),
        "redis_xadd_ms_per_push": round(xadd_us / 1000 / total, 3),
        "applier_cpu_ms_per_push": round(worker_cpu * 1000 / total, 3),
        "redis_apply_ms_per_push": round(eval_us / 1000 / total, 3),
        "sender_cpu_ms_per_push": round(sent["cpu_s"] * 1000 / total, 3),
    }


#: Lighter points measured after the headline one (8 s each), to show where the knee is.
CURVE: tuple[tuple[float, int], ...] = ((500.0, 100), (1000.0, 20))
_CURVE_KEYS = ("push_rate", "receipts_per_opass_push", "p50_ms", "p99_ms", "max_ms", "apply_lag_p99_ms")


def run(stack: Stack, *, quick: bool, appliers: int = APPLIERS) -> dict[str, Any]:
    """The headline figures (``webhook_*`` and ``receipt_apply_lag_*``: ``RATE_PER_S`` pushes/s,
    ``OPASS_RECEIPTS_PER_PUSH`` receipts per opass push) and, unless ``quick``, ``webhook_curve``.

    Raises ``RuntimeError`` if the receipts do not add up.
    """
    head = measure(stack, rate_per_s=RATE_PER_S, per_push=OPASS_RECEIPTS_PER_PUSH,
                   duration_s=8.0 if quick else 20.0, tag="benchh", appliers=appliers)
    out: dict[str, Any] = {f"webhook_{k}": v for k, v in head.items() if not k.startswith("apply_lag")}
    out.update({f"receipt_{k}": v for k, v in head.items() if k.startswith("apply_lag")})
    if not quick:
        curve = [{k: head[k] for k in _CURVE_KEYS}]
        for i, (rate, per_push) in enumerate(CURVE):
            point = measure(stack, rate_per_s=rate, per_push=per_push, duration_s=8.0, tag=f"benchc{i}",
                            appliers=appliers)
            curve.append({k: point[k] for k in _CURVE_KEYS})
        out["webhook_curve"] = curve
    return out


if __name__ == "__main__":
    main_of(run, __doc__)
