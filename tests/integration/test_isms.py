"""International SMS (isms) end to end on real processes: producer, Celery workers, the sandbox,
the webhook under gunicorn, counted by the sandbox's ledger (``aiofish-isms``)."""

from __future__ import annotations

import pytest

from dispatcher.errors import ValidationError
from dispatcher.ledger import as_text
from tests.integration.pipeline import Pipeline, pipeline_factory  # noqa: F401 - fixture

ISMS = "aiofish-isms"
FINAL = ("delivered", "failed", "rejected", "unknown")


def _numbers(count: int) -> list[str]:
    """Distinct international numbers of different lengths (Hong Kong 11, UK 12, Singapore 10, US 11)."""
    heads = ("852", "4477", "65", "1312")
    return [f"{heads[i % 4]}{9_000_000 + i:07d}" for i in range(count)]


def _records_final(p: Pipeline, job_id: str) -> dict[str, str]:
    """Every recipient's state, once the job is finished and every receipt applied."""
    p.wait(job_id, timeout_s=180)
    return {d.phone: d.state for d in p.dispatcher.status(job_id, phones=True).phones or []}


def test_an_isms_job_reaches_every_number_once_and_its_pushed_receipts_land_in_the_record(
        pipeline_factory) -> None:  # noqa: F811
    """2,500 numbers (3 calls of at most 1000), given in +, 00 and bare forms: the sandbox accepts each
    exactly once, the status pushes (msgId only) reach the webhook and every record ends final."""
    p = pipeline_factory(workers=1)
    numbers = _numbers(2_500)
    given = [("+" + n) if i % 3 == 0 else ("00" + n) if i % 3 == 1 else n for i, n in enumerate(numbers)]
    job = p.dispatcher.send_international("demo", content="Your code is 123456. Valid for 5 minutes.",
                                          phones=given, uuid="order-77")
    assert (job.provider, job.total, job.chunks) == (ISMS, 2_500, 3)

    states = _records_final(p, job.job_id)
    assert set(states) == set(numbers)
    assert all(s in FINAL for s in states.values()), {s for s in states.values() if s not in FINAL}
    # Outcomes came by push only (isms has no pull API): most were delivered.
    assert sum(s == "delivered" for s in states.values()) > 2_000
    histogram = p.accepted_counts(ISMS, numbers)
    assert histogram == {1: len(numbers)}, f"times accepted -> numbers: {histogram}"
    assert p.dispatcher.status(job.job_id).tag == "order-77"


def test_lookup_by_an_international_number_and_by_message_id_finds_its_isms_record(
        pipeline_factory) -> None:  # noqa: F811
    """A number of 11, 12 and 10 digits (so stored padded in the chunk) is found by phone in any
    written form, and by the vendor's message id, with its final state and the caller's uuid."""
    p = pipeline_factory(workers=1)
    numbers = _numbers(3)
    job = p.dispatcher.send_international("demo", content="Hello from the sandbox", phones=numbers, uuid="u-1")
    states = _records_final(p, job.job_id)
    for number in numbers:
        found = p.dispatcher.lookup(phone="+" + number)
        assert [(d.job_id, d.phone, d.state, d.tag) for d in found] == [(job.job_id, number, states[number], "u-1")]
    mid = as_text(p.dispatcher.ledger.chunk(job.job_id, 0)["mid"])
    by_id = p.dispatcher.lookup(message_id=mid, provider=ISMS)
    assert sorted(d.phone for d in by_id) == sorted(numbers)


def test_bad_international_numbers_are_refused_naming_each_and_nothing_is_stored(
        pipeline_factory) -> None:  # noqa: F811
    """A number without country code digits, one too long and one with a leading zero are refused
    by index before anything is stored or sent."""
    p = pipeline_factory(workers=1, beat=False, webhook=False)
    before = p.redis.dbsize()
    with pytest.raises(ValidationError) as refused:
        p.dispatcher.send_international("demo", content="hi",
                                        phones=["85291234567", "12345", "+1234567890123456", "0085", "0452912345"])
    fields = [problem.field for problem in refused.value.problems]
    assert fields == ["phones[1]", "phones[2]", "phones[3]", "phones[4]"]
    assert p.redis.dbsize() == before
    assert p.sandbox.ledger()["accepted"].get(ISMS, {}) == {}


def test_an_ambiguous_isms_chunk_is_settled_by_its_pushed_receipts_never_resent(pipeline_factory) -> None:  # noqa: F811
    """The gateway takes the call and the answer is lost (``drop``): the chunk is ambiguous with no
    message id, and isms pushes name only that id. The pushed receipts' phones name the one
    ambiguous chunk they can belong to, so it is settled as accepted and never resent."""
    # A window long enough for the pushes to come first: without them the chunk would be resent.
    p = pipeline_factory(workers=1, env={"SMSD_RECONCILE_WINDOW_S": "60"})
    p.sandbox.set_faults({"kind": "drop", "rate": 1.0, "count": 1, "path": "/rest/isms/"})
    numbers = _numbers(4)
    job = p.dispatcher.send_international("demo", content="Hello again", phones=numbers, uuid="u-2")

    states = _records_final(p, job.job_id)
    assert [r["injected"] for r in p.sandbox.faults()] == [1], "the fault did not fire: nothing was ambiguous"
    chunk = p.dispatcher.ledger.chunk(job.job_id, 0)
    assert (as_text(chunk.get("settled_from", b"resent")), as_text(chunk["attempt"])) == ("ambiguous", "1")
    assert set(states.values()) <= {"delivered", "failed"}, states
    assert p.accepted_counts(ISMS, numbers) == {1: len(numbers)}
    by_id = p.dispatcher.lookup(message_id=as_text(chunk["mid"]), provider=ISMS)
    assert sorted(d.phone for d in by_id) == sorted(numbers)
