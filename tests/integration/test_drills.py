"""Fault drills at CI size, counted by the sandbox's ledger: kill -9, a Redis restart, a gateway fault mix.

The drills are :mod:`dispatcher.local.drill`, the same code ``python -m bench.drills``
runs at full size. Each test asserts what an operator would check afterwards:
every recipient final, none accepted twice, none never accepted; and that the
harm really happened while the job ran.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatcher.local.drill import FAULT_MIX, run_fault_mix, run_kill9, run_redis_restart, start_rig
from dispatcher.local.receipt_drill import run_applier_kill9, run_receipts_redis_restart
from tests.integration.pipeline import pipeline_factory  # noqa: F401 - fixture


def test_kill_9_of_a_worker_five_times_mid_job_loses_and_duplicates_nothing(pipeline_factory) -> None:  # noqa: F811
    p = pipeline_factory(workers=2, concurrency=2, opass={"batch_max": 50})
    result = run_kill9(p, recipients=6_000, kills=5)
    assert result["final"], result
    assert (result["lost"], result["duplicated"]) == (0, 0), result
    # Each kill took chunks with it: read after the kill, they were still sending under the dead worker's claims.
    assert len(result["held_at_kills"]) == 5 and all(result["held_at_kills"]), result
    # And those very chunks ended right: every recipient final, none lost, none accepted twice.
    held = result["held"]
    assert held["recipients"] > 0 and (held["lost"], held["duplicated"], held["not_final"]) == (0, 0, 0), held
    # Some chunks were killed after the gateway took them: settled from receipts, not sent again.
    assert result["settled_in_flight"] + result["reconciled"] > 0, result


def test_a_redis_server_restart_mid_job_is_ridden_out_by_every_process_and_loses_nothing(
    tmp_path: Path, sandbox, sandbox_url: str,
) -> None:
    rig = start_rig(tmp_path, workers=2, concurrency=2, batch_max=50, sandbox_url=sandbox_url)
    try:
        result = run_redis_restart(rig, recipients=6_000, down_s=2.0)
    finally:
        rig.stop()
    assert result["final"], result
    assert (result["lost"], result["duplicated"]) == (0, 0), result
    assert result["mid_job"] and result["down_s"] >= 2.0, result
    assert result["counters_kept"], result  # the AOF brought the job's funnel back whole
    assert result["processes_exited"] == [], result  # nothing had to be restarted by hand
    assert result["receipt_polls_after_restart"] > 0, result  # beat's schedule went on
    # While Redis was down the webhook said 503 (vendors retry) instead of waiting for Redis: the restart
    # waits for this probe, so an answer that waited would be a timeout, never a 503. How fast it answers
    # (the vendors' 1 s limit) is bench.drills' answer_ms, not asserted here.
    probe = result["webhook_while_down"]
    assert probe["status"] == 503, probe


def test_a_gateway_fault_mix_loses_and_duplicates_nothing_and_unanswered_sends_are_not_resent(
    pipeline_factory,  # noqa: F811
) -> None:
    p = pipeline_factory(workers=2, concurrency=2, opass={"batch_max": 100})
    # The bench's mix, with more unanswered sends so every run has some to reconcile. The sandbox's fault
    # draws are seeded and reset per test: with these rates the 37th send is the first dropped, and the
    # job's 100 chunks make at least 100 sends, so drops are certain (asserted below, not assumed).
    faults = tuple({**rule, "rate": 0.1} if rule["kind"] == "drop" else rule for rule in FAULT_MIX)
    result = run_fault_mix(p, recipients=10_000, faults=faults)
    assert result["final"], result
    assert (result["lost"], result["duplicated"]) == (0, 0), result
    assert result["sends"] > result["chunks"], result  # faults really happened and were retried
    assert all(result["injected"][kind] > 0 for kind in ("code:-1", "code:6000", "drop")), result
    # Each send taken but left unanswered was settled from its receipts.
    assert result["reconciled"] == result["injected"]["drop"], result


def test_kill_9_of_the_worker_whose_applier_holds_receipts_loses_none_and_applies_none_twice(
    tmp_path: Path, sandbox, sandbox_url: str,
) -> None:
    rig = start_rig(tmp_path, workers=2, concurrency=1, sandbox_url=sandbox_url)
    try:
        result = run_applier_kill9(rig, pushes=800, rate_per_s=100.0)
    finally:
        rig.stop()
    assert result["drained"] and result["pushes_answered_200"] == result["pushes"], result
    assert (result["lost"], result["applied_twice"]) == (0, 0), result
    assert result["still_accepted"] == 0, result  # every receipt pushed changed its phone
    # The kill stranded entries with the dead consumer, and the other worker's applier took them.
    assert result["stranded_entries"] > 0 and result["claimed_after_s"] is not None, result


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_a_redis_restart_while_pushes_arrive_loses_no_receipt_answered_200(
    tmp_path: Path, sandbox, sandbox_url: str, kill: bool,
) -> None:
    rig = start_rig(tmp_path, workers=2, concurrency=1, sandbox_url=sandbox_url)
    try:
        result = run_receipts_redis_restart(rig, pushes=800, rate_per_s=100.0, down_s=2.0, kill=kill)
    finally:
        rig.stop()
    assert result["drained"] and result["pushes_answered_200"] == result["pushes"], result
    assert (result["lost"], result["applied_twice"], result["still_accepted"]) == (0, 0, 0), result
    assert result["retried_pushes"] > 0, result  # the webhook said 503 while Redis was down; vendors retry
