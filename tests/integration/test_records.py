"""Recipient records on a real redis-server: what the ledger writes, read back as Delivery values.

Each test drives the ledger's scripts as the pipeline does (claim, accept, receipts,
expiry, cancel) and reads through :class:`RecordReader`, the reader behind
``Dispatcher.status(phones=True)``, ``lookup`` and ``outcomes``.
"""

from __future__ import annotations

import time

import pytest

from dispatcher import job_events
from dispatcher.deliveries import CodeEntry
from dispatcher.keys import client_id
from dispatcher.ledger import ChunkData, Ledger
from dispatcher.providers.results import Receipt
from dispatcher.receipts import apply_receipts
from dispatcher.records import RecordReader

PHONES = [f"1380000{i:04d}" for i in range(6)]
NOW = int(time.time() * 1000)  # the phone index expires on the real clock: records are written at real times


@pytest.fixture
def ledger(redis_client) -> Ledger:  # type: ignore[no-untyped-def]
    return Ledger(redis_client, outcome_feed_max=1000)


@pytest.fixture
def reader(ledger: Ledger) -> RecordReader:
    return RecordReader(ledger)


def _sent(ledger: Ledger, job_id: str = "j1", *, phones: list[str] = PHONES, provider: str = "opass",
          message_id: str = "m-1", failed: dict[int, CodeEntry] | None = None, tag: str = "order-7",
          chunks: int = 1) -> str:
    """A job stored, claimed and accepted (phones at ``failed`` refused at submit)."""
    ledger.create_job(job_id, {"provider": provider, "account": "a", "tag": tag}, [ChunkData(phones)] * chunks,
                      now_ms=NOW)
    for n in range(chunks):
        assert ledger.claim(job_id, n, provider=provider, account="a", now_ms=NOW + 1).status == "ok"
        failed = failed or {}
        assert ledger.accept(job_id, n, attempt=1, message_id=f"{message_id}.{n}" if chunks > 1 else message_id,
                             failed_indexes=sorted(failed), failed_codes=[failed[i] for i in sorted(failed)],
                             now_ms=NOW + 2) == "ok"
    return job_id


def _receipt(job_id: str, phone: str, status: str, *, code: str | None = None, at_ms: int | None = None,
             provider: str = "opass", n: int = 0) -> Receipt:
    return Receipt(provider, "m-1", phone, status, status == "DELIVRD", at_ms, client_id(job_id, n, 1), code)


def _state(reader: RecordReader, job_id: str = "j1") -> list[tuple[str, str, str, str, int]]:
    return [(d.phone, d.state, d.code, d.detail, d.at_ms) for d in reader.job_records(job_id)]


def test_a_submit_refusal_keeps_the_vendors_code_and_text_for_that_phone(ledger: Ledger,
                                                                        reader: RecordReader) -> None:
    _sent(ledger, failed={1: CodeEntry.clean("60003", "号码在黑名单中")})
    records = _state(reader)
    assert records[1] == (PHONES[1], "rejected", "60003", "号码在黑名单中", NOW + 2)
    assert records[0] == (PHONES[0], "accepted", "", "", NOW + 2)
    assert {d.message_id for d in reader.job_records("j1")} == {"m-1"}
    assert {d.tag for d in reader.job_records("j1")} == {"order-7"}


def test_a_receipt_leaves_its_status_code_and_its_own_time_on_the_phone(ledger: Ledger,
                                                                       reader: RecordReader) -> None:
    _sent(ledger)
    receipts = [_receipt("j1", PHONES[0], "DELIVRD", at_ms=NOW + 5000),
                _receipt("j1", PHONES[1], "UNDELIV", at_ms=NOW - 3000),  # the vendor's clock is behind ours
                _receipt("j1", PHONES[2], "UNDELIV", code="r:004", at_ms=None)]  # no time given: ours
    apply_receipts(ledger, receipts, provider="opass", account="a", now_ms=NOW + 9000)
    records = _state(reader)
    assert records[0] == (PHONES[0], "delivered", "DELIVRD", "", NOW + 5000)
    assert records[1] == (PHONES[1], "failed", "UNDELIV", "", NOW - 3000)
    assert records[2] == (PHONES[2], "failed", "r:004", "UNDELIV", NOW + 9000)
    assert records[3][1:3] == ("accepted", "")


def test_a_receipt_that_changes_nothing_leaves_the_record_as_it_was(ledger: Ledger, reader: RecordReader) -> None:
    """A terminal state is final: a later, contradicting receipt must not rewrite its code or time."""
    _sent(ledger)
    apply_receipts(ledger, [_receipt("j1", PHONES[0], "DELIVRD", at_ms=NOW + 5)], provider="opass", account="a",
                   now_ms=NOW + 10)
    before = _state(reader)
    apply_receipts(ledger, [_receipt("j1", PHONES[0], "UNDELIV", at_ms=NOW + 99)], provider="opass", account="a",
                   now_ms=NOW + 100)
    assert _state(reader) == before


def test_a_chunks_code_table_holds_254_codes_and_files_the_rest_as_other(ledger: Ledger,
                                                                        reader: RecordReader) -> None:
    phones = [f"1390000{i:04d}" for i in range(300)]
    _sent(ledger, phones=phones)
    apply_receipts(ledger, [_receipt("j1", p, "UNDELIV", code=f"E{i:03d}") for i, p in enumerate(phones)],
                   provider="opass", account="a", now_ms=NOW + 10)
    codes = [d.code for d in reader.job_records("j1")]
    assert codes[:254] == [f"E{i:03d}" for i in range(254)]
    assert set(codes[254:]) == {"other"}


def test_a_message_id_finds_every_phone_it_carried_and_only_through_its_provider(ledger: Ledger,
                                                                                reader: RecordReader) -> None:
    _sent(ledger, "j1", message_id="shared-id")
    _sent(ledger, "j2", phones=PHONES[:2], provider="aiofish", message_id="other-id")
    found = reader.by_message_id("shared-id")
    assert sorted(d.phone for d in found) == PHONES and {d.job_id for d in found} == {"j1"}
    assert reader.by_message_id("shared-id", provider="aiofish") == []
    assert reader.by_message_id("never-sent") == []
    assert len(reader.by_message_id("shared-id", limit=2)) == 2


def test_a_phone_is_found_in_every_job_that_sent_it_newest_first(ledger: Ledger, reader: RecordReader) -> None:
    _sent(ledger, "j1")
    _sent(ledger, "j2", phones=[PHONES[3], "13900000000"], provider="aiofish")
    apply_receipts(ledger, [_receipt("j2", PHONES[3], "DELIVRD", at_ms=NOW + 50, provider="aiofish")],
                   provider="aiofish", account="a", now_ms=NOW + 60)
    found = reader.by_phone(PHONES[3], now_ms=NOW)
    assert [(d.job_id, d.state) for d in found] == [("j2", "delivered"), ("j1", "accepted")]
    assert [d.job_id for d in reader.by_phone(PHONES[3], provider="opass", now_ms=NOW)] == ["j1"]
    assert reader.by_phone("13700000000", now_ms=NOW) == []


def test_a_phone_in_a_job_of_many_chunks_is_found_in_its_own_chunk(ledger: Ledger, reader: RecordReader) -> None:
    phones = [f"1370000{i:04d}" for i in range(30)]
    ledger.create_job("big", {"provider": "opass", "account": "a"}, [ChunkData(phones[i:i + 10])
                                                                     for i in range(0, 30, 10)], now_ms=NOW)
    (d,) = reader.by_phone(phones[25], now_ms=NOW)
    assert (d.job_id, d.phone, d.state) == ("big", phones[25], "pending")


def test_the_feed_pages_through_outcomes_in_order_even_inside_one_change(ledger: Ledger,
                                                                        reader: RecordReader) -> None:
    _sent(ledger, failed={0: CodeEntry.clean("E1")})  # outcome 1: a refusal
    apply_receipts(ledger, [_receipt("j1", p, "DELIVRD") for p in PHONES[1:]], provider="opass", account="a",
                   now_ms=NOW + 10)  # outcomes 2..6 in one change
    whole, _ = reader.feed("0", limit=100, block_ms=None)
    assert [(d.phone, d.state) for d in whole] == [(PHONES[0], "rejected")] + [(p, "delivered") for p in PHONES[1:]]
    pages, cursor = [], "0"
    for _ in range(10):
        page, cursor = reader.feed(cursor, limit=2, block_ms=None)
        pages.append([d.phone for d in page])
        if not page:
            break
    assert pages[:4] == [PHONES[0:2], PHONES[2:4], PHONES[4:6], []]
    assert reader.feed("$", limit=10, block_ms=None)[0] == []


def test_a_reader_from_the_end_sees_only_what_comes_next(ledger: Ledger, reader: RecordReader) -> None:
    _sent(ledger)
    _, cursor = reader.feed("$", limit=10, block_ms=None)
    apply_receipts(ledger, [_receipt("j1", PHONES[2], "DELIVRD")], provider="opass", account="a", now_ms=NOW + 1)
    page, _ = reader.feed(cursor, limit=10, block_ms=None)
    assert [d.phone for d in page] == [PHONES[2]]


def test_unknown_and_cancelled_are_final_outcomes_with_their_time(ledger: Ledger, reader: RecordReader) -> None:
    _sent(ledger)
    assert ledger.expire_awaiting("j1", 0, now_ms=NOW + 777) == len(PHONES)
    ledger.create_job("j2", {"provider": "opass", "account": "a"}, [ChunkData(PHONES[:2])], now_ms=NOW)
    assert ledger.cancel("j2", now_ms=NOW + 888) == 2
    assert ledger.cancel("j2", now_ms=NOW + 999) == 0
    feed, _ = reader.feed("0", limit=100, block_ms=None)
    assert [(d.job_id, d.state, d.at_ms) for d in feed] == [("j1", "unknown", NOW + 777)] * 6 + [
        ("j2", "cancelled", NOW + 888)] * 2
    assert ledger.counts("j2")["cancelled"] == 2 and ledger.counts("j2")["pending"] == 0


def test_a_claim_in_a_cancelled_job_cancels_the_chunk_instead(ledger: Ledger) -> None:
    ledger.create_job("j1", {"provider": "opass", "account": "a"}, [ChunkData(PHONES[:3])] * 2, now_ms=NOW)
    ledger.r.hset(ledger.keys.job("j1"), "cancel", NOW)  # a cancel that marked the job and died before its chunks
    claim = ledger.claim("j1", 1, provider="opass", account="a", now_ms=NOW + 1)
    assert claim.status == "cancelled"
    assert ledger.counts("j1")["cancelled"] == 3 and ledger.counts("j1")["pending"] == 3


def test_a_chunk_released_unsent_in_a_cancelled_job_is_cancelled_not_sent_again(ledger: Ledger) -> None:
    ledger.create_job("j1", {"provider": "opass", "account": "a"}, [ChunkData(PHONES[:3])], now_ms=NOW)
    assert ledger.claim("j1", 0, provider="opass", account="a", now_ms=NOW + 1).status == "ok"
    assert ledger.cancel("j1", now_ms=NOW + 2) == 0  # in flight: left to finish
    assert ledger.release("j1", 0, attempt=1, expected="sending", code="-1", now_ms=NOW + 3)
    assert ledger.chunk("j1", 0)["state"] == "cancelled"
    assert ledger.counts("j1")["cancelled"] == 3
    assert ledger.r.zscore(ledger.keys.pending(), "j1:0") is None
    # the records keep the code of the attempt that came back unsent
    assert {(d.state, d.code) for d in RecordReader(ledger).job_records("j1")} == {("cancelled", "-1")}


def test_cancelling_a_job_with_nothing_left_to_submit_changes_nothing(ledger: Ledger, reader: RecordReader) -> None:
    _sent(ledger)
    before = ledger.job("j1")
    assert ledger.cancel("j1", now_ms=NOW + 5) == 0
    assert ledger.job("j1") == before, "a job that had gone out was marked cancelled"


def test_submitted_and_finished_are_queued_once_each_and_handed_over_with_counts(ledger: Ledger) -> None:
    _sent(ledger, chunks=2)
    events = ledger.keys.job_events()
    assert [m.decode() for m in ledger.r.zrange(events, 0, -1)] == ["j1|submitted"]
    apply_receipts(ledger, [_receipt("j1", p, "DELIVRD", n=n) for n in (0, 1) for p in PHONES], provider="opass",
                   account="a", now_ms=NOW + 10)
    apply_receipts(ledger, [_receipt("j1", PHONES[0], "DELIVRD")], provider="opass", account="a", now_ms=NOW + 11)
    assert sorted(m.decode() for m in ledger.r.zrange(events, 0, -1)) == ["j1|finished", "j1|submitted"]
    sent: list[tuple[str, str, dict[str, int]]] = []
    assert job_events.deliver(ledger, lambda *args: sent.append(args), now_ms=NOW + 20) == 2
    assert sorted((job, event) for job, event, _ in sent) == [("j1", "finished"), ("j1", "submitted")]
    assert all(counts["delivered"] == 12 for _, _, counts in sent)
    assert ledger.r.zcard(events) == 0
    apply_receipts(ledger, [_receipt("j1", PHONES[1], "UNDELIV")], provider="opass", account="a", now_ms=NOW + 30)
    assert ledger.r.zcard(events) == 0, "an event was queued a second time"


def test_an_event_whose_send_failed_comes_due_again_after_its_lease(ledger: Ledger) -> None:
    _sent(ledger)

    def broker_down(*_: object) -> None:
        raise ConnectionError("broker down")

    assert job_events.deliver(ledger, broker_down, now_ms=NOW + 10, lease_ms=1000) == 0
    sent: list[tuple[str, str]] = []
    assert job_events.deliver(ledger, lambda job, event, _: sent.append((job, event)), now_ms=NOW + 500) == 0
    assert job_events.deliver(ledger, lambda job, event, _: sent.append((job, event)), now_ms=NOW + 1011) == 1
    assert sent == [("j1", "submitted")]
