"""A Redis Sentinel group on loopback: a master, its replicas and three sentinels, one binary.

Every node is the same ``redis-server`` the rest of the project runs
(:func:`dispatcher.redis_server.find_redis_server`); a sentinel is that binary
started with ``--sentinel`` on a config file of its own (a sentinel rewrites
its file as it learns the group). Used by the failover drill
(:func:`dispatcher.local.drill.run_sentinel_failover`), ``python -m bench.sentinel``
and the integration tests, so all three fail over the same way.

Failover is tuned for tests: a master that does not answer for
``down_after_ms`` is down for each sentinel, two of three agreeing make it
objectively down, and the elected leader promotes the replica with the most
data. Production keeps Redis's defaults (30 s; docs/operations.md).
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from dispatcher.errors import ConfigurationError
from dispatcher.local.stack import wait_for
from dispatcher.redis_server import REDIS_MAXMEMORY_MB, EmbeddedRedis, find_redis_server, free_port

#: The name the sentinels monitor the master under (``SMSD_REDIS_SENTINEL_MASTER``).
MASTER_NAME = "smsd"
HOST = "127.0.0.1"


def _one_try(port: int, password: str = "", timeout_s: float = 0.5) -> redis.Redis:
    """A client that tries once (a dead node must show at once, not after retries' backoff)."""
    return redis.Redis(HOST, port, password=password or None, socket_connect_timeout=timeout_s,
                       socket_timeout=timeout_s, retry=Retry(NoBackoff(), 0), decode_responses=True)


class SentinelGroup:
    """A master, ``replicas`` replicas and ``sentinels`` sentinels, each a redis-server child of ours.

    ``password`` is every data node's ``requirepass`` (and ``masterauth``);
    ``sentinel_password`` the sentinels' own. Raises ``ConfigurationError`` or
    ``TimeoutError`` if the group does not come up; whatever was started is stopped then.
    """

    def __init__(self, base_dir: str | Path, *, replicas: int = 1, sentinels: int = 3, down_after_ms: int = 1000,
                 failover_timeout_ms: int = 3000, password: str = "", sentinel_password: str = "",
                 maxmemory_mb: int = REDIS_MAXMEMORY_MB, name: str = MASTER_NAME) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.name = name
        self.password = password
        self.sentinel_password = sentinel_password
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        master_port = free_port()
        self.nodes: dict[int, EmbeddedRedis] = {
            master_port: EmbeddedRedis(self.base_dir / f"node-{master_port}", port=master_port, password=password,
                                       maxmemory_mb=maxmemory_mb)}
        for _ in range(replicas):
            port = free_port()
            self.nodes[port] = EmbeddedRedis(self.base_dir / f"node-{port}", port=port, password=password,
                                             maxmemory_mb=maxmemory_mb,
                                             extra_args=["--replicaof", HOST, str(master_port)])
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self._sentinels: dict[int, subprocess.Popen[bytes]] = {}
        self.first_master = master_port

    # -- life ---------------------------------------------------------------------

    def start(self, timeout_s: float = 60.0) -> SentinelGroup:
        """Start the nodes, wait until every replica is in sync, start the sentinels and wait
        until each knows every replica and every other sentinel (else it could not vote)."""
        try:
            for node in self.nodes.values():
                node.start()
            replicas = len(self.nodes) - 1
            wait_for(lambda: self.synced_replicas(self.first_master) >= replicas, timeout_s=timeout_s,
                     what="replicas in sync with the master")
            for port in self.sentinel_ports:
                self._start_sentinel(port)
            wait_for(self._sentinels_agree, timeout_s=timeout_s, what="sentinels that know the whole group")
        except BaseException:
            self.stop()
            raise
        return self

    def _start_sentinel(self, port: int) -> None:
        folder = self.base_dir / f"sentinel-{port}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [
            f"port {port}", f"bind {HOST}", f"dir {folder}", f"logfile {folder / 'sentinel.log'}",
            f"sentinel monitor {self.name} {HOST} {self.first_master} 2",
            f"sentinel down-after-milliseconds {self.name} {self.down_after_ms}",
            f"sentinel failover-timeout {self.name} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {self.name} 1",
        ]
        if self.password:
            lines.append(f"sentinel auth-pass {self.name} {self.password}")
        if self.sentinel_password:
            lines.append(f"requirepass {self.sentinel_password}")  # also what it uses with the other sentinels
        conf = folder / "sentinel.conf"
        conf.write_text("\n".join(lines) + "\n")
        self._sentinels[port] = subprocess.Popen([find_redis_server(), str(conf), "--sentinel"],
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            try:
                state = cast(dict[str, Any], _one_try(port, self.sentinel_password).sentinel_master(self.name))
            except redis.RedisError:
                return False
            if (int(state["num-other-sentinels"]) < len(self.sentinel_ports) - 1
                    or int(state["num-slaves"]) < len(self.nodes) - 1):
                return False
        return True

    def stop(self) -> None:
        """Stop every sentinel and node this group started (SIGTERM, then SIGKILL)."""
        for proc in self._sentinels.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        self._sentinels.clear()
        for port, node in self.nodes.items():
            self.resume(port)  # a paused node would not see its SIGTERM
            node.stop()

    def __enter__(self) -> SentinelGroup:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- what the sentinels say ---------------------------------------------------

    @property
    def addresses(self) -> str:
        """``SMSD_REDIS_SENTINELS``: every sentinel as ``host:port``, comma-separated."""
        return ",".join(f"{HOST}:{port}" for port in self.sentinel_ports)

    def env(self) -> dict[str, str]:
        """The ``SMSD_*`` variables that point a process at this group."""
        env = {"SMSD_REDIS_SENTINELS": self.addresses, "SMSD_REDIS_SENTINEL_MASTER": self.name}
        if self.password:
            env["SMSD_REDIS_PASSWORD"] = self.password
        if self.sentinel_password:
            env["SMSD_REDIS_SENTINEL_PASSWORD"] = self.sentinel_password
        return env

    def master_port(self) -> int | None:
        """The master's port as the first answering sentinel names it (None if none answers)."""
        for port in self.sentinel_ports:
            try:
                address = cast(tuple[str, int] | None,
                               _one_try(port, self.sentinel_password).sentinel_get_master_addr_by_name(self.name))
            except redis.RedisError:
                continue
            if address:
                return int(address[1])
        return None

    def node_client(self, port: int) -> redis.Redis:
        """A one-try client of the node on ``port``."""
        return _one_try(port, self.password)

    def synced_replicas(self, port: int) -> int:
        """Replicas the node on ``port`` sees online (0 if it does not answer)."""
        try:
            info = self.node_client(port).info("replication")
        except redis.RedisError:
            return 0
        return sum(1 for key, value in info.items()
                   if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online")

    # -- harm ---------------------------------------------------------------------

    def kill_master(self) -> int:
        """kill -9 the node the sentinels call master; return its port. Raises ``ConfigurationError`` if none."""
        port = self.master_port()
        if port is None or port not in self.nodes:
            raise ConfigurationError(f"no master of ours to kill (sentinels say {port})")
        proc = self.nodes[port].proc
        if proc is None or proc.poll() is not None:
            raise ConfigurationError(f"the master on port {port} is not running")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        self.nodes[port].proc = None
        return port

    def wait_promoted(self, old_port: int, timeout_s: float = 60.0) -> tuple[int, float]:
        """Wait until the sentinels name a master other than ``old_port`` that answers as master.

        Returns its port and the seconds this waited. Raises ``TimeoutError``.
        """
        started = time.monotonic()

        def promoted() -> int | None:
            port = self.master_port()
            if port is None or port == old_port:
                return None
            try:
                role = self.node_client(port).info("replication").get("role")
            except redis.RedisError:
                return None
            return port if role == "master" else None

        port = cast(int, wait_for(promoted, timeout_s=timeout_s, what=f"a master other than port {old_port}"))
        return port, time.monotonic() - started

    def restart_node(self, port: int, *, replica_of: int | None = None) -> None:
        """Start the node on ``port`` again (same data), as a replica of the node on ``replica_of`` if given.

        Started as a master, a failed master holds its stale data until the sentinels
        turn it into a replica (their next INFO, up to 10 s); a second failover in
        that time can promote it and the writes made since the first are lost. So an
        operator starts it as a replica of today's master (docs/operations.md).
        """
        node = self.nodes[port]
        # The only extra arguments a node of ours has are its --replicaof.
        node.extra_args = [] if replica_of is None else ["--replicaof", HOST, str(replica_of)]
        node.start()

    def pause(self, port: int) -> None:
        """SIGSTOP the node on ``port``: it keeps its connections but answers nothing (a hung replica)."""
        proc = self.nodes[port].proc
        if proc is not None:
            proc.send_signal(signal.SIGSTOP)

    def resume(self, port: int) -> None:
        """SIGCONT the node on ``port``."""
        proc = self.nodes[port].proc
        if proc is not None:
            proc.send_signal(signal.SIGCONT)
