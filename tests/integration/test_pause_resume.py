"""Pausing and resuming an account on purpose: the producer API and `sms-dispatch pause|resume`.

The first tests use a real redis-server and the real Celery client as the broker
(no worker): what a pause stores and what a resume publishes. The last runs a
whole pipeline (sandbox, Celery worker, beat) and proves what an operator sees:
nothing goes out while paused, beat's balance check does not lift the pause,
and a resume sends every phone once.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from dispatcher import pauses
from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.errors import ConfigurationError
from dispatcher.ledger import as_text
from dispatcher.local.demo import accounts_doc, phones
from dispatcher.local.stack import wait_for
from dispatcher.producer import Dispatcher
from tests.integration.pipeline import Pipeline, pipeline_factory  # noqa: F401 - fixture
from tests.integration.processes import cli

ONE_PARAM = "1000000000000000002"
BALANCE_PATH = "/sms/residueValue/qry"
#: Small chunks, so a job of a few dozen phones has several.
CHUNK = 10


@pytest.fixture
def dispatcher_on_redis(redis_url: str, redis_client: redis.Redis) -> Dispatcher:
    """A Dispatcher whose Redis is also its broker (no worker: published tasks stay in the queue's list)."""
    settings = Settings(redis_url=redis_url, broker_url=redis_url)
    return Dispatcher(settings, accounts=parse_accounts(accounts_doc("http://127.0.0.1:9")), client=redis_client,
                      enqueue=lambda job_id, queue, countdown: None)  # no fan-out: only the resume publishes


def _published(client: redis.Redis, queue: str) -> list[tuple[str, list[Any]]]:
    """``(task name, args)`` of every task message waiting in ``queue`` of the Redis broker."""
    found = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        found.append((message["headers"]["task"], args))
    return found


def test_an_operator_pause_is_shown_and_outlives_the_balance_checks_resume(dispatcher_on_redis: Dispatcher) -> None:
    """`pause` stores an operator reason status shows; the automatic resume (beat's) keeps it and queues nothing."""
    d = dispatcher_on_redis
    job = d.send_template("demo", template_code=ONE_PARAM, phones=phones(3, seed=41), params=["1"])
    d.pause("opass", "demo", "carrier maintenance")
    assert d.status(job.job_id).paused == "operator: carrier maintenance"
    published: list[tuple[str, int, str]] = []
    rt = d._rt  # the producer's own runtime: the same Redis and accounts beat's check would use
    lifted = pauses.resume(rt, "opass", "demo", lambda *task: published.append(task), automatic=True)
    assert lifted is None
    assert published == []
    assert d.status(job.job_id).paused == "operator: carrier maintenance"


def test_an_account_fatal_answer_during_an_operator_pause_does_not_replace_it(dispatcher_on_redis: Dispatcher) -> None:
    """A chunk in flight when the operator paused may come back account-fatal: the operator's pause stays."""
    d = dispatcher_on_redis
    d.pause("opass", "demo", "maintenance")
    assert pauses.pause_after_fatal(d._rt, "opass", "demo", "40002: 余额不足") is False
    assert as_text(d.redis.get(d.keys.paused("opass", "demo"))) == "operator: maintenance"


def test_the_balance_checks_resume_still_lifts_an_account_fatal_pause(dispatcher_on_redis: Dispatcher) -> None:
    """The automatic pause keeps working: a fatal answer pauses, the automatic resume lifts it and re-queues."""
    d = dispatcher_on_redis
    job = d.send_template("demo", template_code=ONE_PARAM, phones=phones(3, seed=42), params=["1"])
    assert pauses.pause_after_fatal(d._rt, "opass", "demo", "40002: 余额不足") is True
    assert d.status(job.job_id).paused == "40002: 余额不足"
    published: list[tuple[str, int, str]] = []
    assert pauses.resume(d._rt, "opass", "demo", lambda *task: published.append(task), automatic=True) == 1
    assert published == [(job.job_id, 0, "sms.bulk")]
    assert d.status(job.job_id).paused is None


def test_resume_lifts_the_pause_and_queues_each_pending_chunk_on_the_broker(dispatcher_on_redis: Dispatcher,
                                                                            redis_client: redis.Redis) -> None:
    """`Dispatcher.resume` clears the pause and publishes one send_chunk task per pending chunk, by task name."""
    d = dispatcher_on_redis
    # The demo opass account sends 1000 phones a chunk: three chunks.
    job = d.send_template("demo", template_code=ONE_PARAM, phones=phones(2_500, seed=43), params=["1"])
    d.pause("opass", "demo")
    assert d.resume("opass", "demo") == job.chunks == 3
    assert d.status(job.job_id).paused is None
    assert sorted(_published(redis_client, "sms.bulk")) == [
        ("workers.tasks.send_chunk", [job.job_id, n]) for n in range(3)]


def test_a_channel_with_no_balance_query_stays_paused_until_an_operator_resumes_it(
        dispatcher_on_redis: Dispatcher) -> None:
    """Video SMS has no balance query, so nothing can show its fatal answer was fixed: beat's balance
    check leaves its pause alone (it would retry a query the channel does not have every tick), and
    the reason shown says how to resume it. The same answer on an SMS account is checked as before."""
    d = dispatcher_on_redis
    assert pauses.pause_after_fatal(d._rt, "aiofish-vsms", "demo", "40002: 余额不足") is True
    assert pauses.pause_after_fatal(d._rt, "aiofish", "demo", "p:010: 余额不足") is True
    assert [f"{a.provider}:{a.name}" for a in pauses.resumable_by_balance(d._rt)] == ["aiofish:demo"]
    reason = as_text(d.redis.get(d.keys.paused("aiofish-vsms", "demo")))
    assert reason.startswith("40002: 余额不足") and "sms-dispatch resume aiofish-vsms demo" in reason


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_an_account_that_is_not_configured_is_refused_by_name(dispatcher_on_redis: Dispatcher, action: str) -> None:
    """Pausing or resuming a typo raises ConfigurationError listing the configured accounts, and stores nothing."""
    d = dispatcher_on_redis
    # the video and international SMS channels of the aiofish account are configured accounts too
    with pytest.raises(ConfigurationError,
                       match=r"no account opass:dmeo \(configured: aiofish:demo, (aiofish-[a-z]+:demo, )*opass:demo"):
        getattr(d, action)("opass", "dmeo")
    assert not d.redis.exists(d.keys.paused("opass", "dmeo"))


def _cli_env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps(accounts_doc("http://127.0.0.1:9"), ensure_ascii=False))
    return {**os.environ, "SMSD_REDIS_URL": redis_url, "SMSD_ACCOUNTS_FILE": str(accounts),
            "SMSD_DATA_DIR": str(tmp_path)}


def test_pause_command_refuses_an_unknown_account_with_the_configured_ones_named(tmp_path: Path, redis_url: str,
                                                                               redis_client: redis.Redis) -> None:
    """`sms-dispatch pause opass:nope` exits 1 naming the configured accounts, without a traceback or a pause."""
    result = cli("pause", "opass:nope", env=_cli_env(tmp_path, redis_url))
    assert result.returncode == 1
    assert re.search(r"no account opass:nope \(configured: aiofish:demo, (aiofish-[a-z]+:demo, )*opass:demo",
                     result.stderr)
    assert "Traceback" not in result.stderr
    assert redis_client.keys("*paused*") == []


def _task_lines(p: Pipeline, task: str, since: int) -> int:
    """How many runs of ``task`` the worker logged as finished after byte ``since`` of its log."""
    return sum(1 for line in p.stack.log_text("w0", since=since).splitlines()
               if f"Task {task}[" in line and "succeeded" in line)


def _worker_events(p: Pipeline, event: str) -> list[dict[str, Any]]:
    return p.stack.log_events("w0", event)


def test_an_operator_pause_sends_nothing_survives_beats_balance_check_and_resume_sends_each_phone_once(
    pipeline_factory,  # noqa: F811
) -> None:
    """Paused by `sms-dispatch pause`, a job stays pending through the orphan sweep and beat's balance check
    (the sandbox has credit, so that check would lift an account-fatal pause); `resume` sends every phone once."""
    p = pipeline_factory(env={"SMSD_CHECK_PAUSED_EVERY_S": "0.5"}, opass={"batch_max": CHUNK})
    paused = cli("pause", "opass:demo", "--reason", "carrier maintenance", env=p.stack.env)
    assert paused.returncode == 0, paused.stderr
    log_mark = len(p.stack.log_text("w0").encode())
    stored_ms = time.time() * 1000
    numbers = phones(3 * CHUNK, seed=44)
    job = p.dispatcher.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["246801"])
    # The producer's balance guard read the balance (at most once) as it stored the job; beat must add none.
    guard_reads = p.sandbox.ledger()["requests"].get(BALANCE_PATH, 0)
    # Every chunk met a moment that would have sent it: the orphan sweep re-queues a pending chunk
    # overdue by SMSD_ORPHAN_AFTER_S unless its account is paused, and restamps it either way.
    orphan_after_ms = float(p.stack.env["SMSD_ORPHAN_AFTER_S"]) * 1000
    pending = p.dispatcher.keys.pending()

    def held_scores() -> list[float]:
        sent = len(numbers) - p.accepted_counts("opass", numbers).get(0, 0)
        assert sent == 0, f"{sent} phones sent while the account was paused"  # fail now, not at the deadline
        return [score for member, score in p.redis.zscan_iter(pending) if as_text(member).startswith(f"{job.job_id}:")]

    wait_for(held_scores, ok=lambda scores: len(scores) == job.chunks and min(scores) > stored_ms + orphan_after_ms,
             what="a sweep passed over every pending chunk of the paused job", timeout_s=120)
    # ... and beat's paused-account check ran twice since (the first finished when the second was logged).
    wait_for(lambda: _task_lines(p, "workers.tasks.check_paused", log_mark), ok=lambda n: n >= 2,
             what="beat's paused-account checks", timeout_s=60)
    status = p.dispatcher.status(job.job_id)
    assert status.paused == "operator: carrier maintenance"
    assert status.counts["pending"] == len(numbers), status.counts
    assert p.accepted_counts("opass", numbers) == {0: len(numbers)}
    assert _worker_events(p, "account.resumed") == []
    # An operator's pause is not the check's business: it spends none of the account's query budget on it.
    assert p.sandbox.ledger()["requests"].get(BALANCE_PATH, 0) == guard_reads
    resumed = cli("resume", "opass", "demo", env=p.stack.env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed opass:demo: {job.chunks} pending chunks queued" in resumed.stdout
    status = p.wait(job.job_id, until="submitted", timeout_s=120)
    assert status.paused is None
    assert p.accepted_counts("opass", numbers) == {1: len(numbers)}
