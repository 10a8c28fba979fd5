"""``python -m bench.metrics [--quick] [--jobs N]``: what the Prometheus metrics cost.

* ``per_chunk_us``: the CPU the send path's instrumentation adds to one chunk (one
  gateway call counted: request, recipients, latency; one rate-limit slot observed),
  in this process (``single``: values in memory) and in a child process with
  ``PROMETHEUS_MULTIPROC_DIR`` set (``multiprocess``: values in mmapped files, as a
  worker runs in production). The loop is timed against the same loop without the
  calls. Next to the ~1.6-3.3 ms of worker CPU a chunk costs (BENCHMARKS.md).
* ``per_receipt_call_us`` and ``per_webhook_answer_us``: one apply call's and one
  push answer's counting (once per call, not per receipt).
* ``scrape``: one scrape of the ledger's gauges (:class:`LedgerCollector`) with ``N``
  live single-recipient jobs (20,000; 5,000 with ``--quick``): all unfinished (every
  job's counters read), all finished for the first time (read, then kept), all finished
  again (kept: only the live ids are read); the Redis commands each sent, and the
  memory the collector keeps per finished job.

Prints one JSON object. Starts its own redis-server in a temp dir.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import redis

CALLS = 200_000
JOB = {"provider": "opass", "account": "demo", "kind": "opass.send"}


def _loop_s(n: int, body: Any) -> float:
    started = time.perf_counter()
    for _ in range(n):
        body()
    return time.perf_counter() - started


def per_call_figures(n: int = CALLS) -> dict[str, float]:
    """Microseconds of counting per chunk, per apply call and per webhook answer, in this process's mode."""
    from dispatcher import metrics

    t0 = time.perf_counter()

    def chunk() -> None:
        metrics.gateway_call(JOB, 1000, t0, None, "200")
        metrics.limiter_slot("opass", "demo", "send", 0.002)

    def receipts() -> None:
        metrics.receipts_applied("opass:demo", "push", applied=90, ignored=10, refused=0, unmatched=0)

    def answer() -> None:
        metrics.webhook_answer("hook", "opass", "200 OK", 0.002)

    def nothing() -> None:
        pass

    chunk(), receipts(), answer()  # label children made once, as in a running process
    base = _loop_s(n, nothing)
    return {name: round((_loop_s(n, body) - base) / n * 1e6, 2)
            for name, body in (("per_chunk_us", chunk), ("per_receipt_call_us", receipts),
                               ("per_webhook_answer_us", answer))}


def _in_multiprocess_mode(n: int) -> dict[str, float]:
    """:func:`per_call_figures` in a child process whose metrics go to mmapped files."""
    with tempfile.TemporaryDirectory(prefix="smsd-prom-") as path:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": path}
        done = subprocess.run([sys.executable, "-m", "bench.metrics", "--calls-only", "--calls", str(n)], env=env,
                              capture_output=True, text=True, check=True, timeout=600)
    figures: dict[str, float] = json.loads(done.stdout)
    return figures


def scrape_figures(redis_url: str, jobs: int) -> dict[str, Any]:
    """Cost of one ledger scrape with ``jobs`` live jobs: unfinished, finished (first read), finished (kept)."""
    from dispatcher.config.accounts import parse_accounts
    from dispatcher.config.settings import Settings
    from dispatcher.ledger import ChunkData
    from dispatcher.local.demo import accounts_doc, phones
    from dispatcher.metrics_export import LedgerCollector
    from dispatcher.runtime import Runtime

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    rt = Runtime(Settings(redis_url=redis_url), accounts=parse_accounts(accounts_doc("http://127.0.0.1:9")),
                 client=client)
    now_ms = int(time.time() * 1000)
    ids = [f"b{i}" for i in range(jobs)]
    for job_id, phone in zip(ids, phones(jobs, seed=5), strict=True):
        rt.ledger.create_job(job_id, JOB, [ChunkData([phone])], now_ms=now_ms)
    collector = LedgerCollector(rt)

    def scrape() -> dict[str, float]:
        client.config_resetstat()
        started = time.perf_counter()
        families = list(collector.collect())
        took_s = time.perf_counter() - started
        calls = sum(int(v["calls"]) for k, v in client.info("commandstats").items() if k != "cmdstat_config")
        assert families, "nothing collected"
        return {"ms": round(took_s * 1000, 1), "redis_commands": calls}

    unfinished = scrape()
    for job_id in ids:
        rt.ledger.cancel(job_id, now_ms=now_ms)
    first_finished = scrape()
    kept = scrape()
    # Measured apart (tracing slows the scrape several times): what a fresh collector keeps.
    tracemalloc.start()
    fresh = LedgerCollector(rt)
    fresh._read()
    kept_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(fresh._final) == jobs, "the collector did not keep every finished job"
    return {"jobs": jobs, "unfinished": unfinished, "finished_first_read": first_finished, "finished_kept": kept,
            "collector_bytes_per_finished_job": round(kept_bytes / jobs, 1)}


def main(argv: list[str] | None = None) -> int:
    """Run the figures; print one JSON object."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 jobs and 50,000 calls")
    parser.add_argument("--jobs", type=int, help="live jobs for the scrape figures (default 20,000)")
    parser.add_argument("--calls", type=int, help="calls timed per figure (default 200,000)")
    parser.add_argument("--calls-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    calls = args.calls or (50_000 if args.quick else CALLS)
    if args.calls_only:
        print(json.dumps(per_call_figures(calls)))
        return 0
    from dispatcher.redis_server import EmbeddedRedis

    result: dict[str, Any] = {"single": per_call_figures(calls), "multiprocess": _in_multiprocess_mode(calls)}
    server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="smsd-bench-")))
    try:
        result["scrape"] = scrape_figures(server.start(), args.jobs or (5_000 if args.quick else 20_000))
    finally:
        server.stop()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
