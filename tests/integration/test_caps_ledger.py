"""Frequency caps in the ledger's claim, on a real redis-server: windows, counts given back, records.

Time is the claim's ``now_ms`` (the ledger takes the caller's clock), so a window is
walked through second by second without waiting for it. Each claim is a chunk of a job
of its own, as two campaigns naming the same phone would be.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence

import pytest
import redis

from dispatcher.caps import CAPPED, Cap, CapRule
from dispatcher.ledger import ChunkData, Claim, Ledger
from dispatcher.limiter import Limit, RateLimiter
from dispatcher.records import RecordReader

PHONE = "13800138000"
OTHER = "13900139000"
#: Now, on a whole minute: the tests' windows are walked from here (cap keys expire by Redis's clock).
T0 = (int(time.time()) // 60 + 1) * 60_000
S = 1000
_jobs = itertools.count()


def _rule(*caps: tuple[int, int], priority: str = "bulk") -> CapRule:
    return CapRule("opass:a", priority, tuple(Cap(c, w) for c, w in caps))


def _job(ledger: Ledger, phones: Sequence[str], width: int | None = None) -> str:
    job_id = f"job{next(_jobs)}"
    ledger.create_job(job_id, {"provider": "opass", "account": "a"}, [ChunkData(phones, width=width)], now_ms=T0)
    return job_id


def _claim(ledger: Ledger, job_id: str, at_ms: int, rule: CapRule | None, **kw) -> Claim:  # type: ignore[no-untyped-def]
    return ledger.claim(job_id, 0, provider="opass", account="a", now_ms=at_ms, caps=rule, **kw)


def _send(ledger: Ledger, at_ms: int, rule: CapRule, phones: Sequence[str] = (PHONE,)) -> Claim:
    """A new job to ``phones`` claimed at ``at_ms`` under ``rule``."""
    return _claim(ledger, _job(ledger, phones), at_ms, rule)


def _sent(claim: Claim) -> bool:
    return claim.status == "ok" and not claim.capped


@pytest.fixture
def ledger(redis_client: redis.Redis) -> Ledger:
    return Ledger(redis_client)


def test_a_cap_holds_a_phone_for_its_whole_window_and_not_a_second_more(ledger: Ledger) -> None:
    """[1, 60]: a second send within 60 whole seconds is capped; 61 seconds after the first it goes."""
    rule = _rule((1, 60))
    assert _sent(_send(ledger, T0, rule))
    assert _send(ledger, T0 + 1 * S, rule).status == CAPPED
    assert _send(ledger, T0 + 60 * S, rule).status == CAPPED
    assert _sent(_send(ledger, T0 + 61 * S, rule))


def test_no_window_ever_holds_more_than_its_count(ledger: Ledger) -> None:
    """[3, 3600] beside [1, 60]: three sends a minute apart go, the fourth that hour is capped, and
    it goes once the first is older than the window."""
    rule = _rule((1, 60), (3, 3600))
    sent = [T0 + k * 61 * S for k in range(3)]
    assert all(_sent(_send(ledger, at, rule)) for at in sent)
    assert _send(ledger, T0 + 200 * S, rule).status == CAPPED
    assert _send(ledger, T0 + 3600 * S, rule).status == CAPPED  # the first is 3600 s old: still in
    assert _sent(_send(ledger, T0 + 3601 * S, rule))


def test_counts_carry_across_the_slices_they_are_kept_in(ledger: Ledger) -> None:
    """Counts live in slices of the largest window (60 s here); a send late in one slice still
    counts early in the next, and two sends either side of the edge both count."""
    rule = _rule((2, 60))
    edge = (T0 // 60_000 + 1) * 60_000
    assert _sent(_send(ledger, edge - 10 * S, rule))
    assert _sent(_send(ledger, edge + 5 * S, rule))
    assert _send(ledger, edge + 20 * S, rule).status == CAPPED  # one from each slice
    assert _sent(_send(ledger, edge + 51 * S, rule))  # the first is 61 s old


def test_otp_and_bulk_are_counted_apart(ledger: Ledger) -> None:
    """A campaign does not use up a phone's OTPs, nor OTPs its campaigns: each priority has its own counts."""
    bulk, otp = _rule((1, 3600)), _rule((1, 3600), priority="otp")
    assert _sent(_send(ledger, T0, bulk))
    assert _sent(_send(ledger, T0 + S, otp))
    assert _send(ledger, T0 + 2 * S, otp).status == CAPPED
    assert _send(ledger, T0 + 3 * S, bulk).status == CAPPED


def test_only_the_capped_phones_of_a_chunk_are_held_back(ledger: Ledger) -> None:
    """A chunk with one phone over its cap sends the others: the claim names the held index only."""
    rule = _rule((1, 3600))
    _send(ledger, T0, rule)
    claim = _send(ledger, T0 + S, rule, phones=[OTHER, PHONE, "13700137000"])
    assert (claim.status, claim.capped) == ("ok", (1,))
    assert claim.sendable()[0] == (OTHER, "13700137000")


def test_a_released_chunk_gives_its_count_back_and_its_retry_is_not_capped_by_it(ledger: Ledger) -> None:
    """A chunk that went back to pending unsent (a transient error) holds no count: its retry, even
    at once, is sent; the count is taken again by the claim that sends."""
    rule = _rule((1, 3600))
    job = _job(ledger, [PHONE])
    first = _claim(ledger, job, T0, rule)
    assert ledger.release(job, 0, attempt=first.attempt, expected="sending", code="Timeout", now_ms=T0 + S)
    assert _sent(_claim(ledger, job, T0 + 2 * S, rule))  # the retry of the same chunk
    assert _send(ledger, T0 + 3 * S, rule).status == CAPPED  # counted again by the retry


def test_a_claim_undone_unsent_leaves_no_count_behind(ledger: Ledger, redis_client: redis.Redis) -> None:
    """A claim put back as it was without a release (what Sentinel's undo of an unreplicated claim
    does: pending again at the attempt before) is not counted: the next claim gives its count back
    before counting its own, so the chunk is sent, once."""
    rule = _rule((1, 3600))
    job = _job(ledger, [PHONE])
    _claim(ledger, job, T0, rule)
    redis_client.hset(ledger.keys.chunk(job, 0), mapping={"state": "pending", "attempt": 0})  # undone
    assert _sent(_claim(ledger, job, T0 + S, rule))
    assert _send(ledger, T0 + 2 * S, rule).status == CAPPED  # and the send it made is counted


def test_a_released_count_can_be_used_by_another_job(ledger: Ledger) -> None:
    """While a released chunk waits for its retry, its count is free: another job's send takes it,
    and the retry then finds the phone capped (one send in the window, whichever job)."""
    rule = _rule((1, 3600))
    job = _job(ledger, [PHONE])
    first = _claim(ledger, job, T0, rule)
    ledger.release(job, 0, attempt=first.attempt, expected="sending", code="Timeout", now_ms=T0 + S)
    assert _sent(_send(ledger, T0 + 2 * S, rule))
    assert _claim(ledger, job, T0 + 3 * S, rule).status == CAPPED


def test_a_chunk_rejected_whole_gives_its_count_back(ledger: Ledger) -> None:
    """Refused by the gateway (nothing sent), a chunk's phones are not counted as reached."""
    rule = _rule((1, 3600))
    job = _job(ledger, [PHONE])
    claim = _claim(ledger, job, T0, rule)
    assert ledger.reject(job, 0, attempt=claim.attempt, code="40001", now_ms=T0 + S)
    assert _sent(_send(ledger, T0 + 2 * S, rule))


def test_a_capped_phone_is_rejected_capped_in_its_record_counts_and_the_outcome_feed(ledger: Ledger) -> None:
    """The rest of the chunk is accepted; the capped phone is final as ``rejected`` with code ``capped``
    and its cap as the detail, counted in the job and handed to the app on the outcome feed."""
    rule = _rule((1, 60), (3, 3600))
    _send(ledger, T0, rule)
    job = _job(ledger, [OTHER, PHONE])
    claim = _claim(ledger, job, T0 + S, rule)
    assert ledger.accept(job, 0, attempt=claim.attempt, message_id="m1", failed_indexes=[], now_ms=T0 + 2 * S) == "ok"
    records = {d.phone: d for d in RecordReader(ledger).job_records(job)}
    assert (records[PHONE].state, records[PHONE].code, records[PHONE].detail) == ("rejected", CAPPED,
                                                                                   "bulk cap 1 per 60 s")
    assert (records[OTHER].state, records[OTHER].code) == ("accepted", "")
    counts = ledger.counts(job)
    assert (counts["accepted"], counts["rejected"], sum(counts.values())) == (1, 1, 2)
    feed, _ = RecordReader(ledger).feed("0", limit=100, block_ms=None)
    assert [(d.job_id, d.phone, d.code) for d in feed if d.job_id == job] == [(job, PHONE, CAPPED)]


def test_a_chunk_of_only_capped_phones_is_rejected_without_a_rate_slot(ledger: Ledger,
                                                                       redis_client: redis.Redis) -> None:
    """Nothing to send: no rate-limit slot is spent on it, every phone is final ``capped`` with its cap,
    the job finished."""
    rule = _rule((1, 3600))
    _send(ledger, T0, rule, phones=[PHONE, OTHER])
    limiter = RateLimiter(redis_client, ledger.keys, overrides={("opass", "a", "send"): (Limit("send", 1, 60),)})
    slot = limiter.slot_script_args("opass", "a", "send", reserve_ms=0)
    job = _job(ledger, [PHONE, OTHER])
    claim = _claim(ledger, job, T0 + S, rule, slot=slot)
    assert claim.status == CAPPED
    assert redis_client.get(ledger.keys.limiter("opass", "a", "send")) is None  # the account's one slot is free
    assert {(d.state, d.code, d.detail) for d in RecordReader(ledger).job_records(job)} == {
        ("rejected", CAPPED, "bulk cap 1 per 3600 s")}  # each phone names the cap that held it
    assert ledger.job(job).get("ev:f")  # its 'finished' event is queued


def test_an_ambiguous_chunk_settled_by_receipts_records_its_capped_phones(ledger: Ledger) -> None:
    """A chunk whose answer was lost and whose receipts prove it arrived: the phones its claim held
    back are rejected ``capped``, not left awaiting receipts that cannot come."""
    rule = _rule((1, 3600))
    _send(ledger, T0, rule)
    job = _job(ledger, [OTHER, PHONE])
    claim = _claim(ledger, job, T0 + S, rule)
    ledger.mark_ambiguous(job, 0, attempt=claim.attempt, deadline_ms=T0 + 600 * S, code="Timeout", now_ms=T0 + S)
    ledger.apply_receipts(job, 0, attempt=claim.attempt, receipts=[(OTHER, True)], owner="opass:a",
                          now_ms=T0 + 9 * S)
    states = {d.phone: (d.state, d.code) for d in RecordReader(ledger).job_records(job)}
    assert states == {OTHER: ("delivered", ""), PHONE: ("rejected", CAPPED)}


def test_a_number_is_one_phone_whether_stored_plain_or_padded(ledger: Ledger) -> None:
    """A mainland number in an international job's wide (zero-padded) chunk is counted as itself."""
    rule = _rule((1, 3600))
    _send(ledger, T0, rule)
    wide = _claim(ledger, _job(ledger, [PHONE, "85291234567"], width=15), T0 + S, rule)
    assert (wide.status, wide.capped) == ("ok", (0,))


def test_counts_expire_within_two_of_their_slices(ledger: Ledger, redis_client: redis.Redis) -> None:
    """Memory is bounded: every key of counts expires, at most two slices (plus a minute) from now."""
    rule = _rule((1, 60), (2, 3600))
    for k in range(20):
        _send(ledger, T0 + k * S, rule, phones=[f"1380000{k:04d}"])
    keys = redis_client.keys(f"{ledger.keys.cap_head(rule.scope, rule.priority, rule.epoch_s)}*")
    assert keys
    ttls = [redis_client.ttl(k) for k in keys]
    assert all(0 < ttl <= 2 * 3600 + 60 + 60 for ttl in ttls), ttls  # + 60: T0 is up to a minute ahead
