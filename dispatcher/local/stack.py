"""Starting and stopping the whole system as real processes on loopback.

Used by ``sms-dispatch demo`` and by the integration tests, so the demo and the
tests run the same processes the same way: a redis-server, the sandbox, the
webhook under gunicorn, Celery workers and beat. Each process logs to
``<base_dir>/logs/<name>.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import reprlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import requests

from dispatcher.errors import ConfigurationError
from dispatcher.redis_server import REDIS_MAXMEMORY_MB, EmbeddedRedis, free_port
from dispatcher.webhook_server import WEBHOOK_THREADS, webhook_argv

if TYPE_CHECKING:  # sentinels.py waits with this module's wait_for
    from dispatcher.local.sentinels import SentinelGroup

T = TypeVar("T")

_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")




def wait_for(check: Callable[[], T], *, what: str, timeout_s: float = 60.0, ok: Callable[[T], Any] = bool,
             interval_s: float = 0.1) -> T:
    """Call ``check`` until ``ok(value)`` holds (by default: the value is truthy); return that value.

    The one way the stack, the drills and the tests wait for something to happen: a
    condition with a deadline that bounds failure, never a sleep or a measurement.
    Raises ``TimeoutError`` naming ``what`` and the last value seen after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if ok(value):
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not so within {timeout_s:g} s (last seen: {reprlib.repr(value)})")
        time.sleep(interval_s)


class Stack:
    """A set of child processes sharing one environment (Redis URL, accounts file, timings)."""

    def __init__(self, base_dir: str | Path, *, env: Mapping[str, str] | None = None) -> None:
        self.base_dir = Path(base_dir)
        self.logs = self.base_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env: dict[str, str] = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.redis: EmbeddedRedis | None = None
        self.sentinels: SentinelGroup | None = None
        self.sandbox_url = ""
        self.webhook_url = ""

    # -- processes ------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], *, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        # Own process group: kill() reaches a worker's pool children too, as a
        # real kill -9 of a host's worker would. The child keeps its own copy of the fd.
        with (self.logs / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**self.env, **(env or {})},
                                    cwd=self.base_dir, start_new_session=True)
        self.procs[name] = proc
        return proc

    def log_text(self, name: str, *, since: int = 0) -> str:
        """What process ``name`` wrote so far (from byte ``since`` of its log on)."""
        path = self.logs / f"{name}.log"
        if not path.exists():
            return ""
        with path.open("rb") as fh:
            fh.seek(since)
            return fh.read().decode(errors="replace")

    def log_events(self, name: str, event: str, *, since: int = 0) -> list[dict[str, Any]]:
        """The JSON log entries of process ``name`` whose ``event`` is ``event``.

        A worker's pool processes share its log file, and two of them writing at once can
        leave two entries on one line (and a line being written is incomplete): every whole
        JSON object on a line is read, anything else (Celery's own lines) skipped.
        """
        decoder, found = json.JSONDecoder(), []
        for line in self.log_text(name, since=since).splitlines():
            pos = line.find("{")
            while pos >= 0:
                try:
                    entry, end = decoder.raw_decode(line, pos)
                except ValueError:
                    break
                if isinstance(entry, dict) and entry.get("event") == event:
                    found.append(entry)
                pos = line.find("{", end)
        return found

    def spawn(self, name: str, argv: list[str], *, ready: str | None = None, env: Mapping[str, str] | None = None,
              timeout_s: float = 60.0) -> subprocess.Popen[bytes]:
        """Start ``argv`` as process ``name`` and, with ``ready``, wait until it writes that text.

        Only what this start writes counts: a name started again (after a kill,
        or in a second benchmark run) appends to the same log, whose earlier
        "ready" must not pass for the new process's. ``env`` is added to the
        stack's environment. Raises ``ConfigurationError`` if the process exits
        first, ``TimeoutError`` after ``timeout_s``.
        """
        log_path = self.logs / f"{name}.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        proc = self._spawn(name, argv, env=env)
        if ready is not None:
            def started() -> bool:
                if proc.poll() is not None:
                    raise ConfigurationError(f"{name} exited; see {log_path}")
                return ready in self.log_text(name, since=offset)

            wait_for(started, timeout_s=timeout_s, what=name)
        return proc

    def start_redis(self, redis_url: str | None = None) -> str:
        """Use ``redis_url``, or start an embedded redis-server (AOF on); return the URL."""
        if redis_url is None:
            maxmemory_mb = int(self.env.get("SMSD_REDIS_MAXMEMORY_MB", REDIS_MAXMEMORY_MB))
            self.redis = EmbeddedRedis(self.base_dir / "redis", maxmemory_mb=maxmemory_mb)
            redis_url = self.redis.start()
        self.env["SMSD_REDIS_URL"] = redis_url
        return redis_url

    def start_sentinel_redis(self, *, replicas: int = 1, down_after_ms: int = 1000,
                             failover_timeout_ms: int = 3000) -> SentinelGroup:
        """Start a Redis Sentinel group (a master, ``replicas`` replicas, three sentinels; AOF on)
        and point every process of this stack at it (``SMSD_REDIS_SENTINELS``, no ``SMSD_REDIS_URL``)."""
        from dispatcher.local.sentinels import SentinelGroup

        maxmemory_mb = int(self.env.get("SMSD_REDIS_MAXMEMORY_MB", REDIS_MAXMEMORY_MB))
        group = SentinelGroup(self.base_dir / "sentinel", replicas=replicas, down_after_ms=down_after_ms,
                              failover_timeout_ms=failover_timeout_ms, maxmemory_mb=maxmemory_mb)
        self.sentinels = group.start()
        self.env.pop("SMSD_REDIS_URL", None)
        self.env.update(group.env())
        return group

    def start_sandbox(self, config: Mapping[str, Any] | None = None, *, time_scale: float | None = None) -> str:
        """Start the sandbox on a free port (with ``config`` as its JSON config); return its URL."""
        argv = [sys.executable, "-m", "dispatcher.local.sandbox", "--host", "127.0.0.1", "--port", "0"]
        if config:
            path = self.base_dir / "sandbox.json"
            path.write_text(json.dumps(config, ensure_ascii=False))
            argv += ["--config", str(path)]
        if time_scale is not None:
            argv += ["--time-scale", str(time_scale)]
        out = self.logs / "sandbox.out"
        with out.open("wb") as fh, (self.logs / "sandbox.log").open("ab") as err:
            proc = subprocess.Popen(argv, stdout=fh, stderr=err, env=self.env, start_new_session=True)
        self.procs["sandbox"] = proc

        def listening() -> bool:
            match = _LISTENING.search(out.read_text(errors="replace"))
            if match:
                self.sandbox_url = match.group(1)
            if proc.poll() is not None:
                raise ConfigurationError(f"sandbox exited; see {self.logs / 'sandbox.log'}")
            return bool(match)

        wait_for(listening, timeout_s=30, what="sandbox")
        return self.sandbox_url

    def start_webhook(self, *, workers: int = 2, threads: int = WEBHOOK_THREADS, expect_ready: bool = True,
                      env: Mapping[str, str] | None = None) -> str:
        """Serve the webhook with gunicorn on a free port (``env`` added to the stack's); return its base URL.

        Waits until ``/healthz`` answers 200 or, with ``expect_ready`` False, anything.
        """
        port = free_port()
        self._spawn("webhook", webhook_argv(f"127.0.0.1:{port}", workers, threads=threads), env=env)
        self.webhook_url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                answer = requests.get(self.webhook_url + "/healthz", timeout=1)
                return answer.ok or not expect_ready
            except requests.RequestException:
                if self.procs["webhook"].poll() is not None:
                    raise ConfigurationError(f"webhook exited; see {self.logs / 'webhook.log'}") from None
                return False

        wait_for(healthy, timeout_s=30, what="webhook")
        return self.webhook_url

    def start_worker(self, name: str = "worker", *, concurrency: int | None = 2, queues: str = "sms.otp,sms.bulk",
                     pool: str | None = None, env: Mapping[str, str] | None = None) -> None:
        """Start a Celery worker process (``env`` added to the stack's) and wait until it is ready to take tasks.

        ``pool`` and ``concurrency`` (``-P``, ``-c``) default to the app's: a threads
        pool of ``SMSD_SEND_CONCURRENCY`` threads (``concurrency=None`` for that size).
        """
        argv = [sys.executable, "-m", "celery", "-A", "dispatcher.workers", "worker", "-Q", queues,
                "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"]
        argv += ["-c", str(concurrency)] if concurrency is not None else []
        argv += ["-P", pool] if pool is not None else []
        self.spawn(name, argv, ready=" ready.", env=env)

    def start_beat(self) -> None:
        """Start celery beat (its schedule file under ``base_dir``)."""
        self._spawn("beat", [sys.executable, "-m", "celery", "-A", "dispatcher.workers", "beat", "-l", "INFO",
                             "-s", str(self.base_dir / "celerybeat-schedule"), "--max-interval", "1"])

    def restart_redis(self, *, down_s: float = 0.0, while_down: Callable[[], None] | None = None,
                      kill: bool = False) -> float:
        """Stop the embedded redis-server and start it again (same port, data dir, AOF on).

        Every other process keeps running and has to reconnect by itself;
        ``while_down`` is called during the outage; ``kill`` stops it with SIGKILL
        instead of SIGTERM (a crash, no final AOF fsync). Returns the seconds Redis
        was unreachable. Raises ``ConfigurationError`` when this stack uses an
        external Redis (``start_redis(url)``), which it cannot restart.
        """
        if self.redis is None:
            raise ConfigurationError("this stack did not start its Redis, so it cannot restart it")
        return self.redis.restart(down_s=down_s, while_down=while_down, kill=kill)

    def running(self, name: str) -> bool:
        """Whether process ``name`` was started and has not exited."""
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to process ``name`` and, for a Celery worker, its pool children too."""
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=30)

    def stop(self, name: str, timeout_s: float = 20.0) -> None:
        """Stop one process: SIGTERM, then SIGKILL after ``timeout_s``."""
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # leftovers of its group (pool children)

    def stop_all(self) -> None:
        """Stop every process this stack started, producers of work first, Redis last."""
        for name in [n for n in self.procs if n not in ("sandbox",)] + ["sandbox"]:
            self.stop(name)
        if self.redis is not None:
            self.redis.stop()
            self.redis = None
        if self.sentinels is not None:
            self.sentinels.stop()
            self.sentinels = None

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
