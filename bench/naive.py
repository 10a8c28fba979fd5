"""``naive_recipients_per_s``: the baseline, one Celery task per recipient (:mod:`bench.naive_app`).

This is the common pattern, and exactly the anti-pattern our pipeline avoids
(phones in task arguments, one broker round trip and one gateway request per
recipient, early acks); it is measured only so the pipeline has something to be
compared with. Starts the naive app as real prefork workers with the pipeline
bench's total concurrency (2 workers x 4 by default), enqueues one
``send_one(phone)`` per recipient (20,000; 5,000 quick) and times from the
first enqueue to the sandbox's ledger showing every phone accepted. The
sandbox's send limit is raised out of the way, receipts kept off the path.

``python -m bench.naive [--quick]`` runs it on its own stack and prints its JSON.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from bench import naive_app
from bench.common import (
    CONCURRENCY,
    QUIET_RECEIPTS,
    UNLIMITED_SANDBOX,
    WORKERS,
    fresh_redis,
    main_of,
    reset_sandbox,
    spawn,
    wait_accepted,
    workers,
    write_accounts,
)
from dispatcher.local.demo import phones
from dispatcher.local.stack import Stack


def run(stack: Stack, *, quick: bool, workers_n: int = WORKERS, concurrency: int = CONCURRENCY,
        recipients: int | None = None, **_: Any) -> dict[str, Any]:
    """Send ``recipients`` phones one task each through the naive app; return recipients/s.

    Raises ``TimeoutError`` if the sandbox has not accepted them all within 10 minutes.
    """
    count = recipients or (5_000 if quick else 20_000)
    fresh_redis(stack)
    control = reset_sandbox(stack, limits={"opass_send": UNLIMITED_SANDBOX}, **QUIET_RECEIPTS)
    write_accounts(stack)  # the naive app reads the demo account; our limiter is not involved
    argv = [sys.executable, "-m", "celery", "-A", "bench.naive_app", "worker", "-c", str(concurrency),
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"]

    def start(name: str) -> None:
        spawn(stack, name, [*argv, "-n", f"{name}@%h"])

    numbers = phones(count, seed=31, prefix="15")
    naive_app.app.conf.broker_url = stack.env["SMSD_REDIS_URL"]
    with workers(stack, "naive", workers_n, concurrency, start=start):
        t0 = time.perf_counter()
        for phone in numbers:
            naive_app.send_one.delay(phone)
        enqueued_s = time.perf_counter() - t0
        done = wait_accepted(control, "opass", count, timeout_s=600)
    naive_app.app.close()
    elapsed = done - t0
    return {
        "naive_recipients_per_s": round(count / elapsed, 1),
        "naive_recipients": count,
        "naive_enqueue_s": round(enqueued_s, 2),
        "naive_workers": f"{workers_n}x{concurrency}",
    }


if __name__ == "__main__":
    main_of(run, __doc__)
