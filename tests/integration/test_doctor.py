"""`sms-dispatch doctor` names each problem an operator can cause and exits 1; a sound setup exits 0.

The healthy run (every line ok, exit 0) is in test_cli.py, as is a callback
secret published in this repository; here each other failure class, run as the
installed command against the real sandbox and redis-server.
"""

from __future__ import annotations

import email.utils
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from dispatcher.local.sandbox.control import SandboxControl
from dispatcher.redis_server import free_port
from tests.integration.pipeline import build_accounts
from tests.integration.processes import cli


def _env(tmp_path: Path, redis_url: str, sandbox_url: str, *, opass: dict[str, Any] | None = None,
         limits: dict[str, Any] | None = None, **extra: str) -> dict[str, str]:
    """The environment of a doctor run: the demo accounts on the sandbox (opass entry overridden)."""
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(build_accounts(sandbox_url, limits=limits, opass=opass), ensure_ascii=False))
    return {**os.environ, "SMSD_REDIS_URL": redis_url, "SMSD_ACCOUNTS_FILE": str(path),
            "SMSD_DATA_DIR": str(tmp_path), **extra}


def _bad_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("BAD")]


#: One character under the minimum (a name, not a literal: every literal secret in the repository
#: must be on the refused list, see test_accounts_file.py).
SHORT_SECRET = "s" * 31


@pytest.mark.parametrize(("opass", "named"), [
    pytest.param({"callback_secret": SHORT_SECRET},
                 "BAD opass:demo pushes: callback_secret is shorter than 32 characters", id="short-callback-secret"),
    pytest.param({"base_url": f"http://127.0.0.1:{free_port()}"}, "BAD opass:demo reachable: http://127.0.0.1:",
                 id="gateway-unreachable"),
    pytest.param({"access_key": "not-the-access-key"}, "BAD opass:demo credentials: ", id="wrong-access-key"),
])
def test_doctor_names_a_broken_account_and_exits_1(tmp_path: Path, redis_url: str, redis_client: redis.Redis,
                                                    sandbox: SandboxControl, sandbox_url: str,
                                                    opass: dict[str, Any], named: str) -> None:
    """One account configured wrong: doctor prints a BAD line naming that account and check, keeps
    checking the other account (all ok), and exits 1."""
    doctor = cli("doctor", env=_env(tmp_path, redis_url, sandbox_url, opass=opass))
    assert any(line.startswith(named) for line in _bad_lines(doctor.stdout)), doctor.stdout + doctor.stderr
    assert not any(line.startswith("BAD aiofish:demo") for line in doctor.stdout.splitlines()), doctor.stdout
    assert "ok  aiofish:demo credentials: balance" in doctor.stdout
    assert doctor.returncode == 1


@pytest.mark.parametrize(("extra", "named"), [
    pytest.param({"SMSD_ACCOUNTS_FILE": "{tmp}/missing.json"},
                 "BAD configuration: accounts file {tmp}/missing.json does not exist", id="no-accounts-file"),
    pytest.param({"SMSD_ACCOUNTS_FILE": "{tmp}/broken.json"},
                 "BAD configuration: accounts file {tmp}/broken.json is not valid JSON", id="accounts-file-not-json"),
    pytest.param({"SMSD_MAX_ATTEMPTS": "many"}, "BAD configuration: SMSD_MAX_ATTEMPTS='many' is not a valid int",
                 id="bad-setting"),
    pytest.param({"SMSD_REDIS_URL": "redis://127.0.0.1:{closed_port}/0"},
                 "BAD redis: ConnectionError: Error 111 connecting to 127.0.0.1:{closed_port}", id="redis-unreachable"),
])
def test_doctor_names_an_unusable_setup_and_exits_1(tmp_path: Path, redis_url: str, redis_client: redis.Redis,
                                                    sandbox_url: str, extra: dict[str, str], named: str) -> None:
    """No accounts file, one that is not JSON, a setting of the wrong type, or no Redis listening:
    doctor says which, as a finding (no traceback), and exits 1."""
    (tmp_path / "broken.json").write_text('{"opass": [')
    where = {"tmp": str(tmp_path), "closed_port": str(free_port())}
    extra = {k: v.format(**where) for k, v in extra.items()}
    # The redis client retries ~20 s before it gives up on a closed port: a generous bound.
    doctor = cli("doctor", env=_env(tmp_path, redis_url, sandbox_url, **extra), timeout_s=180)
    assert any(line.startswith(named.format(**where)) for line in _bad_lines(doctor.stdout)), \
        doctor.stdout + doctor.stderr
    assert "Traceback" not in doctor.stderr, doctor.stderr
    assert doctor.returncode == 1


def test_doctor_names_a_used_up_balance_budget_and_exits_1(tmp_path: Path, redis_url: str,
                                                            redis_client: redis.Redis, sandbox: SandboxControl,
                                                            sandbox_url: str) -> None:
    """With one balance query an hour, the first doctor run spends it (exit 0) and the second is told
    to retry later (BAD credentials, exit 1) instead of querying past the gateway's limit."""
    limits = {"balance": [{"kind": "balance", "count": 1, "window_s": 3600}]}
    env = _env(tmp_path, redis_url, sandbox_url, limits=limits)
    first = cli("doctor", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    second = cli("doctor", env=env)
    assert "BAD opass:demo credentials: balance query budget used up" in second.stdout, second.stdout
    assert second.returncode == 1


class _SkewedGateway(BaseHTTPRequestHandler):
    """A gateway whose clock is two minutes behind: its HTTP Date header says so."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        return email.utils.formatdate(time.time() - 120, usegmt=True)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads doctor's output, not this server's."""


@pytest.fixture
def skewed_gateway() -> Iterator[str]:
    """URL of a real HTTP server on loopback whose Date header is 120 s behind."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SkewedGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_doctor_names_a_gateway_clock_too_far_off_and_exits_1(tmp_path: Path, redis_url: str,
                                                               redis_client: redis.Redis, sandbox: SandboxControl,
                                                               sandbox_url: str, skewed_gateway: str) -> None:
    """A gateway whose clock is 120 s off (opass allows ±60 s): doctor shows the skew as BAD and exits 1."""
    doctor = cli("doctor", env=_env(tmp_path, redis_url, sandbox_url, opass={"base_url": skewed_gateway}))
    assert "BAD opass:demo clock: skew +12" in doctor.stdout, doctor.stdout
    assert doctor.returncode == 1


def test_doctor_warns_about_a_redis_without_memory_limit_but_exits_0(tmp_path: Path, redis_url: str,
                                                                     redis_client: redis.Redis,
                                                                     sandbox: SandboxControl, sandbox_url: str) -> None:
    """No maxmemory is a WARN (the accounts can still send), not a failure: exit 0."""
    limit = redis_client.config_get("maxmemory")["maxmemory"]
    redis_client.config_set("maxmemory", 0)
    try:
        doctor = cli("doctor", env=_env(tmp_path, redis_url, sandbox_url))
    finally:  # the session's redis-server is shared with the other tests
        redis_client.config_set("maxmemory", limit)
    assert "WARN redis memory: maxmemory is 0 (no limit)" in doctor.stdout, doctor.stdout
    assert _bad_lines(doctor.stdout) == []
    assert doctor.returncode == 0
