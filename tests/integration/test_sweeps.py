"""The repairs that need time to show, on real processes: beat's sweeps, the paused-account check, giving up.

Each test runs a whole pipeline (real redis-server, the sandbox, Celery worker
and beat) with the timing it needs shrunk through its ``SMSD_*`` setting, and
never calls the sweep or resume itself: beat must. Evidence that beat did it is
read from the worker's JSON log (the ``sweep`` and ``account.resumed`` events
only beat's tasks write there) and from the sandbox's request counts.
"""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.config.settings import Settings
from dispatcher.ledger import PHONE_WIDTH
from dispatcher.local.demo import phones
from dispatcher.local.sandbox.demo import OPASS_API_KEY
from dispatcher.local.stack import wait_for
from dispatcher.producer import Dispatcher
from dispatcher.redis_server import free_port
from tests.integration.pipeline import Pipeline, pipeline_factory  # noqa: F401 - fixture

ONE_PARAM = "1000000000000000002"
SEND_PATH = "/message/send"
BALANCE_PATH = "/sms/residueValue/qry"
#: Small chunks, so a job of a few dozen phones has several.
CHUNK = 10
FINAL = ("delivered", "failed", "rejected", "unknown")



def _worker_events(p: Pipeline, event: str) -> list[dict[str, Any]]:
    """The JSON log entries of the pipeline's worker whose event is ``event``."""
    return p.stack.log_events("w0", event)


def _swept(p: Pipeline, field: str) -> int:
    """How many items beat's sweep tasks reported under ``field`` (``unknown``, ``orphans_requeued``…)."""
    return sum(int(entry.get(field, 0)) for entry in _worker_events(p, "sweep"))


def _states(p: Pipeline, job_id: str) -> dict[str, str]:
    return {d.phone: d.state for d in p.dispatcher.status(job_id, phones=True).phones or []}


def _chunk_phones(p: Pipeline, job_id: str, n: int) -> list[str]:
    text = p.dispatcher.ledger.chunk(job_id, n)["phones"]
    return [text[i:i + PHONE_WIDTH] for i in range(0, len(text), PHONE_WIDTH)]


def _sends(p: Pipeline) -> int:
    return int(p.sandbox.ledger()["requests"].get(SEND_PATH, 0))


def test_recipients_whose_receipts_never_come_end_unknown_by_beats_sweep(pipeline_factory) -> None:  # noqa: F811
    """Phones with no receipt within the horizon end ``unknown`` by beat's sweep, the job finished, none resent."""
    # The 72 h horizon shrunk to 3 s; half the phones never get a receipt.
    p = pipeline_factory(env={"SMSD_RECEIPT_HORIZON_S": "3"}, opass={"batch_max": CHUNK},
                         sandbox_settings={"outcomes": {"DELIVRD": 0.5, "none": 0.5}})
    numbers = phones(30, seed=31)
    job = p.dispatcher.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["135790"])
    status = p.wait(job.job_id, timeout_s=90)
    states = _states(p, job.job_id)
    assert set(states) == set(numbers)
    assert set(states.values()) == {"delivered", "unknown"}, states
    assert status.counts["unknown"] == sum(s == "unknown" for s in states.values())
    # Beat's sweep task, not this test, marked them: its log counts exactly them
    # (written just after the ledger moved, so waited for).
    wait_for(lambda: _swept(p, "unknown"), ok=lambda n: n == status.counts["unknown"],
               what="the sweeps' log of unknown phones")
    # An unknown verdict is not a resend: the gateway took each phone once.
    assert p.accepted_counts("opass", numbers) == {1: len(numbers)}


def _set_balance(p: Pipeline, balance: dict[str, int]) -> None:
    """Set the demo opass account's credit in the sandbox (a merge: the push URLs stay)."""
    p.sandbox.configure(opass={"accounts": {OPASS_API_KEY: {"balance": balance}}})


def test_a_paused_account_is_resumed_by_beat_once_its_balance_is_topped_up(pipeline_factory) -> None:  # noqa: F811
    """A balance pause holds while there is no credit; beat's check lifts it after a top-up; the rest goes out once."""
    # Credit for two chunks of ten: the third is answered 40002 (余额不足) and pauses the account.
    p = pipeline_factory(env={"SMSD_CHECK_PAUSED_EVERY_S": "0.5"}, opass={"batch_max": CHUNK})
    _set_balance(p, {"行业短信": 2 * CHUNK, "会员短信": 0, "推广短信": 0})
    numbers = phones(5 * CHUNK, seed=32)
    # force: the producer's balance guard would refuse this job; the gateway's own refusal is under test.
    job = p.dispatcher.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["246801"],
                                     force=True)
    status = wait_for(lambda: p.dispatcher.status(job.job_id), ok=lambda s: s.paused is not None,
                        what="the account paused")
    assert "40002" in (status.paused or "")
    # Beat's check asks for the balance while paused; with no credit it leaves the pause alone
    # (two checks seen: the first has finished when the second is asked).
    wait_for(lambda: p.sandbox.ledger()["requests"].get(BALANCE_PATH, 0), ok=lambda n: n >= 2,
               what="balance checks while paused")
    assert _worker_events(p, "account.resumed") == []
    status = p.dispatcher.status(job.job_id)
    assert status.paused is not None, status
    assert status.total - status.counts["pending"] - status.counts["sending"] == 2 * CHUNK, status.counts
    _set_balance(p, {"行业短信": 1_000})
    status = p.wait(job.job_id, timeout_s=90)
    assert status.paused is None
    assert [e["account"] for e in _worker_events(p, "account.resumed")] == ["demo"]
    assert p.accepted_counts("opass", numbers) == {1: len(numbers)}


def test_a_job_the_broker_refused_is_sent_once_by_the_orphan_sweep(pipeline_factory) -> None:  # noqa: F811
    """A job stored while its enqueue failed is queued by beat's orphan sweep and each phone is sent once."""
    p = pipeline_factory(env={"SMSD_ORPHAN_AFTER_S": "2"}, opass={"batch_max": CHUNK})
    # A producer on the pipeline's Redis whose broker is a port nothing listens on.
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"
    refused = Dispatcher(Settings.from_env({**p.stack.env, "SMSD_BROKER_URL": dead_broker}),
                         accounts=p.dispatcher.accounts, client=p.redis)
    numbers = phones(25, seed=33)
    job = refused.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["975310"])
    assert job.queued is False
    p.wait(job.job_id, timeout_s=90)
    assert p.accepted_counts("opass", numbers) == {1: len(numbers)}
    assert all(s in FINAL for s in _states(p, job.job_id).values())
    # Nobody but beat's sweep queued its chunks (it logs after queueing them, so waited for).
    wait_for(lambda: _swept(p, "orphans_requeued"), ok=lambda n: n >= job.chunks,
               what="the sweeps' log of re-queued chunks")


MAX_ATTEMPTS = 3


def test_a_chunk_failing_transiently_is_tried_max_attempts_times_then_recorded_rejected(
    pipeline_factory,  # noqa: F811
) -> None:
    """A chunk the gateway keeps answering "busy" is sent exactly ``max_attempts`` times, then rejected (gave-up)."""
    p = pipeline_factory(env={"SMSD_MAX_ATTEMPTS": str(MAX_ATTEMPTS)}, opass={"batch_max": CHUNK})
    # -1 系统繁忙 on every send: transient, so retried with backoff until the cap.
    p.sandbox.set_faults({"kind": "code", "code": "-1", "rate": 1.0, "path": SEND_PATH})
    numbers = phones(15, seed=34)
    job = p.dispatcher.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["864200"])
    status = p.wait(job.job_id, timeout_s=90)
    assert status.counts["rejected"] == len(numbers)
    assert _sends(p) == job.chunks * MAX_ATTEMPTS
    for n in range(job.chunks):
        chunk = p.dispatcher.ledger.chunk(job.job_id, n)
        assert (chunk["state"], chunk["code"], int(chunk["attempt"])) == ("rejected", "gave-up:-1", MAX_ATTEMPTS)
    # Every recipient is final and says what happened: the gateway took none of them.
    assert set(_states(p, job.job_id).values()) == {"rejected"}
    assert p.accepted_counts("opass", numbers) == {0: len(numbers)}


@pytest.mark.parametrize("code", ["40004", "60007"], ids=["request-rejected", "recipients-rejected"])
def test_a_chunk_the_gateway_refuses_ends_rejected_and_the_other_chunks_go_out(
    pipeline_factory, code: str,  # noqa: F811
) -> None:
    """A permanent refusal ends its chunk's phones ``rejected`` after one send; the job's other chunks are delivered."""
    p = pipeline_factory(opass={"batch_max": CHUNK}, sandbox_settings={"outcomes": {"DELIVRD": 1.0}})
    # The first send (whichever chunk it is) gets a permanent refusal: 40004 参数错误 or 60007 手机号参数格式错误.
    p.sandbox.set_faults({"kind": "code", "code": code, "rate": 1.0, "count": 1, "path": SEND_PATH})
    numbers = phones(3 * CHUNK, seed=35)
    job = p.dispatcher.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["112358"])
    p.wait(job.job_id, timeout_s=90)
    chunks = [p.dispatcher.ledger.chunk(job.job_id, n) for n in range(job.chunks)]
    refused = [n for n, c in enumerate(chunks) if c["state"] == "rejected"]
    assert len(refused) == 1 and chunks[refused[0]]["code"] == code, [(c["state"], c.get("code")) for c in chunks]
    refused_phones = _chunk_phones(p, job.job_id, refused[0])
    others = [phone for phone in numbers if phone not in refused_phones]
    states = _states(p, job.job_id)
    assert {states[phone] for phone in refused_phones} == {"rejected"}
    assert {states[phone] for phone in others} == {"delivered"}
    # Refused is not retried: one send per chunk, and the refused phones never reached anyone.
    assert _sends(p) == job.chunks
    assert p.accepted_counts("opass", refused_phones) == {0: len(refused_phones)}
    assert p.accepted_counts("opass", others) == {1: len(others)}
