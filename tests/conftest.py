"""Shared fixtures: a real sandbox process on loopback, reset before each test that uses it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

import dispatcher.logs
from dispatcher.local.sandbox import demo
from dispatcher.local.stack import Stack
from dispatcher.providers.aiofish.account import AiofishAccount
from dispatcher.providers.opass.account import OpassAccount

# Code run in process (the CLI under CliRunner, the log tests) calls dispatcher.logs.configure. With
# structlog's cache on, a module logger first used after that would keep that configuration (say, a
# WARNING filter) for the rest of the session, and a later test's capture_logs would miss its info
# events; which logger was first used where depends on the Hypothesis examples drawn.
dispatcher.logs.CACHE_LOGGERS = False

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

#: Session fixtures that start a process; a test using any of them (even through another fixture) must be
#: an integration test, so that ``pytest -m "not integration"`` starts none.
PROCESS_FIXTURES = frozenset({"sandbox_url", "redis_url"})


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Refuse to start a process for a test that is not marked ``integration``."""
    used = PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if used and item.get_closest_marker("integration") is None:
        pytest.fail(f"{item.nodeid} uses {sorted(used)} (starts a process) but is not marked integration: "
                    "move it to tests/integration", pytrace=False)


@pytest.fixture(scope="session")
def sandbox_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of one sandbox process shared by the whole test session (logs in its stack dir)."""
    with Stack(tmp_path_factory.mktemp("sandbox")) as stack:
        yield stack.start_sandbox()


@pytest.fixture
def sandbox(sandbox_url: str):  # type: ignore[no-untyped-def]
    """A SandboxControl for the shared sandbox, reset to its defaults for this test."""
    from dispatcher.local.sandbox.control import SandboxControl

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


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """No test leaves its logging configuration to the next one."""
    yield
    structlog.reset_defaults()
