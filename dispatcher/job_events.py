"""Job events handed to the app's Celery task: ``submitted`` and ``finished``, at least once.

The ledger's scripts queue an event in the same atomic step that makes it true
(``P:z:events``, member ``{job}|{event}``, scored by when it is due; each
event once per job, see :mod:`dispatcher.ledger_scripts`). :func:`deliver`
takes due events with a lease (their score moves ``LEASE_MS`` ahead), sends
each as ``SMSD_ON_JOB_EVENT(job_id, event, counts)`` and then deletes it; an
event whose sender died comes due again when its lease ends. So an event can
reach the app twice (a sender killed between the send and the delete) but is
never lost: the app's task should be idempotent (keyed by job id and event).

Ids and counts only, as with every task: nothing personal travels through the broker.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from dispatcher.config.settings import Settings
from dispatcher.enqueue import Enqueuer
from dispatcher.ledger import Ledger, as_text

log = structlog.get_logger("dispatcher.job_events")

EVENTS = ("submitted", "finished")
#: How long a taken event is left to its sender before another may send it.
LEASE_MS = 60_000
#: Events taken per call.
BATCH = 100

# KEYS: events   ARGV: now_ms, lease_ms, most   Returns the members taken.
TAKE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), m) end
return due
"""

#: ``send(job_id, event, counts)``: hands one event to the app (raises if it could not).
Sender = Callable[[str, str, dict[str, int]], None]


def parse_member(member: str) -> tuple[str, str] | None:
    """``(job_id, event)`` of a queue member, or ``None`` if it is not one. Pure."""
    job_id, _, event = member.rpartition("|")
    return (job_id, event) if job_id and event in EVENTS else None


def deliver(ledger: Ledger, send: Sender | None, *, now_ms: int, lease_ms: int = LEASE_MS,
            most: int = BATCH) -> int:
    """Send the due events (or, with no ``send`` configured, drop them); return how many were handled.

    An event whose send raised stays queued and comes due again after its
    lease. Raises ``redis.RedisError``.
    """
    r, key = ledger.r, ledger.keys.job_events()
    taken = [as_text(m) for m in r.eval(TAKE, 1, key, now_ms, lease_ms, most)]
    done = 0
    for member in taken:
        parsed = parse_member(member)
        if parsed is not None and send is not None:
            job_id, event = parsed
            try:
                send(job_id, event, ledger.counts(job_id))
            except Exception as exc:  # noqa: BLE001 - the broker client's errors vary; retried after the lease
                log.warning("job_event.send_failed", job_id=job_id, job_event=event, error=type(exc).__name__,
                            retry_in_s=lease_ms / 1000)
                continue
            log.info("job_event.sent", job_id=job_id, job_event=event)
        r.zrem(key, member)
        done += 1
    return done


def sender(settings: Settings, enqueuer: Enqueuer | None = None) -> Sender | None:
    """What sends events to the app's task (``None`` when ``SMSD_ON_JOB_EVENT`` is unset: events are dropped)."""
    if not settings.on_job_event:
        return None
    return (enqueuer or Enqueuer(settings)).job_event


def handing_out(ledger: Ledger, settings: Settings) -> Callable[[], None]:
    """A callable that delivers due events (one Redis call when none are due); for the applier thread.

    Errors are logged, never raised: the thread goes on applying receipts.
    """
    send = sender(settings)

    def step() -> None:
        try:
            deliver(ledger, send, now_ms=int(time.time() * 1000))
        except Exception as exc:  # noqa: BLE001 - the sweep delivers them later
            log.warning("job_event.deliver_failed", error=type(exc).__name__)

    return step
