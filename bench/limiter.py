"""``limiter_*``: does our Redis limiter keep a binding send limit, and how much of it does it use?

An opass job runs through the real workers (2 x 4 processes by default) with
a send limit that binds: 50 requests per 1 s window, set identically in our
accounts file and in the sandbox's ``opass_send`` limit, chunks of 10 phones,
enough chunks for ~20 s (quick: ~8 s). Then:

* ``limiter_max_in_window_over_limit``: the sandbox's busiest sliding window of
  attempts / the limit (<= 1.0: the gateway never saw more than the limit);
* ``limiter_utilisation``: requests/s the sandbox received in the steady state
  (the first ``warmup_s`` after the first request and the last ``tail_s`` before
  the last one left out) / the limit;
* ``limiter_refused``: requests the sandbox refused with 6000.

With ``lag=True`` Redis is watched with MONITOR while the job runs (it slows Redis
a little: a diagnostic, not the figure) and each token taken is paired with the
request's arrival at the sandbox: ``limiter_lag_ms`` gives the token → arrival
lag's percentiles and its spread, the quantity the limiter's allowance must cover.

``python -m bench.limiter [--quick] [--lag]`` runs it on its own stack and prints its JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import threading
import time
from typing import Any

import redis

from bench.common import (
    QUIET_RECEIPTS,
    dispatcher_for,
    fresh_redis,
    percentile,
    reset_sandbox,
    standalone,
    workers,
    write_accounts,
)
from dispatcher.keys import Keys
from dispatcher.limiter import Limit
from dispatcher.limiter_scripts import DEFER
from dispatcher.local.demo import phones
from dispatcher.local.sandbox.control import SandboxControl
from dispatcher.local.stack import Stack, wait_for

TEMPLATE = "1000000000000000002"
SAMPLE_EVERY_S = 0.1


def _sample(control: SandboxControl, stop: threading.Event, out: list[tuple[float, int]]) -> None:
    """Append (wall-clock s, gateway requests so far) every ``SAMPLE_EVERY_S`` until ``stop``."""
    while not stop.is_set():
        out.append((time.time(), int(control.stats()["requests_total"])))
        stop.wait(SAMPLE_EVERY_S)


def steady_rate(samples: list[tuple[float, int]], total: int, *, warmup_s: float, tail_s: float) -> float:
    """Requests/s between ``warmup_s`` after the first request and ``tail_s`` before the last one.

    Raises ``ValueError`` if the run was too short to leave a steady part.
    """
    first = next(t for t, n in samples if n > 0)
    last = next(t for t, n in samples if n >= total)
    inner = [(t, n) for t, n in samples if first + warmup_s <= t <= last - tail_s]
    if len(inner) < 2 or inner[-1][0] - inner[0][0] < 1.0:
        raise ValueError(f"run too short for a steady state ({last - first:.1f} s)")
    (t0, n0), (t1, n1) = inner[0], inner[-1]
    return (n1 - n0) / (t1 - t0)


class TokenWatch:
    """Watches Redis with MONITOR: when each worker took a send token and which chunk it claimed next."""

    def __init__(self, url: str, keys: Keys, provider: str, account: str, interval_ms: float) -> None:
        self.client = redis.Redis.from_url(url)
        self.interval_s = interval_ms / 1000.0
        self.tat_key = keys.limiter(provider, account, "send")
        self.slow_key = keys.slowdown(provider, account, "send")  # in the keys of the scripts that take tokens
        self.defer_sha = hashlib.sha1(DEFER.encode()).hexdigest()  # which has them too, and takes none
        self.chunk_marker = f"{keys.prefix}:job:"
        self.tokens: dict[tuple[str, int], float] = {}  # (job_id, chunk) -> token's slot (Redis clock, s)
        self.claim_lag_s: list[float] = []  # token's slot -> its chunk claimed (same worker connection)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stop = threading.Event()
        self._ready = threading.Event()

    def __enter__(self) -> TokenWatch:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.client.set(self.tat_key + ":bench-wake", "1", px=1000)  # one more line so the reader wakes
        self._thread.join(10)

    def _run(self) -> None:
        last_script_port, last_was_acquire = "", False
        taken: dict[str, float] = {}  # client port -> time of its last token not yet paired with a claim
        with self.client.monitor() as m:
            self._ready.set()
            for event in m.listen():
                if self._stop.is_set():
                    return
                cmd: str = event["command"]
                if event["client_type"] == "lua":
                    # The script's own commands follow its EVALSHA; a SET of the TAT is a token
                    # taken, for the slot one interval before the new TAT (ms; a reservation's
                    # slot may be later than the SET itself).
                    parts = cmd.split(" ")
                    if last_was_acquire and parts[0] == "SET" and parts[1] == self.tat_key:
                        taken[last_script_port] = float(parts[2]) / 1000.0 - self.interval_s
                    continue
                if not cmd.startswith("EVALSHA"):
                    continue
                last_script_port = event["client_port"]
                last_was_acquire = self.slow_key in cmd and self.defer_sha not in cmd
                parts = cmd.split(" ")
                # CLAIM's first key is the chunk: <prefix>:job:<id>:c:<n>; it follows the token.
                if len(parts) > 3 and parts[3].startswith(self.chunk_marker) and ":c:" in parts[3]:
                    t = taken.pop(event["client_port"], None)
                    if t is not None:
                        self.claim_lag_s.append(event["time"] - t)
                        job_id, _, n = parts[3][len(self.chunk_marker):].partition(":c:")
                        self.tokens[(job_id, int(n))] = t


def _lags_ms(watch: TokenWatch, control: SandboxControl, job_id: str, numbers: list[str],
             size: int) -> dict[str, float]:
    """Token → sandbox-arrival lag of every paired chunk (first phone's accepted time), in ms."""
    lags: list[float] = []
    token_times = sorted(t for (jid, _), t in watch.tokens.items() if jid == job_id)
    for (jid, n), token_s in watch.tokens.items():
        if jid != job_id:
            continue
        seen = control.messages(numbers[n * size])
        if seen:
            lags.append((seen[0]["accepted_at"] - token_s) * 1000.0)
    if not lags:
        return {}
    gaps = [(b - a) * 1000.0 for a, b in itertools.pairwise(token_times)]
    claims = [x * 1000.0 for x in watch.claim_lag_s]
    # A gap longer than the spacing while the job was saturating the limit: a DEFER after a late wake-up.
    deferred = sum(1 for g in gaps if g > watch.interval_s * 1000.0 + 1.0)
    return {**_summary("lag", lags), **_summary("token_gap", gaps), "token_gaps_widened": deferred,
            **_summary("slot_to_claim", claims)}


def _summary(name: str, values: list[float]) -> dict[str, float]:
    """min/p50/p90/p99/max (and mean) of ``values`` as ``<name>_<stat>``, rounded to 0.1."""
    if not values:
        return {}
    v = sorted(values)

    def pct(q: float) -> float:
        return round(percentile(v, q) or 0.0, 1)

    return {f"{name}_n": len(v), f"{name}_min": round(v[0], 1), f"{name}_mean": round(sum(v) / len(v), 2),
            f"{name}_p50": pct(0.5), f"{name}_p90": pct(0.9), f"{name}_p99": pct(0.99), f"{name}_max": round(v[-1], 1)}


def run(stack: Stack, *, quick: bool, workers_n: int = 2, concurrency: int = 4, limit: int = 50,
        window_s: float = 1.0, chunk_size: int = 10, duration_s: float | None = None, lag: bool = False,
        **_: Any) -> dict[str, Any]:
    """Run a job of ~``duration_s`` at ``limit`` requests per ``window_s``; return the limiter figures.

    Raises ``TimeoutError`` if the job does not finish in time.
    """
    run_s = duration_s or (8.0 if quick else 20.0)
    chunks = int(run_s * limit / window_s)
    count = chunks * chunk_size
    client = fresh_redis(stack)
    control = reset_sandbox(stack, limits={"opass_send": {"max": limit, "window_s": window_s}}, **QUIET_RECEIPTS)
    doc = write_accounts(stack, opass={"batch_max": chunk_size,
                                       "limits": {"send": [{"kind": "send", "count": limit, "window_s": window_s}]}})
    d = dispatcher_for(stack, doc, client)
    numbers = phones(count, seed=51, prefix="16")
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample, args=(control, stop, samples))
    lag_figures: dict[str, float] = {}
    with workers(stack, "limiter", workers_n, concurrency):
        jitter_s = float(stack.env.get("SMSD_LIMITER_JITTER_S", "0.05"))
        interval_ms = Limit("send", limit, window_s).interval_ms(jitter_s)
        watch = TokenWatch(stack.env["SMSD_REDIS_URL"], d.keys, "opass", "demo", interval_ms) if lag else None
        if watch is not None:
            watch.__enter__()
        sampler.start()
        try:
            job = d.send_template("demo", template_code=TEMPLATE, phones=numbers, params=["246810"])
            wait_for(lambda: d.status(job.job_id).submitted, timeout_s=run_s * 4 + 60, what="limiter job",
                     interval_s=0.1)
            wait_for(lambda: samples[-1][1] >= chunks, timeout_s=10, what="last sample", interval_s=0.05)
        finally:
            stop.set()
            sampler.join()
            if watch is not None:
                watch.__exit__()
    if watch is not None:
        lag_figures = _lags_ms(watch, control, job.job_id, numbers, chunk_size)
    seen = control.stats()["limits"]["opass"][doc["opass"][0]["api_key"]]["opass_send"]
    warmup_s, tail_s = (1.0, 0.5) if quick else (2.0, 1.0)
    rate = steady_rate(samples, chunks, warmup_s=warmup_s, tail_s=tail_s)
    per_s = limit / window_s
    result: dict[str, Any] = {
        "limiter_max_in_window_over_limit": round(seen["max_attempted"] / limit, 3),
        "limiter_utilisation": round(rate / per_s, 4),
        "limiter_limit": f"{limit}/{window_s:g}s",
        "limiter_max_in_window": seen["max_attempted"],
        "limiter_refused": seen["refused"],
        "limiter_steady_requests_per_s": round(rate, 2),
        "limiter_requests": chunks,
        "limiter_jitter_s": jitter_s,
        "limiter_workers": f"{workers_n}x{concurrency}",
    }
    if lag:
        result["limiter_lag_ms"] = lag_figures
    return result


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lag", action="store_true", help="also measure token → arrival lag (MONITOR)")
    parser.add_argument("--workers", dest="workers_n", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.limiter [--quick] [--lag] [--workers N --concurrency C]``: print the JSON."""
    return standalone(run, "limiter figures against a binding send limit", argv, options=_options,
                      quick_help="~8 s instead of ~20 s")


if __name__ == "__main__":
    raise SystemExit(main())
