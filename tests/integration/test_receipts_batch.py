"""Receipts of many chunks applied in one script call, on a real redis-server: same invariants as one by one."""

from __future__ import annotations

import pytest
import redis

from dispatcher.keys import client_id
from dispatcher.ledger import ChunkData, Ledger
from dispatcher.local.demo import phones
from dispatcher.providers.results import Receipt
from dispatcher.receipts import MAX_RECEIPTS_PER_CALL, apply_receipts

NOW_MS = 10
#: The account every job here belongs to; receipts come through its hook or poll.
OWNER_META = {"provider": "opass", "account": "demo"}


@pytest.fixture
def ledger(redis_client: redis.Redis) -> Ledger:
    return Ledger(redis_client)


def _accepted(ledger: Ledger, job_id: str, chunks: list[list[str]]) -> list[str]:
    """Store and accept every chunk; return each chunk's bid."""
    ledger.create_job(job_id, OWNER_META, [ChunkData(c) for c in chunks], now_ms=1)
    for n in range(len(chunks)):
        ledger.claim(job_id, n, provider="opass", account="a", now_ms=2)
        ledger.accept(job_id, n, attempt=1, message_id=f"m{n}", failed_indexes=[], now_ms=3)
    return [client_id(job_id, n, 1) for n in range(len(chunks))]


def _receipt(phone: str, bid: str, delivered: bool = True) -> Receipt:
    return Receipt("opass", "m", phone, "DELIVRD" if delivered else "UNDELIV", delivered, None, bid)


def test_an_interleaved_batch_of_many_chunks_applies_each_receipt_once(ledger: Ledger, redis_client) -> None:  # type: ignore[no-untyped-def]
    chunks = [phones(50, seed=n) for n in range(20)]
    bids = _accepted(ledger, "j", chunks)
    batch = [_receipt(p, bids[n], delivered=i % 3 != 0) for i in range(50) for n, c in enumerate(chunks)
             for p in [c[i]]]
    done = apply_receipts(ledger, batch, provider="opass", account="demo", now_ms=NOW_MS)
    assert (done.applied, done.ignored, done.unmatched) == (1000, 0, 0)
    counts = ledger.counts("j")
    assert (counts["delivered"], counts["failed"], counts["accepted"]) == (660, 340, 0)
    assert redis_client.zcard(ledger.keys.awaiting()) == 0
    assert all(not redis_client.hexists(ledger.keys.chunk("j", n), "ix") for n in range(20))
    again = apply_receipts(ledger, [_receipt(p, bids[0], delivered=False) for p in chunks[0]], provider="opass",
                           account="demo", now_ms=NOW_MS)
    assert (again.applied, again.ignored) == (0, 50)
    assert ledger.counts("j") == counts


def test_unknown_wrong_length_and_repeated_phones_are_ignored_not_misplaced(ledger: Ledger) -> None:
    chunk = phones(300, seed=1)
    (bid,) = _accepted(ledger, "j", [chunk])
    outsiders = [p for p in phones(400, seed=2) if p not in chunk][:100]
    batch = [_receipt(p, bid) for p in chunk[:10]] + [_receipt(p, bid) for p in chunk[:10]]
    batch += [_receipt(p, bid) for p in outsiders] + [_receipt(chunk[11][:-1], bid), _receipt(chunk[12] + ",1", bid)]
    done = apply_receipts(ledger, batch, provider="opass", account="demo", now_ms=NOW_MS)
    assert (done.applied, done.ignored) == (10, 10 + len(outsiders) + 2)
    states = dict(ledger.phone_states("j"))
    assert [states[p] for p in chunk[:12]] == ["delivered"] * 10 + ["accepted"] * 2


def test_a_phone_listed_twice_in_a_chunk_takes_its_first_place(ledger: Ledger) -> None:
    # 12 chunks in one call: the first ones are looked up through their new index, the
    # last ones (over the call's index-build budget) with string.find; both agree.
    chunks = [phones(200, seed=30 + n) for n in range(12)]
    for c in chunks:
        c[-1] = c[0]
    _accepted(ledger, "j", chunks)
    results = ledger.apply_receipt_groups([("j", n, 1, [(c[0], False)]) for n, c in enumerate(chunks)],
                                           owner="opass:demo", now_ms=NOW_MS)
    assert results == [(1, 0, "")] * 12
    for n in range(12):
        st = ledger.r.get(ledger.keys.chunk_states("j", n)) or b""
        assert (st[:1], st[-1:]) == (b"F", b"A")
    indexed = [bool(ledger.r.hexists(ledger.keys.chunk("j", n), "ix")) for n in range(12)]
    assert True in indexed and False in indexed


def test_one_call_reconciles_ignores_and_counts_per_chunk_state(ledger: Ledger, redis_client) -> None:  # type: ignore[no-untyped-def]
    chunk = phones(5, seed=4)
    ledger.create_job("j", OWNER_META, [ChunkData(chunk)] * 4, now_ms=1)
    for n in range(4):
        ledger.claim("j", n, provider="opass", account="a", now_ms=2)
    ledger.mark_ambiguous("j", 0, attempt=1, deadline_ms=10**13, code="reset", now_ms=3)
    ledger.reject("j", 1, attempt=1, code="60001", now_ms=3)
    ledger.accept("j", 2, attempt=1, message_id="m", failed_indexes=[], now_ms=3)
    ledger.release("j", 3, attempt=1, expected="sending", code="-1", now_ms=3)
    ledger.claim("j", 3, provider="opass", account="a", now_ms=4)  # attempt 2 in flight
    results = ledger.apply_receipt_groups(
        [("j", 0, 1, [(chunk[0], True)]), ("j", 1, 1, [(chunk[0], True)]), ("j", 2, 1, [(chunk[1], False)]),
         ("j", 3, 1, [(chunk[2], True)]), ("gone", 0, 1, [(chunk[0], True), (chunk[1], True)])],
        owner="opass:demo", now_ms=NOW_MS,
    )
    assert results == [(1, 0, "ambiguous->accepted"), (0, 1, "state:rejected"), (1, 0, ""),
                       (0, 1, "unclaimed"), (0, 2, "missing")]  # chunk 3's attempt 1 provably never left
    counts = ledger.counts("j")
    assert (counts["delivered"], counts["failed"], counts["rejected"], counts["sending"]) == (1, 1, 5, 5)
    assert sum(counts.values()) == 20
    stats = {k.decode(): int(v) for k, v in redis_client.hgetall(ledger.keys.stats()).items()}
    assert stats == {"receipts_unmatched": 2, "receipts_unclaimed": 1, "receipts_ignored": 1,
                     "reconciled:ambiguous": 1}
    assert ledger.chunk("j", 0)["settled_from"] == "ambiguous"  # how it was settled stays on the chunk


def test_a_list_longer_than_one_call_is_applied_in_several(ledger: Ledger) -> None:
    chunks = [phones(1000, seed=10 + n) for n in range(3)]
    bids = _accepted(ledger, "j", chunks)
    batch = [_receipt(p, bids[n]) for n, c in enumerate(chunks) for p in c]
    assert len(batch) > 2 * MAX_RECEIPTS_PER_CALL
    assert apply_receipts(ledger, batch, provider="opass", account="demo", now_ms=NOW_MS).applied == 3000
    assert ledger.counts("j")["delivered"] == 3000
