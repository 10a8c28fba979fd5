"""Prometheus metrics scraped from a real pipeline, checked against the ledger and the sandbox.

A Celery worker (prefork, two pool processes) and the gunicorn webhook (two workers)
each write their metrics to their own ``PROMETHEUS_MULTIPROC_DIR``; the webhook serves
its own at ``/metrics`` and ``sms-dispatch metrics`` serves the worker's with the
ledger's gauges. What the scrapes say is compared with what ``status`` says of the jobs
and with what the sandbox counted (requests it took, pushes it made).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from dispatcher import metrics, pauses
from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.deliveries import STATES
from dispatcher.keys import client_id
from dispatcher.ledger import ChunkData, Ledger
from dispatcher.local.demo import accounts_doc, phones
from dispatcher.local.stack import wait_for
from dispatcher.metrics_export import LEDGER_METRICS, LedgerCollector
from dispatcher.providers.results import Receipt
from dispatcher.receipt_stream import StreamApplier, record
from dispatcher.redis_server import free_port
from dispatcher.runtime import Runtime
from tests.integration.pipeline import Pipeline, pipeline_factory  # noqa: F401 - fixture
from tests.integration.processes import SMS_DISPATCH

ONE_PARAM = "1000000000000000002"
#: Small chunks, so a job of a few dozen phones makes several gateway requests.
CHUNK = 10
OWNER = {"provider": "opass", "account": "demo"}
PHONE = "13912345678"
NOW = 1_700_000_000_000

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """Every sample ``url`` serves, by name and labels."""
    answer = requests.get(url, timeout=30)
    answer.raise_for_status()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def _start(p: Pipeline, tmp_path: Path) -> str:
    """Start the worker exporter on the worker's metrics directory; return its /metrics URL."""
    port = free_port()
    p.stack.spawn("exporter", [SMS_DISPATCH, "metrics", "--bind", f"127.0.0.1:{port}"], ready="metrics on",
                  env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom-worker")})
    return f"http://127.0.0.1:{port}/metrics"


def _send_path_requests(p: Pipeline) -> int:
    """How many single-template send requests the sandbox took (the chunks that reached it)."""
    return sum(n for path, n in p.sandbox.ledger()["requests"].items() if path.endswith("/message/send"))


def _mismatches(p: Pipeline, worker_url: str, hook_url: str, jobs: list[str], *, paused: str) -> list[str]:
    """What the two scrapes say that the ledger and the sandbox do not (empty when they agree)."""
    worker, hook = scrape(worker_url), scrape(hook_url)
    statuses = [p.dispatcher.status(job) for job in jobs]
    found: list[str] = []

    def check(what: str, seen: float, expected: float) -> None:
        if seen != expected:
            found.append(f"{what}: scraped {seen:g}, expected {expected:g}")

    # The ledger's gauges: the jobs' funnels summed, and what is still in flight.
    for state in STATES:
        check(f"recipients {state}", total(worker, "smsd_recipients", state=state, **OWNER),
              sum(s.counts[state] for s in statuses))
    check("jobs sending", total(worker, "smsd_jobs_in_flight", stage="sending", **OWNER),
          sum(1 for s in statuses if not s.submitted))
    check("jobs awaiting receipts", total(worker, "smsd_jobs_in_flight", stage="awaiting_receipts", **OWNER),
          sum(1 for s in statuses if s.submitted and not s.finished))
    check("paused", total(worker, "smsd_account_paused", **OWNER), 1 if paused else 0)
    if ("smsd_account_paused", frozenset({**OWNER, "reason": paused}.items())) not in worker:
        found.append(f"no smsd_account_paused sample with reason {paused!r}")
    check("receipt backlog", total(worker, "smsd_receipt_backlog"), 0)
    # The pool processes' counters, summed over both by the multiprocess files.
    sent = _send_path_requests(p)
    check("requests accepted", total(worker, "smsd_gateway_requests_total", outcome="accepted", **OWNER), sent)
    check("requests (any outcome)", total(worker, "smsd_gateway_requests_total", **OWNER), sent)
    check("latency observations", total(worker, "smsd_gateway_request_seconds_count", **OWNER), sent)
    check("recipients carried", total(worker, "smsd_gateway_recipients_total", outcome="accepted", **OWNER),
          sum(s.total - s.counts["pending"] for s in statuses))
    check("send slots used", total(worker, "smsd_limiter_wait_seconds_count", op="send", **OWNER), sent)
    # Receipts: each recipient's final receipt applied once; whatever was recorded was taken off
    # the stream by the worker's applier (pushes recorded by the webhook, pulls by the worker).
    check("receipts applied", total(worker, "smsd_receipts_applied_total", result="applied", **OWNER),
          sum(s.counts["delivered"] + s.counts["failed"] for s in statuses))
    for source, recorder in (("push", hook), ("pull", worker)):
        check(f"{source} receipts recorded = taken off the stream",
              total(recorder, "smsd_receipts_recorded_total", source=source, **OWNER),
              total(worker, "smsd_receipts_applied_total", source=source, **OWNER))
    # The webhook's answers: one 200 per push the sandbox saw succeed.
    pushes = p.sandbox.stats()["pushes"].get("opass", {}).get("succeeded", 0)
    check("webhook 200 answers", total(hook, "smsd_webhook_answer_seconds_count", route="hook", provider="opass",
                                       status="200"), pushes)
    return found


def _agree(p: Pipeline, worker_url: str, hook_url: str, jobs: list[str], *, paused: str) -> None:
    """Wait until the sandbox has made every push and the scrapes agree with the ledger; fail with the differences."""
    wait_for(lambda: p.sandbox.wait_idle(timeout_s=1), what="the sandbox's pushes done", timeout_s=60)
    try:
        wait_for(lambda: _mismatches(p, worker_url, hook_url, jobs, paused=paused), ok=lambda found: not found,
                 what="the scraped metrics agree with the ledger and the sandbox", timeout_s=60, interval_s=0.5)
    except TimeoutError:
        # Every difference in full (the timeout's message clips the list).
        found = _mismatches(p, worker_url, hook_url, jobs, paused=paused)
        raise AssertionError("the scrapes disagree with the ledger and the sandbox:\n" + "\n".join(found)) from None


def test_scrapes_of_a_worker_and_the_webhook_during_a_job_match_the_ledger_and_the_sandbox(
        pipeline_factory: Any, tmp_path: Path) -> None:  # noqa: F811
    """A finished job and one held by an operator's pause: the exporter's recipients by state equal
    the jobs' funnels, one job is in flight, the account shows paused by its operator, the
    requests counted over both pool processes equal the chunks the sandbox took, every receipt
    recorded (pushed or pulled) was applied once, and the webhook answered each push the sandbox
    made; after the resume the second job's chunks are counted too and nothing is in flight."""
    dirs: Mapping[str, dict[str, str]] = {
        "w0": {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom-worker")},
        "webhook": {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom-webhook")},
    }
    p = pipeline_factory(opass={"batch_max": CHUNK}, process_env=dict(dirs))
    worker_url, hook_url = _start(p, tmp_path), p.stack.webhook_url + "/metrics"
    first = p.dispatcher.send_template("demo", template_code=ONE_PARAM, phones=phones(3 * CHUNK, seed=71),
                                       params=["424242"])
    p.wait(first.job_id, timeout_s=120)
    p.dispatcher.pause("opass", "demo", "carrier maintenance")
    second = p.dispatcher.send_template("demo", template_code=ONE_PARAM, phones=phones(2 * CHUNK, seed=72),
                                        params=["424242"])
    jobs = [first.job_id, second.job_id]
    _agree(p, worker_url, hook_url, jobs, paused="operator")
    assert _send_path_requests(p) == first.chunks
    assert p.dispatcher.status(second.job_id).counts["pending"] == 2 * CHUNK

    p.dispatcher.resume("opass", "demo")
    p.wait(second.job_id, timeout_s=120)
    _agree(p, worker_url, hook_url, jobs, paused="")
    assert _send_path_requests(p) == first.chunks + second.chunks


# -- the same numbers on one Redis, in this process (no worker) --------------------------------------


def _runtime(redis_url: str, client: redis.Redis) -> Runtime:
    return Runtime(Settings(redis_url=redis_url), accounts=parse_accounts(accounts_doc("http://127.0.0.1:9")),
                   client=client)


def _collect(collector: LedgerCollector) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value for family in collector.collect() for s in family.samples}


def _applied(owner: str, result: str) -> float:
    provider, _, account = owner.partition(":")
    return metrics.REGISTRY.get_sample_value("smsd_receipts_applied_total", {
        "provider": provider, "account": account, "source": "push", "result": result}) or 0.0


def test_forged_duplicate_and_unmatched_receipts_are_counted_apart_from_applied_ones(redis_client: redis.Redis) -> None:
    """Pushed receipts taken off the stream by an applier: one that moves a phone is 'applied', its repeat
    'duplicate', one naming that chunk through another account's hook 'refused' (under the hook's
    account), one naming no id of ours 'unmatched'."""
    ledger = Ledger(redis_client)
    numbers = phones(3, seed=73)
    ledger.create_job("jm", {"provider": "opass", "account": "mine", "kind": "opass.send"}, [ChunkData(numbers)],
                      now_ms=NOW)
    claim = ledger.claim("jm", 0, provider="opass", account="mine", now_ms=NOW + 1)
    ledger.accept("jm", 0, attempt=claim.attempt, message_id="m1", failed_indexes=[], now_ms=NOW + 2)
    ours = Receipt("opass", "m1", numbers[0], "DELIVRD", True, client_id=client_id("jm", 0, claim.attempt))
    stranger = Receipt("opass", "m9", numbers[1], "DELIVRD", True, client_id="not-ours")
    before = {(o, r): _applied(o, r) for o in ("opass:mine", "opass:other")
              for r in ("applied", "duplicate", "refused", "unmatched")}
    stream = ledger.keys.receipt_stream()
    pushes = [("mine", [ours, stranger]), ("mine", [ours]), ("other", [ours])]  # (hook's account, receipts)
    for account, receipts in pushes:
        record(redis_client, stream, "opass", account, receipts, source="push", now_ms=NOW + 3)
    StreamApplier(ledger, "test").drain()
    counted = {key: _applied(*key) - seen for key, seen in before.items() if _applied(*key) != seen}
    assert counted == {("opass:mine", "applied"): 1, ("opass:mine", "duplicate"): 1,
                       ("opass:mine", "unmatched"): 1, ("opass:other", "refused"): 1}


def test_the_ledger_gauges_follow_a_job_until_it_expires_and_show_a_fatal_pause_by_its_code(
        redis_url: str, redis_client: redis.Redis) -> None:
    """A cancelled job's recipients show as cancelled (its counts then kept by the collector, since they
    cannot change) and leave the gauge when the job is gone; an account paused by a fatal answer whose
    text holds a phone shows the code alone."""
    rt = _runtime(redis_url, redis_client)
    collector = LedgerCollector(rt)
    rt.ledger.create_job("jx", {"provider": "opass", "account": "demo", "kind": "opass.send"},
                         [ChunkData(phones(4, seed=74))], now_ms=int(time.time() * 1000))
    cancelled = ("smsd_recipients", frozenset({**OWNER, "state": "cancelled"}.items()))
    pending = ("smsd_recipients", frozenset({**OWNER, "state": "pending"}.items()))
    assert _collect(collector)[pending] == 4
    rt.ledger.cancel("jx", now_ms=int(time.time() * 1000))
    assert (_collect(collector)[cancelled], _collect(collector)[pending]) == (4, 0)
    rt.ledger.delete_job("jx", chunks=1)
    assert _collect(collector)[cancelled] == 0
    pauses.pause_after_fatal(rt, "opass", "demo", f"40002: 余额不足 (call {PHONE})")
    samples = _collect(collector)
    assert samples[("smsd_account_paused", frozenset({**OWNER, "reason": "40002"}.items()))] == 1
    assert not [labels for _, labels in samples if any(PHONE in v for _, v in labels)]
    assert [family.name for family in collector.collect()] == list(LEDGER_METRICS)
