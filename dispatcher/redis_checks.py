"""What ``sms-dispatch doctor`` checks of the Redis in use: a memory limit, and no eviction."""

from __future__ import annotations

from typing import Any

import redis


def memory_warnings(client: redis.Redis) -> list[str]:
    """Warnings about the server's memory settings; empty when it has a ``maxmemory`` and ``noeviction``.

    Read from ``INFO memory`` (managed Redis often refuses ``CONFIG GET``).
    Raises ``redis.RedisError`` if the server cannot be asked.
    """
    info: Any = client.info("memory")
    limit_bytes = int(info.get("maxmemory", 0))
    policy = str(info.get("maxmemory_policy", "noeviction"))
    warnings = []
    if limit_bytes == 0:
        warnings.append("maxmemory is 0 (no limit): a runaway backlog grows until the host swaps or the "
                        "kernel kills Redis; set one (SMSD_REDIS_MAXMEMORY_MB for the embedded server)")
    if policy != "noeviction":
        warnings.append(f"maxmemory-policy is {policy}: at the limit Redis silently evicts ledger keys "
                        "(lost or doubled SMS); use noeviction")
    return warnings


def memory_summary(client: redis.Redis) -> str:
    """``used X MiB of Y MiB, policy P`` for the doctor's report; raises ``redis.RedisError``."""
    info: Any = client.info("memory")
    mib = 1024 * 1024
    limit = int(info.get("maxmemory", 0))
    shown = f"{limit / mib:.0f} MiB" if limit else "no limit"
    return f"used {int(info.get('used_memory', 0)) / mib:.1f} MiB of {shown}, policy {info.get('maxmemory_policy')}"


def replication_check(client: redis.Redis, wanted: int) -> tuple[bool, str]:
    """Whether the master ``client`` talks to has the ``wanted`` replicas online, and the doctor's line.

    Under Sentinel a claim is sent, and a push answered 200, only once that many
    replicas hold it: with fewer online nothing is sent. Raises ``redis.RedisError``.
    """
    info: Any = client.info("replication")
    online = sum(1 for key, value in info.items()
                 if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online")
    address = getattr(client.connection_pool, "master_address", None)  # a Sentinel pool's, once connected
    where = f"master {address[0]}:{address[1]}, " if address else ""
    line = f"{where}{online} replica{'' if online == 1 else 's'} online; claims and pushes wait for {wanted}"
    if online < wanted:
        line += (": nothing is sent and pushes are answered 503 until one is back "
                 "(SMSD_REDIS_WAIT_REPLICAS=0 sends without, and a failover may then send a chunk twice)")
    return online >= wanted, line
