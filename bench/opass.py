"""The opass figures: the ceiling (bare client loop), the pipeline, OTPs alongside, memory.

* ``direct_recipients_per_s``: one process looping bare ``OpassClient.send``
  calls of pre-built 1000-phone chunks against the same sandbox: the ceiling a
  dispatcher is measured against (no validation, no Redis, no Celery);
* ``pipeline_recipients_per_s``: one opass job through ``Dispatcher`` and the
  Celery workers, from the call (validation and storing included) to the last
  chunk accepted; 1,000,000 recipients (200,000 with ``quick``);
* ``otp_p50_ms`` / ``otp_p99_ms``: enqueue → accepted of single-recipient OTPs
  sent every ``otp_every_s`` (20 ms) while that job runs, each not waiting for
  the one before (open loop), read afterwards from the acceptance time the
  worker stamps on the OTP's chunk;
* ``producer_rss_growth_mb`` (peak RSS of this process while storing the job
  over its RSS just before, the peak mark reset first) and
  ``redis_bytes_per_recipient`` (Redis ``used_memory`` growth per recipient
  once stored, and once every chunk is accepted).

The send limit is raised out of the way on both sides and receipts are kept
off the measured path; the limiter benchmark presses a binding limit instead.
``python -m bench.opass [--quick]`` runs it on its own stack.
"""

from __future__ import annotations

import contextlib
import resource
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import (
    CONCURRENCY,
    QUIET_RECEIPTS,
    UNLIMITED_SANDBOX,
    UNLIMITED_SEND,
    WORKERS,
    dispatcher_for,
    fresh_redis,
    main_of,
    percentile,
    reset_sandbox,
    workers,
    write_accounts,
)
from dispatcher.local.demo import phones
from dispatcher.local.sandbox import demo as creds
from dispatcher.local.stack import Stack, wait_for
from dispatcher.producer import Dispatcher
from dispatcher.providers.opass.account import OpassAccount
from dispatcher.providers.opass.client import OpassClient

TEMPLATE = "1000000000000000002"


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def rss_baseline_mb() -> float:
    """Reset this process's peak-RSS mark (Linux) and return the RSS now, in MB.

    Without the reset, the peak left by building the phone list before the
    call would hide what the call itself allocates.
    """
    with contextlib.suppress(OSError):  # not Linux: the figure then includes any peak before
        Path("/proc/self/clear_refs").write_text("5")
    now = _status_mb("VmRSS")
    return now if now is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def peak_rss_mb() -> float:
    """This process's peak RSS since :func:`rss_baseline_mb`, in MB."""
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def direct(sandbox_url: str, duration_s: float) -> float:
    """Recipients/s of a single-process loop of bare client sends (1000 phones each)."""
    client = OpassClient(OpassAccount(name="bench", api_key=creds.OPASS_API_KEY, access_key=creds.OPASS_ACCESS_KEY,
                                      base_url=sandbox_url))
    chunks = [phones(1000, seed=1000 + i, prefix="17") for i in range(20)]
    client.send(chunks[0], TEMPLATE, ["123456"])  # connect outside the timed loop, as the workers do
    sent, i, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < duration_s:
        client.send(chunks[i % len(chunks)], TEMPLATE, ["123456"])
        sent += 1000
        i += 1
    return sent / (time.perf_counter() - start)


def otp_loop(d: Dispatcher, stop: threading.Event, every_s: float, sent: list[tuple[str, int]]) -> None:
    """Send one OTP every ``every_s`` (open loop: not waiting for the previous one) until ``stop``."""
    for i, phone in enumerate(phones(100_000, seed=8, prefix="18")):
        if stop.wait(every_s):
            return
        started_ms = time.time_ns() // 1_000_000
        otp = d.send_template("demo", template_code=TEMPLATE, phones=[phone], params=[f"{i:06d}"], priority="otp")
        sent.append((otp.job_id, started_ms))


def otp_latencies_ms(d: Dispatcher, sent: list[tuple[str, int]]) -> list[float]:
    """Enqueue → accepted of each OTP: the call's start to the ``since`` the worker stamped on acceptance.

    Read from the ledger after the fact, so measuring does not poll Redis while
    the job runs. Raises ``TimeoutError`` if an OTP is not accepted within 60 s.
    """
    for job_id, _ in sent:
        wait_for(lambda j=job_id: d.status(j).submitted, timeout_s=60, what=f"otp {job_id}")
    return [float(int(d.ledger.chunk(job_id, 0)["since"]) - started_ms) for job_id, started_ms in sent]


def run(stack: Stack, *, quick: bool, workers_n: int = WORKERS, concurrency: int = CONCURRENCY,
        direct_s: float = 10.0, recipients: int | None = None, otp_every_s: float = 0.02,
        **_: Any) -> dict[str, Any]:
    """Measure the ceiling, then one big opass job with OTPs alongside; return the figures.

    Raises ``TimeoutError`` if the job is not submitted within 30 minutes and
    ``RuntimeError`` if the sandbox did not accept every recipient exactly once.
    """
    count = recipients or (200_000 if quick else 1_000_000)
    client = fresh_redis(stack)
    control = reset_sandbox(stack, limits={"opass_send": UNLIMITED_SANDBOX}, **QUIET_RECEIPTS)
    doc = write_accounts(stack, opass={"limits": {"send": UNLIMITED_SEND}})
    direct_rps = direct(stack.sandbox_url, direct_s)
    control.reset()
    control.configure(limits={"opass_send": UNLIMITED_SANDBOX}, **QUIET_RECEIPTS)
    d = dispatcher_for(stack, doc, client)
    numbers = phones(count, seed=7)
    sent_otps: list[tuple[str, int]] = []
    with workers(stack, "opass", workers_n, concurrency):
        used_before, rss_before = client.info("memory")["used_memory"], rss_baseline_mb()
        t0 = time.perf_counter()
        job = d.send_template("demo", template_code=TEMPLATE, phones=numbers, params=["654321"])
        stored_s = time.perf_counter() - t0
        rss_growth = peak_rss_mb() - rss_before
        stored_bytes = client.info("memory")["used_memory"] - used_before
        del numbers
        stop = threading.Event()
        otp_thread = threading.Thread(target=otp_loop, args=(d, stop, otp_every_s, sent_otps), daemon=True)
        otp_thread.start()
        wait_for(lambda: d.status(job.job_id).submitted, timeout_s=1800, what="opass job", interval_s=0.01)
        elapsed = time.perf_counter() - t0
        stop.set()
        otp_thread.join(timeout=10)
        latencies = otp_latencies_ms(d, sent_otps)
        sent_bytes = client.info("memory")["used_memory"] - used_before
    accepted = d.status(job.job_id).counts["accepted"]
    seen = control.ledger()["accepted"]["opass"]
    big = sum(1 for p, n in seen.items() if n == 1 and not p.startswith("18"))
    if accepted != count or big != count:
        raise RuntimeError(f"opass job: {accepted} accepted in our ledger, {big} once in the sandbox's, of {count}")
    pipeline_rps = count / elapsed
    return {
        "direct_recipients_per_s": round(direct_rps, 1),
        "pipeline_recipients_per_s": round(pipeline_rps, 1),
        "pipeline_vs_direct": round(pipeline_rps / direct_rps, 3),
        "pipeline_recipients": count,
        "pipeline_chunks": job.chunks,
        "pipeline_store_s": round(stored_s, 3),
        "pipeline_s": round(elapsed, 3),
        "pipeline_workers": f"{workers_n}x{concurrency}",
        "otp_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "otp_p99_ms": _round(percentile(latencies, 0.99)),
        "otp_max_ms": round(max(latencies), 1) if latencies else None,
        "otp_count": len(latencies),
        "producer_rss_growth_mb": round(rss_growth, 1),
        "redis_bytes_per_recipient": round(stored_bytes / count, 1),
        "redis_bytes_per_recipient_accepted": round(sent_bytes / count, 1),
    }


if __name__ == "__main__":
    main_of(run, __doc__)
