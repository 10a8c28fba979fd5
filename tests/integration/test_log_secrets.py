"""At DEBUG, what the HTTP libraries log about our gateway calls carries no secret."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import structlog

from dispatcher.logs import configure
from dispatcher.providers.aiofish.account import AiofishAccount
from dispatcher.providers.aiofish.client import AiofishClient
from dispatcher.providers.aiofish.crypto import password_md5


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """What the stdlib log handler that ``configure("DEBUG")`` installs writes."""
    configure("DEBUG")
    written = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(written)
    yield written
    configure("INFO")
    structlog.reset_defaults()  # later tests' loggers must not be cached under this configuration


@pytest.mark.parametrize("aiofish_account", ["plain"], indirect=True)
def test_aiofish_pulls_at_debug_log_the_request_line_but_not_the_password_hash(
        aiofish_account: AiofishAccount, sandbox, debug_log: io.StringIO) -> None:  # type: ignore[no-untyped-def]
    client = AiofishClient(aiofish_account)
    client.balance()
    client.pull_receipts()
    written = debug_log.getvalue()
    assert '"GET /rest/sms/' in written  # urllib3 did log each request line at DEBUG
    assert password_md5(aiofish_account.password) not in written
    assert "password=" not in written and "account=" not in written
