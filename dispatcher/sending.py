"""Sending one chunk: claim it with its rate-limit slot, call the gateway, record the outcome.

What happens after each error class (DESIGN.md):

* transient → back to ``pending``, retried with exponential backoff and jitter;
* throttled → back to ``pending``, the account's limiter slowed down, retried after
  the gateway's delay;
* ambiguous → ``ambiguous``; never resent until the reconcile window passes
  with no receipt carrying the chunk's id (see :mod:`dispatcher.sweeps`);
* request/recipient rejected → ``rejected`` (recorded per phone);
* account-fatal → the account is paused and the chunk goes back to ``pending``
  (as do all its other chunks, which find the pause when claimed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from dispatcher import metrics
from dispatcher.account_health import observe
from dispatcher.backoff import backoff_s
from dispatcher.deliveries import CodeEntry, clean_id
from dispatcher.errors import (
    AccountFatalError,
    AmbiguousError,
    ConfigurationError,
    ProviderError,
    ThrottledError,
    TransientError,
    ValidationError,
)
from dispatcher.keys import client_id
from dispatcher.ledger import UNREPLICATED, Claim
from dispatcher.pauses import pause_after_fatal
from dispatcher.providers import registry
from dispatcher.providers.base import system_clock_ms
from dispatcher.runtime import Runtime

log = structlog.get_logger("dispatcher.sending")


@dataclass(frozen=True, slots=True)
class Next:
    """What the task should do next: nothing (``retry_in_s`` None) or run again later.

    ``hold_rest`` says the account, not the chunk, is the reason (rate limit,
    throttle, pause): the task's other chunks should wait too.
    """

    retry_in_s: float | None = None
    note: str = ""
    hold_rest: bool = False


#: A job is spread over at least this many send tasks (while chunks allow): a
#: task sends its chunks in turn, so this many are in flight at once even for a
#: small job, enough to keep an account at its limit with the gateway 200 ms away.
SPREAD_TASKS = 64
#: A send task holds at most this much of its account's limit (in seconds of
#: it): a thread that frees up takes the next task, an OTP first, so an OTP
#: waits about this long for a thread, whatever the account's limit.
TASK_SPAN_S = 0.03


def chunks_per_task(chunks: int, most: int, *, per_s: float | None = None) -> int:
    """How many chunks one send task takes: 1 for small jobs, up to ``most`` for big ones.

    Each Celery task costs the worker about as much CPU as the HTTP call it
    makes (broker fetch, unacked bookkeeping, ack, pool hand-off): measured on a
    1M-recipient job, 8 chunks a task halved the workers' CPU per chunk. With
    ``per_s`` (the account's send limit, requests/s) a task holds no more than
    :data:`TASK_SPAN_S` of it: one chunk a task at 5/s, 8 at 300/s.
    """
    if per_s is not None:
        most = min(most, max(1, int(per_s * TASK_SPAN_S)))
    return max(1, min(most, -(-chunks // SPREAD_TASKS)))


def call_gateway(rt: Runtime, job: dict[str, str], phones: Sequence[str], payloads: Sequence[Any] | None,
                 cid: str) -> Any:
    """Make the one gateway call a chunk of this job's kind needs (its plug's); return its SendResult.

    Raises ``ConfigurationError`` for a kind no gateway declares, or the client's errors.
    """
    client = rt.client(job["provider"], job["account"])
    send = registry.job_kind(job["kind"]).send
    started_s = time.perf_counter()
    try:
        result = send(client, job, phones, payloads, cid)
    except Exception as exc:
        metrics.gateway_call(job, len(phones), started_s, exc)
        raise
    metrics.gateway_call(job, len(phones), started_s, None, getattr(result, "code", None))
    return result


def claim_chunk(rt: Runtime, job_id: str, n: int, provider: str, account: str, *, urgent: bool,
                clock_ms: Callable[[], int] = system_clock_ms, claimer: str = "", caps: Any = None) -> Claim:
    """Claim chunk ``n`` with its rate-limit slot and, once claimed, sleep until that slot is due.

    One round trip takes the slot and claims the chunk; the wait for the slot
    comes after, so the request leaves right when it is due. An ``urgent``
    chunk (an OTP) takes the next free slot at once; a bulk chunk claims under
    a permit of its account's gate in this process (:mod:`dispatcher.pacing`),
    so bulk holds no more than ``SMSD_SEND_AHEAD_S`` of slots ahead of an OTP.
    A ``wait`` claim (nothing claimed) says when to come back. ``caps``: the account's
    frequency caps for the job's priority (:meth:`Accounts.cap_rule`), checked in the claim.
    """
    s = rt.settings
    reserve_ms = s.limiter_max_wait_s * 1000

    def claim_and_sleep() -> Claim:
        asked_s = time.monotonic()
        slot = rt.limiter.slot_script_args(provider, account, "send", reserve_ms=reserve_ms)
        claim = rt.ledger.claim(job_id, n, provider=provider, account=account, now_ms=clock_ms(), slot=slot,
                                claimer=claimer, caps=caps)
        if claim.status == "ok":
            rt.limiter.sleep_until_slot(provider, account, "send", claim.wait_s, asked_s=asked_s)
        return claim

    if urgent:
        return claim_and_sleep()
    interval_s = rt.limiter.interval_s(provider, account, "send")
    gate = rt.gates(provider, account, ahead_s=s.send_ahead_s, interval_s=interval_s)
    with gate.turn(max_wait_s=s.limiter_max_wait_s, interval_s=interval_s) as come_back_s:
        if come_back_s is not None:
            return Claim("wait", wait_s=come_back_s)
        return claim_and_sleep()


def send_chunk(rt: Runtime, job_id: str, n: int, *, clock_ms: Callable[[], int] = system_clock_ms,
               claimer: str = "", urgent: bool = False) -> Next:
    """Send chunk ``n`` of a job once, recording the outcome in the ledger (and ``claimer`` on its claim).

    Two Redis round trips on the way: the claim (which takes the rate-limit
    slot and returns the chunk's phones) and the outcome; the job's meta is
    cached. ``urgent``: see :func:`claim_chunk`.
    """
    job = rt.ledger.job_meta(job_id)
    if not job:
        return Next(note="job expired or unknown")
    provider, account = job["provider"], job["account"]
    bound = log.bind(job_id=job_id, chunk=n, provider=provider, account=account)
    claim = claim_chunk(rt, job_id, n, provider, account, urgent=urgent, clock_ms=clock_ms, claimer=claimer,
                        caps=rt.accounts.cap_rule(provider, account, job.get("priority", "")))
    if claim.status == "wait":
        return Next(retry_in_s=claim.wait_s, note="rate limit", hold_rest=True)
    if claim.status == UNREPLICATED:
        # No replica holds the claim (replica down or far behind): sending now could
        # be repeated after a failover. The chunk is pending again; every chunk would
        # meet the same answer, so the task's others wait with it.
        bound.warning("chunk.claim_unreplicated", detail=claim.detail)
        return Next(retry_in_s=rt.settings.retry_base_s, note=f"{UNREPLICATED}: {claim.detail}", hold_rest=True)
    if claim.status != "ok":
        bound.info("chunk.not_claimed", status=claim.status, detail=claim.detail)
        return Next(note=f"{claim.status}: {claim.detail}", hold_rest=claim.status == "paused")
    attempt, phones = claim.attempt, claim.phones
    cid = client_id(job_id, n, attempt)
    bound = bound.bind(attempt=attempt, size=len(phones))
    try:
        result = call_gateway(rt, job, *claim.sendable(), cid)  # less the phones a frequency cap holds back
    except (ProviderError, ValidationError, ConfigurationError) as exc:
        if not isinstance(exc, ThrottledError | AccountFatalError | ConfigurationError):  # those pause or slow down
            observe(rt, provider, account, ok=False)
        return _record_failure(rt, bound, job_id, n, attempt, provider, account, exc, clock_ms)
    observe(rt, provider, account, ok=True)
    failed: list[tuple[int, CodeEntry]] = []
    if result.failed:  # the index of 1000 phones is built only when some failed
        index = {p: i for i, p in enumerate(phones)}
        failed = sorted(((index[f.phone], CodeEntry.clean(f.code, f.description))
                         for f in result.failed if f.phone in index), key=lambda pair: pair[0])
    outcome = rt.ledger.accept(job_id, n, attempt=attempt, message_id=clean_id(result.message_id),
                               failed_indexes=[i for i, _ in failed], failed_codes=[c for _, c in failed],
                               now_ms=clock_ms(), provider=provider)
    bound.info("chunk.accepted", message_id=result.message_id, failed=len(failed), ledger=outcome)
    return Next(note="accepted")


def _record_failure(rt: Runtime, bound: Any, job_id: str, n: int, attempt: int, provider: str, account: str,
                    exc: Exception, clock_ms: Callable[[], int]) -> Next:
    now = clock_ms()
    code = str(getattr(exc, "code", None) or type(exc).__name__)
    s = rt.settings
    if isinstance(exc, ThrottledError):
        factor = rt.limiter.slow_down(provider, account, "send")
        rt.ledger.release(job_id, n, attempt=attempt, expected="sending", code=code, now_ms=now)
        bound.warning("chunk.throttled", code=code, slow_factor=factor)
        return Next(retry_in_s=max(exc.retry_after_s, 0.1), note="throttled", hold_rest=True)
    if isinstance(exc, TransientError) and attempt >= s.max_attempts:
        # Recorded as rejected with the reason, so nothing waits forever unseen.
        rt.ledger.reject(job_id, n, attempt=attempt, code=f"gave-up:{code}", now_ms=now, detail=str(exc))
        bound.error("chunk.gave_up", code=code, attempts=attempt)
        return Next(note="gave up")
    if isinstance(exc, TransientError):
        rt.ledger.release(job_id, n, attempt=attempt, expected="sending", code=code, now_ms=now)
        delay = backoff_s(attempt, base_s=s.retry_base_s, cap_s=s.retry_cap_s)
        bound.warning("chunk.transient", code=code, retry_in_s=round(delay, 2))
        return Next(retry_in_s=delay, note="transient")
    if isinstance(exc, AmbiguousError):
        deadline = now + int(rt.reconcile_window_s(provider, account) * 1000)
        rt.ledger.mark_ambiguous(job_id, n, attempt=attempt, deadline_ms=deadline, code=code, now_ms=now)
        bound.warning("chunk.ambiguous", code=code, reconcile_at_ms=deadline)
        return Next(note="ambiguous")
    if isinstance(exc, AccountFatalError | ConfigurationError):
        pause_after_fatal(rt, provider, account, f"{code}: {exc}")
        rt.ledger.release(job_id, n, attempt=attempt, expected="sending", code=code, now_ms=now)
        bound.error("account.paused", code=code, reason=str(exc))
        return Next(note="account paused", hold_rest=True)
    # RequestRejectedError, RecipientRejectedError, ValidationError: resending cannot help.
    rt.ledger.reject(job_id, n, attempt=attempt, code=code, now_ms=now, detail=str(exc))
    bound.error("chunk.rejected", code=code, reason=str(exc))
    return Next(note="rejected")

