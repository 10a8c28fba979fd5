"""Receipt polls at the documented rate: beat, a worker and the sandbox for an hour, counted at the gateway.

Each account may be asked for receipts once a minute (opass's FAQ; we hold
aiofish to the same). Beat ticks every ``SMSD_RECEIPT_TICK_S`` and queues each
account's next poll right at its limiter slot, so an hour should bring 60
polls (± 1) per account and no two closer than a minute. The sandbox's own
opass query window is set to 1 per 60 s: a poll any sooner is refused and
counted there. Gaps between polls come from the worker's ``receipts.polled``
log lines (the time each request left). ``--quick`` runs 5 minutes.

Before the clock starts, a backlog of receipts bigger than the run can drain
is sent through each gateway (pull mode), so every poll comes back full and
``receipts_pulled_per_account_per_hour`` is the ceiling an account gets
(opass: 600 an answer, 60 answers an hour = 36,000).

    python -m bench.polls [--quick | --duration-s S]       # prints one JSON object
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from typing import Any

from bench.common import UNLIMITED_SEND, dispatcher_for, fresh_redis, reset_sandbox, standalone, write_accounts
from dispatcher.local.demo import phones
from dispatcher.local.stack import Stack, wait_for

FULL_S = 3600.0
QUICK_S = 300.0
#: The documented limit, widened by nothing: a poll the gateway sees sooner than this is too soon.
POLL_PERIOD_S = 60.0
#: Receipts that every poll of a run can come back full: opass 600 and aiofish 1,000 (the
#: sandbox's getReport cap) an answer, one answer a minute, plus a margin.
BACKLOG_PER_MINUTE = 1_100


def _gaps_s(log_text: str) -> dict[str, list[float]]:
    """Seconds between consecutive ``receipts.polled`` lines, per provider:account."""
    times: dict[str, list[float]] = {}
    for line in log_text.splitlines():
        if '"receipts.polled"' not in line:
            continue
        doc = json.loads(line[line.index("{"):])
        # When the request left (the gateway's view), not when the answer was in:
        # a long answer would make the next gap look short.
        when = doc["started_ms"] / 1000.0
        times.setdefault(f"{doc['provider']}:{doc['account']}", []).append(when)
    return {k: [b - a for a, b in itertools.pairwise(v)] for k, v in times.items()}


def _pulled(log_text: str) -> dict[str, int]:
    """Receipts pulled per provider:account, from the ``receipts.polled`` lines."""
    totals: dict[str, int] = {}
    for line in log_text.splitlines():
        if '"receipts.polled"' in line:
            doc = json.loads(line[line.index("{"):])
            key = f"{doc['provider']}:{doc['account']}"
            totals[key] = totals.get(key, 0) + int(doc["receipts"])
    return totals


def run(stack: Stack, *, quick: bool, duration_s: float | None = None) -> dict[str, Any]:
    """Run beat and one worker against the sandbox for the duration; count each account's polls."""
    duration_s = duration_s or (QUICK_S if quick else FULL_S)
    doc = write_accounts(stack, opass={"limits": {"send": UNLIMITED_SEND}},
                         aiofish={"limits": {"send": UNLIMITED_SEND}})
    for account in doc["opass"]:
        account["limits"].pop("receipts", None)  # the documented 1/min, not the demo's faster pull
    (stack.base_dir / "accounts.json").write_text(json.dumps(doc))
    control = reset_sandbox(stack, receipt_mode="pull", receipt_delay_s=0.0, pull_window_s=48 * 3600.0,
                            limits={"opass_query": {"max": 1, "window_s": POLL_PERIOD_S},
                                    "opass_send": {"max": 100_000, "window_s": 1.0}})
    backlog = int(BACKLOG_PER_MINUTE * (duration_s / POLL_PERIOD_S + 2))
    client = fresh_redis(stack)
    stack.start_worker("pollw", concurrency=2)
    d = dispatcher_for(stack, doc, client)
    opass_job = d.send_template("demo", template_code="1000000000000000001", phones=phones(backlog, seed=71))
    fish_job = d.send_content("demo", content="【沙箱】回执积压", phones=phones(backlog, seed=72))
    for job in (opass_job, fish_job):
        wait_for(lambda job=job: d.status(job.job_id).submitted, timeout_s=600, what=f"backlog job {job.job_id}")
    stack.start_beat()
    started = time.monotonic()
    time.sleep(duration_s)
    elapsed_s = time.monotonic() - started
    stack.stop("beat")
    stack.stop("pollw")
    requests_by_path = control.ledger()["requests"]
    limits = control.stats()["limits"]
    log_text = stack.log_text("pollw")
    gaps = _gaps_s(log_text)
    pulled = _pulled(log_text)
    expected = elapsed_s / POLL_PERIOD_S
    per_account = {
        "opass:demo": requests_by_path.get("/sms/arriveRes/qry", 0),
        "aiofish:demo": sum(v for k, v in requests_by_path.items() if "eport" in k),
    }
    opass_window = limits.get("opass", {}).get("sandbox-api-key", {}).get("opass_query", {})
    return {
        "duration_s": round(elapsed_s, 1),
        "polls_expected": round(expected, 2),
        "polls_per_account": per_account,
        "polls_within_one": all(abs(n - expected) <= 1 for n in per_account.values()),
        "min_gap_s": {k: round(min(v), 3) for k, v in gaps.items() if v},
        "never_faster": all(min(v) >= POLL_PERIOD_S for v in gaps.values() if v)
        and opass_window.get("refused", 0) == 0,
        "sandbox_opass_query_window": opass_window,
        "receipts_pulled_per_account_per_hour": {k: round(v * 3600.0 / elapsed_s) for k, v in pulled.items()},
        "backlog_per_account": backlog,
    }


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration-s", type=float, help="how long beat runs (default 3600; --quick 300)")


if __name__ == "__main__":
    sys.exit(standalone(run, __doc__, options=_options, quick_help="5 minutes instead of an hour"))
