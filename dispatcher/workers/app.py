"""The Celery app. Every setting that matters for "no SMS lost, none sent twice" is explained."""

from __future__ import annotations

import gc
import os
from typing import Any, ClassVar

from celery import Celery, bootsteps
from celery.signals import (
    celeryd_init,
    setup_logging,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
)
from kombu import Queue

from dispatcher import metrics_export
from dispatcher.config.settings import load_settings
from dispatcher.keys import Keys
from dispatcher.logs import configure
from dispatcher.providers import http
from dispatcher.redis_connection import broker_of
from dispatcher.runtime import reset_runtime, warm_runtime

settings = load_settings()
# Under Sentinel: kombu's sentinel:// transport, with the master's name in its options.
_broker, _broker_options = broker_of(settings)

app = Celery("sms_dispatch", broker=_broker, include=["dispatcher.workers.tasks"])
app.conf.update(
    # OTP first: workers list the otp queue before bulk and, with the "priority"
    # order strategy, always drain it first; an OTP waits for at most one chunk.
    task_queues=[Queue(settings.queue_otp), Queue(settings.queue_bulk)],
    task_default_queue=settings.queue_bulk,
    broker_transport_options={
        "queue_order_strategy": "priority",
        # Longer than any countdown we schedule (retry cap 300 s, limiter waits):
        # an unacked task is redelivered only if its worker really died.
        "visibility_timeout": 3600,
        **_broker_options,
    },
    # Ack after the task ran, and requeue it if the worker process is killed.
    # Safe because a second run of send_chunk is a no-op unless the ledger says
    # the chunk is still pending (the Lua claim is atomic).
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # Many requests in flight, few processes: a pool of threads, each running
    # one send task (its chunks in turn); the threads of a process share its
    # Redis and HTTP connections. SMSD_SEND_CONCURRENCY threads unless -c says
    # otherwise (see _pool_supported and docs/operations.md). Celery reads
    # "-P prefork" (its default's name) as no -P at all: prefork is -P processes.
    worker_pool="threads",
    # One task per thread at a time: no bulk chunks sit prefetched in front of an OTP.
    worker_prefetch_multiplier=1,
    # Results are never read (the ledger is the state): don't store them.
    task_ignore_result=True,
    result_backend=None,
    # Shared by the pool's threads: otherwise each thread builds its own (disabled)
    # backend on its first task, scanning every installed package's entry points:
    # 10 % of the worker's CPU over a 2M-recipient job with 128 threads (py-spy --gil).
    result_backend_thread_safe=True,
    task_serializer="json",
    accept_content=["json"],
    # Task events (what Flower shows) cost three Redis PUBLISHes per task; the
    # profile of a 1M-recipient job put a third of the worker's time there. They
    # are off until someone watches: Flower turns them on in every worker when it
    # starts (its --enable-events, on by default) and keeps them on. Args are ids
    # only, so nothing personal shows there. SMSD_TASK_EVENTS=1 forces them on.
    worker_send_task_events=settings.task_events,
    task_send_sent_event=False,
    broker_connection_retry_on_startup=True,
    # A redis-server restart must not end the worker: its consumer reconnects
    # for as long as it takes (the ledger, not the broker, knows what is left to
    # send, and the orphan sweep re-queues tasks the outage swallowed).
    broker_connection_retry=True,
    broker_connection_max_retries=None,
    # Tasks running when the connection drops finish their work (their own Redis
    # client rides the outage out); cancelling them would cut sends mid-request
    # and make their chunks ambiguous for nothing. Their acks are lost with the
    # old connection: the redelivered copies find the chunk no longer pending.
    worker_cancel_long_running_tasks_on_connection_loss=False,
    # Publishing (fan-out, retries, beat's sweeps) rides out a restart too:
    # 0 + 0.5 + 1 + 1.5 + 2 x 6 s ≈ 15 s before the task fails, and a chunk left
    # pending by a failed publish is re-queued by the orphan sweep.
    task_publish_retry_policy={"max_retries": 10, "interval_start": 0, "interval_step": 0.5, "interval_max": 2},
    worker_hijack_root_logger=False,
    beat_schedule={
        "sweep": {"task": "workers.tasks.sweep", "schedule": settings.sweep_every_s},
        # A tick, not the poll period: each account's limit sets the pace (tasks.poll_receipts).
        "poll-receipts": {"task": "workers.tasks.poll_receipts", "schedule": settings.receipt_tick_s,
                          "options": {"queue": settings.queue_otp}},
        "check-paused": {"task": "workers.tasks.check_paused", "schedule": settings.check_paused_every_s},
        "route-failover": {"task": "workers.tasks.route_failover", "schedule": settings.sweep_every_s},
    },
)


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    """Our JSON logs (phones masked) instead of Celery's default set-up."""
    configure(settings.log_level)


#: Pools the send path is built for, and why the others are refused.
SUPPORTED_POOLS = ("threads", "prefork")
REFUSED_POOLS = {
    "solo": "runs one task at a time in the thread that fetches tasks: one request in flight, "
            "and an OTP waits behind the bulk task being sent",
    "gevent": "greenlets: the per-account send gates and the limiter's sleep-until-slot are built on "
              "preemptive threads, and a CPU-bound moment (building a 1000-phone request) stalls every "
              "greenlet's slot; not measured, not supported",
    "eventlet": "as gevent: greenlets, not the threads the send path is built and measured on",
}


def pool_name(pool: Any) -> str:
    """Celery's alias of a pool class (``threads``, ``prefork``, ``solo``, ``gevent``…), from its module."""
    module = getattr(pool, "__module__", str(pool)).rsplit(".", 1)[-1]
    return {"thread": "threads", "asynpool": "prefork", "prefork": "prefork"}.get(module, module)


def pool_refusal(pool: Any) -> str | None:
    """Why the worker must not start with ``pool`` (a pool class), or ``None`` for a supported one."""
    name = pool_name(pool)
    if name in SUPPORTED_POOLS:
        return None
    why = REFUSED_POOLS.get(name, "not one the send path was built and measured on")
    return (f"sms-dispatch: the Celery pool {name!r} is not supported ({why}); "
            f"use -P threads (the default, {settings.send_concurrency} threads = requests in flight "
            f"per process, see SMSD_SEND_CONCURRENCY) or -P processes (prefork)")


@celeryd_init.connect
def _pool_supported(options: dict[str, Any] | None = None, **_: Any) -> None:
    """Refuse an unsupported pool before the worker starts; give a threads pool its default size."""
    pool = (options or {}).get("pool")
    refusal = pool_refusal(pool) if pool is not None else None
    if refusal:
        raise SystemExit(refusal)
    if pool is not None and pool_name(pool) == "threads" and not (options or {}).get("concurrency"):
        app.conf.worker_concurrency = settings.send_concurrency


@worker_init.connect
def _threads_share_connections(sender: Any = None, **_: Any) -> None:
    """A threads pool: every account's HTTP connection pool holds as many connections as threads
    (requests beyond it would open and drop a connection each), and the runtime is built now."""
    if sender is not None and pool_name(sender.pool_cls) == "threads":
        http.set_pool_size(int(sender.concurrency))
        warm_runtime()


@worker_process_init.connect
def _fresh_runtime(**_: Any) -> None:
    """A forked pool process must not share the parent's Redis or HTTP connections.

    It builds its own runtime and clients right away, so the first task it runs
    (often an OTP) does not pay for that.
    """
    reset_runtime()
    warm_runtime()
    freeze_startup_objects()


def freeze_startup_objects() -> None:
    """Move everything loaded at start (Celery, kombu, clients, accounts) out of the collector's sight.

    A full collection otherwise walks all of it: 91 and 94 ms in a threads
    worker during a 2M-recipient job, every thread stopped meanwhile, so a
    window's worth of calls went out late together and moved the account's
    slots back (``DEFER``). Nothing frozen is freed later; these objects live
    as long as the process anyway.
    """
    gc.collect()
    gc.freeze()


@worker_ready.connect
def _freeze_after_start(**_: Any) -> None:
    """The worker is up (a threads pool's runtime built): freeze what start-up loaded."""
    freeze_startup_objects()


@worker_init.connect
def _fresh_metrics_dir(**_: Any) -> None:
    """Clear the worker's PROMETHEUS_MULTIPROC_DIR of a previous run's files before the pool forks (metrics_export)."""
    metrics_export.prepare_dir()


@worker_process_shutdown.connect
def _metrics_process_gone(**_: Any) -> None:
    """A pool process exits: prometheus_client's bookkeeping for its pid (``mark_process_dead``)."""
    metrics_export.process_exited(os.getpid())


class ReceiptApplier(bootsteps.StartStopStep):
    """Every worker applies recorded receipts from the stream in a thread of its main process.

    Started after the pool, so the pool's processes are not forked from a
    process already running it; its Redis client is its own. A worker killed
    mid-batch leaves its entries pending in the group: another worker's
    applier claims them (dispatcher.receipt_stream). SMSD_RECEIPT_APPLIER=0
    turns it off for workers that should only send.
    """

    requires: ClassVar[set[str]] = {"celery.worker.components:Pool"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._stop: Any = None

    def start(self, parent: Any) -> None:
        import os

        from dispatcher import job_events
        from dispatcher.ledger import Ledger
        from dispatcher.receipt_stream import applier_thread
        from dispatcher.redis_connection import connect

        if not settings.receipt_applier:
            return
        ledger = Ledger(connect(settings), Keys(settings.key_prefix), job_ttl_s=settings.job_ttl_s,
                        outcome_feed_max=settings.outcome_feed_max)
        _, self._stop = applier_thread(ledger, f"{parent.hostname}:{os.getpid()}",
                                       claim_idle_ms=settings.receipt_claim_idle_ms,
                                       after_step=job_events.handing_out(ledger, settings))

    def stop(self, parent: Any) -> None:
        if self._stop is not None:
            self._stop.set()


app.steps["worker"].add(ReceiptApplier)
