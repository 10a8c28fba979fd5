"""Thin Celery tasks: each loads state, calls one dispatcher function, schedules what is next.

Task arguments are ids only (job id, chunk number, provider/account names):
no phone number or message text ever reaches the broker or Flower.
"""

from __future__ import annotations

import importlib
import os
import socket
import time
from typing import Any

import structlog
from celery import current_task, shared_task

from dispatcher import job_events, pauses, reconcile, sweeps
from dispatcher.providers import registry
from dispatcher.providers.base import system_clock_ms
from dispatcher.receipt_stream import record
from dispatcher.receipts import store_uplinks
from dispatcher.runtime import Runtime, get_runtime
from dispatcher.sending import chunks_per_task
from dispatcher.sending import send_chunk as send_one_chunk

log = structlog.get_logger("workers.tasks")

# Every gateway's client is imported here, in the worker's main process, so the pool
# processes forked from it start with them loaded (measured: importing them in each
# of 8 children cost ~2 s of CPU at the start of a benchmark run).
for _plug in registry.gateways():
    for _module in _plug.preload:
        importlib.import_module(_module)


def _queue_of(job: dict[str, str]) -> str:
    return pauses.queue_of(get_runtime().settings, job)


def enqueue_chunks(job_id: str, first: int, count: int, queue: str, *, per_task: int = 1,
                   countdown_s: float | None = None) -> None:
    """Queue chunks ``first … first+count-1`` of a job on ``queue``, ``per_task`` chunks per task.

    Their due time feeds the orphan sweep; it is written once for all of them
    after they are published, so a 1000-chunk fan-out costs one extra call, not 1000.
    """
    end = first + count
    for n in range(first, end, per_task):
        size = min(per_task, end - n)
        send_chunk.apply_async((job_id, n) if size == 1 else (job_id, n, size), queue=queue, countdown=countdown_s)
    get_runtime().ledger.nudged(job_id, range(first, end), due_ms=system_clock_ms() + int((countdown_s or 0) * 1000))


def enqueue_chunk(job_id: str, n: int, queue: str, countdown_s: float | None = None) -> None:
    """Queue ``send_chunk(job_id, n)`` on ``queue`` and note when it is due (for the orphan sweep)."""
    enqueue_chunks(job_id, n, 1, queue, countdown_s=countdown_s)


@shared_task(name="workers.tasks.fanout")
def fanout(job_id: str) -> int:
    """Queue the send tasks of a stored job; return how many chunks."""
    rt = get_runtime()
    job = rt.ledger.job(job_id)
    if not job:
        return 0
    queue = _queue_of(job)
    chunks = int(job["chunks"])
    if chunks == 1:
        # An OTP, usually: send it from here instead of queueing one more task
        # that would wait behind the bulk ones again.
        log.info("job.fanout", job_id=job_id, chunks=1, per_task=1, queue=queue, kind=job["kind"], inline=True)
        _send_chunks(rt, job_id, 0, 1)
        return 1
    interval_s = rt.limiter.interval_s(job["provider"], job["account"], "send")
    per_task = chunks_per_task(chunks, rt.settings.chunks_per_task, per_s=1 / interval_s if interval_s else None)
    enqueue_chunks(job_id, 0, chunks, queue, per_task=per_task)
    log.info("job.fanout", job_id=job_id, chunks=chunks, per_task=per_task, queue=queue, kind=job["kind"])
    return chunks


@shared_task(name="workers.tasks.send_chunk")
def send_chunk(job_id: str, n: int, count: int = 1) -> str:
    """Send chunks ``n … n+count-1`` in turn; re-queue those the limiter or a retryable error holds back.

    Each chunk is claimed on its own, so a task redelivered after its worker died
    only sends the chunks that are still pending.
    """
    return _send_chunks(get_runtime(), job_id, n, count)


def _claimer() -> str:
    """Who claims the chunks: this worker's node name (``w0@host``) and pool process id."""
    node = getattr(current_task.request, "hostname", None) if current_task else None
    return f"{node or socket.gethostname()}:{os.getpid()}"


def _send_chunks(rt: Runtime, job_id: str, n: int, count: int) -> str:
    """Send chunks ``n … n+count-1``; return the last one's note (for the task's log line).

    They go one after another: the worker's other threads send other tasks'
    chunks meanwhile (dispatcher/pacing.py). An OTP job's chunk takes the next
    free slot; a bulk chunk queues at its account's gate.
    """
    note = ""
    claimer = _claimer()
    urgent = _queue_of(rt.ledger.job_meta(job_id)) == rt.settings.queue_otp
    for i in range(n, n + count):
        nxt = send_one_chunk(rt, job_id, i, claimer=claimer, urgent=urgent)
        note = nxt.note
        if nxt.hold_rest:
            # Rate limit, throttle or pause: the rest of this task's chunks would
            # meet the same answer; they wait with this one (a pause leaves them
            # pending until the account is resumed).
            if nxt.retry_in_s is not None:
                rest = n + count - i
                meta = rt.ledger.job_meta(job_id)
                enqueue_chunks(job_id, i, rest, _queue_of(meta), per_task=rest, countdown_s=nxt.retry_in_s)
            break
        if nxt.retry_in_s is not None:
            enqueue_chunk(job_id, i, _queue_of(rt.ledger.job_meta(job_id)), nxt.retry_in_s)
    return note


@shared_task(name="workers.tasks.sweep")
def sweep() -> dict[str, int]:
    """Repair what needs time to show: stuck, ambiguous, silent, scheduled; forget expired jobs."""
    rt = get_runtime()
    now = system_clock_ms()
    stuck = sweeps.stuck_to_ambiguous(rt, now_ms=now)
    due = sweeps.due_ambiguous(rt, now_ms=now)
    for job_id, n in due.released:
        enqueue_chunk(job_id, n, _queue_of(rt.ledger.job_meta(job_id)))
    for job_id, n in due.to_query:
        reconcile_chunk.apply_async((job_id, n), queue=_queue_of(rt.ledger.job_meta(job_id)))
    orphans = sweeps.orphaned_pending(rt, now_ms=now)
    for job_id, n in orphans:
        enqueue_chunk(job_id, n, _queue_of(rt.ledger.job_meta(job_id)))
    unknown = sweeps.expire_silent(rt, now_ms=now)
    scheduled = sweeps.due_scheduled(rt, now_ms=now)
    for job_id in scheduled:
        fanout.apply_async((job_id,), queue=_queue_of(rt.ledger.job_meta(job_id)))
    expired = sweeps.trim_expired_jobs(rt, now_ms=now)
    events = job_events.deliver(rt.ledger, _event_sender(rt), now_ms=now)
    result = {"stuck": stuck, "resent_after_reconcile": len(due.released), "asked_before_resend": len(due.to_query),
              "orphans_requeued": len(orphans), "unknown": unknown, "scheduled": len(scheduled),
              "expired_jobs": expired, "job_events": events}
    if any(result.values()):
        log.info("sweep", **result)
    return result


_senders: dict[int, job_events.Sender | None] = {}


def _event_sender(rt: Runtime) -> job_events.Sender | None:
    """The app's job event sender for this runtime (one broker client per process, not per sweep)."""
    if id(rt) not in _senders:
        _senders.clear()
        _senders[id(rt)] = job_events.sender(rt.settings)
    return _senders[id(rt)]


@shared_task(name="workers.tasks.reconcile_chunk")
def reconcile_chunk(job_id: str, n: int) -> str:
    """Ask the gateway about an ambiguous chunk (receipts by its id); re-queue it if unknown there."""
    rt = get_runtime()
    outcome = reconcile.reconcile_chunk(rt, job_id, n)
    if outcome is reconcile.Outcome.RELEASED:
        enqueue_chunk(job_id, n, _queue_of(rt.ledger.job_meta(job_id)))
    return outcome.value


#: Most polls of one kind one tick reserves for an account (a fast test limit
#: may allow several a tick; the documented 1/min allows one).
POLLS_PER_TICK_MAX = 20


@shared_task(name="workers.tasks.poll_receipts")
def poll_receipts() -> dict[str, int]:
    """Beat's tick: reserve each account's next receipt (and reply) poll slots due within the tick.

    Each reserved poll is queued to run right at its slot, so an account is
    polled exactly as often as its limit allows (1/min by default: every
    minute, never sooner), and a full answer is followed by the next poll as
    soon as the limit allows, whatever the tick's phase.
    """
    rt = get_runtime()
    queued = 0
    for account in rt.accounts:
        for op in registry.gateway(account.provider).polls:
            for _ in range(POLLS_PER_TICK_MAX):
                wait_s = rt.limiter.reserve(account.provider, account.name, op, within_s=rt.settings.receipt_tick_s)
                if wait_s is None:
                    break
                due_ms = system_clock_ms() + int(wait_s * 1000)
                poll_account.apply_async((account.provider, account.name, op, due_ms), countdown=wait_s,
                                         queue=rt.settings.queue_otp)
                queued += 1
    return {"queued": queued}


@shared_task(name="workers.tasks.poll_account")
def poll_account(provider: str, name: str, op: str, due_ms: int) -> int:
    """Pull one account's receipts (or replies) at the slot reserved for it; return how many came.

    Receipts go onto the receipt stream before anything else can fail: the
    gateway returns each only once. A poll that ran late moves the account's
    next slots back by as much, so two polls are never closer than the limit.
    """
    rt = get_runtime()
    late_s = (system_clock_ms() - due_ms) / 1000.0
    if late_s < 0:
        time.sleep(-late_s)  # a countdown is rounded; never call before the slot
    elif late_s > rt.limiter.jitter_s / 2:
        rt.limiter.defer(provider, name, op, late_s)
    started_ms = system_clock_ms()  # when the request leaves: what the gateway's limit sees
    try:
        items = getattr(rt.client(provider, name), registry.gateway(provider).polls[op])()
    except Exception as exc:  # noqa: BLE001 - a failed poll is retried at the next slot
        log.warning("receipts.poll_failed", provider=provider, account=name, op=op, error=type(exc).__name__)
        return 0
    if op == "replies":  # a reply that unsubscribes lists its phone (the account's rules)
        rules = rt.accounts.get(provider, name).unsubscribe
        return store_uplinks(rt.redis, rt.keys, provider, name, items, rules).kept
    count = record(rt.redis, rt.keys.receipt_stream(), provider, name, items, source="pull",
                   now_ms=system_clock_ms())
    log.info("receipts.polled", provider=provider, account=name, receipts=count, started_ms=started_ms)
    return count


def _publish_chunk(job_id: str, n: int, queue: str) -> None:
    send_chunk.apply_async((job_id, n), queue=queue)


def resume_account(provider: str, account: str, *, automatic: bool = False) -> int | None:
    """Clear an account's pause and re-queue its pending chunks; return how many (:func:`dispatcher.pauses.resume`).

    ``automatic`` (beat's check) leaves an operator's pause alone and returns ``None``.
    """
    return pauses.resume(get_runtime(), provider, account, _publish_chunk, automatic=automatic)


@shared_task(name="workers.tasks.check_paused")
def check_paused() -> list[str]:
    """Resume accounts paused by an account-fatal error whose balance check now succeeds with credit left.

    An operator's pause is never lifted here, and costs no balance query; nor is the pause
    of a channel with no balance query (:func:`dispatcher.pauses.resumable_by_balance`).
    """
    rt = get_runtime()
    resumed = []
    for account in pauses.resumable_by_balance(rt):
        # Balance shares opass's query budget with the polls beat reserves ahead: queue like them.
        if rt.limiter.acquire(account.provider, account.name, "balance",
                              max_wait_s=rt.settings.shared_budget_wait_s) < 0:
            continue
        try:
            balance = rt.client(account.provider, account.name).balance()
        except Exception as exc:  # noqa: BLE001 - still failing: stay paused
            log.info("account.still_paused", provider=account.provider, account=account.name,
                     error=type(exc).__name__)
            continue
        # An operator may have paused it meanwhile: the resume itself keeps such a pause.
        if balance.total > 0 and resume_account(account.provider, account.name, automatic=True) is not None:
            resumed.append(f"{account.provider}:{account.name}")
    return resumed


_route_producers: dict[int, Any] = {}


@shared_task(name="workers.tasks.route_failover")
def route_failover() -> int:
    """Move the pending recipients of route accounts paused past their cooldown (:mod:`dispatcher.route_failover`)."""
    from dispatcher.producer import Dispatcher
    from dispatcher.route_failover import failover

    rt = get_runtime()
    if not rt.accounts.routes:
        return 0
    if id(rt) not in _route_producers:  # one producer (and broker client) per process
        _route_producers.clear()
        _route_producers[id(rt)] = Dispatcher(rt.settings, accounts=rt.accounts, client=rt.redis)
    return failover(_route_producers[id(rt)], now_ms=system_clock_ms())
