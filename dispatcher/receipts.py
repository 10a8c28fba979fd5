"""Applying receipts (pulled or pushed) to the ledger, and storing uplinks.

One idempotent operation for both paths: receipts are grouped by the chunk
attempt their echoed bid/smsId names, and the groups go to Redis in one Lua
call per ``MAX_RECEIPTS_PER_CALL`` receipts (a pull answer of 600 or a push of
100 is one round trip, however many chunks it spans; the cap keeps one call from
blocking Redis for long when a caller hands over a huge list).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

from dispatcher.keys import MO_MAX_ITEMS, Keys, parse_client_id
from dispatcher.ledger import Ledger
from dispatcher.providers.results import Receipt, Uplink

#: Receipts per Lua call: one opass pull answer (600) fits; ~1-2 ms of Redis time at most.
MAX_RECEIPTS_PER_CALL = 1000
#: ``(job_id, chunk_no, attempt, [(phone, delivered), …])``: the receipts of one chunk attempt.
Group = tuple[str, int, int, list[tuple[str, bool]]]


@dataclass(frozen=True, slots=True)
class Applied:
    """How many receipts changed a state, were ignored (duplicate/late), or matched no chunk."""

    applied: int = 0
    ignored: int = 0
    unmatched: int = 0
    reconciled: int = 0


def apply_receipts(ledger: Ledger, receipts: Iterable[Receipt], *, now_ms: int) -> Applied:
    """Apply receipts idempotently: a terminal state never moves, a repeat changes nothing.

    Raises ``redis.RedisError``; receipts of calls that succeeded before it stay applied
    (a retry of the whole list is harmless: applying is idempotent).
    """
    groups: dict[str, list[tuple[str, bool]]] = {}
    ids: dict[str, tuple[str, int, int]] = {}
    unmatched = 0
    for receipt in receipts:
        cid = receipt.client_id or ""
        pairs = groups.get(cid)
        if pairs is None:
            parsed = parse_client_id(cid)  # once per bid: the receipts of a call echo few
            if parsed is None:
                unmatched += 1
                continue
            ids[cid] = parsed
            pairs = groups[cid] = []
        pairs.append((receipt.phone, receipt.delivered))
    applied = ignored = reconciled = 0
    for call in _calls(ids, groups):
        for a, i, transition in ledger.apply_receipt_groups(call, now_ms=now_ms):
            applied, ignored = applied + a, ignored + i
            reconciled += 1 if transition.endswith("->accepted") else 0
    return Applied(applied, ignored, unmatched, reconciled)


def _calls(ids: dict[str, tuple[str, int, int]], groups: dict[str, list[tuple[str, bool]]]) -> list[list[Group]]:
    """The groups cut into script calls of at most ``MAX_RECEIPTS_PER_CALL`` receipts each."""
    calls: list[list[Group]] = [[]]
    size = 0
    for cid, pairs in groups.items():
        for start in range(0, len(pairs), MAX_RECEIPTS_PER_CALL):
            part = pairs[start : start + MAX_RECEIPTS_PER_CALL]
            if size + len(part) > MAX_RECEIPTS_PER_CALL and calls[-1]:
                calls.append([])
                size = 0
            calls[-1].append((*ids[cid], part))
            size += len(part)
    return [c for c in calls if c]


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
