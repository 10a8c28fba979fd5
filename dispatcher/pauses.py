"""Pausing and resuming an account: by an operator, after an account-fatal error, by beat's balance check.

An account is paused while ``P:acct:{provider}:{name}:paused`` holds a reason;
the claim script then leaves its chunks ``pending``. Two kinds of pause share
that key and are told apart by the reason: an operator's starts with
:data:`OPERATOR_PREFIX`, an account-fatal one with the vendor's code. Beat's
balance check (``workers.tasks.check_paused``) lifts only the second kind: a
balance that came back says nothing about why an operator stopped the account.

:func:`resume` is the one resume there is: the producer API, the CLI and beat
call it, each with its own way of publishing a chunk's send task (the producer
by task name through :mod:`dispatcher.enqueue`, the worker with the task itself).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog

from dispatcher import sweeps
from dispatcher.config.accounts import AccountConfig
from dispatcher.config.settings import Settings
from dispatcher.providers import registry
from dispatcher.providers.base import system_clock_ms
from dispatcher.runtime import Runtime

log = structlog.get_logger("dispatcher.pauses")

#: How an operator's pause reason starts (shown as is by ``status``: ``operator: maintenance``).
OPERATOR_PREFIX = "operator: "
DEFAULT_REASON = "paused by an operator"
#: Longest operator reason kept (it is shown in every status line).
MAX_REASON_CHARS = 200

#: Publishes the send task of chunk ``n`` of a job on a queue: ``publish(job_id, n, queue)``.
Publish = Callable[[str, int, str], None]

# Delete the pause unless it is an operator's, in one step: an operator who pauses
# while beat's balance check is under way must not see that check lift the pause.
# KEYS: paused; ARGV: operator prefix. Returns 1 if the key is gone (deleted or absent), 0 if kept.
_LIFT_UNLESS_OPERATOR = """
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1])) == ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


def operator_reason(reason: str | None) -> str:
    """The stored form of an operator's pause reason: one line, clipped, with :data:`OPERATOR_PREFIX`. Pure."""
    text = " ".join((reason or "").split())[:MAX_REASON_CHARS] or DEFAULT_REASON
    return OPERATOR_PREFIX + text


def by_operator(stored: str | bytes | None) -> bool:
    """Whether a stored pause reason is an operator's (``None``: not paused). Pure."""
    if stored is None:
        return False
    text = stored.decode("utf-8", "replace") if isinstance(stored, bytes) else stored
    return text.startswith(OPERATOR_PREFIX)


def queue_of(settings: Settings, job_meta: Mapping[str, str]) -> str:
    """The queue a job's tasks go to: OTP jobs jump the bulk queue. Pure."""
    return settings.queue_otp if job_meta.get("priority") == "otp" else settings.queue_bulk


def pause(rt: Runtime, provider: str, account: str, reason: str | None = None) -> None:
    """Pause a configured account for an operator (replacing any pause there is).

    Chunks already in a worker's hands finish; every later claim finds the pause
    and leaves its chunk ``pending``. Raises ``ConfigurationError`` for an
    account that is not configured.
    """
    rt.accounts.get(provider, account)
    stored = operator_reason(reason)
    rt.redis.set(rt.keys.paused(provider, account), stored)
    log.warning("account.paused", provider=provider, account=account, by="operator", reason=stored)


def pause_after_fatal(rt: Runtime, provider: str, account: str, reason: str) -> bool:
    """Pause an account after an account-fatal answer, unless it is paused already; return whether this paused it.

    An existing pause is kept: an operator's must survive a chunk that was in
    flight when it was set (else beat's balance check would lift it), and an
    earlier fatal reason is the one that stopped the account. A channel with no balance
    query is never resumed by beat, and its reason says how to resume it.
    """
    if not registry.gateway(provider).has_balance:
        reason += f" (no balance query to show it is fixed: sms-dispatch resume {provider} {account})"
    return bool(rt.redis.set(rt.keys.paused(provider, account), reason, nx=True))


def resumable_by_balance(rt: Runtime) -> list[AccountConfig]:
    """The accounts beat's balance check may resume: paused after an account-fatal answer, with a
    balance query. An operator's pause waits for the operator; so does the pause of a channel with
    no balance query (video and international SMS: nothing can show it is fixed, and its reason
    says how to resume it). One round trip per account."""
    found = []
    for account in rt.accounts:
        reason = rt.redis.get(rt.keys.paused(account.provider, account.name))
        if reason is not None and not by_operator(reason) and registry.gateway(account.provider).has_balance:
            found.append(account)
    return found


def resume(rt: Runtime, provider: str, account: str, publish: Publish, *, automatic: bool = False) -> int | None:
    """Lift an account's pause and re-queue its pending chunks; return how many.

    ``automatic`` (beat's balance check) leaves an operator's pause in place and
    returns ``None``. Chunks are re-queued even when the account was not paused
    (a second task for a chunk is harmless: only one claim succeeds). Raises
    ``ConfigurationError`` for an account that is not configured.
    """
    rt.accounts.get(provider, account)
    key = rt.keys.paused(provider, account)
    if automatic:
        if not rt.redis.eval(_LIFT_UNLESS_OPERATOR, 1, key, OPERATOR_PREFIX):
            log.info("account.still_paused", provider=provider, account=account, by="operator")
            return None
    else:
        rt.redis.delete(key)
    chunks = sweeps.pending_chunks(rt, provider, account)
    by_job: dict[str, list[int]] = {}
    for job_id, n in chunks:
        by_job.setdefault(job_id, []).append(n)
    for job_id, ns in by_job.items():
        queue = queue_of(rt.settings, rt.ledger.job_meta(job_id))
        for n in ns:
            publish(job_id, n, queue)
        # Their due time feeds the orphan sweep, which re-queues them if these tasks are lost.
        rt.ledger.nudged(job_id, ns, due_ms=system_clock_ms())
    log.info("account.resumed", provider=provider, account=account, chunks=len(chunks),
             by="beat" if automatic else "operator")
    return len(chunks)
