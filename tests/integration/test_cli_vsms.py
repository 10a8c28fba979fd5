"""`sms-dispatch vsms submit` and `vsms status` as an operator runs them, against the sandbox and a real Redis:
what they print, and the audit state they keep, which `send_video` then obeys."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import redis

from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.errors import ValidationError
from dispatcher.local.demo import accounts_doc
from dispatcher.local.sandbox.control import SandboxControl
from dispatcher.producer import Dispatcher
from tests.integration.processes import cli

PHONES = ["13800000001", "13800000002"]


@pytest.fixture
def env(tmp_path: Path, redis_url: str, sandbox_url: str) -> dict[str, str]:
    """What `sms-dispatch` needs to reach the test's Redis and the sandbox with the demo accounts."""
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps(accounts_doc(sandbox_url), ensure_ascii=False))
    return {**os.environ, "SMSD_REDIS_URL": redis_url, "SMSD_ACCOUNTS_FILE": str(accounts),
            "SMSD_DATA_DIR": str(tmp_path)}


@pytest.fixture
def stored(redis_url: str, redis_client: redis.Redis, sandbox_url: str) -> Dispatcher:
    """A Dispatcher on the test's Redis whose jobs are stored and never sent (no broker, no worker)."""
    return Dispatcher(Settings(redis_url=redis_url), accounts=parse_accounts(accounts_doc(sandbox_url)),
                      client=redis_client, enqueue=lambda job_id, queue, countdown: None)


def _submit(env: dict[str, str], tmp_path: Path, title: str) -> str:
    picture = tmp_path / "gift.png"
    picture.write_bytes(b"\x89PNG a picture")
    done = cli("vsms", "submit", "demo", "--title", title, "--frame", "text:#p_1#，礼包已到账。",
               "--frame", f"file:{picture}", env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_submit_prints_the_template_id_and_sends_wait_until_status_reads_it_approved(
    env: dict[str, str], tmp_path: Path, sandbox: SandboxControl, stored: Dispatcher,
) -> None:
    """Submit (multipart, text and file frames) prints the tplId and keeps it pending, so a send is
    refused; `vsms status` reads the audit (approved), prints it and keeps it, and the send goes."""
    sandbox.configure(vsms_audit_delay_s=0.0)
    tpl_id = _submit(env, tmp_path, "会员礼包")
    assert tpl_id and " " not in tpl_id
    with pytest.raises(ValidationError, match="template_id"):
        stored.send_video("demo", template_id=tpl_id, recipients=[(p, ["会员"]) for p in PHONES])
    shown = cli("vsms", "status", "demo", tpl_id, env=env)
    assert (shown.returncode, shown.stdout.strip()) == (0, f"{tpl_id} 200 approved: ok"), shown.stderr
    job = stored.send_video("demo", template_id=tpl_id, recipients=[(p, ["会员"]) for p in PHONES])
    assert (job.provider, job.total) == ("aiofish-vsms", 2)


def test_status_of_a_rejected_template_prints_the_reason_and_sends_are_refused(
    env: dict[str, str], tmp_path: Path, sandbox: SandboxControl, stored: Dispatcher,
) -> None:
    sandbox.configure(vsms_audit_delay_s=0.0)
    tpl_id = _submit(env, tmp_path, "REJECT this one")
    shown = cli("vsms", "status", "demo", tpl_id, env=env)
    assert shown.returncode == 0 and shown.stdout.startswith(f"{tpl_id} 400 rejected"), shown
    with pytest.raises(ValidationError, match="rejected in audit"):
        stored.send_video("demo", template_id=tpl_id, phones=PHONES)


def test_a_frame_that_is_neither_text_nor_a_readable_file_exits_1_naming_it(env: dict[str, str]) -> None:
    done = cli("vsms", "submit", "demo", "--title", "t", "--frame", "text:ok", "--frame", "file:/no/such.mp4",
               env=env)
    assert done.returncode == 1 and "frames[1]" in done.stderr, done
