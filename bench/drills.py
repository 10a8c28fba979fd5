"""``python -m bench.drills [--quick] [--only NAME]``: fault drills counted by the sandbox's ledger.

Each drill gets its own redis-server (AOF on), sandbox, webhook, two Celery
workers and beat (:func:`dispatcher.local.drill.start_rig`) and one opass job:

* ``kill9``: kill -9 a worker's whole process group five times during the job,
  restarting it each time (100,000 recipients; 20,000 with ``--quick``);
* ``redis_restart``: stop and restart redis-server mid-job (same port, data, AOF);
  nothing else is restarted;
* ``fault_mix``: 10 % refused connections, 5 % ``-1``, 5 % ``6000``, 2 % taken
  but unanswered, on ``/message/``, until the job is submitted;
* ``sentinel_failover``: Redis is a Sentinel group (master, ``--sentinel-replicas``
  replicas, three sentinels; failover after 1 s down); kill -9 the master mid-job,
  start it again once a replica is promoted (a supervisor would); nothing else is
  restarted. Reports the time until the sentinels promoted and until chunks were
  sent again;
* ``route_failover``: one route job, 3:1 over opass:demo and aiofish:demo; once a fifth of
  opass's share is accepted the sandbox answers every opass send ``40002`` (余额不足, account-fatal):
  opass is paused and its recipients not yet submitted move to aiofish; each is accepted once;
* ``applier_kill9``: pushes arrive at 200/s for 30 s (opass 100 receipts, 1 in 5
  an encrypted aiofish report; 10 s with ``--quick``); kill -9 the worker whose
  applier holds unapplied entries; the other worker's applier claims them;
* ``receipts_redis_restart`` / ``receipts_redis_kill9``: the same pushes while
  redis-server is stopped with SIGTERM / SIGKILL and started again (the webhook
  answers 503 meanwhile and the pushes are retried, as the vendors do).

Prints one JSON object ``{"drills": {name: {...}}, "machine": {...}}`` on stdout,
one line per drill phase on stderr; exits 1 if any drill lost or duplicated a
recipient, lost or applied twice a receipt (or did not finish).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dispatcher.local import drill, receipt_drill

#: name -> (runner, chunks the job is cut into). Many chunks make every kill and
#: the restart land with requests in flight; the slow sandbox paces the job.
DRILLS: dict[str, tuple[Callable[..., dict[str, Any]], int]] = {
    "kill9": (drill.run_kill9, 200),
    "redis_restart": (drill.run_redis_restart, 200),
    "fault_mix": (drill.run_fault_mix, 100),
    "sentinel_failover": (drill.run_sentinel_failover, 200),
    "route_failover": (drill.run_route_failover, 200),
}
#: Receipt drills: name -> (runner, options). Their size is pushes, not recipients.
RECEIPT_DRILLS: dict[str, tuple[Callable[..., dict[str, Any]], dict[str, Any]]] = {
    "applier_kill9": (receipt_drill.run_applier_kill9, {}),
    "receipts_redis_restart": (receipt_drill.run_receipts_redis_restart, {"kill": False}),
    "receipts_redis_kill9": (receipt_drill.run_receipts_redis_restart, {"kill": True}),
}
RECEIPT_RATE_PER_S = 200.0


def say(line: str) -> None:
    """One progress line on stderr, stamped with the wall clock."""
    print(f"[drills {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def run_one(name: str, recipients: int, base: Path, **options: Any) -> dict[str, Any]:
    """Start a rig, run drill ``name`` on it, stop the rig; return the drill's figures."""
    if name in RECEIPT_DRILLS:
        runner, extra = RECEIPT_DRILLS[name]
        options = {**extra, **options}
        batch_max = 1000
    else:
        runner, chunks = DRILLS[name]
        batch_max = max(10, min(1000, recipients // chunks))
        options = {**options, "recipients": recipients}
    replicas = int(options.pop("sentinel_replicas", 0))
    redis = f"a Sentinel group ({replicas} replica{'s' if replicas > 1 else ''})" if replicas else "redis-server"
    say(f"{name}: starting {redis}, sandbox, webhook, 2 workers and beat (chunks of {batch_max})")
    rig = drill.start_rig(base / name, workers=2, concurrency=2, batch_max=batch_max, sentinel_replicas=replicas,
                          route=name == "route_failover")
    try:
        return runner(rig, say=say, **options)
    finally:
        rig.stop()
        say(f"{name}: stopped everything")


def machine() -> dict[str, Any]:
    """What the figures were measured on (other engineers share these two cores)."""
    from dispatcher.redis_server import find_redis_server

    version = subprocess.run([find_redis_server(), "--version"], capture_output=True, text=True,
                             timeout=10).stdout.split()
    return {"cores": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(), "platform": sys.platform,
            "redis": next((w.split("=", 1)[1] for w in version if w.startswith("v=")), None)}


def main(argv: list[str] | None = None) -> int:
    """Run the drills; print one JSON object; return 1 if any lost, duplicated or did not finish."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 recipients per drill instead of 100,000")
    parser.add_argument("--only", choices=sorted([*DRILLS, *RECEIPT_DRILLS]), action="append",
                        help="run only this drill (repeatable)")
    parser.add_argument("--recipients", type=int, default=None, help="override the job size")
    parser.add_argument("--redis-down-s", type=float, default=2.0,
                        help="how long redis-server stays stopped in redis_restart (default 2)")
    parser.add_argument("--sentinel-replicas", type=int, default=1,
                        help="replicas of the Sentinel group in sentinel_failover (default 1)")
    args = parser.parse_args(argv)
    recipients = args.recipients or (20_000 if args.quick else 100_000)
    base = Path(tempfile.mkdtemp(prefix="smsd-drills-"))
    say(f"working in {base}")
    pushes = int(RECEIPT_RATE_PER_S * (10 if args.quick else 30))
    receipts = {"pushes": pushes, "rate_per_s": RECEIPT_RATE_PER_S}
    options: dict[str, dict[str, Any]] = {
        "redis_restart": {"down_s": args.redis_down_s},
        "sentinel_failover": {"sentinel_replicas": max(1, args.sentinel_replicas)},
        "applier_kill9": receipts,
        "receipts_redis_restart": {**receipts, "down_s": args.redis_down_s},
        "receipts_redis_kill9": {**receipts, "down_s": args.redis_down_s},
    }
    results = {name: run_one(name, recipients, base, **options.get(name, {}))
               for name in [*DRILLS, *RECEIPT_DRILLS] if not args.only or name in args.only}
    print(json.dumps({"drills": results, "machine": machine()}))
    bad = [n for n, r in results.items()
           if r["lost"] or r.get("duplicated") or r.get("applied_twice") or not r.get("final", r.get("drained"))]
    if bad:
        say(f"FAILED: {', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
