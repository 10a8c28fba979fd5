"""One Redis client serves every thread of a worker process at once (issue 11: 128 threads a worker).

redis-py 8 caps a client's pool at 100 connections unless told otherwise; beyond
it a command fails with ``MaxConnectionsError``, which in a worker meant a chunk
claimed and never sent (left to the stuck sweep). The threads here each hold a
connection in a blocking pop until the test has seen every one of them blocked.
"""

from __future__ import annotations

import threading

from dispatcher.local.stack import wait_for
from dispatcher.redis_connection import connect_url

THREADS = 150  # more than redis-py's default pool of 100, more than a worker's default 128 threads


def test_one_client_serves_150_threads_each_holding_a_connection(redis_url: str) -> None:
    client = connect_url(redis_url)
    key = "test:threads:items"
    got: list[bytes] = []
    errors: list[str] = []

    def pop() -> None:
        try:
            item = client.blpop([key], timeout=60)
            got.append(item[1] if item else b"")
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(type(exc).__name__)

    threads = [threading.Thread(target=pop, daemon=True) for _ in range(THREADS)]
    for t in threads:
        t.start()
    watcher = connect_url(redis_url)
    wait_for(lambda: errors or int(watcher.info("clients")["blocked_clients"]) >= THREADS,
             what=f"{THREADS} threads blocked on one client's connections", timeout_s=60)
    watcher.rpush(key, *[b"x"] * THREADS)
    for t in threads:
        t.join(60)
    assert errors == [], f"{len(errors)} threads failed: {sorted(set(errors))}"
    assert len(got) == THREADS
