"""Serving the metrics: what one scrape reads, the ledger's gauges, and the worker exporter.

One scrape sees every process of a service: with ``PROMETHEUS_MULTIPROC_DIR`` set,
each process (a Celery worker's main process and pool children, each gunicorn
worker of the webhook) writes its counters to its own file there, and a scrape sums
the files (prometheus_client's multiprocess mode). Each service has its own
directory on its host, cleared of a previous run's files when the service starts
(:func:`prepare_dir`: the Celery worker's main process, gunicorn's master).

* The webhook serves ``GET /metrics`` itself: its own processes' metrics.
* ``sms-dispatch metrics --bind HOST:PORT`` (:mod:`dispatcher.metrics_server`) serves a worker host's: the worker's
  directory, plus the ledger's gauges (:class:`LedgerCollector`, read from Redis at
  scrape time, so they are the same whichever host serves them: scrape one exporter
  per deployment for them, or ignore duplicates with ``max``).

A dead process's counter files stay until the service starts again, on purpose (what
it counted happened; a counter must not go back while the service runs).
prometheus_client's ``mark_process_dead`` removes only the files of "live" gauges,
which no process here keeps; it is still called when a gunicorn worker or a Celery pool
process exits (:func:`process_exited`), so a live gauge added later is not left
standing for a process that is gone.
"""

from __future__ import annotations

import contextlib
import glob
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import redis
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from dispatcher import metrics
from dispatcher.deliveries import STATES
from dispatcher.ledger import as_text
from dispatcher.providers import registry as gateways
from dispatcher.runtime import Runtime

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The families :class:`LedgerCollector` serves (docs/grafana-dashboard.json draws them).
LEDGER_METRICS = ("smsd_ledger_up", "smsd_recipients", "smsd_jobs_in_flight", "smsd_account_paused",
                  "smsd_limiter_limit_per_second", "smsd_limiter_slowdown_factor", "smsd_receipt_backlog",
                  "smsd_ledger_events", "smsd_ledger_scrape_seconds")
#: Jobs read per round trip of a scrape.
JOBS_PER_CALL = 1000
#: Longest field name of the stats hash kept as a label (they are the ledger scripts' own words).
MAX_EVENT_CHARS = 48


def multiproc_dir() -> str:
    """The multiprocess directory of this process's service, ``""`` when not set."""
    return os.environ.get(MULTIPROC_ENV, "")


def prepare_dir() -> None:
    """Create the service's multiprocess directory and remove the files of processes no longer running.

    Called when a service starts, before it forks (Celery's ``worker_init``, gunicorn's
    ``on_starting``). A new process given a dead one's pid would otherwise carry on a
    previous run's values; the files of running processes stay, so a second worker
    started on the same host with the same directory (``honcho start worker=2``) does
    not wipe the first one's counts. The directory is one host's: pids name its processes.
    """
    path = multiproc_dir()
    if not path:
        return
    os.makedirs(path, exist_ok=True)
    for name in glob.glob(os.path.join(path, "*.db")):
        pid = os.path.basename(name)[: -len(".db")].rpartition("_")[2]
        if not (pid.isdigit() and _running(int(pid))):
            with contextlib.suppress(FileNotFoundError):
                os.remove(name)


def _running(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: running
    return True


def process_exited(pid: int) -> None:
    """Bookkeeping for a process of the service that exited (its live gauges' files go)."""
    path = multiproc_dir()
    if path:
        mark_process_dead(pid, path)


def process_collector() -> Any:
    """What a scrape reads of the service's processes: every process's files in multiprocess
    mode, else this process's own :data:`dispatcher.metrics.REGISTRY`."""
    path = multiproc_dir()
    if not path:
        return metrics.REGISTRY
    return MultiProcessCollector(None, path)


def scrape_registry(*extra: Any) -> CollectorRegistry:
    """A registry reading the service's processes and ``extra`` collectors at each scrape."""
    registry = CollectorRegistry()  # no describe: the names are only known once collected
    registry.register(process_collector())
    for collector in extra:
        registry.register(collector)
    return registry


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The text exposition of ``registry`` and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


class LedgerCollector:
    """The ledger's numbers, read from Redis at each scrape (a custom prometheus_client collector).

    * ``smsd_recipients{provider,account,state}``: recipients of the live jobs in each state
      (the sum of their ``status`` funnels; a job counts until it expires);
    * ``smsd_jobs_in_flight{provider,account,stage}``: live jobs not finished, ``sending``
      (recipients still pending or in flight) or ``awaiting_receipts``;
    * ``smsd_account_paused{provider,account,reason}``: 1 while paused, with the reason's class
      (:func:`dispatcher.metrics.pause_reason_label`), 0 for each configured account that is not;
    * ``smsd_limiter_limit_per_second{provider,account,op}`` and ``smsd_limiter_slowdown_factor``:
      the rate each operation's limit allows (its tightest limit, window widened by the jitter),
      and the factor a throttle answer slowed it by;
    * ``smsd_receipt_backlog``: receipts recorded and not yet applied (stream entries);
    * ``smsd_ledger_events_total{event}``: the ledger's own counters (``P:stats``: receipts
      unmatched, foreign, late…), kept in Redis across restarts;
    * ``smsd_ledger_up`` (0 when Redis could not be read) and ``smsd_ledger_scrape_seconds``.

    A finished job's counts never change again, so they are read once and kept here
    until the job expires: a scrape reads the live jobs' ids and the counters of the
    unfinished ones, in calls of :data:`JOBS_PER_CALL`; jobs with the same owner and
    funnel share one kept value (``python -m bench.metrics`` measures both).
    """

    def __init__(self, rt: Runtime, *, clock_ms: Any = None) -> None:
        self.rt = rt
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        #: job id → (provider, account, counts) of finished jobs; the value is shared by every job
        #: with the same owner and counts (an account's OTPs have a handful of different funnels) ...
        self._final: dict[str, _Final] = {}
        #: ... and how many jobs share it, so a scrape sums distinct funnels, not jobs.
        self._refs: dict[_Final, int] = {}
        self._shared: dict[_Final, _Final] = {}

    def collect(self) -> Iterator[Metric]:
        """The families above (only ``smsd_ledger_up`` 0 when Redis cannot be read)."""
        started = time.perf_counter()
        up = GaugeMetricFamily("smsd_ledger_up", "Whether the last scrape could read the ledger in Redis")
        try:
            families = self._read()
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families
        took = GaugeMetricFamily("smsd_ledger_scrape_seconds", "Time the last scrape took to read the ledger")
        took.add_metric([], time.perf_counter() - started)
        yield took

    def _read(self) -> list[Metric]:
        rt = self.rt
        keys, accounts = rt.keys, list(rt.accounts)
        ops = [(a.provider, a.name, op, limits) for a in accounts
               for op in gateways.gateway(a.provider).limits
               if (limits := rt.limiter.limits(a.provider, a.name, op))]
        slow_keys = [keys.slowdown(p, n, limit.kind) for p, n, _, limits in ops for limit in limits]
        pipe = rt.redis.pipeline(transaction=False)
        pipe.zrangebyscore(keys.jobs(), self._clock_ms(), "+inf")
        # MGET of no keys is an error: ask for a key that never exists instead.
        pipe.mget([keys.paused(a.provider, a.name) for a in accounts] or [keys.stats() + ":none"])
        pipe.mget(slow_keys or [keys.stats() + ":none"])
        pipe.xlen(keys.receipt_stream())
        pipe.hgetall(keys.stats())
        job_ids, paused, slow, backlog, stats = pipe.execute()
        live = [as_text(j) for j in job_ids]
        owners = {(a.provider, a.name) for a in accounts}
        recipients, in_flight = self._job_counts(live, owners)
        return [
            *self._job_families(recipients, in_flight),
            self._paused_family(accounts, paused[: len(accounts)]),
            *self._limiter_families(ops, slow),
            _gauge("smsd_receipt_backlog", "Receipts recorded on the receipt stream and not yet applied",
                   [([], int(backlog))]),
            self._stats_family(stats),
        ]

    def _job_counts(self, live: Sequence[str], owners: Iterable[tuple[str, str]]
                    ) -> tuple[dict[tuple[str, str], list[int]], dict[tuple[str, str, str], int]]:
        """Recipients per owner and state, and unfinished jobs per owner and stage, over ``live`` jobs."""
        recipients: dict[tuple[str, str], list[int]] = {owner: [0] * len(STATES) for owner in owners}
        in_flight: dict[tuple[str, str, str], int] = {}
        for owner in recipients:
            in_flight[(*owner, "sending")] = in_flight[(*owner, "awaiting_receipts")] = 0
        alive = set(live)
        for job_id in [j for j in self._final if j not in alive]:
            self._forget(job_id)  # expired: no longer counted
        todo = [j for j in live if j not in self._final]
        fields = ["provider", "account", *(f"c:{s}" for s in STATES)]
        for start in range(0, len(todo), JOBS_PER_CALL):
            batch = todo[start : start + JOBS_PER_CALL]
            pipe = self.rt.redis.pipeline(transaction=False)
            for job_id in batch:
                pipe.hmget(self.rt.keys.job(job_id), fields)
            for job_id, values in zip(batch, pipe.execute(), strict=True):
                if values[0] is None:
                    continue  # expired since the ids were read
                provider, account = as_text(values[0]), as_text(values[1] or b"")
                counts = tuple(int(v or 0) for v in values[2:])
                by = dict(zip(STATES, counts, strict=True))
                if by["pending"] + by["sending"]:
                    stage = "sending"
                elif by["accepted"]:
                    stage = "awaiting_receipts"
                else:
                    self._keep(job_id, (provider, account, counts))
                    continue
                in_flight[(provider, account, stage)] = in_flight.get((provider, account, stage), 0) + 1
                _add(recipients, (provider, account), counts)
        for (provider, account, counts), jobs in self._refs.items():
            _add(recipients, (provider, account), [c * jobs for c in counts])
        return recipients, in_flight

    def _keep(self, job_id: str, final: _Final) -> None:
        """Keep a finished job's funnel (shared with the jobs that have the same)."""
        final = self._shared.setdefault(final, final)
        self._final[job_id] = final
        self._refs[final] = self._refs.get(final, 0) + 1

    def _forget(self, job_id: str) -> None:
        """Drop an expired job's funnel."""
        final = self._final.pop(job_id)
        left = self._refs[final] - 1
        if left:
            self._refs[final] = left
        else:
            del self._refs[final], self._shared[final]

    @staticmethod
    def _job_families(recipients: dict[tuple[str, str], list[int]],
                      in_flight: dict[tuple[str, str, str], int]) -> list[Metric]:
        by_state = GaugeMetricFamily("smsd_recipients", "Recipients of live jobs by state (the jobs' funnels summed)",
                                     labels=["provider", "account", "state"])
        for (provider, account), counts in sorted(recipients.items()):
            for state, count in zip(STATES, counts, strict=True):
                by_state.add_metric([provider, account, state], count)
        jobs = GaugeMetricFamily("smsd_jobs_in_flight", "Live jobs not finished: sending, or awaiting receipts",
                                 labels=["provider", "account", "stage"])
        for (provider, account, stage), count in sorted(in_flight.items()):
            jobs.add_metric([provider, account, stage], count)
        return [by_state, jobs]

    @staticmethod
    def _paused_family(accounts: Sequence[Any], reasons: Sequence[Any]) -> Metric:
        family = GaugeMetricFamily("smsd_account_paused", "1 while an account is paused, with its reason's class",
                                   labels=["provider", "account", "reason"])
        for account, reason in zip(accounts, reasons, strict=True):
            family.add_metric([account.provider, account.name, metrics.pause_reason_label(account.provider, reason)],
                              0 if reason is None else 1)
        return family

    def _limiter_families(self, ops: Sequence[tuple[str, str, str, Any]], slow: Sequence[Any]) -> list[Metric]:
        jitter_s = self.rt.limiter.jitter_s
        rate = GaugeMetricFamily("smsd_limiter_limit_per_second",
                                 "Calls per second an operation's tightest limit allows (window widened by the jitter)",
                                 labels=["provider", "account", "op"])
        factor = GaugeMetricFamily("smsd_limiter_slowdown_factor", "How much a throttle answer slowed an operation",
                                   labels=["provider", "account", "op"])
        values = iter(slow)
        for provider, account, op, limits in ops:
            rate.add_metric([provider, account, op], min(1000.0 / limit.interval_ms(jitter_s) for limit in limits))
            factor.add_metric([provider, account, op],
                              max([float(v) for v in (next(values) for _ in limits) if v is not None] or [1.0]))
        return [rate, factor]

    @staticmethod
    def _stats_family(stats: dict[Any, Any]) -> Metric:
        family = CounterMetricFamily("smsd_ledger_events", "The ledger's own counters (P:stats), kept in Redis",
                                     labels=["event"])
        for name, value in sorted((as_text(k), as_text(v)) for k, v in stats.items()):
            if len(name) <= MAX_EVENT_CHARS and name.replace("_", "").replace(":", "").replace("-", "").isalnum() \
                    and name.isascii() and value.lstrip("-").isdigit():
                family.add_metric([name], int(value))
        return family


#: A finished job's owner and counts per state.
_Final = tuple[str, str, tuple[int, ...]]


def _add(recipients: dict[tuple[str, str], list[int]], owner: tuple[str, str], counts: Sequence[int]) -> None:
    total = recipients.setdefault(owner, [0] * len(STATES))
    for i, count in enumerate(counts):
        total[i] += count


def _gauge(name: str, documentation: str, samples: Iterable[tuple[list[str], float]]) -> Metric:
    family = GaugeMetricFamily(name, documentation)
    for labels, value in samples:
        family.add_metric(labels, value)
    return family
