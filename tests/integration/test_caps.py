"""Frequency caps on real processes: redis-server, Celery workers, the sandbox gateway, the webhook.

What a recipient would notice is what the sandbox's own ledger counts: how many messages
it took for each phone. What an operator reads is each recipient's record: a capped one is
``rejected`` with code ``capped``, never sent and never lost.
"""

from __future__ import annotations

import random
from typing import Any

from dispatcher.caps import CAPPED
from dispatcher.ledger import as_text
from dispatcher.local.demo import phones
from tests.integration.pipeline import Pipeline, pipeline_factory  # noqa: F401 - fixture

ONE_PARAM = "1000000000000000002"


def _caps(**by_priority: list[list[int]]) -> dict[str, Any]:
    return {"caps": by_priority}


def _send(p: Pipeline, numbers: list[str], *, priority: str = "bulk", until: str = "finished") -> str:
    """A template job to ``numbers``, waited for until ``until``; its id."""
    job = p.dispatcher.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["493817"],
                                     priority=priority)
    p.wait(job.job_id, until=until, timeout_s=180)
    return job.job_id


def _records(p: Pipeline, job_id: str) -> dict[str, tuple[str, str, str]]:
    """Each recipient's ``(state, code, detail)``."""
    return {d.phone: (d.state, d.code, d.detail) for d in p.dispatcher.status(job_id, phones=True).phones or []}


def test_a_phone_in_two_campaigns_within_its_window_is_sent_once(pipeline_factory) -> None:  # noqa: F811
    """[1 per hour]: the second campaign sends only its new phones; the shared ones end ``rejected``
    ``capped`` (counted, recorded with the cap, on the outcome feed), and the sandbox took each phone once."""
    p = pipeline_factory(opass=_caps(bulk=[[1, 3600]]))
    shared, fresh = phones(60, seed=41), phones(40, seed=42, prefix="15")
    first = _send(p, shared, until="submitted")
    second = _send(p, shared + fresh)
    assert p.accepted_counts("opass", shared + fresh) == {1: 100}, "times the gateway took a phone -> phones"
    records = _records(p, second)
    assert {records[n] for n in shared} == {("rejected", CAPPED, "bulk cap 1 per 3600 s")}
    assert {records[n][0] for n in fresh} <= {"delivered", "failed"}
    status = p.dispatcher.status(second)
    assert (status.counts["rejected"], status.total) == (60, 100)
    assert all(s != "rejected" for s, _, _ in _records(p, first).values())
    feed, _ = p.dispatcher.outcomes("0", limit=1000)
    assert sorted(d.phone for d in feed if d.job_id == second and d.code == CAPPED) == sorted(shared)


def test_otp_caps_are_counted_apart_from_bulk_caps(pipeline_factory) -> None:  # noqa: F811
    """A campaign does not use up a phone's OTPs: after a bulk send, two OTPs go (otp: 2 per hour),
    the third is capped by the OTP cap, and another campaign by the bulk one."""
    p = pipeline_factory(opass=_caps(bulk=[[1, 3600]], otp=[[2, 3600]]))
    phone = phones(1, seed=43)
    _send(p, phone)
    otps = [_send(p, phone, priority="otp") for _ in range(3)]
    again = _send(p, phone)
    assert p.accepted_counts("opass", phone) == {3: 1}, "one campaign and two OTPs reached the phone"
    assert {_records(p, job)[phone[0]][0] for job in otps[:2]} <= {"delivered", "failed"}  # sent: a receipt came
    assert _records(p, otps[2])[phone[0]] == ("rejected", CAPPED, "otp cap 2 per 3600 s")
    assert _records(p, again)[phone[0]] == ("rejected", CAPPED, "bulk cap 1 per 3600 s")


def test_caps_hold_across_two_workers_claiming_at_once(pipeline_factory) -> None:  # noqa: F811
    """Twenty-four overlapping campaigns sent at once to two workers (four processes claiming):
    every phone is sent exactly once, whichever job and process reached it first, and every other
    copy of it is recorded ``capped``."""
    p = pipeline_factory(workers=2, concurrency=2, opass=_caps(bulk=[[1, 3600]]))
    pool = phones(200, seed=44)
    rng = random.Random(44)
    picks = [rng.sample(pool, 150) for _ in range(24)]
    handles = [p.dispatcher.send_template("demo", template_code=ONE_PARAM, phones=pick, params=["1"])
               for pick in picks]
    for job in handles:
        p.wait(job.job_id, timeout_s=240)
    reached = sorted(set().union(*picks))
    assert p.accepted_counts("opass", reached) == {1: len(reached)}, "times the gateway took a phone -> phones"
    capped = sum(p.dispatcher.status(job.job_id).counts["rejected"] for job in handles)
    assert capped == 24 * 150 - len(reached)
    claimers = {as_text(p.redis.hget(p.dispatcher.ledger.keys.chunk(job.job_id, 0), "by") or b"").split("@")[0]
                for job in handles}
    assert claimers == {"w0", "w1"}, f"chunks were claimed by {claimers}, not by both workers"
