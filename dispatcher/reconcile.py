"""Asking the gateway about an ambiguous chunk before it is resent (opass: receipts by ``bid``).

:func:`dispatcher.sweeps.due_ambiguous` hands over chunks whose reconcile window
passed with no receipt; :func:`reconcile_chunk` asks the gateway for the
receipts carrying the chunk attempt's id and acts on the answer (:func:`decide`):

* receipts came back → the gateway took the chunk: they are recorded on the
  receipt stream like any pulled answer, and applying them moves it
  ``ambiguous → accepted`` (never resent; the sweep leaves it alone meanwhile,
  its deadline having been pushed by ``reconcile_retry_s``, and should it hand
  the chunk over again before an applier got to them, it is held, not asked
  about: the gateway hands each receipt out once, so a second query would find
  nothing and the chunk would be resent);
* the gateway knows nothing of that id → released to ``pending`` to be resent;
* no query budget left, or the query failed → left ``ambiguous``; the sweep
  already pushed its deadline by ``reconcile_retry_s`` and asks again then.
  Never resent blindly.

Pulled receipts are returned once only by the gateway, so whatever the query
returns is recorded before anything else (:func:`record_pulled`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum

import structlog

from dispatcher.errors import DispatchError, ThrottledError
from dispatcher.keys import client_id
from dispatcher.ledger import as_text
from dispatcher.providers.base import system_clock_ms
from dispatcher.providers.results import Receipt
from dispatcher.receipt_stream import record
from dispatcher.runtime import Runtime
from dispatcher.sweeps import release_unsent

log = structlog.get_logger("dispatcher.reconcile")

#: The limiter operation of one receipt query by bid (it takes from the account's query budget).
QUERY_OP = "reconcile"
#: The chunk field naming the attempt whose receipts a query found and recorded (applied or not yet).
FOUND_FIELD = "qf"


class Outcome(StrEnum):
    """What became of an ambiguous chunk after asking (or trying to ask) the gateway."""

    RECONCILED = "reconciled"  # receipts proved the gateway took it
    RELEASED = "released"  # the gateway knows nothing of it: resend
    HELD = "held"  # could not ask (no budget, query failed): ask again later
    SETTLED = "settled"  # it was no longer ambiguous (a push or poll settled it first)


def decide(found: Sequence[Receipt] | None) -> Outcome:
    """What the answer of a receipt query by a chunk's id means; ``None`` means there was no answer."""
    if found is None:
        return Outcome.HELD
    return Outcome.RECONCILED if found else Outcome.RELEASED


def record_pulled(rt: Runtime, receipts: Sequence[Receipt], *, provider: str, account: str, now_ms: int,
                  found_for: tuple[str, int, int] | None = None) -> int:
    """Record receipts a query took from ``provider:account`` (they will not be returned again); return how many.

    They take the path of every pulled answer: the receipt stream, applied by
    the workers' appliers with the ledger's evidence checks. With ``found_for``
    (job id, chunk, attempt), the chunk is marked in the same transaction as the
    one whose receipts were found, so it is never asked about again
    (:func:`reconcile_chunk`). Raises ``redis.RedisError``.
    """
    pipe = rt.redis.pipeline(transaction=True)
    recorded = record(pipe, rt.keys.receipt_stream(), provider, account, receipts, source="query", now_ms=now_ms)
    if found_for is not None:
        job_id, n, attempt = found_for
        pipe.hset(rt.keys.chunk(job_id, n), FOUND_FIELD, attempt)
    pipe.execute()
    return recorded


def reconcile_chunk(rt: Runtime, job_id: str, n: int, *, clock_ms: Callable[[], int] = system_clock_ms) -> Outcome:
    """Ask the gateway about ambiguous chunk ``n`` of a job and settle it; return what happened.

    Takes one token of the account's query budget. Gateway errors are logged and
    held, never raised; raises ``redis.RedisError`` (the chunk stays ambiguous).
    """
    job = rt.ledger.job_meta(job_id)
    state, attempt = rt.ledger.state_and_attempt(job_id, n)
    if not job or state != "ambiguous":
        return Outcome.SETTLED
    provider, account = job["provider"], job["account"]
    bound = log.bind(job_id=job_id, chunk=n, attempt=attempt, provider=provider, account=account)
    if as_text(rt.redis.hget(rt.keys.chunk(job_id, n), FOUND_FIELD) or b"") == str(attempt):
        # Found before and recorded, not yet applied: asking again would find nothing.
        bound.info("reconcile.found_before")
        return Outcome.HELD
    found: list[Receipt] | None = None
    # Queue for a slot of the shared query budget like beat's polls do (see
    # Settings.shared_budget_wait_s): asking for one *now* lost to them every time.
    if rt.limiter.acquire(provider, account, QUERY_OP, max_wait_s=rt.settings.shared_budget_wait_s) < 0:
        bound.info("reconcile.no_budget")
    else:
        try:
            found = rt.client(provider, account).pull_receipts(bid=client_id(job_id, n, attempt))
        except DispatchError as exc:
            if isinstance(exc, ThrottledError):
                rt.limiter.slow_down(provider, account, QUERY_OP)
            bound.warning("reconcile.query_failed", error=type(exc).__name__, code=getattr(exc, "code", None))
    outcome = decide(found)
    if outcome is Outcome.RECONCILED:
        recorded = record_pulled(rt, found or [], provider=provider, account=account, now_ms=clock_ms(),
                                 found_for=(job_id, n, attempt))
        bound.info("reconcile.found", receipts=recorded)
    elif outcome is Outcome.RELEASED and not release_unsent(rt, job_id, n, attempt=attempt, now_ms=clock_ms()):
        outcome = Outcome.SETTLED  # a push or poll settled it between the query and now
    if outcome is Outcome.RELEASED:
        bound.warning("reconcile.unknown_to_gateway")
    return outcome
