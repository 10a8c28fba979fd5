"""Connecting to Redis: the configured URL, or the one embedded server of this project.

With no ``SMSD_REDIS_URL``, every process of the project (producer, worker,
beat, webhook, CLI) shares one embedded redis-server under the data folder: the
first process starts it (detached, so it outlives that process) and writes its
URL beside its data; the others read the URL. A file lock keeps two processes
from starting two servers.
"""

from __future__ import annotations

import contextlib
import fcntl
import socket
from pathlib import Path

import redis
from redis.backoff import EqualJitterBackoff
from redis.retry import Retry

from dispatcher.config.settings import Settings
from dispatcher.redis_server import EmbeddedRedis

#: A command that meets a dropped connection is retried on a new one with
#: backoff 50 ms, 100 ms … capped at 1 s (half of each fixed, half random), 30
#: times: between ~14 s and ~28 s in all, longer than a redis-server restart (its
#: AOF reload included), short enough that a real outage surfaces as an error.
RETRY_BASE_S = 0.05
RETRY_CAP_S = 1.0
RETRY_COUNT = 30
#: Three retries, 0.35-0.7 s in all: fast enough to answer 503 within a vendor's 1 s.
FAIL_FAST_RETRIES = 3
#: No command we send blocks in the server, so a reply this late means it hung.
SOCKET_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 2.0
#: Connections one client may open. redis-py 8 caps a pool at 100 unless told, and a
#: worker's threads (SMSD_SEND_CONCURRENCY, 128) each hold one while a command of
#: theirs is under way: past the cap a claim or an accept failed with
#: MaxConnectionsError. Connections are opened only as needed.
MAX_CONNECTIONS = 1024


def reconnecting_retry(retries: int = RETRY_COUNT) -> Retry:
    """The retry policy of our clients: reconnect and resend on connection errors and timeouts.

    Resending is safe for everything we send: reads, idempotent writes, and the
    ledger's Lua scripts, each of which checks the chunk's state and attempt
    first, so a second run of a script whose reply was lost changes nothing
    (``ACCEPT`` answers ``late``, the others ``0``/``skip``). HTTP sends to the
    gateways are never retried this way: they are outside Redis.
    """
    return Retry(EqualJitterBackoff(cap=RETRY_CAP_S, base=RETRY_BASE_S), retries,
                 supported_errors=(redis.ConnectionError, redis.TimeoutError, socket.timeout))


def connect_url(url: str, *, retries: int = RETRY_COUNT) -> redis.Redis:
    """A client of ``url`` that survives a server restart (see :func:`reconnecting_retry`).

    Commands raise ``redis.ConnectionError`` only once ``retries`` are used up. A
    process that must answer within a deadline (the webhook: opass stops pushing
    after three answers slower than 1 s) wants few, e.g. ``FAIL_FAST_RETRIES``.
    """
    return redis.Redis.from_url(
        url, retry=reconnecting_retry(retries), health_check_interval=30, socket_keepalive=True,
        socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=CONNECT_TIMEOUT_S, max_connections=MAX_CONNECTIONS,
    )


def redis_answers(url: str) -> bool:
    """Whether a redis-server answers PING at ``url``; one try (a stale URL file must not cost retries' backoff)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, retry=Retry(EqualJitterBackoff(), 0))
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def redis_url(settings: Settings) -> str:
    """The Redis URL to use, starting the embedded server if none is configured or running."""
    if settings.redis_url:
        return settings.redis_url
    data = settings.data_path / "redis"
    data.mkdir(parents=True, exist_ok=True)
    url_file = data / "redis.url"
    with (data / "start.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if url_file.exists():
            url = url_file.read_text().strip()
            if redis_answers(url):
                return url
        server = EmbeddedRedis(data, detach=True, maxmemory_mb=settings.redis_maxmemory_mb)
        url = server.start()
        url_file.write_text(url)
        return url


def connect(settings: Settings) -> redis.Redis:
    """A Redis client for the ledger (health-checked, reconnecting by itself: :func:`connect_url`)."""
    return connect_url(redis_url(settings))


def stop_embedded(settings: Settings) -> bool:
    """Shut the embedded server down (``SHUTDOWN``); return whether one was running."""
    url_file = Path(settings.data_path / "redis" / "redis.url")
    if settings.redis_url or not url_file.exists():
        return False
    url = url_file.read_text().strip()
    if not redis_answers(url):
        return False
    client = redis.Redis.from_url(url)
    with contextlib.suppress(redis.ConnectionError):  # the server closes the connection as it exits
        client.shutdown(save=False)
    url_file.unlink(missing_ok=True)
    return True
