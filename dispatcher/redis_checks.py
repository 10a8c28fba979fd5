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
