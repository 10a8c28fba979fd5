"""Routes on real processes: redis-server, the sandbox, a Celery worker and beat.

A route send splits its recipients by weight into one job per account, each in its
gateway's own form; when an account goes account-fatal mid-campaign (opass ``40002``
余额不足), its recipients not yet submitted move to the route's next account, and the
sandbox's ledger shows every recipient accepted exactly once across both gateways.
"""

from __future__ import annotations

from typing import Any

import redis

from dispatcher import pauses
from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.local.demo import accounts_doc, phones
from dispatcher.local.drill import ROUTE_SIGNATURE, run_route_failover, with_route
from dispatcher.producer import Dispatcher
from dispatcher.providers.base import system_clock_ms
from dispatcher.route_failover import failover
from tests.integration.pipeline import pipeline_factory  # noqa: F401 - fixture

#: Small opass chunks, so the opass share has many and the fault lands between them.
CHUNK = 10


def _say(_line: str) -> None:
    """The drill's progress lines are for the bench; a test reads its result."""


def test_a_route_splits_its_recipients_by_weight_and_each_gateway_gets_its_own_form(
    pipeline_factory: Any,  # noqa: F811
) -> None:
    """400 phones through a 3:1 route: opass:demo accepts exactly its 300 (template …002 with the code's
    params, rendered by the sandbox as that template), aiofish:demo the other 100 (the rendered text behind
    the route's 【signature】); no phone reaches both, and the route's status sums the two jobs."""
    p = pipeline_factory(webhook=False, opass={"batch_max": CHUNK}, edit=with_route)
    numbers = phones(400, seed=71)
    handle = p.dispatcher.send("drill", template="otp", params=["135790"], phones=numbers)
    assert [(j.provider, j.account, j.total) for j in handle.jobs] == [("opass", "demo", 300),
                                                                       ("aiofish", "demo", 100)]
    status = p.wait(handle.job_id, until="submitted")
    assert (status.kind, status.total, status.counts["accepted"] + status.counts["delivered"]) == ("route", 400, 400)
    accepted = p.sandbox.ledger()["accepted"]
    assert {q for q in numbers if accepted["opass"].get(q)} == set(numbers[:300])
    assert {q for q in numbers if accepted["aiofish"].get(q)} == set(numbers[300:])
    assert [accepted["opass"].get(q, 0) + accepted["aiofish"].get(q, 0) for q in numbers] == [1] * 400
    (sent_by_opass,) = p.sandbox.messages(numbers[0])
    (sent_by_aiofish,) = p.sandbox.messages(numbers[-1])
    assert (sent_by_opass["gateway"], sent_by_opass["text"]) == ("opass", "您的验证码是135790，5分钟内有效。")
    assert (sent_by_aiofish["gateway"], sent_by_aiofish["text"]) == (
        "aiofish", f"【{ROUTE_SIGNATURE}】您的验证码是135790，5分钟内有效。")


def test_per_phone_values_reach_each_gateway_in_its_own_form(pipeline_factory: Any) -> None:  # noqa: F811
    """`recipients=` with a code per phone: opass sends them as each phone's template params (batch), aiofish
    as each phone's rendered text; each phone gets its own code."""
    p = pipeline_factory(webhook=False, opass={"batch_max": CHUNK}, edit=with_route)
    numbers = phones(8, seed=72)
    handle = p.dispatcher.send("drill", template="otp", recipients=[(q, [f"{i:06d}"]) for i, q in enumerate(numbers)])
    p.wait(handle.job_id, until="submitted")
    texts = [(m["gateway"], m["text"]) for q in numbers for m in p.sandbox.messages(q)]
    assert texts == [("opass", f"您的验证码是{i:06d}，5分钟内有效。") for i in range(6)] + [
        ("aiofish", f"【{ROUTE_SIGNATURE}】您的验证码是{i:06d}，5分钟内有效。") for i in (6, 7)]


def test_an_account_fatal_answer_mid_campaign_moves_the_rest_to_the_other_account_each_sent_once(
    pipeline_factory: Any,  # noqa: F811
) -> None:
    """The 40002 drill: once a fifth of opass's share is accepted, the sandbox answers every opass send
    40002 (余额不足); the worker pauses opass:demo and, a second later, the failover moves its pending
    recipients to aiofish:demo. Every phone is accepted exactly once across both gateways, the moved ones
    by aiofish only, and their opass records say `rerouted` / `to aiofish:demo`."""
    limits = {"send": [{"kind": "send", "count": 5, "window_s": 1}]}
    p = pipeline_factory(webhook=False, opass={"batch_max": CHUNK}, edit=with_route, limits=limits)
    result = run_route_failover(p, recipients=400, say=_say, timeout_s=180)
    assert result["final"], result
    assert result["fault_answers"] >= 1, result  # the fault really landed
    assert result["paused"] is not None and result["paused"].startswith("40002"), result
    assert (result["lost"], result["duplicated"], result["through_both"]) == (0, 0, 0), result
    assert result["opass_accepted"] + result["aiofish_accepted"] == 400, result
    assert result["moved"] > 0 and result["moved"] == result["moved_sent_elsewhere"], result
    assert result["aiofish_accepted"] == 100 + result["moved"], result
    assert result["moved_detail"] == ["to aiofish:demo"], result
    assert result["route_counts"]["cancelled"] == 0 and result["route_counts"]["pending"] == 0, result


def test_an_account_failing_too_often_mid_campaign_moves_the_rest_to_the_other_account_each_sent_once(
    pipeline_factory: Any,  # noqa: F811
) -> None:
    """The error-rate trigger: the sandbox answers every opass send -1 (busy, transient) from mid-campaign.
    opass is never paused (the answer is retried), but the worker sees most of its calls fail, marks it
    failing, and the failover moves its pending recipients to aiofish. Every phone is accepted once."""
    limits = {"send": [{"kind": "send", "count": 5, "window_s": 1}]}
    p = pipeline_factory(webhook=False, opass={"batch_max": CHUNK}, edit=with_route, limits=limits,
                         env={"SMSD_ERROR_MIN_CALLS": "6", "SMSD_ERROR_WINDOW_S": "30"})
    result = run_route_failover(p, recipients=400, say=_say, timeout_s=180, transient=True)
    assert result["final"], result
    assert result["fault_answers"] >= 6, result  # the fault really landed, often enough to count
    assert result["paused"] is None, result
    assert result["failing"] is not None and result["failing"].startswith("error rate:"), result
    assert (result["lost"], result["duplicated"], result["through_both"]) == (0, 0, 0), result
    assert result["moved"] > 0 and result["moved"] == result["moved_sent_elsewhere"], result
    assert result["route_counts"]["pending"] == 0, result


def test_the_failover_moves_only_chunks_no_worker_has_claimed(redis_url: str, redis_client: redis.Redis) -> None:
    """Real Redis, no worker: chunk 0 of the opass job is claimed (as a worker would, the instant before the
    move), the account is paused past the cooldown, and the failover moves the other three chunks only: the
    claimed one stays `sending` on opass, a later claim of a moved chunk finds it `cancelled`, and the route's
    status counts each of the 50 recipients once."""
    doc = with_route(accounts_doc("http://127.0.0.1:9"), cooldown_s=0)
    doc["opass"][0]["batch_max"] = CHUNK
    d = Dispatcher(Settings(redis_url=redis_url, broker_url=redis_url), accounts=parse_accounts(doc),
                   client=redis_client, enqueue=lambda job_id, queue, countdown: None)
    handle = d.send("drill", template="otp", params=["111111"], phones=phones(50, seed=73), force=True)
    opass_job = handle.jobs[0].job_id
    assert d.ledger.claim(opass_job, 0, provider="opass", account="demo", now_ms=1).status == "ok"
    pauses.pause_after_fatal(d.runtime, "opass", "demo", "40002: 余额不足")
    # 3:1 of 50 is 38:12: opass's chunks hold 10, 10, 10 and 8; chunks 1-3 move
    assert failover(d, now_ms=system_clock_ms()) == 28
    assert d.ledger.state_and_attempt(opass_job, 0) == ("sending", 1)
    d.redis.delete(d.keys.paused("opass", "demo"))  # back in credit: a late task for a moved chunk sends nothing
    late = d.ledger.claim(opass_job, 1, provider="opass", account="demo", now_ms=2)
    assert (late.status, late.detail) == ("skip", "cancelled")
    jobs = d.route_jobs(handle.job_id)
    assert list(jobs.values()) == ["opass:demo", "aiofish:demo", "aiofish:demo"]
    status = d.status(handle.job_id)
    assert (status.total, status.counts["pending"], status.counts["sending"], status.counts["cancelled"]) == (
        50, 40, 10, 0)
