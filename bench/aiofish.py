"""``aiofish_pipeline_recipients_per_s``: a per-phone-content aiofish job through the real workers.

``Dispatcher.send_content(recipients=[(phone, content), …])`` stores the job
(batchSendSms, 200 recipients a chunk, AES-encrypted as the demo account is
configured) and our Celery workers send it; timed from the call to the last
chunk accepted (200,000 recipients; 40,000 quick), then checked against the
sandbox's ledger. The aiofish send limit is raised out of the way on both
sides (our accounts file and the sandbox); receipts are kept off the path.

``python -m bench.aiofish [--quick]`` runs it on its own stack and prints its JSON.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import (
    CONCURRENCY,
    QUIET_RECEIPTS,
    UNLIMITED_SANDBOX,
    UNLIMITED_SEND,
    WORKERS,
    dispatcher_for,
    fresh_redis,
    main_of,
    reset_sandbox,
    workers,
    write_accounts,
)
from dispatcher.local.demo import phones
from dispatcher.local.stack import Stack, wait_for


def run(stack: Stack, *, quick: bool, workers_n: int = WORKERS, concurrency: int = CONCURRENCY,
        recipients: int | None = None, **_: Any) -> dict[str, Any]:
    """Send one aiofish per-phone-content job through ``workers_n`` x ``concurrency`` workers.

    Raises ``TimeoutError`` if it is not submitted within 30 minutes, ``RuntimeError``
    if the sandbox's ledger disagrees with the job's funnel.
    """
    count = recipients or (40_000 if quick else 200_000)
    client = fresh_redis(stack)
    control = reset_sandbox(stack, limits={"aiofish_send": UNLIMITED_SANDBOX}, **QUIET_RECEIPTS)
    doc = write_accounts(stack, aiofish={"limits": {"send": UNLIMITED_SEND}})
    d = dispatcher_for(stack, doc, client)
    recipients_list = [(p, f"【沙箱】您好，您的订单{i:06d}已发货。") for i, p in enumerate(phones(count, seed=41))]
    with workers(stack, "aiofish", workers_n, concurrency):
        t0 = time.perf_counter()
        job = d.send_content("demo", recipients=recipients_list)
        stored_s = time.perf_counter() - t0
        del recipients_list
        wait_for(lambda: d.status(job.job_id).submitted, timeout_s=1800, what="aiofish job", interval_s=0.05)
        elapsed = time.perf_counter() - t0
    accepted = d.status(job.job_id).counts["accepted"]
    seen = len(control.ledger()["accepted"]["aiofish"])
    if accepted != count or seen != count:
        raise RuntimeError(f"aiofish job: {accepted} accepted in our ledger, {seen} in the sandbox's, of {count}")
    return {
        "aiofish_pipeline_recipients_per_s": round(count / elapsed, 1),
        "aiofish_recipients": count,
        "aiofish_chunks": job.chunks,
        "aiofish_store_s": round(stored_s, 2),
        "aiofish_workers": f"{workers_n}x{concurrency}",
    }


if __name__ == "__main__":
    main_of(run, __doc__)
