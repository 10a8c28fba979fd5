"""Receipts (pulled or pushed) grouped by chunk attempt and applied to the ledger; uplinks stored.

One idempotent operation for both paths: receipts are grouped by the chunk
attempt their echoed bid/smsId names, and the groups go to Redis in one Lua
call per ``MAX_RECEIPTS_PER_CALL`` receipts (a pull answer of 600 or a push of
100 is one round trip, however many chunks it spans; the cap keeps one call from
blocking Redis for long when a caller hands over a huge list). In the pipeline
receipts reach :func:`apply_receipts` through :mod:`dispatcher.receipt_stream`
(recorded first, applied behind the vendor's answer).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import redis
import structlog

from dispatcher import metrics
from dispatcher.keys import Keys, client_id, parse_client_id
from dispatcher.ledger import Ledger, Packed, as_text, pack_receipts
from dispatcher.providers.results import Receipt, Uplink
from dispatcher.records import RecordReader
from dispatcher.suppression import KeptUplinks, Unsubscribe, keep_uplinks

log = structlog.get_logger("dispatcher.receipts")

#: Receipts per Lua call: one opass pull answer (600) fits; ~1-2 ms of Redis time at most.
MAX_RECEIPTS_PER_CALL = 1000
#: ``(job_id, chunk_no, attempt, [receipt, …])``: the receipts of one chunk attempt.
Group = tuple[str, int, int, list[Receipt]]


@dataclass(frozen=True, slots=True)
class Applied:
    """How many receipts changed a state, were ignored (duplicate, late, not evidence), or matched no chunk."""

    applied: int = 0
    ignored: int = 0
    unmatched: int = 0
    reconciled: int = 0
    #: Of ``ignored``: receipts that were not evidence (another account's job, an attempt never sent).
    refused: int = 0

    def __add__(self, other: Applied) -> Applied:
        return Applied(self.applied + other.applied, self.ignored + other.ignored,
                       self.unmatched + other.unmatched, self.reconciled + other.reconciled,
                       self.refused + other.refused)


def owner_of(provider: str, account: str) -> str:
    """The ``provider:account`` a receipt came through; the ledger checks it against the chunk's job."""
    return f"{provider}:{account}"


def group_receipts(receipts: Iterable[Receipt]) -> tuple[list[Group], int]:
    """Receipts grouped by the chunk attempt their bid/smsId names, and how many named none of ours. Pure."""
    groups: dict[str, Group] = {}
    unmatched = 0
    for receipt in receipts:
        cid = receipt.client_id or ""
        group = groups.get(cid)
        if group is None:
            parsed = parse_client_id(cid)  # once per bid: the receipts of a call echo few
            if parsed is None:
                unmatched += 1
                continue
            group = groups[cid] = (*parsed, [])
        group[3].append(receipt)
    return list(groups.values()), unmatched


def resolve_by_message_id(client: redis.Redis, keys: Keys, provider: str,
                          receipts: Sequence[Receipt]) -> tuple[list[Receipt], list[Receipt]]:
    """Receipts that echo none of our ids (vsms and isms pushes carry only the vendor's msgId)
    given the chunk attempt their message id names in ``provider``'s index (the channel whose
    hook they came through); ``(resolved, not yet known)``.

    The message-id index (``P:mid:…``) is written when the send's answer is recorded,
    and a chunk takes no attempt after it is accepted, so the chunk's current attempt
    is the one that message went out as. A receipt whose id is not (yet) indexed —
    its push overtook the answer's recording, or the job expired — is returned as
    not known. Two round trips for any number of receipts. Raises ``redis.RedisError``.
    """
    if not receipts:
        return [], []
    members = client.mget([keys.message(provider, r.message_id) for r in receipts])
    chunks = sorted({as_text(m) for m in members if m is not None})
    pipe = client.pipeline(transaction=False)
    for chunk in chunks:
        job, _, number = chunk.rpartition(":")
        pipe.hget(keys.chunk(job, int(number)), "attempt")
    attempts = {chunk: as_text(a) for chunk, a in zip(chunks, pipe.execute(), strict=True) if a is not None}
    resolved, unknown = [], []
    for receipt, member in zip(receipts, members, strict=True):
        chunk = as_text(member) if member is not None else ""
        if chunk not in attempts:
            unknown.append(receipt)
            continue
        job, _, number = chunk.rpartition(":")
        resolved.append(replace(receipt, client_id=client_id(job, int(number), int(attempts[chunk]))))
    return resolved, unknown


def adopt_by_phone(reader: RecordReader, provider: str, account: str, receipts: Sequence[Receipt], *,
                   since_slack_ms: int) -> tuple[list[Receipt], list[Receipt]]:
    """Receipts whose message id no chunk is indexed under, given the one ambiguous chunk they can
    belong to; ``(resolved, still unknown)``.

    A chunk goes ambiguous when its send's answer was lost, so its message id was never
    recorded and the pushes of channels that echo none of our ids (vsms, isms) cannot
    name it. A receipt for a phone of exactly one ambiguous chunk of the account it came
    through, reporting a time no earlier than ``since_slack_ms`` before that chunk went
    ambiguous (when its request may have left), proves the chunk reached the gateway: it
    is settled as accepted when applied (and its message id indexed), never resent. Two
    candidate chunks, none, or a receipt with no time stay unknown. One lookup a receipt.
    Raises ``redis.RedisError``.
    """
    resolved, unknown = [], []
    attempts: dict[tuple[str, int], int] = {}
    for receipt in receipts:
        if receipt.at_ms is None:
            unknown.append(receipt)
            continue
        candidates = [(job, n) for job, n, state, since_ms in
                      reader.chunks_holding(receipt.phone, provider=provider, account=account)
                      if state == "ambiguous" and receipt.at_ms >= since_ms - since_slack_ms]
        if len(candidates) != 1:
            unknown.append(receipt)
            continue
        job, n = candidates[0]
        if (job, n) not in attempts:
            attempts[(job, n)] = reader.ledger.state_and_attempt(job, n)[1]
        resolved.append(replace(receipt, client_id=client_id(job, n, attempts[(job, n)])))
    if resolved:
        log.info("receipts.adopted_by_phone", provider=provider, account=account, receipts=len(resolved),
                 chunks=len(attempts))
    return resolved, unknown


def split_calls(groups: Sequence[Group], most: int = MAX_RECEIPTS_PER_CALL) -> list[list[Group]]:
    """The groups cut into script calls of at most ``most`` receipts each (a bigger group is split). Pure."""
    calls: list[list[Group]] = [[]]
    size = 0
    for job_id, n, attempt, pairs in groups:
        for start in range(0, len(pairs), most):
            part = pairs[start : start + most]
            if size + len(part) > most and calls[-1]:
                calls.append([])
                size = 0
            calls[-1].append((job_id, n, attempt, part))
            size += len(part)
    return [c for c in calls if c]


def apply_packed(ledger: Ledger, packed: Sequence[Packed], *, owner: str, now_ms: int,
                 unmatched: int = 0, ack: tuple[str, str, Sequence[str]] | None = None, source: str = "") -> Applied:
    """Apply groups in the stream's packed form in one script call (``Ledger.apply_packed_groups``),
    ``ack`` stream entries in the same step; counted in the metrics under ``source`` (push, pull,
    query). Raises ``redis.RedisError``."""
    results = ledger.apply_packed_groups(packed, owner=owner, now_ms=now_ms, unmatched=unmatched, ack=ack)
    done = _tally([(g[0], g[1], g[2]) for g in packed], results, owner, unmatched)
    metrics.receipts_applied(owner, source, applied=done.applied, ignored=done.ignored, refused=done.refused,
                             unmatched=done.unmatched)
    return done


def _tally(attempts: Sequence[tuple[str, int, int]], results: Sequence[tuple[int, int, str]], owner: str,
           unmatched: int) -> Applied:
    """Sum one script call's per-group results; log each group refused as evidence (ids, never phones)."""
    applied = ignored = reconciled = refused = 0
    for (job_id, n, attempt), (a, i, transition) in zip(attempts, results, strict=True):
        applied, ignored = applied + a, ignored + i
        reconciled += 1 if transition.endswith("->accepted") else 0
        if transition in ("foreign", "unclaimed"):
            refused += i
            # Who probes, and with what: ids only (never the phones).
            log.warning("receipts.refused", reason=transition, owner=owner, job_id=job_id, chunk=n, attempt=attempt,
                        receipts=i)
    return Applied(applied, ignored, unmatched, reconciled, refused)


def apply_receipts(ledger: Ledger, receipts: Iterable[Receipt], *, provider: str, account: str,
                   now_ms: int) -> Applied:
    """Apply receipts that came through ``provider:account`` at once, idempotently.

    A terminal state never moves, a repeat changes nothing, a receipt that is
    not evidence (another account's job, an attempt never sent) is counted and
    ignored. Raises ``redis.RedisError``; receipts of calls that succeeded before
    it stay applied (a retry of the whole list is harmless: applying is idempotent).
    """
    groups, unmatched = group_receipts(receipts)
    total = Applied()
    owner = owner_of(provider, account)
    for i, call in enumerate(split_calls(groups) or [[]]):
        packed = [(job_id, n, attempt, *pack_receipts(pairs)) for job_id, n, attempt, pairs in call]
        total += apply_packed(ledger, packed, owner=owner, now_ms=now_ms, unmatched=unmatched if i == 0 else 0)
    return total


#: Longest reply kept, in characters: a concatenated SMS of 15 segments is ~1,000;
#: a push holder could otherwise fill Redis with ``MO_MAX_ITEMS`` megabyte "replies".
MAX_UPLINK_CHARS = 1000
#: Longest ext (srcId/subCode) or message id kept.
MAX_UPLINK_FIELD_CHARS = 64


def _clip(value: str | None, most: int) -> str | None:
    return value if value is None or len(value) <= most else value[:most]


def store_uplinks(client: redis.Redis, keys: Keys, provider: str, account: str, uplinks: Iterable[Uplink],
                  unsubscribe: Unsubscribe | None = None) -> KeptUplinks:
    """Keep uplink (MO) messages for the app to read, newest first, capped at ``MO_MAX_ITEMS``; a reply
    that unsubscribes by the account's rules (``unsubscribe``) puts its phone on the suppression list.

    Each reply is kept and acted on once, however often it is pushed (:func:`~dispatcher.suppression.keep_uplinks`).
    Content past ``MAX_UPLINK_CHARS`` is cut (``truncated`` says so), so the list's size stays bounded.
    Logs how many phones were listed, never which.
    """
    items = [
        ({"phone": u.phone, "content": u.content[:MAX_UPLINK_CHARS],
          "ext": _clip(u.ext, MAX_UPLINK_FIELD_CHARS), "at_ms": u.at_ms,
          "message_id": _clip(u.message_id, MAX_UPLINK_FIELD_CHARS),
          **({"truncated": True} if len(u.content) > MAX_UPLINK_CHARS else {})}, u.at_ms, u.message_id)
        for u in uplinks
    ]
    kept = keep_uplinks(client, keys, provider, account, items, unsubscribe)
    if kept.unsubscribed:
        log.info("uplinks.unsubscribed", provider=provider, account=account, phones=kept.unsubscribed)
    return kept


def read_uplinks(
    client: redis.Redis, keys: Keys, provider: str, account: str, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest ``limit`` uplinks of an account."""
    return [json.loads(raw) for raw in client.lrange(keys.uplinks(provider, account), 0, limit - 1)]
