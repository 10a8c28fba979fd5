"""What several benchmark modules share: accounts file, worker sets, sandbox waits, standalone runs.

Each benchmark module exposes ``run(stack, *, quick, **kw) -> dict`` and is
called by ``python -m bench`` on a :class:`~dispatcher.local.stack.Stack` whose
redis-server and sandbox are already up; :func:`standalone` gives the same
``run`` its own stack so ``python -m bench.<module> [--quick]`` prints its JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import redis

from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.local.demo import accounts_doc
from dispatcher.local.sandbox.control import SandboxControl
from dispatcher.local.stack import Stack, wait_for
from dispatcher.producer import Dispatcher

REPO = Path(__file__).resolve().parent.parent

#: The worker set of the throughput sections: one worker of three pool
#: processes. The best measured on this 2-core machine for the 1M-recipient
#: opass job (1x2, 1x3, 2x2 and 2x4 prefork, 2x2 and 2x4 threads tried; see
#: BENCHMARKS.md): more processes than cores only add switching between them.
WORKERS = 1
CONCURRENCY = 3
#: Their pool: prefork (``-P processes``; Celery reads ``-P prefork`` as "the app's pool", threads).
#: With the gateway on loopback and no binding limit, three processes on two cores send
#: more than one GIL-bound process of threads; the distance section measures the
#: Procfile's threads worker with the gateway far away, which is what threads are for.
POOL = "processes"
#: A limit no benchmark reaches ("out of the way"), for our accounts file.
UNLIMITED_SEND: list[dict[str, Any]] = [{"kind": "send", "count": 100_000, "window_s": 1}]
#: The same for the sandbox's limit table.
UNLIMITED_SANDBOX = {"max": 100_000, "window_s": 1.0}
#: Receipts off the measured path: pull only, and not due for an hour.
QUIET_RECEIPTS = {"receipt_mode": "pull", "receipt_delay_s": 3600.0}


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0–1) of ``values`` by the nearest-rank method; ``None`` if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q * len(ordered)))) - 1]


def evalsha_us(client: redis.Redis) -> int:
    """Microseconds Redis has spent in EVALSHA so far (INFO commandstats)."""
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("usec", 0))


def cpu_s(root_pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its children (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(stat[11]) + int(stat[12])) / ticks
            todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
    return total


def redis_usec(client: redis.Redis, command: str) -> int:
    """Microseconds Redis has spent in ``command`` so far (INFO commandstats)."""
    return int(client.info("commandstats").get(f"cmdstat_{command}", {}).get("usec", 0))


def write_accounts(
    stack: Stack,
    *,
    opass: Mapping[str, Any] | None = None,
    aiofish: Mapping[str, Any] | None = None,
    name: str = "accounts.json",
) -> dict[str, Any]:
    """Write the demo accounts file (``opass``/``aiofish`` keys merged into each account) and point
    ``stack.env["SMSD_ACCOUNTS_FILE"]`` at it; return the document."""
    doc = accounts_doc(stack.sandbox_url)
    for provider, extra in (("opass", opass), ("aiofish", aiofish)):
        for account in doc[provider]:
            for key, value in (extra or {}).items():
                if key == "limits":
                    account["limits"] = {**account.get("limits", {}), **value}
                else:
                    account[key] = value
    path = stack.base_dir / name
    path.write_text(json.dumps(doc))
    stack.env["SMSD_ACCOUNTS_FILE"] = str(path)
    return doc


def fresh_redis(stack: Stack) -> redis.Redis:
    """A client of the stack's Redis, its database emptied (no queue or ledger left by another bench)."""
    client = redis.Redis.from_url(stack.env["SMSD_REDIS_URL"])
    client.flushdb()
    return client


def dispatcher_for(stack: Stack, doc: Mapping[str, Any], client: redis.Redis) -> Dispatcher:
    """A producer using the stack's settings and the accounts in ``doc``."""
    return Dispatcher(Settings.from_env(stack.env), accounts=parse_accounts(doc), client=client)


def reset_sandbox(stack: Stack, **settings: Any) -> SandboxControl:
    """Forget what the sandbox accepted, deep-merge ``settings`` into its config; return its client."""
    control = SandboxControl(stack.sandbox_url)
    control.reset()
    if settings:
        control.configure(**settings)
    return control


def spawn(stack: Stack, name: str, argv: Sequence[str], *, ready: str = " ready.", timeout_s: float = 60.0) -> None:
    """Start ``argv`` as stack process ``name`` with the repo on ``PYTHONPATH``; wait for ``ready``.

    Raises ``ConfigurationError`` if it exits first, ``TimeoutError`` after ``timeout_s``.
    """
    # Stack.start_worker only knows the ``workers`` app; this starts any other
    # (the naive baseline) the same way. The repo goes on PYTHONPATH because
    # children run in base_dir and ``bench`` is not an installed package.
    stack.spawn(name, list(argv), ready=ready, env={"PYTHONPATH": str(REPO)}, timeout_s=timeout_s)


def require_no_workers(stack: Stack) -> None:
    """Raise ``RuntimeError`` if a worker of our app is already running on ``stack``: it would take
    this benchmark's tasks with the accounts file (and limits) it was started with."""
    # Stack starts every process with an argument list; str() also covers a plain command string.
    running = [name for name, proc in stack.procs.items() if proc.poll() is None
               and "dispatcher.workers" in (proc.args if isinstance(proc.args, list) else [str(proc.args)])]
    if running:
        raise RuntimeError(f"stop these workers first: {', '.join(running)}")


@contextlib.contextmanager
def workers(stack: Stack, prefix: str, count: int, concurrency: int,
            start: Callable[[str], None] | None = None, pool: str = POOL) -> Iterator[list[str]]:
    """Start ``count`` workers named ``<prefix><i>`` (our Celery app with ``pool`` unless ``start``
    is given); stop every one on exit, even after an error. Raises ``RuntimeError`` (see
    :func:`require_no_workers`) before starting any."""
    require_no_workers(stack)
    names: list[str] = []
    try:
        for i in range(count):
            name = f"{prefix}{i}"
            names.append(name)
            if start is None:
                stack.start_worker(name, concurrency=concurrency, pool=pool)
            else:
                start(name)
        yield names
    finally:
        for name in names:
            stack.stop(name)


def wait_accepted(control: SandboxControl, gateway: str, expected: int, *, timeout_s: float,
                  interval_s: float = 0.05) -> float:
    """Wait until the sandbox's ledger holds ``expected`` distinct phones for ``gateway``; return
    ``time.perf_counter()`` when first seen. Raises ``TimeoutError``.

    Polls the cheap request counter first: the ledger document holds every phone.
    """
    deadline = time.monotonic() + timeout_s
    wait_for(lambda: control.stats()["requests_total"] >= expected, timeout_s=timeout_s,
             what=f"{expected} {gateway} requests", interval_s=interval_s)
    while True:
        accepted = len(control.ledger()["accepted"][gateway])
        if accepted >= expected:
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{gateway}: {accepted} of {expected} accepted after {timeout_s:.0f} s")
        time.sleep(interval_s)


def standalone(run: Callable[..., dict[str, Any]], doc: str | None, argv: list[str] | None = None, *,
               options: Callable[[argparse.ArgumentParser], None] | None = None,
               quick_help: str = "the short variant") -> int:
    """``python -m bench.<module> [--quick] [options]``: start redis and the sandbox in a temp dir, call
    ``run(stack, quick=..., **options)``, print its JSON; everything started is stopped on return.

    ``options`` adds the module's own arguments to the parser; each is passed to
    ``run`` under its ``dest`` name.
    """
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    if "appliers" in inspect.signature(run).parameters:
        parser.add_argument("--appliers", type=int, default=1, help="workers applying the receipt stream")
    if options is not None:
        options(parser)
    args = vars(parser.parse_args(argv))
    quick = args.pop("quick")
    base = Path(tempfile.mkdtemp(prefix="smsd-bench-"))
    with Stack(base, env={"SMSD_DATA_DIR": str(base)}) as stack:
        stack.start_redis()
        stack.start_sandbox()
        result = run(stack, quick=quick, **args)
    print(json.dumps(result))
    return 0


def main_of(run: Callable[..., dict[str, Any]], doc: str | None) -> None:
    """Entry point body of a benchmark module run with ``python -m``."""
    sys.exit(standalone(run, doc))
