"""``python -m bench [--quick]``: measure sms-dispatch against its ceiling and its peers; print one JSON object.

Starts its own redis-server and sandbox (and, per section, the Celery workers,
gunicorn webhook or naive baseline it needs) through :mod:`dispatcher.local.stack`,
runs each section in turn on the same stack and prints every figure in one
JSON object on stdout; progress goes to stderr. Sections (``--only a,b``):

========  ======================================================  ===============
section   figures                                                 module
========  ======================================================  ===============
opass     direct (ceiling), pipeline, OTP latency, RSS, Redis     bench/opass.py
aiofish   per-phone-content pipeline (batchSendSms)               bench/aiofish.py
naive     one Celery task per recipient (the common pattern)      bench/naive.py
receipts  receipts applied per second: stream drained by appliers  bench/receipts.py
webhook   push answer latency at 1000 pushes/s, answer → applied  bench/webhook.py
limiter   a binding limit: never exceeded, and how much is used   bench/limiter.py
records   1M records: Redis bytes once all receipts are in,       bench/records.py
          lookup latency by phone and by message id
suppress  a 1M job stored with 100k of its phones on the           bench/suppress.py
          suppression list vs none; the list's bytes per phone
routes    a 1M job stored direct vs through a 3:1 route (same     bench/routes.py
          values, per-phone values); one failover moving 750k
distance  the account's limit with the gateway 0/50/200 ms away,   bench/distance.py
          OTPs meanwhile, CPU and RSS per process, four accounts
          at once (the Procfile's worker)
caps      per-phone frequency caps on a 1M job: claim cost,       bench/caps.py
          Redis bytes, pipeline recipients/s, caps on vs off
========  ======================================================  ===============

``targets`` holds each target of issues 4, 9 and 11 with the measured value and whether
it was met; with ``--repeat N`` every number is the median of N runs and
``runs`` lists each run's target figures. BENCHMARKS.md explains every figure.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench.common import CONCURRENCY, WORKERS
from dispatcher.local.stack import Stack

SECTIONS = ("opass", "aiofish", "naive", "receipts", "webhook", "limiter", "records", "suppress", "routes",
            "distance", "caps")
#: Sections that keep their own worker set: the limiter wants many processes
#: competing for one limit (2 workers x 4), not the fastest set; distance measures
#: the default deployment (the Procfile's worker line).
OWN_WORKERS = frozenset({"limiter", "distance"})

#: (figure, comparison, bound): what issues 4 and 9 ask of each figure on this 2-core machine.
TARGETS: tuple[tuple[str, str, float], ...] = (
    ("pipeline_vs_direct", ">=", 0.9),
    ("pipeline_vs_naive", ">=", 100),
    ("otp_p99_ms", "<", 250),
    ("receipts_applied_per_s", ">=", 100_000),
    ("webhook_p99_ms", "<", 20),
    ("webhook_max_ms", "<", 250),
    ("limiter_max_in_window_over_limit", "<=", 1.0),
    ("limiter_utilisation", ">=", 0.95),
    ("producer_rss_growth_mb", "<", 100),
    ("redis_bytes_per_recipient", "<=", 150),
    # Issue 9: every recipient's record with the 1M job stored and every receipt in.
    ("redis_bytes_per_recipient_final", "<=", 48),
    ("lookup_by_phone_p99_ms", "<", 5),
    ("lookup_by_message_id_p99_ms", "<", 5),
    # Issue 11: the documented limit, not the worker, sets the pace when the gateway is far away.
    ("limit_share_rtt50", ">=", 0.95),
    ("limit_share_rtt200", ">=", 0.95),
    ("otp_p99_ms_rtt200", "<", 250),
    ("worker_cpu_ms_per_chunk", "<=", 1.0),
)
#: Throughput and latency figures whose every run is listed too with ``--repeat``.
HEADLINE = ("direct_recipients_per_s", "pipeline_recipients_per_s", "naive_recipients_per_s",
            "aiofish_pipeline_recipients_per_s", "otp_p50_ms", "webhook_p50_ms", "webhook_push_rate",
            "webhook_sender_late_p99_ms", "receipt_apply_lag_p99_ms",
            "records_store_s", "lookup_by_phone_p50_ms", "lookup_by_message_id_p50_ms",
            "suppress_store_none_recipients_per_s", "suppress_store_listed_recipients_per_s",
            "routes_store_direct_recipients_per_s", "routes_store_route_recipients_per_s",
            "limit_share_rtt0", "multi_account_requests_per_s", "multi_account_cpu_idle_share", "worker_rss_mb",
            "caps_pipeline_recipients_per_s_off", "caps_pipeline_recipients_per_s_on")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b,
}


def targets(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target with its measured value and ``met`` (``None`` when the figure was not measured)."""
    out = {}
    for name, op, bound in TARGETS:
        value = figures.get(name)
        met = None if value is None else _COMPARE[op](value, bound)
        out[name] = {"value": value, "target": f"{op} {bound:g}", "met": met}
    return out


def _accepted(func: Callable[..., Any], options: dict[str, Any]) -> dict[str, Any]:
    """The ``options`` that ``func`` takes as keywords (a section ignores what it has no use for)."""
    params = inspect.signature(func).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return options
    return {k: v for k, v in options.items() if k in params}


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure set from several runs: the median of each number, the last run's other values."""
    merged: dict[str, Any] = {}
    for run in runs:
        merged.update(run)
    for key, value in merged.items():
        values = [r[key] for r in runs if isinstance(r.get(key), int | float) and not isinstance(r.get(key), bool)]
        if len(values) > 1 and isinstance(value, int | float) and not isinstance(value, bool):
            merged[key] = round(statistics.median(values), 3)
    return merged


def machine(redis_url: str) -> dict[str, Any]:
    """Cores, Python and Redis versions, platform."""
    version = redis.Redis.from_url(redis_url).info("server")["redis_version"]
    return {"cores": os.cpu_count(), "python": platform.python_version(), "redis": version,
            "platform": platform.platform()}


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections; print one JSON object on stdout; 0 unless a section failed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller jobs and shorter runs (a 200,000-recipient pipeline)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument("--workers", type=int, default=WORKERS,
                        help=f"Celery worker processes of the throughput sections (default {WORKERS})")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY,
                        help=f"pool processes per worker (default {CONCURRENCY})")
    parser.add_argument("--direct-s", type=float, default=10.0, help="how long the ceiling loop runs")
    parser.add_argument("--appliers", type=int, default=1,
                        help="workers applying the receipt stream in the receipts and webhook sections (default 1)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run every section this many times and report medians (this machine is noisy)")
    parser.add_argument("--out", type=Path, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    runs: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    base = Path(tempfile.mkdtemp(prefix="smsd-bench-"))
    started = time.perf_counter()
    with Stack(base, env={"SMSD_DATA_DIR": str(base)}) as stack:
        redis_url = stack.start_redis()
        stack.start_sandbox()
        for r in range(args.repeat):
            run: dict[str, Any] = {}
            for section in chosen:
                tag = f"{section} (run {r + 1}/{args.repeat})" if args.repeat > 1 else section
                print(f"bench: {tag} …", file=sys.stderr, flush=True)
                t = time.perf_counter()
                module = importlib.import_module(f"bench.{section}")
                options: dict[str, Any] = {"direct_s": args.direct_s, "appliers": args.appliers}
                if section not in OWN_WORKERS:
                    options.update(workers_n=args.workers, concurrency=args.concurrency)
                try:
                    run.update(module.run(stack, quick=args.quick, **_accepted(module.run, options)))
                except Exception as exc:  # noqa: BLE001 - one failed section must not hide the others' figures
                    failed[section] = f"{type(exc).__name__}: {exc}"
                    print(f"bench: {section} failed: {failed[section]} (logs in {stack.logs})", file=sys.stderr)
                print(f"bench: {tag} done in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
            pipeline, naive = run.get("pipeline_recipients_per_s"), run.get("naive_recipients_per_s")
            if pipeline and naive:
                run["pipeline_vs_naive"] = round(pipeline / naive, 1)
            runs.append(run)
        figures = median_of(runs)
        figures["machine"] = machine(redis_url)
    if len(runs) > 1:
        # Every run's value of each target figure, so the spread shows next to the median.
        figures["runs"] = {name: [r.get(name) for r in runs] for name in (*HEADLINE, *(t[0] for t in TARGETS))}
    figures["targets"] = targets(figures)
    figures["quick"] = args.quick
    figures["failed"] = failed
    figures["bench_s"] = round(time.perf_counter() - started, 1)
    text = json.dumps(figures, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
