"""Applying receipts (pulled or pushed) to the ledger, and storing uplinks.

One idempotent operation for both paths: receipts are grouped by the chunk
attempt their echoed bid/smsId names, and each group is one Lua call.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

from dispatcher.keys import MO_MAX_ITEMS, Keys, parse_client_id
from dispatcher.ledger import Ledger
from dispatcher.providers.results import Receipt, Uplink


@dataclass(frozen=True, slots=True)
class Applied:
    """How many receipts changed a state, were ignored (duplicate/late), or matched no chunk."""

    applied: int = 0
    ignored: int = 0
    unmatched: int = 0
    reconciled: int = 0


def apply_receipts(ledger: Ledger, receipts: Iterable[Receipt], *, now_ms: int) -> Applied:
    """Apply receipts idempotently: a terminal state never moves, a repeat changes nothing."""
    groups: dict[tuple[str, int, int], list[tuple[str, bool]]] = defaultdict(list)
    unmatched = 0
    for receipt in receipts:
        parsed = parse_client_id(receipt.client_id or "")
        if parsed is None:
            unmatched += 1
            continue
        groups[parsed].append((receipt.phone, receipt.delivered))
    applied = ignored = reconciled = 0
    for (job_id, n, attempt), pairs in groups.items():
        a, i, transition = ledger.apply_receipts(job_id, n, attempt=attempt, receipts=pairs, now_ms=now_ms)
        applied, ignored = applied + a, ignored + i
        reconciled += 1 if transition.endswith("->accepted") else 0
    return Applied(applied, ignored, unmatched, reconciled)


def store_uplinks(client: redis.Redis, keys: Keys, provider: str, account: str, uplinks: Iterable[Uplink]) -> int:
    """Keep uplink (MO) messages for the app to read, newest first, capped at ``MO_MAX_ITEMS``."""
    items = [
        json.dumps({"phone": u.phone, "content": u.content, "ext": u.ext, "at_ms": u.at_ms,
                    "message_id": u.message_id}, ensure_ascii=False)
        for u in uplinks
    ]
    if not items:
        return 0
    key = keys.uplinks(provider, account)
    pipe = client.pipeline(transaction=False)
    pipe.lpush(key, *items)
    pipe.ltrim(key, 0, MO_MAX_ITEMS - 1)
    pipe.execute()
    return len(items)


def read_uplinks(
    client: redis.Redis, keys: Keys, provider: str, account: str, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest ``limit`` uplinks of an account."""
    return [json.loads(raw) for raw in client.lrange(keys.uplinks(provider, account), 0, limit - 1)]
