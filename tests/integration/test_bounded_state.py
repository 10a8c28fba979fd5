"""Redis holds what the live jobs need: indexes forget expired jobs, resume reads only what is pending."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from dispatcher import sweeps
from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.errors import ConfigurationError
from dispatcher.keys import DAY_MS, chunk_member
from dispatcher.ledger import JOB_HASH_GRACE_S, ChunkData
from dispatcher.local.demo import accounts_doc
from dispatcher.local.stack import wait_for
from dispatcher.runtime import Runtime

PHONES = [f"138{i:08d}" for i in range(3)]
TTL_S = 3600
#: When a job stored at ms 1,000 with TTL_S has expired, its hash included.
GONE_MS = 1_000 + (TTL_S + JOB_HASH_GRACE_S) * 1000


def _runtime(client: redis.Redis, **settings: Any) -> Runtime:
    return Runtime(Settings(**settings), accounts=parse_accounts(accounts_doc("http://127.0.0.1:9")), client=client)


def _commands(client: redis.Redis) -> int:
    """Commands the server has run so far (INFO stats)."""
    return int(client.info("stats")["total_commands_processed"])


def test_storing_a_job_forgets_the_jobs_whose_ttl_has_passed(redis_client: redis.Redis) -> None:
    rt = _runtime(redis_client, job_ttl_s=TTL_S, receipt_horizon_s=60)
    rt.ledger.create_job("old", {}, [ChunkData(PHONES)], now_ms=1_000)
    rt.ledger.create_job("new", {}, [ChunkData(PHONES)], now_ms=GONE_MS)
    assert [m.decode() for m in redis_client.zrange(rt.keys.jobs(), 0, -1)] == ["new"]


def test_the_sweep_forgets_expired_jobs_even_when_no_job_is_stored(redis_client: redis.Redis) -> None:
    rt = _runtime(redis_client, job_ttl_s=TTL_S, receipt_horizon_s=60)
    rt.ledger.create_job("j", {}, [ChunkData(PHONES)], now_ms=1_000)
    assert sweeps.trim_expired_jobs(rt, now_ms=GONE_MS - 1) == 0
    assert sweeps.trim_expired_jobs(rt, now_ms=GONE_MS) == 1
    assert redis_client.zcard(rt.keys.jobs()) == 0


def test_job_and_chunk_keys_expire_after_the_configured_ttl(redis_client: redis.Redis) -> None:
    rt = _runtime(redis_client, job_ttl_s=TTL_S, receipt_horizon_s=60)
    rt.ledger.create_job("j", {}, [ChunkData(PHONES)] * 2, now_ms=1_000)
    for key in (rt.keys.chunk("j", 0), rt.keys.chunk("j", 1)):
        assert TTL_S - 5 <= redis_client.ttl(key) <= TTL_S
    assert TTL_S - 5 + JOB_HASH_GRACE_S <= redis_client.ttl(rt.keys.job("j")) <= TTL_S + JOB_HASH_GRACE_S


def test_a_scheduled_job_lives_a_full_ttl_past_its_send_time(redis_client: redis.Redis) -> None:
    rt = _runtime(redis_client, job_ttl_s=TTL_S, receipt_horizon_s=60)
    later_ms = 2 * TTL_S * 1000  # due after the TTL would have run out if counted from now
    rt.ledger.create_job("j", {}, [ChunkData(PHONES)], now_ms=0, due_ms=later_ms)
    assert redis_client.ttl(rt.keys.job("j")) > 2 * TTL_S
    assert redis_client.ttl(rt.keys.chunk("j", 0)) > 2 * TTL_S
    assert redis_client.zscore(rt.keys.scheduled(), "j") == later_ms


def test_a_job_ttl_not_longer_than_the_receipt_horizon_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="SMSD_JOB_TTL_S"):
        Settings(job_ttl_s=3600, receipt_horizon_s=3600)
    with pytest.raises(ConfigurationError, match="SMSD_JOB_TTL_S"):
        Settings.from_env({"SMSD_JOB_TTL_S": "60"})


def test_after_a_job_expires_no_index_names_it_once_the_sweeps_ran(redis_client: redis.Redis) -> None:
    rt = _runtime(redis_client, job_ttl_s=2, receipt_horizon_s=1)
    now = 10_000
    rt.ledger.create_job("j", {"provider": "opass", "account": "demo"}, [ChunkData(PHONES)] * 4, now_ms=now)
    accepted = rt.ledger.claim("j", 0, provider="opass", account="demo", now_ms=now)
    rt.ledger.accept("j", 0, attempt=accepted.attempt, message_id="m", failed_indexes=[], now_ms=now)  # awaiting
    rt.ledger.claim("j", 1, provider="opass", account="demo", now_ms=now)  # sending, its worker dies
    stuck = rt.ledger.claim("j", 2, provider="opass", account="demo", now_ms=now)
    rt.ledger.mark_ambiguous("j", 2, attempt=stuck.attempt, deadline_ms=now, code="t", now_ms=now)
    # chunk 3 stays pending (its account is paused for longer than the job lives)
    wait_for(lambda: not redis_client.exists(rt.keys.job("j"), rt.keys.chunk("j", 0), rt.keys.chunk("j", 3)),
             timeout_s=30, what="the job's keys to expire")
    later = now + 2 * DAY_MS  # past the day the job's phone index was kept for
    sweeps.stuck_to_ambiguous(rt, now_ms=later)
    sweeps.due_ambiguous(rt, now_ms=later)
    sweeps.orphaned_pending(rt, now_ms=later)
    sweeps.expire_silent(rt, now_ms=later)
    sweeps.trim_expired_jobs(rt, now_ms=later)
    indexes = (rt.keys.jobs(), rt.keys.pending(), rt.keys.sending(), rt.keys.ambiguous(), rt.keys.awaiting(),
               rt.keys.scheduled())
    assert {k: redis_client.zcard(k) for k in indexes} == dict.fromkeys(indexes, 0)
    assert redis_client.keys(f"{rt.keys.prefix}:job:*") == []
    # the record's indexes go with it: the message id's key, the phone index and its days
    assert redis_client.keys(f"{rt.keys.prefix}:mid:*") == []
    assert redis_client.keys(f"{rt.keys.prefix}:ph:*") == []


def test_the_outcome_feed_keeps_about_its_configured_number_of_entries(redis_client: redis.Redis) -> None:
    """``MAXLEN ~`` trims whole stream nodes (100 entries each by default): the feed stays within cap + 100."""
    rt = _runtime(redis_client, outcome_feed_max=10)
    for i in range(300):
        rt.ledger.create_job(f"j{i}", {"provider": "opass", "account": "demo"}, [ChunkData(PHONES)], now_ms=1)
        rt.ledger.cancel(f"j{i}", now_ms=2)  # one feed entry each
    assert 10 <= redis_client.xlen(rt.keys.outcome_feed()) <= 110


def test_resume_finds_the_accounts_pending_chunks_and_no_others(redis_client: redis.Redis) -> None:
    rt = _runtime(redis_client)
    meta = {"provider": "opass", "account": "demo"}
    rt.ledger.create_job("a", meta, [ChunkData(PHONES)] * 3, now_ms=1)
    rt.ledger.create_job("b", {"provider": "opass", "account": "other"}, [ChunkData(PHONES)], now_ms=1)
    rt.ledger.create_job("c", {"provider": "aiofish", "account": "demo"}, [ChunkData(PHONES)], now_ms=1)
    rt.ledger.claim("a", 1, provider="opass", account="demo", now_ms=2)
    assert sweeps.pending_chunks(rt, "opass", "demo") == [("a", 0), ("a", 2)]


def test_resume_costs_the_same_however_many_finished_jobs_redis_still_holds(redis_client: redis.Redis) -> None:
    rt = _runtime(redis_client)
    meta = {"provider": "opass", "account": "demo"}
    rt.ledger.create_job("live", meta, [ChunkData(PHONES)] * 2, now_ms=1)

    def cost_of_resume() -> int:
        before = _commands(redis_client)
        assert sweeps.pending_chunks(rt, "opass", "demo") == [("live", 0), ("live", 1)]
        return _commands(redis_client) - before

    alone = cost_of_resume()
    for i in range(300):  # OTPs sent and accepted: history, not work
        rt.ledger.create_job(f"done{i}", meta, [ChunkData(PHONES[:1])], now_ms=1)
        claim = rt.ledger.claim(f"done{i}", 0, provider="opass", account="demo", now_ms=2)
        rt.ledger.accept(f"done{i}", 0, attempt=claim.attempt, message_id="m", failed_indexes=[], now_ms=3)
    assert cost_of_resume() == alone


def test_resume_drops_pending_entries_whose_job_expired(redis_client: redis.Redis) -> None:
    rt = _runtime(redis_client)
    redis_client.zadd(rt.keys.pending(), {chunk_member("gone", 0): 1})
    assert sweeps.pending_chunks(rt, "opass", "demo") == []
    assert redis_client.zcard(rt.keys.pending()) == 0


def test_a_job_hash_outlives_its_chunks_so_no_late_step_recreates_it(redis_client: redis.Redis) -> None:
    rt = _runtime(redis_client, job_ttl_s=TTL_S, receipt_horizon_s=60)
    rt.ledger.create_job("j", {}, [ChunkData(PHONES)], now_ms=1_000)
    claim = rt.ledger.claim("j", 0, provider="opass", account="demo", now_ms=1_000)
    rt.ledger.accept("j", 0, attempt=claim.attempt, message_id="m", failed_indexes=[], now_ms=1_000)
    chunk_ttls = [redis_client.ttl(rt.keys.chunk("j", 0)), redis_client.ttl(rt.keys.chunk_states("j", 0))]
    assert redis_client.ttl(rt.keys.job("j")) >= max(chunk_ttls) + 30


def test_the_unknown_sweep_does_not_recreate_an_expired_job(redis_client: redis.Redis) -> None:
    rt = _runtime(redis_client, job_ttl_s=TTL_S, receipt_horizon_s=60)
    rt.ledger.create_job("j", {}, [ChunkData(PHONES)], now_ms=1_000)
    claim = rt.ledger.claim("j", 0, provider="opass", account="demo", now_ms=1_000)
    rt.ledger.accept("j", 0, attempt=claim.attempt, message_id="m", failed_indexes=[], now_ms=1_000)
    redis_client.delete(rt.keys.job("j"))  # as if it had expired while its state string had not yet
    assert sweeps.expire_silent(rt, now_ms=1_000 + 61_000) == 0
    assert not redis_client.exists(rt.keys.job("j"))
    assert redis_client.zcard(rt.keys.awaiting()) == 0
