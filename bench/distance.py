"""Issue 11: does the account's documented limit, not our worker, set the pace when the gateway is far away?

The sandbox answers every send ``rtt`` ms late (its ``slow`` fault on ``/message/``
and ``/rest/sms/``), for ``rtt`` in 0, 50 and 200 ms, measured side by side on
one worker started exactly as the Procfile's ``worker`` line starts it (the
documented default deployment). Limits are the documented ones on both sides:
the sandbox's opass send limit at 300 requests/s and our accounts file at its
default (300/s, widened by ``SMSD_LIMITER_JITTER_S``).

* ``limit_share_rtt{0,50,200}``: an opass job of 1,000,000 recipients (600,000
  with ``quick``) in 1000-phone chunks, with an OTP every 100 ms on the same
  account alongside (10/s: at 200 ms, 50 OTPs/s alone would keep ten requests
  in flight); the account's requests/s (bulk chunks and OTPs, counted from the
  acceptance times our ledger stamps) over the steady part of the job (its
  first and last 10 % of chunks left out), divided by 300; ``limit_max_in_window_rtt…``:
  the sandbox's busiest 1 s window of send attempts over 300 (above 1.0 the
  limit was exceeded) and ``limit_refused_rtt…``: sends it refused;
* ``otp_p99_ms_rtt{0,50,200}``: those OTPs, producer call → accepted, minus the
  ``rtt`` the gateway itself takes;
* ``worker_cpu_ms_per_chunk_rtt{…}``: CPU of the worker's whole process tree
  during the job over the requests it made; ``worker_cpu_ms_per_chunk`` is the
  largest of the three;
* ``worker_rss_mb``: the largest RSS of a process that sends, after the jobs: a
  pool child of a prefork worker, the one process of a threads worker
  (``worker_main_rss_mb``: the worker's main process);
* ``multi_account_requests_per_s_rtt{…}``: three opass accounts and one aiofish
  account, each given its own job at once, each at its own limit (opass 300/s;
  aiofish publishes none, its plug assumes 200/s and the sandbox is set to the
  same): requests/s of the four jobs together over their steady part (the
  first and last 10 % of all their chunks left out), ``…_limit_share`` (over
  the 1100/s the four limits allow), ``…_per_account``, ``…_all_four_s`` (how
  long all four were sending at once: 0 when they went one after another) and
  ``…_cpu_idle_share`` (the host's idle CPU share meanwhile, from
  ``/proc/stat``; other work on the host counts as busy), on ``multi_workers``
  workers of the Procfile's line (1 by default; ``--multi-workers 2``: one per core).
  ``multi_account_requests_per_s`` is the figure at 50 ms.

``python -m bench.distance [--quick] [--rtts 0,50,200] [--no-multi]`` runs it on its own stack.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shlex
import statistics
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import redis

from bench.common import (
    QUIET_RECEIPTS,
    REPO,
    cpu_s,
    dispatcher_for,
    fresh_redis,
    percentile,
    require_no_workers,
    reset_sandbox,
    standalone,
    write_accounts,
)
from bench.opass import TEMPLATE, otp_latencies_ms, otp_loop
from dispatcher.keys import Keys
from dispatcher.local.demo import phones
from dispatcher.local.sandbox import demo as creds
from dispatcher.local.sandbox.control import SandboxControl
from dispatcher.local.stack import Stack, wait_for
from dispatcher.producer import Dispatcher
from dispatcher.providers.registry import documented_limits

RTTS = (0, 50, 200)
#: The documented limits the figures are measured against.
OPASS_LIMIT = documented_limits("opass", "send")[0].count
AIOFISH_LIMIT = documented_limits("aiofish", "send")[0].count
#: The two extra opass accounts of the multi-account run (the sandbox gets them too).
EXTRA_OPASS = ("demo2", "demo3")
AIOFISH_CONTENT = "【沙箱】您的账单已出，请查收。"
STEADY_TRIM = 0.1


def procfile_worker_argv(name: str, procfile: Path = REPO / "Procfile") -> list[str]:
    """The Procfile's ``worker:`` command as an argument list, run by this Python, named ``name@%h``.

    Raises ``ValueError`` if the Procfile has no worker line.
    """
    for line in procfile.read_text().splitlines():
        if line.startswith("worker:"):
            argv = shlex.split(line.split(":", 1)[1])
            if argv[0] == "celery":
                argv = [sys.executable, "-m", "celery", *argv[1:]]
            return [*argv, "-n", f"{name}@%h"]
    raise ValueError(f"no worker line in {procfile}")


def worker_shape(stack: Stack, name: str) -> str:
    """The pool a started worker reports in its banner, e.g. ``128 (thread)`` or ``4 (prefork)``."""
    found = re.search(r"concurrency: (\d+ \(\w+\))", stack.log_text(name))
    return found.group(1) if found else "unknown"


def pool_pids(root: int) -> list[int]:
    """The pids of a worker's pool processes (its children)."""
    try:
        return [int(c) for c in Path(f"/proc/{root}/task/{root}/children").read_text().split()]
    except OSError:
        return []


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def host_cpu() -> tuple[int, int]:
    """(idle, total) jiffies of the whole host so far (``/proc/stat``)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])


def accepted_times_ms(client: redis.Redis, keys: Keys, job_id: str, chunks: int) -> list[int]:
    """When each chunk of a job was accepted (our ledger's ``since``), sorted; one pipelined round trip."""
    pipe = client.pipeline(transaction=False)
    for n in range(chunks):
        pipe.hget(keys.chunk(job_id, n), "since")
    return sorted(int(v) for v in pipe.execute() if v is not None)


def steady_window(times_ms: Sequence[int], trim: float = STEADY_TRIM) -> tuple[int, int]:
    """The steady part of a job: from its ``trim`` quantile of acceptance times to its ``1 - trim``.

    Raises ``ValueError`` when the job is too small to have one.
    """
    if len(times_ms) < 20:
        raise ValueError(f"{len(times_ms)} chunks: too few for a steady part")
    lo, hi = int(len(times_ms) * trim), int(len(times_ms) * (1 - trim)) - 1
    return times_ms[lo], times_ms[hi]


def rate_in(window: tuple[int, int], *series: Iterable[int]) -> float:
    """Requests/s of all ``series`` (acceptance times, ms) inside ``window``."""
    start, end = window
    count = sum(1 for times in series for t in times if start <= t <= end)
    return (count - 1) * 1000.0 / max(1, end - start)


def set_rtt(control: SandboxControl, rtt_ms: int) -> None:
    """Every send answers ``rtt_ms`` late (no fault at 0)."""
    control.clear_faults()
    if rtt_ms:
        control.set_faults(*[{"kind": "slow", "rate": 1.0, "delay_ms": rtt_ms, "path": path}
                             for path in ("/message/", "/rest/sms/")])


class ProcfileWorker:
    """One worker started as the Procfile starts it; stopped on exit."""

    def __init__(self, stack: Stack, name: str = "distance0") -> None:
        self.stack, self.name = stack, name
        self.argv = procfile_worker_argv(name)

    def __enter__(self) -> ProcfileWorker:
        if self.name.endswith("0"):
            require_no_workers(self.stack)
        self.stack.spawn(self.name, self.argv, ready=" ready.")
        return self

    @property
    def pid(self) -> int:
        """The worker's main process id."""
        return self.stack.procs[self.name].pid

    def __exit__(self, *exc: object) -> None:
        self.stack.stop(self.name)


def one_rtt(stack: Stack, worker: ProcfileWorker, d: Dispatcher, client: redis.Redis, rtt_ms: int, count: int,
            otp_every_s: float) -> dict[str, Any]:
    """One opass job of ``count`` recipients with OTPs alongside, every send ``rtt_ms`` away; its figures."""
    client.flushdb()
    control = reset_sandbox(stack, **QUIET_RECEIPTS)
    set_rtt(control, rtt_ms)
    numbers = phones(count, seed=7)
    sent: list[tuple[str, int]] = []
    stop = threading.Event()
    cpu0 = cpu_s(worker.pid)
    job = d.send_template("demo", template_code=TEMPLATE, phones=numbers, params=["654321"])
    del numbers
    otp_thread = threading.Thread(target=otp_loop, args=(d, stop, otp_every_s, sent), daemon=True)
    otp_thread.start()
    t0 = time.perf_counter()
    wait_for(lambda: d.status(job.job_id).submitted, timeout_s=3600, what=f"opass job at {rtt_ms} ms",
             interval_s=0.05)
    elapsed = time.perf_counter() - t0
    stop.set()
    otp_thread.join(timeout=10)
    latencies = otp_latencies_ms(d, sent)
    cpu = cpu_s(worker.pid) - cpu0
    bulk = accepted_times_ms(client, d.keys, job.job_id, job.chunks)
    otps = [int(d.ledger.chunk(j, 0)["since"]) for j, _ in sent]
    window = steady_window(bulk)
    seen = control.ledger()["accepted"]["opass"]
    once = sum(1 for p, n in seen.items() if n == 1 and not p.startswith("18"))
    if len(bulk) != job.chunks or once != count:
        raise RuntimeError(f"{rtt_ms} ms: {len(bulk)} of {job.chunks} chunks accepted, {once} of {count} once")
    net = [lat - rtt_ms for lat in latencies]
    window_stats = control.stats()["limits"]["opass"][creds.OPASS_API_KEY]["opass_send"]
    return {
        f"limit_share_rtt{rtt_ms}": round(rate_in(window, bulk, otps) / OPASS_LIMIT, 3),
        f"requests_per_s_rtt{rtt_ms}": round(rate_in(window, bulk, otps), 1),
        f"limit_max_in_window_rtt{rtt_ms}": round(window_stats["max_attempted"] / window_stats["limit"], 3),
        f"limit_refused_rtt{rtt_ms}": window_stats["refused"],
        f"job_s_rtt{rtt_ms}": round(elapsed, 2),
        f"otp_p50_ms_rtt{rtt_ms}": round(statistics.median(net), 1) if net else None,
        f"otp_p99_ms_rtt{rtt_ms}": round(percentile(net, 0.99) or 0.0, 1) if net else None,
        f"otp_count_rtt{rtt_ms}": len(net),
        f"worker_cpu_ms_per_chunk_rtt{rtt_ms}": round(cpu * 1000.0 / (job.chunks + len(sent)), 3),
    }


def multi_doc(stack: Stack, control: SandboxControl) -> dict[str, Any]:
    """Accounts file with opass ``demo``, ``demo2``, ``demo3`` and aiofish ``demo`` (the sandbox learns the
    two new opass keys); each at its documented send limit; receipts quiet."""
    doc = write_accounts(stack, name="accounts-multi.json")
    base = doc["opass"][0]
    sandbox_accounts = {}
    for name in EXTRA_OPASS:
        api_key, access_key = f"{creds.OPASS_API_KEY}-{name}", f"{creds.OPASS_ACCESS_KEY}-{name}"
        doc["opass"].append({**base, "name": name, "api_key": api_key, "access_key": access_key})
        sandbox_accounts[api_key] = {"access_key": access_key,
                                     "balance": {"行业短信": 100_000_000, "会员短信": 0, "推广短信": 0}}
    control.configure(opass={"accounts": sandbox_accounts},
                      limits={"aiofish_send": {"max": AIOFISH_LIMIT, "window_s": 1.0}})
    (stack.base_dir / "accounts-multi.json").write_text(json.dumps(doc))
    return doc


def multi_account(stack: Stack, client: redis.Redis, rtt_ms: int, opass_chunks: int,
                  aiofish_chunks: int, workers_n: int = 1) -> dict[str, Any]:
    """Three opass and one aiofish account sending at once, each its own job; the figures while all four run."""
    client.flushdb()
    control = reset_sandbox(stack, **QUIET_RECEIPTS)
    set_rtt(control, rtt_ms)
    doc = multi_doc(stack, control)
    d = dispatcher_for(stack, doc, client)
    # Every job is stored before the worker starts: the four are queued at once, and
    # the producer's CPU (validating and storing 3.5M numbers) is not in the figures.
    jobs = []
    for i, name in enumerate(("demo", *EXTRA_OPASS)):
        numbers = phones(opass_chunks * 1000, seed=20 + i, prefix=f"1{3 + i}")
        jobs.append(("opass", name, OPASS_LIMIT,
                     d.send_template(name, template_code=TEMPLATE, phones=numbers, params=["111111"])))
    numbers = phones(aiofish_chunks * 2000, seed=30, prefix="19")
    jobs.append(("aiofish", "demo", AIOFISH_LIMIT, d.send_content("demo", content=AIOFISH_CONTENT, phones=numbers)))
    del numbers
    with contextlib.ExitStack() as started:
        pids = [started.enter_context(ProcfileWorker(stack, f"multi{i}")).pid for i in range(workers_n)]
        cpu0 = sum(cpu_s(pid) for pid in pids)
        samples: list[tuple[int, tuple[int, int]]] = []
        stop = threading.Event()

        def sample_host() -> None:
            while not stop.wait(0.1):
                samples.append((time.time_ns() // 1_000_000, host_cpu()))

        sampler = threading.Thread(target=sample_host, daemon=True)
        sampler.start()
        for _, name, _, job in jobs:
            wait_for(lambda j=job: d.status(j.job_id).submitted, timeout_s=3600, what=f"{name} job", interval_s=0.1)
        stop.set()
        sampler.join(timeout=5)
        cpu = sum(cpu_s(pid) for pid in pids) - cpu0
    times = {f"{p}:{n}": accepted_times_ms(client, d.keys, job.job_id, job.chunks) for p, n, _, job in jobs}
    pooled = sorted(t for ts in times.values() for t in ts)
    window = steady_window(pooled)
    per_account = {key: round(rate_in(window, t), 1) for key, t in times.items()}
    starts, ends = [min(t) for t in times.values()], [max(t) for t in times.values()]
    inside = [s for t, s in samples if window[0] <= t <= window[1]]
    idle = (inside[-1][0] - inside[0][0]) / max(1, inside[-1][1] - inside[0][1]) if len(inside) > 1 else None
    total = rate_in(window, pooled)
    limits = sum(limit for _, _, limit, _ in jobs)
    chunks = sum(job.chunks for *_, job in jobs)
    return {
        f"multi_account_requests_per_s_rtt{rtt_ms}": round(total, 1),
        f"multi_account_limit_share_rtt{rtt_ms}": round(total / limits, 3),
        f"multi_account_per_account_rtt{rtt_ms}": per_account,
        f"multi_account_all_four_s_rtt{rtt_ms}": round(max(0, min(ends) - max(starts)) / 1000.0, 2),
        f"multi_account_cpu_idle_share_rtt{rtt_ms}": None if idle is None else round(idle, 3),
        f"multi_account_worker_cpu_ms_per_chunk_rtt{rtt_ms}": round(cpu * 1000.0 / chunks, 3),
    }


def run(stack: Stack, *, quick: bool, rtts: Sequence[int] = RTTS, recipients: int | None = None,
        otp_every_s: float = 0.1, multi: bool = True, multi_workers: int = 1, **_: Any) -> dict[str, Any]:
    """Each RTT's opass job on the Procfile's worker, then the multi-account run at each RTT; the figures.

    Raises ``RuntimeError`` if a job's recipients were not each accepted exactly once.
    """
    count = recipients or (600_000 if quick else 1_000_000)
    client = fresh_redis(stack)
    doc = write_accounts(stack)
    d = dispatcher_for(stack, doc, client)
    out: dict[str, Any] = {"distance_recipients": count}
    with ProcfileWorker(stack) as worker:
        out["distance_worker"] = " ".join(worker.argv[worker.argv.index("worker"):-2])
        out["distance_pool"] = worker_shape(stack, worker.name)
        for rtt in rtts:
            print(f"bench: distance {rtt} ms …", file=sys.stderr, flush=True)
            out.update(one_rtt(stack, worker, d, client, rtt, count, otp_every_s))
        # A prefork worker sends from its children; a threads worker from its one process.
        pools = pool_pids(worker.pid) or [worker.pid]
        out["worker_rss_mb"] = round(max(rss_mb(p) for p in pools), 1)
        out["worker_main_rss_mb"] = round(rss_mb(worker.pid), 1)
        out["worker_pool_processes"] = len(pools)
    per_chunk = [out[f"worker_cpu_ms_per_chunk_rtt{r}"] for r in rtts]
    out["worker_cpu_ms_per_chunk"] = max(per_chunk)
    if multi:
        chunks = (300, 200) if quick else (900, 600)
        for rtt in rtts:
            print(f"bench: distance multi-account {rtt} ms …", file=sys.stderr, flush=True)
            out.update(multi_account(stack, client, rtt, *chunks, workers_n=multi_workers))
        out["multi_account_workers"] = multi_workers
        key = "multi_account_requests_per_s_rtt50"
        out["multi_account_requests_per_s"] = out.get(key, out[f"multi_account_requests_per_s_rtt{rtts[-1]}"])
        out["multi_account_cpu_idle_share"] = out.get("multi_account_cpu_idle_share_rtt50")
    return out


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rtts", type=lambda s: tuple(int(x) for x in s.split(",")), default=RTTS,
                        help="gateway answer delays in ms (default 0,50,200)")
    parser.add_argument("--recipients", type=int, default=None, help="size of each RTT's opass job")
    parser.add_argument("--no-multi", dest="multi", action="store_false", help="skip the multi-account runs")
    parser.add_argument("--multi-workers", type=int, default=1,
                        help="workers (the Procfile's line each) of the multi-account runs (default 1)")


if __name__ == "__main__":
    sys.exit(standalone(run, __doc__, options=_options, quick_help="600,000 recipients a job"))
