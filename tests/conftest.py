"""Shared fixtures: a real sandbox process on loopback, reset before each test that uses it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatcher.providers.accounts import AiofishAccount, OpassAccount
from dispatcher.sandbox import demo

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


def start_sandbox(log_path: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``python -m dispatcher.sandbox`` on a free port; return it and its URL.

    The sandbox prints one ``listening on URL`` line on stdout and logs to stderr.
    """
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatcher.sandbox", "--host", "127.0.0.1", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        match = _LISTENING.search(line)
        if match:
            return proc, match.group(1)
    proc.kill()
    raise RuntimeError(f"sandbox did not start: {line!r}; see {log_path}")


def stop(proc: subprocess.Popen[str]) -> None:
    """Terminate a child process, killing it if it does not exit within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def sandbox_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of one sandbox process shared by the whole test session."""
    log_path = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    proc, url = start_sandbox(log_path)
    yield url
    stop(proc)


@pytest.fixture
def sandbox(sandbox_url: str):  # type: ignore[no-untyped-def]
    """A SandboxControl for the shared sandbox, reset to its defaults for this test."""
    from dispatcher.sandbox.control import SandboxControl

    control = SandboxControl(sandbox_url)
    control.reset()
    yield control
    control.reset()


@pytest.fixture
def opass_account(sandbox_url: str) -> OpassAccount:
    """The demo opass account, pointed at the shared sandbox."""
    return OpassAccount(
        name="demo-opass",
        api_key=demo.OPASS_API_KEY,
        access_key=demo.OPASS_ACCESS_KEY,
        base_url=sandbox_url,
        read_timeout_s=5.0,
    )


@pytest.fixture(params=["plain", "phone", "full"])
def aiofish_account(request: pytest.FixtureRequest, sandbox_url: str) -> AiofishAccount:
    """The demo aiofish account pointed at the sandbox, once per encryption variant."""
    return AiofishAccount(
        name="demo-aiofish",
        account=demo.AIOFISH_ACCOUNT,
        password=demo.AIOFISH_PASSWORD,
        app_key=demo.AIOFISH_APP_KEY,
        app_secret=demo.AIOFISH_APP_SECRET,
        aes_key=demo.AIOFISH_AES_KEY,
        base_url=sandbox_url,
        encryption=request.param,
        read_timeout_s=5.0,
    )


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (the embedded one) for the whole session, AOF on."""
    from dispatcher.redis_server import EmbeddedRedis

    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def redis_client(redis_url: str):  # type: ignore[no-untyped-def]
    """A client on an emptied database of the session's redis-server."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()
