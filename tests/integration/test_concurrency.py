"""Many requests in flight from one worker process, the account's limit still the pace (issue 11).

What the sandbox saw is the evidence: how many gateway requests it was answering
at once (``in_flight``), and its sliding-window maxima of each account's limit.
How fast the gateway's limit is reached is measured by ``python -m bench.distance``,
not asserted here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dispatcher.local.demo import phones
from dispatcher.local.sandbox import demo as creds
from dispatcher.local.stack import wait_for
from tests.integration.pipeline import FAST_LIMITS, Pipeline, pipeline_factory  # noqa: F401 - fixture

ONE_PARAM = "1000000000000000002"


def _pool_children(p: Pipeline, name: str) -> list[str]:
    """The pids of a worker's child processes (a prefork pool's), from /proc."""
    pid = p.stack.procs[name].pid
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


def _sends_once(p: Pipeline, numbers: list[str], job_id: str) -> None:
    p.wait(job_id, until="submitted", timeout_s=180)
    assert p.accepted_counts("opass", numbers) == {1: len(numbers)}


def test_one_worker_process_keeps_many_chunks_in_flight_when_the_gateway_is_slow(pipeline_factory) -> None:  # noqa: F811
    """The worker as the Procfile starts it (threads, default size): one process, requests overlapping there."""
    p = pipeline_factory(workers=1, concurrency=None, webhook=False, opass={"batch_max": 100})
    assert _pool_children(p, "w0") == [], "the worker forked pool processes"
    p.sandbox.set_faults({"kind": "slow", "rate": 1.0, "delay_ms": 400, "path": "/message/"})
    numbers = phones(3_000, seed=31)
    job = p.dispatcher.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["424242"])
    _sends_once(p, numbers, job.job_id)
    most = p.sandbox.stats()["in_flight"]["opass"]["max"]
    # 30 chunks, one to a task; a process sending one at a time would show 1.
    assert most >= 8, f"at most {most} opass requests were in flight at once"


def test_many_threads_pressing_one_account_never_exceed_its_limit(pipeline_factory) -> None:  # noqa: F811
    """128 threads of one process, 20 sends/s on both sides, the gateway 100 ms away: no window over the limit."""
    send_20 = {**FAST_LIMITS, "send": [{"kind": "send", "count": 20, "window_s": 1}]}
    # A busy two-core host can stall the process past the default 50 ms allowance: widened, as
    # in the four-process limiter test (the bound holds for any stall the allowance covers).
    p = pipeline_factory(workers=1, concurrency=None, webhook=False, limits=send_20, opass={"batch_max": 10},
                         env={"SMSD_LIMITER_JITTER_S": "0.25"},
                         sandbox_settings={"limits": {"opass_send": {"max": 20, "window_s": 1.0}}})
    p.sandbox.set_faults({"kind": "slow", "rate": 1.0, "delay_ms": 100, "path": "/message/"})
    numbers = phones(1_000, seed=32)
    job = p.dispatcher.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["313131"])
    # Pressed: more chunks wanted out than the limit let go (several in flight, the rest queued for slots).
    wait_for(lambda: p.sandbox.stats()["in_flight"].get("opass", {}).get("max", 0) >= 2,
             what="several sends in flight at once", timeout_s=60)
    _sends_once(p, numbers, job.job_id)
    window = p.sandbox.stats()["limits"]["opass"][creds.OPASS_API_KEY]["opass_send"]
    assert window["refused"] == 0, window
    assert window["max_attempted"] <= window["limit"], window


def test_a_worker_with_an_unsupported_pool_refuses_to_start_and_says_why(redis_url: str, tmp_path: Path) -> None:
    """solo runs one task at a time in the thread that fetches them: one request in flight, OTPs behind bulk."""
    env = {"PATH": "/usr/bin:/bin", "SMSD_REDIS_URL": redis_url, "SMSD_DATA_DIR": str(tmp_path)}
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "dispatcher.workers", "worker", "-P", "solo",
                                 "-Q", "sms.otp,sms.bulk", "-l", "INFO"], env=env, cwd=tmp_path, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: proc.poll() is not None or " ready." in log.read_text(errors="replace"),
                 what="the worker exited or became ready", timeout_s=120)
    finally:
        started = proc.poll() is None
        proc.kill()
        proc.wait(30)
    text = log.read_text(errors="replace")
    assert not started, "the worker started with the solo pool"
    assert proc.returncode != 0
    assert "the Celery pool 'solo' is not supported" in text, text[-2000:]
    assert "one request in flight" in text


def test_a_prefork_worker_is_still_supported_and_sends_each_phone_once(pipeline_factory) -> None:  # noqa: F811
    """Prefork (a chunk at a time per child) stays a choice: it starts, forks its children, loses nothing.

    ``-P processes``: Celery takes ``-P prefork``, its default's name, as "not given" and
    uses the app's configured pool (threads).
    """
    p = pipeline_factory(workers=1, concurrency=2, pool="processes", webhook=False, opass={"batch_max": 100})
    assert len(_pool_children(p, "w0")) == 2
    numbers = phones(2_000, seed=33)
    job = p.dispatcher.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["525252"])
    _sends_once(p, numbers, job.job_id)


def test_the_pool_threads_share_one_result_backend(redis_url: str, tmp_path: Path) -> None:
    """Each thread would otherwise build its own on its first task, scanning every installed package's entry
    points (10 % of the worker's CPU over a 2M-recipient job): a real Celery app, read from several threads."""
    probe = (
        "import threading; from dispatcher.workers.app import app; seen = [];"
        "ts = [threading.Thread(target=lambda: seen.append(app.backend)) for _ in range(4)];"
        "[(t.start(), t.join()) for t in ts]; print(len({id(b) for b in seen}))"
    )
    env = {"PATH": "/usr/bin:/bin", "SMSD_REDIS_URL": redis_url, "SMSD_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=Path(__file__).parents[2], capture_output=True,
                         text=True, timeout=60, check=True)
    assert out.stdout.strip() == "1"
