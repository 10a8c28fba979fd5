"""Periodic repairs run by beat: stuck chunks, ambiguous chunks, silent recipients, schedules.

Each sweep returns what it touched so the beat task can log it and re-enqueue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dispatcher.keys import chunk_member, parse_chunk_member
from dispatcher.ledger import as_text
from dispatcher.providers import registry
from dispatcher.runtime import Runtime


def _due(rt: Runtime, key: str, max_score: float) -> list[str]:
    """Members of a sorted set scored at or below ``max_score`` (at most 1000 a sweep)."""
    found: Any = rt.redis.zrangebyscore(key, "-inf", max_score, start=0, num=1000)
    return [as_text(m) for m in found]


def _window_s(rt: Runtime, job_id: str) -> float:
    """The reconcile window of the job's account (settings' default for an unknown job)."""
    job = rt.ledger.job_meta(job_id)
    if not job:
        return rt.settings.reconcile_window_s
    return rt.reconcile_window_s(job["provider"], job["account"])


def stuck_to_ambiguous(rt: Runtime, *, now_ms: int) -> int:
    """Chunks ``sending`` for longer than ``stuck_after_s`` lost their worker: make them ambiguous.

    Their request may have gone out, so they are reconciled, never resent blindly.
    """
    cutoff = now_ms - int(rt.settings.stuck_after_s * 1000)
    moved = 0
    for member in _due(rt, rt.keys.sending(), cutoff):
        job_id, n = parse_chunk_member(member)
        _, attempt = rt.ledger.state_and_attempt(job_id, n)
        deadline = now_ms + int(_window_s(rt, job_id) * 1000)
        if rt.ledger.mark_ambiguous(job_id, n, attempt=attempt, deadline_ms=deadline, code="stuck", now_ms=now_ms):
            moved += 1
        else:
            rt.redis.zrem(rt.keys.sending(), member)  # it moved on meanwhile
    return moved


def orphaned_pending(rt: Runtime, *, now_ms: int) -> list[tuple[str, int]]:
    """Pending chunks whose task is overdue by ``orphan_after_s``: return them to re-enqueue.

    A worker killed with -9 leaves the tasks it had reserved unacked in the
    broker until its visibility timeout; the ledger, not the broker, says what
    still has to be sent. Chunks of paused accounts are left for the resume.
    """
    cutoff = now_ms - int(rt.settings.orphan_after_s * 1000)
    found = []
    for member in _due(rt, rt.keys.pending(), cutoff):
        job_id, n = parse_chunk_member(member)
        job = rt.ledger.job_meta(job_id)  # cached: many overdue chunks share a job
        if not job or rt.ledger.state_and_attempt(job_id, n)[0] != "pending":
            rt.redis.zrem(rt.keys.pending(), member)
            continue
        rt.redis.zadd(rt.keys.pending(), {member: now_ms})
        if not rt.redis.exists(rt.keys.paused(job["provider"], job["account"])):
            found.append((job_id, n))
    return found


@dataclass(frozen=True, slots=True)
class DueAmbiguous:
    """Ambiguous chunks whose window passed: ``released`` to resend, ``to_query`` to ask the gateway about first."""

    released: list[tuple[str, int]] = field(default_factory=list)
    to_query: list[tuple[str, int]] = field(default_factory=list)


def due_ambiguous(rt: Runtime, *, now_ms: int) -> DueAmbiguous:
    """Ambiguous chunks whose window passed with no receipt: release them, or ask first.

    No receipt carried their id within their reconcile window. A chunk of a
    gateway whose receipt query takes our id (its plug's ``query_by_client_id``) is not
    released here: it is returned in ``to_query`` with its deadline pushed by
    ``reconcile_retry_s``, so the caller can ask the gateway (see
    :mod:`dispatcher.reconcile`) and the next sweeps leave it alone meanwhile.
    Any other chunk goes back to ``pending`` (taken as never having reached the
    gateway) and is returned in ``released`` for the caller to re-enqueue.
    """
    due = DueAmbiguous()
    for member in _due(rt, rt.keys.ambiguous(), now_ms):
        job_id, n = parse_chunk_member(member)
        state, attempt = rt.ledger.state_and_attempt(job_id, n)
        if state != "ambiguous":  # settled meanwhile, or expired (its job's meta may still be cached)
            rt.redis.zrem(rt.keys.ambiguous(), member)
            continue
        job = rt.ledger.job_meta(job_id)
        if registry.gateway(job.get("provider", "")).query_by_client_id:
            hold(rt, job_id, n, until_ms=now_ms + int(rt.settings.reconcile_retry_s * 1000))
            due.to_query.append((job_id, n))
            continue
        if release_unsent(rt, job_id, n, attempt=attempt, now_ms=now_ms):
            due.released.append((job_id, n))
        else:
            rt.redis.zrem(rt.keys.ambiguous(), member)
    return due


def hold(rt: Runtime, job_id: str, n: int, *, until_ms: int) -> None:
    """Look at an ambiguous chunk again at ``until_ms`` (no-op once it left ``ambiguous``)."""
    # XX: a chunk a receipt settled meanwhile has left the set and must not come back.
    rt.redis.zadd(rt.keys.ambiguous(), {chunk_member(job_id, n): until_ms}, xx=True)


def release_unsent(rt: Runtime, job_id: str, n: int, *, attempt: int, now_ms: int) -> bool:
    """Move an ambiguous chunk attempt back to ``pending`` to be resent; False if it moved on."""
    return rt.ledger.release(job_id, n, attempt=attempt, expected="ambiguous", code="reconciled-unsent",
                             now_ms=now_ms)


def expire_silent(rt: Runtime, *, now_ms: int) -> int:
    """Recipients with no receipt ``receipt_horizon_s`` after acceptance become ``unknown``."""
    cutoff = now_ms - int(rt.settings.receipt_horizon_s * 1000)
    marked = 0
    for member in _due(rt, rt.keys.awaiting(), cutoff):
        job_id, n = parse_chunk_member(member)
        marked += rt.ledger.expire_awaiting(job_id, n, now_ms=now_ms)
    return marked


def due_scheduled(rt: Runtime, *, now_ms: int) -> list[str]:
    """Jobs whose send time has come: removed from the schedule and returned to fan out."""
    due = []
    for job_id in _due(rt, rt.keys.scheduled(), now_ms):
        if rt.redis.zrem(rt.keys.scheduled(), job_id):  # only one beat/worker wins each job
            due.append(job_id)
    return due


def trim_expired_jobs(rt: Runtime, *, now_ms: int) -> int:
    """Drop jobs whose TTL has passed from ``P:jobs`` (their keys expired by themselves), and days
    whose phone index expired from ``P:ph:days``; return how many jobs."""
    pipe = rt.redis.pipeline(transaction=False)
    pipe.zremrangebyscore(rt.keys.jobs(), "-inf", now_ms)
    pipe.zremrangebyscore(rt.keys.phone_days(), "-inf", now_ms)
    return int(pipe.execute()[0])


def pending_chunks(rt: Runtime, provider: str, account: str, *, page: int = 1000) -> list[tuple[str, int]]:
    """Pending chunks of an account's jobs (to re-enqueue after a resume), in job and chunk order.

    Read from ``P:z:pending``, which holds only chunks waiting to be sent: the
    cost follows what is pending now, not every job ever stored. Members whose
    job expired are dropped on the way. Raises ``redis.RedisError``.
    """
    by_job: dict[str, list[int]] = {}
    # One ZRANGE, not ZSCAN: a snapshot whose cost follows the members, where a
    # scan also walks the empty slots of a hash table sized for the set's peak.
    members: Any = rt.redis.zrange(rt.keys.pending(), 0, -1)
    for member in members:
        job_id, n = parse_chunk_member(as_text(member))
        by_job.setdefault(job_id, []).append(n)
    found: list[tuple[str, int]] = []
    job_ids = list(by_job)
    for start in range(0, len(job_ids), page):
        batch = job_ids[start : start + page]
        pipe = rt.redis.pipeline(transaction=False)
        for job_id in batch:
            pipe.hmget(rt.keys.job(job_id), ["provider", "account"])
        owners: Any = pipe.execute()
        mine: list[tuple[str, int]] = []
        for job_id, (prov, acct) in zip(batch, owners, strict=True):
            if prov is None:
                rt.redis.zrem(rt.keys.pending(), *(chunk_member(job_id, n) for n in by_job[job_id]))
            elif (as_text(prov), as_text(acct)) == (provider, account):
                mine.extend((job_id, n) for n in sorted(by_job[job_id]))
        for at in range(0, len(mine), page):
            part = mine[at : at + page]
            for job_id, n in part:
                pipe.hget(rt.keys.chunk(job_id, n), "state")
            states: Any = pipe.execute()
            found.extend(chunk for chunk, state in zip(part, states, strict=True) if state == b"pending")
    return found
