"""With no ``SMSD_REDIS_URL``, the project starts its own redis-server, everything shares it, and it stops.

Two paths start one: every process (CLI, worker, beat, webhook) through
``redis_connection.redis_url`` (a detached server under ``SMSD_DATA_DIR``,
shared through its URL file, stopped with SHUTDOWN), and ``Stack.start_redis``
for the demo (a child of the stack, stopped with it).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dispatcher.config.settings import Settings
from dispatcher.local.demo import phones
from dispatcher.local.sandbox.control import SandboxControl
from dispatcher.local.stack import Stack, wait_for
from dispatcher.redis_connection import redis_answers, stop_embedded
from tests.integration.pipeline import FAST, FAST_LIMITS, build_accounts
from tests.integration.processes import cli, process_gone


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """``SMSD_DATA_DIR`` of one test; a detached redis-server the test failed to stop is killed by its pid."""
    data = tmp_path / "data"
    yield data
    pidfile = data / "redis" / "redis.pid"
    if pidfile.exists():
        pid = int(pidfile.read_text())
        if not process_gone(pid) and b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)


def _job_counts(env: dict[str, str], job_id: str) -> dict[str, int]:
    shown = cli("status", job_id, "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    return dict(json.loads(shown.stdout)["counts"])


def test_with_no_redis_url_the_cli_and_a_worker_share_one_embedded_redis_that_shutdown_stops(
        tmp_path: Path, data_dir: Path, sandbox: SandboxControl, sandbox_url: str) -> None:
    """`sms-dispatch send` with SMSD_REDIS_URL unset starts a redis-server that outlives it; a Celery
    worker finds the same server, sends the job to the sandbox, `status` reads the result back; after
    the shutdown the docs name, the server process is gone and its port closed."""
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps(build_accounts(sandbox_url, limits=FAST_LIMITS), ensure_ascii=False))
    env = {k: v for k, v in os.environ.items() if k not in ("SMSD_REDIS_URL", "SMSD_BROKER_URL")}
    env |= {**FAST, "SMSD_DATA_DIR": str(data_dir), "SMSD_ACCOUNTS_FILE": str(accounts)}
    numbers = phones(5, seed=41)

    sent = cli("send", "opass", "demo", "--phones", ",".join(numbers), "--template", "1000000000000000001", "--yes",
               env=env)
    assert sent.returncode == 0, sent.stderr
    job_id = json.loads(sent.stdout)["job_id"]
    url = (data_dir / "redis" / "redis.url").read_text().strip()
    pid = int((data_dir / "redis" / "redis.pid").read_text())
    # The command has exited; the server it started has not (the worker needs it).
    assert not process_gone(pid) and redis_answers(url)

    with Stack(tmp_path / "stack", env=env) as stack:
        for name in ("SMSD_REDIS_URL", "SMSD_BROKER_URL"):  # Stack copies os.environ: keep them unset
            stack.env.pop(name, None)
        stack.start_worker("w0", concurrency=1)
        counts = wait_for(lambda: (c := _job_counts(env, job_id))["pending"] == c["sending"] == 0 and c,
                            timeout_s=180, what=f"job {job_id} submitted through the embedded redis")
    assert counts["accepted"] + counts["delivered"] == len(numbers), counts
    assert {ph: n for ph, n in sandbox.ledger()["accepted"]["opass"].items() if ph in numbers} == \
        dict.fromkeys(numbers, 1)

    assert stop_embedded(Settings.from_env(env))
    wait_for(lambda: process_gone(pid), timeout_s=30, what=f"embedded redis-server pid {pid} gone")
    assert not redis_answers(url)
    assert not (data_dir / "redis" / "redis.url").exists()


def test_the_demo_stack_starts_its_own_redis_and_stops_it_with_everything_else(tmp_path: Path) -> None:
    """`Stack.start_redis()` with no URL (the demo's path) starts a redis-server that takes a write
    and reads it back; `stop_all` leaves no server process behind."""
    stack = Stack(tmp_path, env={"SMSD_DATA_DIR": str(tmp_path / "data")})
    url = stack.start_redis()
    assert stack.redis is not None and stack.redis.proc is not None
    server = stack.redis.proc  # held here, so the test can clean up a server stop_all left running
    try:
        client = redis.Redis.from_url(url)
        client.set("smsd:probe", "written")
        assert client.get("smsd:probe") == b"written"
        client.close()
        stack.stop_all()
        assert server.poll() is not None, f"redis-server pid {server.pid} still running after stop_all"
        assert not redis_answers(url)
    finally:
        stack.stop_all()
        if server.poll() is None:
            server.kill()
        server.wait(timeout=30)
