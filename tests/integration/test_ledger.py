"""The chunk ledger on a real redis-server: transitions, counters, idempotent receipts."""

from __future__ import annotations

import pytest

from dispatcher.ledger import ChunkData, Ledger

PHONES = [f"138{i:08d}" for i in range(5)]


OWNER = {"owner": "opass:a"}  # receipts come through the hook of the jobs' account


def _job(ledger: Ledger, phones=PHONES, chunks: int = 1) -> str:  # type: ignore[no-untyped-def]
    ledger.create_job("job1", {"provider": "opass", "account": "a"}, [ChunkData(phones)] * chunks, now_ms=1)
    return "job1"


def _sum(counts: dict[str, int]) -> int:
    return sum(counts.values())


@pytest.fixture
def ledger(redis_client) -> Ledger:  # type: ignore[no-untyped-def]
    return Ledger(redis_client)


def test_a_new_job_counts_every_recipient_pending(ledger: Ledger) -> None:
    _job(ledger, chunks=3)
    assert ledger.counts("job1") == {"pending": 15, "sending": 0, "accepted": 0, "delivered": 0,
                                     "failed": 0, "rejected": 0, "unknown": 0, "cancelled": 0, "suppressed": 0}


def test_a_chunk_is_claimed_once(ledger: Ledger) -> None:
    _job(ledger)
    first = ledger.claim("job1", 0, provider="opass", account="a", now_ms=2)
    second = ledger.claim("job1", 0, provider="opass", account="a", now_ms=3)
    assert (first.status, first.attempt) == ("ok", 1)
    assert (second.status, second.detail) == ("skip", "sending")
    assert ledger.counts("job1")["sending"] == 5


def test_a_claim_hands_over_the_chunks_phones_and_payloads(ledger: Ledger) -> None:
    payloads = [["张三", str(i)] for i in range(len(PHONES))]
    ledger.create_job("job2", {"provider": "opass", "account": "a"},
                      [ChunkData(PHONES), ChunkData(PHONES, payloads)], now_ms=1)
    plain = ledger.claim("job2", 0, provider="opass", account="a", now_ms=2)
    batch = ledger.claim("job2", 1, provider="opass", account="a", now_ms=2)
    assert (plain.phones, plain.payloads) == (tuple(PHONES), None)
    assert (batch.phones, batch.payloads) == (tuple(PHONES), payloads)


def test_job_meta_is_read_once_and_holds_no_counters(ledger: Ledger, redis_client) -> None:  # type: ignore[no-untyped-def]
    assert ledger.job_meta("job1") == {}  # unknown jobs are not remembered as empty
    _job(ledger)
    meta = ledger.job_meta("job1")
    assert meta["provider"] == "opass"
    assert not [k for k in meta if k.startswith("c:")]
    redis_client.hset(ledger.keys.job("job1"), "provider", "changed")
    assert ledger.job_meta("job1")["provider"] == "opass"


def test_a_paused_account_leaves_chunks_pending(ledger: Ledger, redis_client) -> None:  # type: ignore[no-untyped-def]
    _job(ledger)
    redis_client.set(ledger.keys.paused("opass", "a"), "40002 balance")
    claim = ledger.claim("job1", 0, provider="opass", account="a", now_ms=2)
    assert (claim.status, claim.detail) == ("paused", "40002 balance")
    assert ledger.counts("job1")["pending"] == 5


def test_acceptance_with_fail_phones_splits_the_counts(ledger: Ledger) -> None:
    _job(ledger)
    ledger.claim("job1", 0, provider="opass", account="a", now_ms=2)
    assert ledger.accept("job1", 0, attempt=1, message_id="m1", failed_indexes=[1, 3], now_ms=3) == "ok"
    counts = ledger.counts("job1")
    assert (counts["accepted"], counts["rejected"], _sum(counts)) == (3, 2, 5)
    states = dict(ledger.phone_states("job1"))
    assert states[PHONES[1]] == "rejected" and states[PHONES[0]] == "accepted"


def test_receipts_are_idempotent_and_terminal_states_stay(ledger: Ledger) -> None:
    _job(ledger)
    ledger.claim("job1", 0, provider="opass", account="a", now_ms=2)
    ledger.accept("job1", 0, attempt=1, message_id="m1", failed_indexes=[], now_ms=3)
    assert ledger.apply_receipts("job1", 0, attempt=1, receipts=[(PHONES[0], True)], **OWNER, now_ms=4)[:2] == (1, 0)
    # the same receipt again, then a contradicting late one: nothing moves
    assert ledger.apply_receipts("job1", 0, attempt=1, receipts=[(PHONES[0], True)], **OWNER, now_ms=5)[:2] == (0, 1)
    assert ledger.apply_receipts("job1", 0, attempt=1, receipts=[(PHONES[0], False)], **OWNER, now_ms=6)[:2] == (0, 1)
    counts = ledger.counts("job1")
    assert (counts["delivered"], counts["failed"], counts["accepted"]) == (1, 0, 4)


def test_a_receipt_reconciles_an_ambiguous_chunk_as_accepted(ledger: Ledger) -> None:
    _job(ledger)
    ledger.claim("job1", 0, provider="opass", account="a", now_ms=2)
    assert ledger.mark_ambiguous("job1", 0, attempt=1, deadline_ms=100, code="reset", now_ms=3)
    applied, _, transition = ledger.apply_receipts("job1", 0, attempt=1, receipts=[(PHONES[2], False)], **OWNER,
                                                   now_ms=4)
    assert (applied, transition) == (1, "ambiguous->accepted")
    counts = ledger.counts("job1")
    assert (counts["sending"], counts["accepted"], counts["failed"]) == (0, 4, 1)
    # the reconcile sweep must no longer be able to resend it
    assert not ledger.release("job1", 0, attempt=1, expected="ambiguous", code="x", now_ms=5)


def test_a_late_send_answer_after_receipts_only_adds_fail_phones(ledger: Ledger) -> None:
    _job(ledger)
    ledger.claim("job1", 0, provider="opass", account="a", now_ms=2)
    ledger.apply_receipts("job1", 0, attempt=1, receipts=[(PHONES[0], True)], **OWNER, now_ms=3)
    assert ledger.accept("job1", 0, attempt=1, message_id="m1", failed_indexes=[4], now_ms=4) == "late"
    counts = ledger.counts("job1")
    assert (counts["delivered"], counts["accepted"], counts["rejected"], _sum(counts)) == (1, 3, 1, 5)


def test_a_stale_attempt_cannot_overwrite_a_newer_one(ledger: Ledger) -> None:
    _job(ledger)
    ledger.claim("job1", 0, provider="opass", account="a", now_ms=2)
    ledger.release("job1", 0, attempt=1, expected="sending", code="-1", now_ms=3)
    ledger.claim("job1", 0, provider="opass", account="a", now_ms=4)
    assert ledger.accept("job1", 0, attempt=1, message_id="old", failed_indexes=[], now_ms=5) == "stale"
    assert ledger.counts("job1")["sending"] == 5


def test_whole_chunk_rejection_and_unknown_expiry(ledger: Ledger) -> None:
    ledger.create_job("job1", {"provider": "opass", "account": "a"}, [ChunkData(PHONES), ChunkData(PHONES)], now_ms=1)
    for n in (0, 1):
        ledger.claim("job1", n, provider="opass", account="a", now_ms=2)
    assert ledger.reject("job1", 0, attempt=1, code="60001", now_ms=3)
    ledger.accept("job1", 1, attempt=1, message_id="m", failed_indexes=[], now_ms=3)
    ledger.apply_receipts("job1", 1, attempt=1, receipts=[(PHONES[0], True)], **OWNER, now_ms=4)
    assert ledger.expire_awaiting("job1", 1, now_ms=9) == 4
    counts = ledger.counts("job1")
    assert (counts["rejected"], counts["delivered"], counts["unknown"], _sum(counts)) == (5, 1, 4, 10)


def test_pending_chunks_are_tracked_until_claimed_and_again_when_released(ledger: Ledger, redis_client) -> None:  # type: ignore[no-untyped-def]
    _job(ledger, chunks=2)
    pending = ledger.keys.pending()
    assert redis_client.zcard(pending) == 2
    ledger.claim("job1", 0, provider="opass", account="a", now_ms=5)
    assert redis_client.zrange(pending, 0, -1) == [b"job1:1"]
    ledger.release("job1", 0, attempt=1, expected="sending", code="-1", now_ms=7)
    assert redis_client.zscore(pending, "job1:0") == 7


def test_a_receipt_naming_no_phone_of_the_chunk_does_not_settle_it(ledger: Ledger) -> None:
    _job(ledger)
    ledger.claim("job1", 0, provider="opass", account="a", now_ms=2)
    assert ledger.apply_receipts("job1", 0, attempt=1, receipts=[("13999999999", True)], **OWNER,
                                 now_ms=3) == (0, 1, "state:sending")
    assert ledger.chunk("job1", 0)["state"] == "sending"


def test_receipts_of_an_attempt_that_provably_never_left_stay_ignored_after_a_later_one_is_accepted(
        ledger: Ledger) -> None:
    _job(ledger)
    ledger.claim("job1", 0, provider="opass", account="a", now_ms=2)
    ledger.release("job1", 0, attempt=1, expected="sending", code="-1", now_ms=3)
    ledger.claim("job1", 0, provider="opass", account="a", now_ms=4)
    ledger.accept("job1", 0, attempt=2, message_id="m2", failed_indexes=[], now_ms=5)
    assert ledger.apply_receipts("job1", 0, attempt=1, receipts=[(PHONES[0], True)], **OWNER,
                                 now_ms=6) == (0, 1, "unclaimed")
    assert ledger.counts("job1")["accepted"] == 5


def test_a_late_receipt_of_a_reconciled_attempt_stops_the_resend(ledger: Ledger) -> None:
    _job(ledger)
    ledger.claim("job1", 0, provider="opass", account="a", now_ms=2)
    ledger.mark_ambiguous("job1", 0, attempt=1, deadline_ms=10, code="reset", now_ms=3)
    ledger.release("job1", 0, attempt=1, expected="ambiguous", code="reconciled-unsent", now_ms=10)
    ledger.claim("job1", 0, provider="opass", account="a", now_ms=11)
    ledger.release("job1", 0, attempt=2, expected="sending", code="-1", now_ms=12)  # the resend never left
    applied, _, transition = ledger.apply_receipts("job1", 0, attempt=1, receipts=[(PHONES[0], True)], **OWNER,
                                                   now_ms=13)
    assert (applied, transition) == (1, "pending->accepted")
    assert ledger.claim("job1", 0, provider="opass", account="a", now_ms=14).status == "skip"
