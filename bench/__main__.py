"""``python -m bench [--quick]``: measure the pipeline against its ceiling; print one JSON object.

Starts its own redis-server, sandbox (send limit raised out of the way, receipts
off the measured path) and Celery workers through :mod:`dispatcher.stack`, then:

* ``direct_recipients_per_s``: one process looping bare ``OpassClient.send``
  calls of pre-built 1000-phone chunks against the same sandbox (the ceiling);
* ``pipeline_recipients_per_s``: an opass job through ``Dispatcher`` and the
  workers, from the call to the last chunk accepted (1,000,000 recipients;
  200,000 with ``--quick``);
* ``otp_p50_ms`` / ``otp_p99_ms``: enqueue → accepted of single-recipient OTPs
  sent while that job runs;
* ``producer_rss_growth_mb`` and ``redis_bytes_per_recipient`` for storing it.

Keys not measured yet are ``null`` and listed under ``not_measured``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from config.accounts import parse_accounts
from config.settings import Settings
from dispatcher.demo import accounts_doc, phones
from dispatcher.producer import Dispatcher
from dispatcher.providers.accounts import OpassAccount
from dispatcher.providers.opass import OpassClient
from dispatcher.sandbox import demo as creds
from dispatcher.sandbox.control import SandboxControl
from dispatcher.stack import Stack, wait_for

NOT_YET = ["naive_recipients_per_s", "pipeline_vs_naive", "aiofish_pipeline_recipients_per_s",
           "receipts_applied_per_s", "webhook_p50_ms", "webhook_p99_ms", "webhook_max_ms", "webhook_push_rate",
           "limiter_max_in_window_over_limit", "limiter_utilisation"]
SANDBOX = {"limits": {"opass_send": {"max": 100_000, "window_s": 1.0}}, "receipt_mode": "pull",
           "receipt_delay_s": 3600.0}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def direct(sandbox_url: str, duration_s: float) -> float:
    """Recipients/s of a single-process loop of bare client sends (1000 phones each)."""
    client = OpassClient(OpassAccount(name="bench", api_key=creds.OPASS_API_KEY, access_key=creds.OPASS_ACCESS_KEY,
                                      base_url=sandbox_url))
    chunks = [phones(1000, seed=1000 + i, prefix="17") for i in range(20)]
    sent, start = 0, time.perf_counter()
    i = 0
    while time.perf_counter() - start < duration_s:
        client.send(chunks[i % len(chunks)], "1000000000000000002", ["123456"])
        sent += 1000
        i += 1
    return sent / (time.perf_counter() - start)


def pipeline(d: Dispatcher, r: redis.Redis, recipients: int, otps: int) -> dict[str, Any]:
    """Run one big opass job through the workers; OTPs alongside; return the figures."""
    numbers = phones(recipients, seed=7)
    used_before, rss_before = r.info("memory")["used_memory"], _rss_mb()
    t0 = time.perf_counter()
    job = d.send_template("demo", template_code="1000000000000000002", phones=numbers, params=["654321"])
    stored_s = time.perf_counter() - t0
    rss_growth = _rss_mb() - rss_before
    redis_bytes = (r.info("memory")["used_memory"] - used_before) / recipients
    del numbers
    latencies: list[float] = []

    def otp_loop() -> None:
        for i, phone in enumerate(phones(otps, seed=8, prefix="18")):
            s = time.perf_counter()
            otp = d.send_template("demo", template_code="1000000000000000002", phones=[phone], params=[f"{i:06d}"],
                                  priority="otp")
            wait_for(lambda o=otp: d.status(o.job_id).submitted, timeout_s=60, what="otp", interval_s=0.002)
            latencies.append((time.perf_counter() - s) * 1000)
            time.sleep(0.2)

    otp_thread = threading.Thread(target=otp_loop)
    otp_thread.start()
    wait_for(lambda: d.status(job.job_id).submitted, timeout_s=1800, what="pipeline job", interval_s=0.05)
    elapsed = time.perf_counter() - t0
    otp_thread.join()
    latencies.sort()
    return {
        "pipeline_recipients_per_s": round(recipients / elapsed, 1),
        "pipeline_store_s": round(stored_s, 2),
        "otp_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "otp_p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1) if latencies else None,
        "otp_count": len(latencies),
        "producer_rss_growth_mb": round(rss_growth, 1),
        "redis_bytes_per_recipient": round(redis_bytes, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print one JSON object on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 recipients instead of 1,000,000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--direct-s", type=float, default=10.0)
    args = parser.parse_args(argv)
    recipients = 200_000 if args.quick else 1_000_000
    base = Path(tempfile.mkdtemp(prefix="smsd-bench-"))
    with Stack(base, env={"SMSD_DATA_DIR": str(base)}) as stack:
        redis_url = stack.start_redis()
        sandbox_url = stack.start_sandbox()
        SandboxControl(sandbox_url).configure(**SANDBOX)
        doc = accounts_doc(sandbox_url)
        doc["opass"][0]["limits"] = {"send": [{"kind": "send", "count": 100_000, "window_s": 1}]}
        path = base / "accounts.json"
        path.write_text(json.dumps(doc))
        stack.env["SMSD_ACCOUNTS_FILE"] = str(path)
        direct_rps = direct(sandbox_url, args.direct_s)
        for i in range(args.workers):
            stack.start_worker(f"w{i}", concurrency=args.concurrency)
        client = redis.Redis.from_url(redis_url)
        d = Dispatcher(Settings.from_env(stack.env), accounts=parse_accounts(doc), client=client)
        figures = pipeline(d, client, recipients, otps=40)
        version = client.info("server")["redis_version"]
    result: dict[str, Any] = {
        "direct_recipients_per_s": round(direct_rps, 1),
        **figures,
        "pipeline_vs_direct": round(figures["pipeline_recipients_per_s"] / direct_rps, 3),
        "recipients": recipients,
        "workers": f"{args.workers}x{args.concurrency}",
        **dict.fromkeys(NOT_YET),
        "not_measured": NOT_YET,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "redis": version,
                    "platform": sys.platform},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
