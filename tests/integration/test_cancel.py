"""Cancelling a job, on real processes: what was not yet sent never goes out, what was in flight ends normally.

The pipeline tests count sends with the sandbox's ledger (how often the gateway
accepted each phone), the way an operator would check a cancel afterwards. The
ledger tests (a real redis-server, no worker) pin each guard of the cancel on its
own: a claim, a release and the schedule each refuse a cancelled job's chunk, and
each of them alone would let it out again.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
import redis

from dispatcher import sweeps
from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.ledger import PHONE_WIDTH, ChunkData, as_text
from dispatcher.local.demo import accounts_doc, phones
from dispatcher.local.stack import wait_for
from dispatcher.producer import Dispatcher, JobStatus
from dispatcher.runtime import Runtime
from tests.integration.pipeline import Pipeline, pipeline_factory  # noqa: F401 - fixture
from tests.integration.processes import cli

ONE_PARAM = "1000000000000000002"
FINAL_SENT = ("delivered", "failed", "rejected", "unknown")


def _past_gateway(status: JobStatus) -> int:
    """Recipients past the gateway call (accepted, final or refused), cancelled ones aside."""
    c = status.counts
    return status.total - c["pending"] - c["sending"] - c["cancelled"]


def _chunks_in(p: Pipeline, job_id: str, chunks: int, *states: str) -> list[int]:
    """The chunks of a job in one of ``states`` now, read in one round trip."""
    pipe = p.redis.pipeline(transaction=False)
    for n in range(chunks):
        pipe.hget(p.dispatcher.keys.chunk(job_id, n), "state")
    return [n for n, s in enumerate(pipe.execute()) if as_text(s) in states]


def _chunk_phones(p: Pipeline, job_id: str, n: int) -> list[str]:
    text = as_text(p.dispatcher.ledger.chunk(job_id, n)["phones"])
    return [text[i:i + PHONE_WIDTH] for i in range(0, len(text), PHONE_WIDTH)]


def _worker_events(p: Pipeline, event: str, job_id: str) -> list[dict[str, Any]]:
    """The JSON log lines of worker ``w0`` with this ``event`` about ``job_id``."""
    return [entry for entry in p.stack.log_events("w0", event) if entry.get("job_id") == job_id]


# --------------------------------------------------------------------------- whole pipeline


def test_cancel_of_a_running_100k_job_sends_no_cancelled_recipient_and_the_rest_once(pipeline_factory) -> None:  # noqa: F811
    """Cancelled mid-job with chunks in the workers' hands: no recipient counted ``cancelled`` reached the gateway,
    every other one reached it exactly once and ended final, the chunks in flight ended as accepted sends, the
    cancel's count is the job's ``cancelled`` count and record count, and cancelling again (CLI, then once the job
    has finished) cancels 0."""
    p = pipeline_factory(workers=2, concurrency=2, opass={"batch_max": 500})
    # Every send is held a second at the gateway, so the cancel lands while workers hold chunks (asserted below).
    p.sandbox.set_faults({"kind": "slow", "rate": 1.0, "delay_ms": 1000, "path": "/message/"})
    numbers = phones(100_000, seed=91)
    job = p.dispatcher.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["9"])

    def a_tenth_out_and_chunks_in_flight() -> JobStatus | None:
        status = p.dispatcher.status(job.job_id)
        return status if _past_gateway(status) >= 10_000 and status.counts["sending"] > 0 else None

    wait_for(a_tenth_out_and_chunks_in_flight, what="a tenth past the gateway with chunks in flight", timeout_s=120)
    cancelled = p.dispatcher.cancel(job.job_id)
    # Read right after the cancel returned: no chunk can be claimed after it (none is pending any more), so
    # these were in the workers' hands while it ran.
    in_flight = _chunks_in(p, job.job_id, job.chunks, "sending")
    again = cli("cancel", job.job_id, "--json", env=p.stack.env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"job_id": job.job_id, "cancelled": 0}

    # Once no chunk is pending or in flight, the gateway has seen every send the job will ever make.
    wait_for(lambda: _chunks_in(p, job.job_id, job.chunks, "pending", "sending", "ambiguous"), ok=lambda c: not c,
             what="no chunk pending or in flight", timeout_s=120)
    sent = p.sandbox.ledger()["accepted"]["opass"]
    records = p.dispatcher.status(job.job_id, phones=True).phones or []
    assert sorted(d.phone for d in records) == sorted(numbers)
    cancelled_but_sent = [d for d in records if d.state == "cancelled" and sent.get(d.phone, 0)]
    assert not cancelled_but_sent, f"{len(cancelled_but_sent)} cancelled recipients reached the gateway"
    rest = [d for d in records if d.state != "cancelled"]
    assert Counter(sent.get(d.phone, 0) for d in rest) == {1: len(rest)}, "times sent -> recipients not cancelled"
    assert 0 < cancelled <= 90_000, f"cancelled {cancelled} of 100000 after a tenth went out"
    assert cancelled == len(records) - len(rest)

    # Once every receipt is in, the funnel adds up and the records agree with it.
    final = p.wait(job.job_id, timeout_s=120)
    assert final.cancelled and sum(final.counts.values()) == 100_000
    records = p.dispatcher.status(job.job_id, phones=True).phones or []
    assert cancelled == final.counts["cancelled"] == sum(d.state == "cancelled" for d in records)
    assert {d.state for d in records if d.state != "cancelled"} <= set(FINAL_SENT)

    # The chunks in flight at the cancel finished as sends: accepted with the vendor's message id, final.
    assert in_flight, "no chunk was in flight when the cancel ran"
    by_phone = {d.phone: d for d in records}
    flown = [by_phone[ph] for n in in_flight for ph in _chunk_phones(p, job.job_id, n)]
    assert all(d.state in FINAL_SENT and d.message_id for d in flown), Counter(d.state for d in flown)

    # A finished job has nothing left to cancel, and its funnel stays as it was.
    assert p.dispatcher.cancel(job.job_id) == 0
    assert p.dispatcher.status(job.job_id).counts == final.counts


def test_a_cancelled_scheduled_job_sends_nothing_after_its_time(pipeline_factory) -> None:  # noqa: F811
    """A job cancelled before its ``send_at`` never reaches the gateway or a worker after that time passes, and
    reads as finished with every recipient ``cancelled``."""
    p = pipeline_factory(workers=1, concurrency=1, opass={"batch_max": 50})
    numbers, witness_numbers = phones(400, seed=92)[:200], phones(400, seed=92)[200:]
    send_at_ms = int(time.time() * 1000) + 3_000
    job = p.dispatcher.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["5"],
                                     send_at=send_at_ms)
    # Due a second later: once it has gone out, the sweeps have passed the cancelled job's time.
    witness = p.dispatcher.send_template("demo", template_code=ONE_PARAM, phones=witness_numbers, params=["6"],
                                         send_at=send_at_ms + 1_000)
    assert p.dispatcher.cancel(job.job_id) == 200

    p.wait(witness.job_id, timeout_s=60)
    assert int(time.time() * 1000) > send_at_ms
    assert p.accepted_counts("opass", witness_numbers) == {1: 200}
    assert p.accepted_counts("opass", numbers) == {0: 200}, "times sent -> recipients of the cancelled job"
    assert _worker_events(p, "job.fanout", job.job_id) == [], "a worker fanned the cancelled job out"
    status = p.dispatcher.status(job.job_id, phones=True)
    assert (status.finished, status.submitted, status.cancelled) == (True, True, True)
    assert status.counts["cancelled"] == 200 and sum(status.counts.values()) == 200
    assert Counter(d.state for d in status.phones or []) == {"cancelled": 200}


# --------------------------------------------------------------------------- each guard, on the ledger

CHUNK = [f"138{i:08d}" for i in range(5)]


@pytest.fixture
def stored(redis_url: str, redis_client: redis.Redis) -> Dispatcher:
    """A Dispatcher on the test's Redis whose jobs are stored and never sent (no broker, no worker)."""
    return Dispatcher(Settings(redis_url=redis_url), accounts=parse_accounts(accounts_doc("http://127.0.0.1:9")),
                      client=redis_client, enqueue=lambda job_id, queue, countdown: None)


def _two_chunks(stored: Dispatcher) -> str:
    stored.ledger.create_job("j", {"provider": "opass", "account": "demo", "kind": "opass.send"},
                             [ChunkData(CHUNK), ChunkData(CHUNK)], now_ms=1)
    return "j"


@pytest.mark.parametrize("fate", ["sending", "ambiguous"])
def test_a_chunk_released_unsent_after_the_cancel_is_cancelled_not_pending_again(stored: Dispatcher,
                                                                                 fate: str) -> None:
    """A chunk in flight at the cancel that comes back provably unsent (a transient error, or an ambiguous send
    reconciled as never arrived) is cancelled: no recipient is pending again and no claim can resend it."""
    ledger = stored.ledger
    job_id = _two_chunks(stored)
    claim = ledger.claim(job_id, 0, provider="opass", account="demo", now_ms=2)
    if fate == "ambiguous":
        assert ledger.mark_ambiguous(job_id, 0, attempt=claim.attempt, deadline_ms=10, code="timeout", now_ms=3)
    assert stored.cancel(job_id) == 5  # chunk 1; chunk 0 is in flight
    assert ledger.release(job_id, 0, attempt=claim.attempt, expected=fate, code="-1", now_ms=4)
    status = stored.status(job_id, phones=True)
    funnel = (status.counts["pending"], status.counts["sending"], status.counts["cancelled"])
    assert funnel == (0, 0, 10), f"(pending, sending, cancelled) after the release: {funnel}"
    assert status.finished and {d.state for d in status.phones or []} == {"cancelled"}
    assert ledger.claim(job_id, 0, provider="opass", account="demo", now_ms=5).status == "skip"


def test_a_claim_the_cancel_has_not_reached_yet_cancels_the_chunk_instead_of_sending_it(stored: Dispatcher) -> None:
    """The cancel marks the job before it walks the chunks (in calls of 100): a sender claiming a chunk it has
    not reached yet gets no phones to send, and the chunk is cancelled and counted."""
    ledger = stored.ledger
    job_id = _two_chunks(stored)
    assert ledger.cancel_chunks(job_id, [0], now_ms=2) == 5  # the job marked, chunk 1 not reached yet
    claim = ledger.claim(job_id, 1, provider="opass", account="demo", now_ms=3)
    assert (claim.status, claim.phones) == ("cancelled", ()), f"claimed to send: {claim}"
    counts = stored.status(job_id).counts
    funnel = (counts["pending"], counts["sending"], counts["cancelled"])
    assert funnel == (0, 0, 10), f"(pending, sending, cancelled) after the claim: {funnel}"


def test_a_cancelled_scheduled_job_is_off_the_schedule_and_no_sweep_queues_it(stored: Dispatcher,
                                                                              redis_client: redis.Redis) -> None:
    """After the cancel, neither the schedule sweep nor the orphan sweep finds anything of the job to queue,
    however late they run."""
    rt = Runtime(stored.settings, accounts=parse_accounts(accounts_doc("http://127.0.0.1:9")), client=redis_client)
    send_at_ms = int(time.time() * 1000) + 3_600_000
    job = stored.send_template("demo", template_code=ONE_PARAM, phones=phones(30, seed=93), params=["1"],
                               send_at=send_at_ms)
    assert stored.cancel(job.job_id) == 30
    much_later = send_at_ms + 86_400_000
    assert sweeps.due_scheduled(rt, now_ms=much_later) == [], "the schedule sweep would fan the job out"
    assert sweeps.orphaned_pending(rt, now_ms=much_later) == [], "the orphan sweep would queue its chunks"


def test_cancel_of_an_unknown_job_raises_key_error_and_marks_nothing(stored: Dispatcher,
                                                                    redis_client: redis.Redis) -> None:
    """An unknown (or expired) job id is a KeyError naming it, and leaves no job behind."""
    with pytest.raises(KeyError, match="no job 0123456789abcdef"):
        stored.cancel("0123456789abcdef")
    assert redis_client.exists(stored.keys.job("0123456789abcdef")) == 0
