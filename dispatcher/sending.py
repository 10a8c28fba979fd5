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
from dispatcher.pauses import pause_after_fatal
from dispatcher.providers import registry
from dispatcher.providers.base import system_clock_ms
from dispatcher.runtime import Runtime

log = structlog.get_logger("dispatcher.sending")


@dataclass(frozen=True, slots=True)
class Next:
    """What the task should do next: nothing (``retry_in_s`` None) or run again later.

    ``hold_rest`` says the account, not the chunk, is the reason (rate limit,
    throttle, pause): the task's other chunks should wait too. ``limited`` says
    the chunk went out but had to wait for its rate-limit slot: the account's
    limit, not the CPU, sets the pace.
    """

    retry_in_s: float | None = None
    note: str = ""
    hold_rest: bool = False
    limited: bool = False


#: A wait for the limiter's slot this long means the account's limit, not the
#: CPU, sets the pace (a limit far out of the way makes racing workers wait
#: microseconds, which must not count).
PACED_WAIT_S = 0.001
#: A job is spread over at least this many send tasks (while chunks allow), so
#: every worker process of a typical deployment gets a share of it.
SPREAD_TASKS = 16


def chunks_per_task(chunks: int, most: int) -> int:
    """How many chunks one send task takes: 1 for small jobs, up to ``most`` for big ones.

    Each Celery task costs the worker about as much CPU as the HTTP call it
    makes (broker fetch, unacked bookkeeping, ack, pool hand-off): measured on a
    1M-recipient job, 8 chunks a task halved the workers' CPU per chunk.
    """
    return max(1, min(most, -(-chunks // SPREAD_TASKS)))


def call_gateway(rt: Runtime, job: dict[str, str], phones: Sequence[str], payloads: Sequence[Any] | None,
                 cid: str) -> Any:
    """Make the one gateway call a chunk of this job's kind needs (its plug's); return its SendResult.

    Raises ``ConfigurationError`` for a kind no gateway declares, or the client's errors.
    """
    client = rt.client(job["provider"], job["account"])
    return registry.job_kind(job["kind"]).send(client, job, phones, payloads, cid)


def send_chunk(rt: Runtime, job_id: str, n: int, *, clock_ms: Callable[[], int] = system_clock_ms,
               claimer: str = "") -> Next:
    """Send chunk ``n`` of a job once, recording the outcome in the ledger (and ``claimer`` on its claim).

    Two Redis round trips on the way: the claim (which takes the rate-limit
    slot and returns the chunk's phones) and the outcome; the job's meta is cached.
    """
    job = rt.ledger.job_meta(job_id)
    if not job:
        return Next(note="job expired or unknown")
    provider, account = job["provider"], job["account"]
    bound = log.bind(job_id=job_id, chunk=n, provider=provider, account=account)
    # One round trip takes the rate-limit slot and claims the chunk; the wait
    # for the slot comes after, so the request leaves right when it is due.
    asked_s = time.monotonic()
    slot = rt.limiter.slot_script_args(provider, account, "send", reserve_ms=rt.settings.limiter_max_wait_s * 1000)
    claim = rt.ledger.claim(job_id, n, provider=provider, account=account, now_ms=clock_ms(), slot=slot,
                            claimer=claimer, caps=rt.accounts.cap_rule(provider, account, job.get("priority", "")))
    if claim.status == "wait":
        return Next(retry_in_s=claim.wait_s, note="rate limit", hold_rest=True)
    if claim.status != "ok":
        bound.info("chunk.not_claimed", status=claim.status, detail=claim.detail)
        return Next(note=f"{claim.status}: {claim.detail}", hold_rest=claim.status == "paused")
    rt.limiter.sleep_until_slot(provider, account, "send", claim.wait_s, asked_s=asked_s)
    attempt, phones = claim.attempt, claim.phones
    cid = client_id(job_id, n, attempt)
    bound = bound.bind(attempt=attempt, size=len(phones))
    try:
        result = call_gateway(rt, job, *claim.sendable(), cid)  # less the phones a frequency cap holds back
    except (ProviderError, ValidationError, ConfigurationError) as exc:
        return _record_failure(rt, bound, job_id, n, attempt, provider, account, exc, clock_ms)
    failed: list[tuple[int, CodeEntry]] = []
    if result.failed:  # the index of 1000 phones is built only when some failed
        index = {p: i for i, p in enumerate(phones)}
        failed = sorted(((index[f.phone], CodeEntry.clean(f.code, f.description))
                         for f in result.failed if f.phone in index), key=lambda pair: pair[0])
    outcome = rt.ledger.accept(job_id, n, attempt=attempt, message_id=clean_id(result.message_id),
                               failed_indexes=[i for i, _ in failed], failed_codes=[c for _, c in failed],
                               now_ms=clock_ms(), provider=provider)
    bound.info("chunk.accepted", message_id=result.message_id, failed=len(failed), ledger=outcome)
    return Next(note="accepted", limited=claim.wait_s >= PACED_WAIT_S)


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

