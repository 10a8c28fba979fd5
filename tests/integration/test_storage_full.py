"""A Redis at its maxmemory: the producer says so and keeps nothing; doctor warns about risky settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.errors import DispatchError, StorageFullError
from dispatcher.ledger import ChunkData, Ledger
from dispatcher.local.demo import accounts_doc, phones
from dispatcher.producer import Dispatcher
from dispatcher.redis_checks import memory_warnings
from dispatcher.redis_server import EmbeddedRedis


@pytest.fixture
def tiny_redis(tmp_path: Path) -> Iterator[redis.Redis]:
    """A real redis-server of its own with ``maxmemory 2mb`` (and ``noeviction``, as we start it)."""
    server = EmbeddedRedis(tmp_path / "redis", appendonly=False, maxmemory_mb=2)
    client = redis.Redis.from_url(server.start())
    yield client
    client.close()
    server.stop()


def _dispatcher(client: redis.Redis, queued: list[str]) -> Dispatcher:
    return Dispatcher(Settings(), accounts=parse_accounts(accounts_doc("http://127.0.0.1:9")), client=client,
                      enqueue=lambda job_id, queue, countdown: queued.append(job_id))


def test_a_job_too_big_for_a_full_redis_raises_storage_full_and_leaves_nothing(tiny_redis: redis.Redis) -> None:
    queued: list[str] = []
    d = _dispatcher(tiny_redis, queued)
    keys_before = set(tiny_redis.keys("*"))
    # ~3.3 MB of numbers alone: Redis fills up part way through the chunks
    with pytest.raises(StorageFullError, match="maxmemory") as caught:
        d.send_template("demo", template_code="1000000000000000001", phones=phones(300_000, seed=5))
    assert isinstance(caught.value, DispatchError)
    assert queued == []
    # no chunk, job, or index entry left behind; only the job counter and the day list of the phone
    # index, two small global keys that the next job would create anyway, and what the balance
    # guard's read before storing kept (its rate-limit slots and the cached balance)
    left = set(tiny_redis.keys("*")) - keys_before - {d.keys.job_sequence().encode(), d.keys.phone_days().encode(),
                                                      d.keys.balance("opass", "demo").encode()}
    assert {k for k in left if not k.startswith(f"{d.keys.prefix}:rl:".encode())} == set()
    assert not tiny_redis.keys(f"{d.keys.prefix}:ph:*:*")
    assert tiny_redis.zcard(d.keys.pending()) == 0 and tiny_redis.zcard(d.keys.jobs()) == 0


def test_after_a_refused_job_the_freed_room_takes_the_next_one(tiny_redis: redis.Redis) -> None:
    queued: list[str] = []
    d = _dispatcher(tiny_redis, queued)
    with pytest.raises(StorageFullError):
        d.send_template("demo", template_code="1000000000000000001", phones=phones(300_000, seed=5))
    otp = d.send_template("demo", template_code="1000000000000000002", phones=["13800138000"], params=["493817"],
                          priority="otp")
    assert queued == [otp.job_id] and d.status(otp.job_id).counts["pending"] == 1


def test_a_job_whose_suppressed_recipients_do_not_fit_leaves_nothing_behind(tiny_redis: redis.Redis) -> None:
    """Redis fills up while the suppressed recipients' chunks (stored final, with their state and
    record strings) are written: the refusal deletes those too, and no job event or outcome-feed
    entry names the job that was never stored."""
    ledger = Ledger(tiny_redis)
    numbers = phones(300_000, seed=6)
    with pytest.raises(StorageFullError):
        ledger.create_job("suppressedjob", {"kind": "opass.send", "provider": "opass", "account": "demo"},
                          [ChunkData(numbers[:1])], now_ms=1_700_000_000_000,
                          suppressed=(ChunkData(numbers[i : i + 1000]) for i in range(1, len(numbers), 1000)))
    left = {k.decode() for k in tiny_redis.keys("*")} - {ledger.keys.job_sequence(), ledger.keys.phone_days()}
    assert left == set()


def test_a_scheduled_job_that_does_not_fit_is_not_scheduled(tiny_redis: redis.Redis) -> None:
    d = _dispatcher(tiny_redis, [])
    with pytest.raises(StorageFullError):
        d.send_template("demo", template_code="1000000000000000001", phones=phones(300_000, seed=5),
                        send_at=2**42)
    assert tiny_redis.zcard(d.keys.scheduled()) == 0 and tiny_redis.zcard(d.keys.pending()) == 0


def test_our_redis_settings_draw_no_memory_warning(tiny_redis: redis.Redis) -> None:
    assert memory_warnings(tiny_redis) == []


def test_doctor_warns_about_a_redis_with_no_memory_limit_or_an_evicting_policy(tiny_redis: redis.Redis) -> None:
    tiny_redis.config_set("maxmemory", 0)
    tiny_redis.config_set("maxmemory-policy", "allkeys-lru")
    warnings = memory_warnings(tiny_redis)
    assert len(warnings) == 2
    assert "maxmemory is 0" in warnings[0] and "allkeys-lru" in warnings[1]


def test_the_embedded_redis_takes_its_maxmemory_from_the_setting_and_never_evicts(tmp_path: Path) -> None:
    from dispatcher.redis_connection import connect, stop_embedded

    settings = Settings(data_dir=str(tmp_path), redis_maxmemory_mb=64)
    client = connect(settings)
    try:
        assert client.config_get("maxmemory")["maxmemory"] == str(64 * 1024 * 1024)
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    finally:
        client.close()
        stop_embedded(settings)


def test_a_negative_maxmemory_setting_is_refused() -> None:
    from dispatcher.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="SMSD_REDIS_MAXMEMORY_MB"):
        Settings.from_env({"SMSD_REDIS_MAXMEMORY_MB": "-1"})
