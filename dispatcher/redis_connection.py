"""Connecting to Redis: the configured URL, the master Redis Sentinel names, or the one embedded server.

With no ``SMSD_REDIS_URL``, every process of the project (producer, worker,
beat, webhook, CLI) shares one embedded redis-server under the data folder: the
first process starts it (detached, so it outlives that process) and writes its
URL beside its data; the others read the URL. A file lock keeps two processes
from starting two servers.

With ``SMSD_REDIS_SENTINELS`` every client asks the sentinels where the master
is, and asks again after a connection to it fails (redis-py's Sentinel client;
kombu's ``sentinel://`` transport for the broker), so a failover is ridden out
like a restart: commands retry until the new master answers.
"""

from __future__ import annotations

import contextlib
import fcntl
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis
from redis.backoff import EqualJitterBackoff, NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

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
#: A sentinel that does not answer this fast is skipped for the next one (one try each:
#: the command's own retries ask them all again).
SENTINEL_TIMEOUT_S = 0.5
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


def connect(settings: Settings, *, retries: int = RETRY_COUNT) -> redis.Redis:
    """A Redis client for the ledger (health-checked, reconnecting by itself: :func:`connect_url`).

    With ``SMSD_REDIS_SENTINELS``, a client of the master the sentinels name
    (:func:`connect_sentinel`); else of :func:`redis_url`.
    """
    if settings.redis_sentinels:
        return connect_sentinel(settings, retries=retries)
    return connect_url(redis_url(settings), retries=retries)


def _sentinel_kwargs(settings: Settings) -> dict[str, Any]:
    """How we talk to the sentinels themselves: fast, one try each, with their password."""
    kwargs: dict[str, Any] = {"socket_timeout": SENTINEL_TIMEOUT_S, "socket_connect_timeout": SENTINEL_TIMEOUT_S}
    if settings.redis_sentinel_password:
        kwargs["password"] = settings.redis_sentinel_password
    return kwargs


def connect_sentinel(settings: Settings, *, retries: int = RETRY_COUNT) -> redis.Redis:
    """A client of the master named ``SMSD_REDIS_SENTINEL_MASTER`` by the sentinels in ``SMSD_REDIS_SENTINELS``.

    Each new connection asks the sentinels for the master's address; a command
    that meets a dropped connection or a demoted master (``READONLY``) is retried
    on a new one (:func:`reconnecting_retry`), which finds the promoted replica
    once the sentinels have promoted it (seconds, with their ``down-after-milliseconds``).
    """
    sentinel = Sentinel(settings.sentinel_addresses,
                        sentinel_kwargs={**_sentinel_kwargs(settings), "retry": Retry(NoBackoff(), 0)})
    return sentinel.master_for(
        settings.redis_sentinel_master, retry=reconnecting_retry(retries), health_check_interval=30,
        socket_keepalive=True, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=CONNECT_TIMEOUT_S,
        password=settings.redis_password or None, max_connections=MAX_CONNECTIONS,
    )


def broker_of(settings: Settings) -> tuple[str, dict[str, Any]]:
    """The Celery broker URL and the transport options it needs beyond ours.

    ``SMSD_BROKER_URL`` if set; under Sentinel, kombu's ``sentinel://`` transport (one URL
    per sentinel joined by ``;``, the master's password in each, the master's name and the
    sentinels' password in the options); else the ledger's Redis URL.
    """
    if settings.broker_url:
        return settings.broker_url, {}
    if not settings.redis_sentinels:
        return redis_url(settings), {}
    auth = f":{quote(settings.redis_password, safe='')}@" if settings.redis_password else ""
    hosts = [f"[{host}]" if ":" in host else host for host, _ in settings.sentinel_addresses]
    url = ";".join(f"sentinel://{auth}{host}:{port}/0"
                   for host, (_, port) in zip(hosts, settings.sentinel_addresses, strict=True))
    return url, {"master_name": settings.redis_sentinel_master, "sentinel_kwargs": _sentinel_kwargs(settings)}


def replicated(client: redis.Redis, barrier_key: str, *, replicas: int, timeout_ms: int) -> int:
    """Wait until ``replicas`` replicas hold every write this thread made before; return how many do.

    ``WAIT`` counts the writes of its own connection only, and a pool hands out
    any of its connections: so the wait follows a write of its own (a counter
    in ``barrier_key``) on the same connection. Replication is one ordered
    stream, so a replica that holds this write holds every write completed
    before it, on any connection. Fewer than ``replicas`` after ``timeout_ms``
    means a failover now could lose them.
    """
    pipe = client.pipeline(transaction=False)
    pipe.hincrby(barrier_key, "replication_waits", 1)
    pipe.wait(replicas, timeout_ms)
    return int(pipe.execute()[1])


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
