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
from pathlib import Path

import redis

from config.settings import Settings
from dispatcher.redis_server import EmbeddedRedis


def _alive(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
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
            if _alive(url):
                return url
        server = EmbeddedRedis(data, detach=True)
        url = server.start()
        url_file.write_text(url)
        return url


def connect(settings: Settings) -> redis.Redis:
    """A Redis client for the ledger (health-checked, reconnecting by itself)."""
    return redis.Redis.from_url(
        redis_url(settings), health_check_interval=30, socket_keepalive=True, retry_on_timeout=True
    )


def stop_embedded(settings: Settings) -> bool:
    """Shut the embedded server down (``SHUTDOWN``); return whether one was running."""
    url_file = Path(settings.data_path / "redis" / "redis.url")
    if settings.redis_url or not url_file.exists():
        return False
    url = url_file.read_text().strip()
    if not _alive(url):
        return False
    client = redis.Redis.from_url(url)
    with contextlib.suppress(redis.ConnectionError):  # the server closes the connection as it exits
        client.shutdown(save=False)
    url_file.unlink(missing_ok=True)
    return True
