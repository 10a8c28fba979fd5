"""Ambiguous chunks before a resend: opass is asked by bid, aiofish waits; per-account windows.

Real redis-server and the real sandbox; the sending, sweep and reconcile
functions the Celery tasks call, run in this process with a pinned ledger clock
(so "the window passed" needs no waiting).
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from dispatcher import sweeps
from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.errors import ConfigurationError
from dispatcher.keys import Keys, chunk_member
from dispatcher.ledger import ChunkData
from dispatcher.limiter import Limit, RateLimiter
from dispatcher.local.demo import accounts_doc
from dispatcher.receipt_stream import StreamApplier
from dispatcher.reconcile import Outcome, decide, reconcile_chunk
from dispatcher.runtime import Runtime
from dispatcher.sending import send_chunk
from tests.integration.pipeline import FAST_LIMITS, pipeline_factory  # noqa: F401 - fixture

PHONES = ["13800000001", "13800000002", "13800000003"]
T0 = 1_900_000_000_000  # the ledger's pinned clock (ms)
WINDOW_S = 600.0  # Settings' default
QUERY_PATH = "/sms/arriveRes/qry"
ROOMY = [{"kind": "query", "count": 100, "window_s": 1}]  # lets a test ask more than 3 times a minute


def make_runtime(client: redis.Redis, sandbox_url: str, *, opass: dict[str, Any] | None = None,
                 aiofish: dict[str, Any] | None = None) -> Runtime:
    doc = accounts_doc(sandbox_url)
    doc["opass"][0].update(opass or {})
    doc["aiofish"][0].update(aiofish or {})
    return Runtime(Settings(reconcile_window_s=WINDOW_S), accounts=parse_accounts(doc), client=client)


def store_job(rt: Runtime, job_id: str, provider: str = "opass") -> None:
    meta = {"provider": provider, "account": "demo", "priority": "bulk"}
    if provider == "opass":
        meta |= {"kind": "opass.send", "template_code": "1000000000000000002", "params": '["123456"]'}
    else:
        meta |= {"kind": "aiofish.send", "content": "【沙箱】您的验证码是123456。"}
    rt.ledger.create_job(job_id, meta, [ChunkData(PHONES)], now_ms=T0)


def send_into_ambiguity(rt: Runtime, sandbox: Any, job_id: str, fault: str, path: str = "/message/") -> None:
    """Send chunk 0 while the sandbox loses the answer: ``drop`` (it took the chunk) or ``reset`` (it did not)."""
    sandbox.set_faults({"kind": fault, "rate": 1.0, "count": 1, "path": path})
    assert send_chunk(rt, job_id, 0, clock_ms=lambda: T0).note == "ambiguous"
    assert rt.ledger.chunk(job_id, 0)["state"] == "ambiguous"


def after_window(rt: Runtime, seconds: float = WINDOW_S) -> sweeps.DueAmbiguous:
    return sweeps.due_ambiguous(rt, now_ms=T0 + int(seconds * 1000))


def accepted(sandbox: Any, gateway: str = "opass") -> dict[str, int]:
    return sandbox.ledger()["accepted"].get(gateway, {})


def queries(sandbox: Any) -> int:
    return sandbox.ledger()["requests"].get(QUERY_PATH, 0)


@pytest.fixture
def quick_receipts(sandbox: Any) -> Any:
    sandbox.configure(receipt_delay_s=0.0, receipt_mode="pull")
    return sandbox


def test_an_ambiguous_opass_chunk_the_gateway_took_is_reconciled_by_its_bid_and_never_resent(
        redis_client, quick_receipts, sandbox_url) -> None:  # type: ignore[no-untyped-def]
    rt = make_runtime(redis_client, sandbox_url, opass={"limits": {"reconcile": ROOMY}})
    store_job(rt, "took")
    send_into_ambiguity(rt, quick_receipts, "took", "drop")

    due = after_window(rt)
    assert (due.released, due.to_query) == ([], [("took", 0)])
    assert reconcile_chunk(rt, "took", 0) is Outcome.RECONCILED
    StreamApplier(rt.ledger, "test").drain()  # what every worker's applier does

    assert rt.ledger.chunk("took", 0)["state"] == "accepted"
    counts = rt.ledger.counts("took")
    # the receipts the query took from the gateway were applied, none dropped
    assert counts["delivered"] + counts["failed"] == len(PHONES)
    assert after_window(rt, 2 * WINDOW_S) == sweeps.DueAmbiguous()
    assert accepted(quick_receipts) == dict.fromkeys(PHONES, 1)


def test_an_ambiguous_opass_chunk_the_gateway_never_took_is_released_and_sent_once(
        redis_client, quick_receipts, sandbox_url) -> None:  # type: ignore[no-untyped-def]
    rt = make_runtime(redis_client, sandbox_url, opass={"limits": {"reconcile": ROOMY}})
    store_job(rt, "lost")
    send_into_ambiguity(rt, quick_receipts, "lost", "reset")
    assert accepted(quick_receipts) == {}

    assert after_window(rt).to_query == [("lost", 0)]
    assert reconcile_chunk(rt, "lost", 0) is Outcome.RELEASED
    assert rt.ledger.chunk("lost", 0)["state"] == "pending"
    assert send_chunk(rt, "lost", 0).note == "accepted"
    assert accepted(quick_receipts) == dict.fromkeys(PHONES, 1)


def test_with_no_query_budget_left_an_ambiguous_chunk_waits_and_is_not_resent(
        redis_client, quick_receipts, sandbox_url) -> None:  # type: ignore[no-untyped-def]
    rt = make_runtime(redis_client, sandbox_url)  # the documented 3 queries a minute
    store_job(rt, "busy")
    send_into_ambiguity(rt, quick_receipts, "busy", "reset")
    assert rt.limiter.try_acquire("opass", "demo", "balance") == 0  # a balance check took the query slot
    asked_before = queries(quick_receipts)

    assert after_window(rt).to_query == [("busy", 0)]
    assert reconcile_chunk(rt, "busy", 0) is Outcome.HELD

    assert queries(quick_receipts) == asked_before
    assert rt.ledger.chunk("busy", 0)["state"] == "ambiguous"
    # looked at again a little later, not on every sweep meanwhile
    assert after_window(rt).to_query == []
    assert after_window(rt, WINDOW_S + rt.settings.reconcile_retry_s).to_query == [("busy", 0)]
    assert accepted(quick_receipts) == {}


def test_polls_beat_reserved_ahead_do_not_starve_the_query_of_an_ambiguous_chunk(
        redis_client, quick_receipts, sandbox_url) -> None:  # type: ignore[no-untyped-def]
    # The drills' budget: polls 4/s and bid queries share 20 queries/s. Beat reserves
    # every poll slot of the coming tick; a query asking for a slot *now* found the
    # budget's next slot always in the future and was held for 300 s.
    limits = {"receipts": [{"kind": "receipts", "count": 4, "window_s": 1}, {"kind": "query", "count": 20,
                                                                             "window_s": 1}],
              "reconcile": [{"kind": "query", "count": 20, "window_s": 1}]}
    rt = make_runtime(redis_client, sandbox_url, opass={"limits": limits})
    store_job(rt, "starved")
    send_into_ambiguity(rt, quick_receipts, "starved", "reset")
    while rt.limiter.reserve("opass", "demo", "receipts", within_s=rt.settings.receipt_tick_s) is not None:
        pass  # what one beat tick does
    assert after_window(rt).to_query == [("starved", 0)]
    assert reconcile_chunk(rt, "starved", 0) is Outcome.RELEASED


def test_a_failed_query_keeps_the_chunk_ambiguous_and_its_receipts_are_found_next_time(
        redis_client, quick_receipts, sandbox_url) -> None:  # type: ignore[no-untyped-def]
    rt = make_runtime(redis_client, sandbox_url, opass={"limits": {"reconcile": ROOMY}})
    store_job(rt, "flaky")
    send_into_ambiguity(rt, quick_receipts, "flaky", "drop")
    quick_receipts.set_faults({"kind": "code", "code": "-1", "rate": 1.0, "count": 1, "path": QUERY_PATH})

    assert after_window(rt).to_query == [("flaky", 0)]
    assert reconcile_chunk(rt, "flaky", 0) is Outcome.HELD
    assert rt.ledger.chunk("flaky", 0)["state"] == "ambiguous"

    assert after_window(rt, WINDOW_S + rt.settings.reconcile_retry_s).to_query == [("flaky", 0)]
    redis_client.delete(rt.keys.limiter("opass", "demo", "query"))  # the query budget's window has passed
    assert reconcile_chunk(rt, "flaky", 0) is Outcome.RECONCILED
    StreamApplier(rt.ledger, "test").drain()
    assert accepted(quick_receipts) == dict.fromkeys(PHONES, 1)


def test_a_chunk_whose_receipts_a_query_found_is_not_asked_again_and_resent_before_they_are_applied(
        redis_client, quick_receipts, sandbox_url) -> None:  # type: ignore[no-untyped-def]
    """opass hands each receipt out once, so a second query about the same attempt finds nothing. A
    sweep that asked again before an applier applied what the first query found (a receipt backlog, a
    busy host) read that as "never arrived" and sent the chunk twice (found by the Sentinel drill)."""
    rt = make_runtime(redis_client, sandbox_url, opass={"limits": {"reconcile": ROOMY}})
    store_job(rt, "found")
    send_into_ambiguity(rt, quick_receipts, "found", "drop")
    assert after_window(rt).to_query == [("found", 0)]
    assert reconcile_chunk(rt, "found", 0) is Outcome.RECONCILED

    # No applier has run yet when the chunk's hold runs out and the sweep hands it over again.
    assert after_window(rt, WINDOW_S + rt.settings.reconcile_retry_s).to_query == [("found", 0)]
    assert reconcile_chunk(rt, "found", 0) is Outcome.HELD
    assert rt.ledger.chunk("found", 0)["state"] == "ambiguous"
    StreamApplier(rt.ledger, "test").drain()
    assert rt.ledger.chunk("found", 0)["state"] == "accepted"
    assert accepted(quick_receipts) == dict.fromkeys(PHONES, 1)


def test_a_chunk_a_receipt_settled_first_is_left_alone(redis_client, quick_receipts, sandbox_url) -> None:  # type: ignore[no-untyped-def]
    rt = make_runtime(redis_client, sandbox_url, opass={"limits": {"reconcile": ROOMY}})
    store_job(rt, "pushed")
    send_into_ambiguity(rt, quick_receipts, "pushed", "drop")
    assert after_window(rt).to_query == [("pushed", 0)]
    rt.ledger.apply_receipts("pushed", 0, attempt=1, receipts=[(PHONES[0], True)], owner="opass:demo",
                            now_ms=T0)  # a push meanwhile

    assert reconcile_chunk(rt, "pushed", 0) is Outcome.SETTLED
    assert rt.ledger.chunk("pushed", 0)["state"] == "accepted"


def test_an_ambiguous_aiofish_chunk_is_released_when_its_window_passes_as_before(
        redis_client, quick_receipts, sandbox_url) -> None:  # type: ignore[no-untyped-def]
    rt = make_runtime(redis_client, sandbox_url)
    store_job(rt, "fish", provider="aiofish")
    send_into_ambiguity(rt, quick_receipts, "fish", "reset", path="/rest/sms/")

    due = after_window(rt)
    assert (due.released, due.to_query) == ([("fish", 0)], [])
    assert rt.ledger.chunk("fish", 0)["state"] == "pending"


def test_an_accounts_own_reconcile_window_sets_when_its_ambiguous_chunks_are_looked_at(
        redis_client, quick_receipts, sandbox_url) -> None:  # type: ignore[no-untyped-def]
    rt = make_runtime(redis_client, sandbox_url, opass={"reconcile_window_s": 5})
    store_job(rt, "short")
    store_job(rt, "long", provider="aiofish")  # no override: the settings' 600 s
    send_into_ambiguity(rt, quick_receipts, "short", "reset")
    send_into_ambiguity(rt, quick_receipts, "long", "reset", path="/rest/sms/")

    assert after_window(rt, 4.999) == sweeps.DueAmbiguous()
    assert after_window(rt, 5).to_query == [("short", 0)]
    assert after_window(rt, WINDOW_S - 1).released == []
    assert after_window(rt, WINDOW_S).released == [("long", 0)]


def test_a_stuck_chunk_waits_its_accounts_reconcile_window(redis_client, sandbox_url) -> None:  # type: ignore[no-untyped-def]
    rt = make_runtime(redis_client, sandbox_url, opass={"reconcile_window_s": 30})
    store_job(rt, "stuck")
    assert rt.ledger.claim("stuck", 0, provider="opass", account="demo", now_ms=T0).status == "ok"
    stuck_at = T0 + int(rt.settings.stuck_after_s * 1000)

    assert sweeps.stuck_to_ambiguous(rt, now_ms=stuck_at) == 1
    assert redis_client.zscore(rt.keys.ambiguous(), chunk_member("stuck", 0)) == stuck_at + 30_000


@pytest.mark.parametrize("value", [0, -5, "600", True, float("inf")])
def test_a_reconcile_window_that_is_not_a_positive_number_is_refused_naming_the_entry(value: object) -> None:
    doc = accounts_doc("http://127.0.0.1:9")
    doc["aiofish"][0]["reconcile_window_s"] = value
    with pytest.raises(ConfigurationError, match=r"aiofish\[0\]\.reconcile_window_s"):
        parse_accounts(doc)


def test_what_a_query_answer_means() -> None:
    assert decide(None) is Outcome.HELD
    assert decide([]) is Outcome.RELEASED


def test_on_the_running_pipeline_a_dropped_opass_chunk_is_settled_by_its_bid_not_resent(pipeline_factory) -> None:  # noqa: F811
    # No webhook and the hour's only receipt poll already taken: the dropped
    # chunk's receipts can only come back through the query by its bid.
    hourly = [{"kind": "receipts", "count": 1, "window_s": 3600}]
    p = pipeline_factory(webhook=False, opass={"batch_max": 2},
                         limits={**FAST_LIMITS, "receipts": hourly, "reconcile": ROOMY})
    limiter = RateLimiter(p.redis, Keys(p.dispatcher.settings.key_prefix),
                          overrides={("opass", "demo", "receipts"): (Limit("receipts", 1, 3600.0),)})
    limiter.try_acquire("opass", "demo", "receipts")
    p.sandbox.configure(receipt_mode="pull")
    p.sandbox.set_faults({"kind": "drop", "rate": 1.0, "count": 1, "path": "/message/"})
    numbers = [f"1390000000{i}" for i in range(6)]
    job = p.dispatcher.send_template("demo", template_code="1000000000000000002", phones=numbers, params=["1"])

    p.wait(job.job_id, until="submitted", timeout_s=60)
    assert p.accepted_counts("opass", numbers) == {1: 6}
    states = {d.phone: d.state for d in p.dispatcher.status(job.job_id, phones=True).phones or []}
    settled = sorted(phone for phone, state in states.items() if state in ("delivered", "failed"))
    assert len(settled) == 2, states  # the dropped chunk of two, from the bid query's receipts
    assert [s for s in states.values() if s == "accepted"] == ["accepted"] * 4  # the others await polls
