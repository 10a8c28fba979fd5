"""A whole pipeline for one test: real Redis, the sandbox, gunicorn webhook, Celery workers, beat."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.local.demo import AIOFISH_HOOK_TOKEN, OPASS_HOOK_TOKEN, accounts_doc
from dispatcher.local.drill import DRILL_ENV, DRILL_LIMITS, DRILL_SANDBOX
from dispatcher.local.sandbox.config import deep_merge
from dispatcher.local.sandbox.control import SandboxControl
from dispatcher.local.stack import Stack, wait_for
from dispatcher.producer import Dispatcher, JobStatus

#: Timings and limits shrunk so sweeps, pulls and reconciliation happen within a
#: test's patience: the drills' (one definition for both).
FAST = DRILL_ENV
#: Pull as fast as the test needs; the limiter test uses the documented limits instead.
FAST_LIMITS = DRILL_LIMITS
#: The drills' sandbox settings without their faster push retries.
SANDBOX_FAST = {k: v for k, v in DRILL_SANDBOX.items() if k != "time_scale"}


class Pipeline:
    """Handles to every part of a running pipeline."""

    def __init__(self, stack: Stack, sandbox: SandboxControl, dispatcher: Dispatcher, client: redis.Redis) -> None:
        self.stack = stack
        self.sandbox = sandbox
        self.dispatcher = dispatcher
        self.redis = client

    def wait(self, job_id: str, *, until: str = "finished", timeout_s: float = 120.0) -> JobStatus:
        """Wait until the job is ``finished`` (all final) or ``submitted``; return its status."""
        status: JobStatus = wait_for(lambda: self.dispatcher.status(job_id), ok=lambda s: getattr(s, until),
                                       timeout_s=timeout_s, what=f"job {job_id} {until}")
        return status

    def accepted_at_ms(self, phone: str) -> list[float]:
        """When the sandbox accepted each message to ``phone`` (its wall clock, this host's), oldest first."""
        return [m["accepted_at"] * 1000.0 for m in self.sandbox.messages(phone)]

    def accepted_counts(self, gateway: str, phones: list[str]) -> dict[int, int]:
        """How many of ``phones`` the sandbox accepted 0, 1, 2… times."""
        seen = self.sandbox.ledger()["accepted"][gateway]
        histogram: dict[int, int] = {}
        for p in phones:
            histogram[seen.get(p, 0)] = histogram.get(seen.get(p, 0), 0) + 1
        return histogram


def build_accounts(sandbox_url: str, *, limits: dict[str, Any] | None,
                   opass: dict[str, Any] | None = None) -> dict[str, Any]:
    """The demo's accounts pointed at the test sandbox, with test limits (and opass overrides)."""
    doc = accounts_doc(sandbox_url)
    for provider in ("opass", "aiofish"):
        doc[provider][0]["limits"] = limits or {}
    doc["opass"][0].update(opass or {})
    return doc


@pytest.fixture
def pipeline_factory(tmp_path: Path, redis_url: str, redis_client: redis.Redis, sandbox: SandboxControl,
                     sandbox_url: str) -> Iterator[Any]:
    """Call with options to get a running :class:`Pipeline`; everything stops after the test.

    ``process_env`` adds variables to one process by name (``webhook``, ``w0``, ``w1``…).
    """
    stacks: list[Stack] = []

    def make(*, workers: int = 1, concurrency: int | None = 2, pool: str | None = None, beat: bool = True,
             webhook: bool = True,
             limits: dict[str, Any] | None = FAST_LIMITS, env: dict[str, str] | None = None,
             sandbox_settings: dict[str, Any] | None = None, opass: dict[str, Any] | None = None,
             process_env: dict[str, dict[str, str]] | None = None,
             edit: Callable[[dict[str, Any]], Any] | None = None) -> Pipeline:
        accounts = build_accounts(sandbox_url, limits=limits, opass=opass)
        if edit is not None:  # top-level sections (routes, templates) a test adds
            edit(accounts)
        path = tmp_path / "accounts.json"
        path.write_text(json.dumps(accounts, ensure_ascii=False))
        stack = Stack(tmp_path / "stack", env={"SMSD_ACCOUNTS_FILE": str(path), "SMSD_DATA_DIR": str(tmp_path),
                                               **FAST, **(env or {})})
        stacks.append(stack)
        stack.start_redis(redis_url)
        settings = SANDBOX_FAST | (sandbox_settings or {})
        if webhook:
            hook = stack.start_webhook(env=(process_env or {}).get("webhook"))
            settings = deep_merge(settings, _push_to(hook))  # keeps a test's own opass/aiofish settings
        sandbox.configure(**settings)
        for i in range(workers):
            stack.start_worker(f"w{i}", concurrency=concurrency, pool=pool, env=(process_env or {}).get(f"w{i}"))
        if beat:
            stack.start_beat()
        d = Dispatcher(Settings.from_env(stack.env), accounts=parse_accounts(accounts), client=redis_client)
        return Pipeline(stack, sandbox, d, redis_client)

    yield make
    for stack in stacks:
        stack.stop_all()


def _push_to(hook: str) -> dict[str, Any]:
    from dispatcher.local.sandbox import demo as creds

    return {
        "opass": {"accounts": {creds.OPASS_API_KEY: {"status_url": f"{hook}/hooks/opass/demo/{OPASS_HOOK_TOKEN}"}}},
        "aiofish": {"accounts": {creds.AIOFISH_ACCOUNT: {
            "report_url": f"{hook}/hooks/aiofish/demo/{AIOFISH_HOOK_TOKEN}", "push_mode": "full",
            "isms_status_url": f"{hook}/hooks/aiofish-isms/demo/{AIOFISH_HOOK_TOKEN}",
            "vsms_status_url": f"{hook}/hooks/aiofish-vsms/demo/{AIOFISH_HOOK_TOKEN}",
            "vsms_audit_url": f"{hook}/hooks/aiofish-vsms/demo/{AIOFISH_HOOK_TOKEN}"}}},
    }
