"""Redis Sentinel for real: a master, a replica and three sentinels, each the suite's own redis-server.

What an operator relies on: every client built from ``SMSD_REDIS_SENTINELS`` follows a
failover by itself; no chunk leaves on a claim no replica holds (a failover could forget
that claim and the chunk would go out twice); no push is answered 200 before a replica
holds it (the vendor never pushes it again); and a kill -9 of the master mid-job loses and
duplicates nothing while workers, beat and webhook carry on. A replica that confirms
nothing is a real replica stopped with SIGSTOP: it keeps its connection and answers nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.keys import Keys, client_id
from dispatcher.ledger import UNREPLICATED, ChunkData, Ledger
from dispatcher.local.drill import ONE_PARAM_TEMPLATE, SEND_PATH, run_sentinel_failover, start_rig
from dispatcher.local.sandbox import demo as creds
from dispatcher.local.sandbox import push_payloads
from dispatcher.local.sandbox.control import SandboxControl
from dispatcher.local.sandbox.receipts import Receipt
from dispatcher.local.sentinels import SentinelGroup
from dispatcher.local.stack import Stack
from dispatcher.producer import Dispatcher
from dispatcher.receipt_stream import StreamApplier
from dispatcher.redis_connection import connect
from dispatcher.runtime import Runtime
from dispatcher.sending import send_chunk
from tests.integration.pipeline import build_accounts
from tests.integration.processes import cli

#: How long a claim or push waits for the replica here: short, the replica is either there or stopped.
WAIT_ENV = {"SMSD_REDIS_WAIT_TIMEOUT_MS": "200"}


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """One group for the tests that fail nothing over (each uses keys of its own)."""
    with SentinelGroup(tmp_path_factory.mktemp("sentinel"), replicas=1) as started:
        yield started


def _replica(group: SentinelGroup) -> int:
    return next(port for port in group.nodes if port != group.master_port())


def test_a_client_built_from_the_sentinel_settings_follows_a_failover_to_the_promoted_replica(
    tmp_path: Path,
) -> None:
    with SentinelGroup(tmp_path, replicas=1) as group:
        client = connect(Settings.from_env(group.env()))
        client.set("before", "1")
        assert client.wait(1, 5000) == 1  # on the replica too, so the failover keeps it
        old = group.kill_master()
        new, _ = group.wait_promoted(old)
        client.set("after", "2")  # the same client: it asks the sentinels again and retries
        promoted = group.node_client(new)
        assert (promoted.get("before"), promoted.get("after")) == ("1", "2")


def test_a_chunk_whose_claim_no_replica_confirmed_is_not_sent_and_goes_out_once_one_does(
    group: SentinelGroup, sandbox: SandboxControl, sandbox_url: str,
) -> None:
    settings = Settings.from_env({**group.env(), **WAIT_ENV, "SMSD_KEY_PREFIX": "claim-test"})
    accounts = parse_accounts(build_accounts(sandbox_url, limits=None))
    rt = Runtime(settings, accounts=accounts)
    job = Dispatcher(settings, accounts=accounts, client=rt.redis).send_template(
        "demo", template_code=ONE_PARAM_TEMPLATE, phones=["13900000001", "13900000002"], params=["1"])
    replica = _replica(group)
    group.pause(replica)
    try:
        held = send_chunk(rt, job.job_id, 0)
        chunk = rt.ledger.chunk(job.job_id, 0)
    finally:
        group.resume(replica)
    assert held.note.startswith(UNREPLICATED) and held.retry_in_s is not None, held
    assert sandbox.ledger()["requests"].get(SEND_PATH, 0) == 0  # nothing went out on that claim
    # Pending again, the attempt not counted: a replica down for a while does not use up SMSD_MAX_ATTEMPTS.
    assert (chunk["state"], chunk["attempt"], chunk["code"]) == ("pending", "0", UNREPLICATED), chunk
    sent = send_chunk(rt, job.job_id, 0)  # the replica answers again
    assert sent.note == "accepted", sent
    assert sandbox.ledger()["requests"].get(SEND_PATH, 0) == 1
    assert sandbox.ledger()["accepted"]["opass"] == {"13900000001": 1, "13900000002": 1}
    assert rt.ledger.chunk(job.job_id, 0)["attempt"] == "1"


def test_a_push_no_replica_confirmed_is_answered_503_and_taken_once_one_does(
    group: SentinelGroup, tmp_path: Path,
) -> None:
    token = secrets.token_urlsafe(32)
    doc = build_accounts("http://127.0.0.1:9", limits=None)
    doc["opass"][0]["callback_secret"] = token
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(doc))
    keys = Keys(prefix="push-test")
    env = {**group.env(), **WAIT_ENV, "SMSD_ACCOUNTS_FILE": str(path), "SMSD_KEY_PREFIX": keys.prefix,
           "SMSD_DATA_DIR": str(tmp_path)}
    ledger = Ledger(connect(Settings.from_env(env)), keys)
    ledger.create_job("j1", {"provider": "opass", "account": "demo"}, [ChunkData(["13900000001"])], now_ms=1)
    ledger.claim("j1", 0, provider="opass", account="demo", now_ms=2)
    ledger.accept("j1", 0, attempt=1, message_id="m1", failed_indexes=[], now_ms=3)
    receipt = Receipt("m1", "13900000001", "DELIVRD", time.time(), client_id("j1", 0, 1))
    with Stack(tmp_path / "stack", env=env) as stack:
        stack.start_webhook(workers=1)
        push = push_payloads.opass_status(creds.OPASS_API_KEY, [receipt],
                                          f"{stack.webhook_url}/hooks/opass/demo/{token}")

        def post() -> requests.Response:
            return requests.post(push.url, data=push.body, headers={"Content-Type": push.content_type}, timeout=10)

        replica = _replica(group)
        group.pause(replica)
        try:
            refused = post()
        finally:
            group.resume(replica)
        taken = post()  # what the vendor does after a 503
    assert refused.status_code == 503, refused.text
    assert taken.status_code == 200 and taken.json() == {"code": 200, "message": "OK"}
    StreamApplier(ledger, "test").drain()
    assert ledger.counts("j1")["delivered"] == 1  # kept twice (on the master both times), applied once


def test_a_kill_9_of_the_master_mid_job_loses_and_duplicates_nothing_and_every_process_carries_on(
    tmp_path: Path, sandbox: SandboxControl, sandbox_url: str,
) -> None:
    rig = start_rig(tmp_path, workers=2, concurrency=2, batch_max=50, sandbox_url=sandbox_url, sentinel_replicas=1)
    try:
        result = run_sentinel_failover(rig, recipients=3_000, timeout_s=120.0)
    finally:
        rig.stop()
    assert result["final"], result
    assert (result["lost"], result["duplicated"]) == (0, 0), result
    # Our own ledger agrees after the rollback: every recipient counted once, none pending or in flight.
    assert result["funnel_complete"], result
    assert (result["funnel"]["pending"], result["funnel"]["sending"]) == (0, 0), result
    # The harm landed: mid-job, requests in flight, and the sentinels promoted the replica.
    assert result["mid_job"] and result["in_flight_at_kill"] > 0, result
    assert result["master_after"] != result["master_before"], result
    # Nobody restarted workers, beat or webhook: they found the new master by themselves.
    assert result["processes_exited"] == [], result
    assert result["receipt_polls_after"] > 0, result  # beat published its polls and a worker ran them
    assert result["pushes_taken_after"] > 0, result  # the webhook took pushes on the new master


def test_doctor_says_bad_when_the_master_has_fewer_replicas_than_claims_wait_for(
    tmp_path: Path, sandbox: SandboxControl, sandbox_url: str,
) -> None:
    """Under Sentinel nothing is sent without a replica: doctor shows the replicas online and, with
    none left, a BAD line saying that nothing is sent, and exits 1."""
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(build_accounts(sandbox_url, limits=None)))
    with SentinelGroup(tmp_path / "group", replicas=1) as group:
        env = {**os.environ, **group.env(), "SMSD_ACCOUNTS_FILE": str(path), "SMSD_DATA_DIR": str(tmp_path)}
        env.pop("SMSD_REDIS_URL", None)
        healthy = cli("doctor", env=env)
        group.nodes[_replica(group)].stop()  # the master sees its replica leave at once
        degraded = cli("doctor", env=env)
    master = f"master 127.0.0.1:{group.first_master}"
    assert f"ok  redis replication: {master}, 1 replica online; claims and pushes wait for 1" in healthy.stdout, \
        healthy.stdout + healthy.stderr
    assert healthy.returncode == 0, healthy.stdout
    assert (f"BAD redis replication: {master}, 0 replicas online; claims and pushes wait for 1: nothing is sent"
            in degraded.stdout), degraded.stdout + degraded.stderr
    assert degraded.returncode == 1
