"""The webhook under gunicorn: every push variant applied once, forgeries refused, answers timed.

Pushes are built byte for byte by the sandbox's own vendor-side encoders
(``dispatcher.sandbox.push_payloads``) and sent over real HTTP.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from dispatcher.demo import AIOFISH_HOOK_TOKEN, OPASS_HOOK_TOKEN, accounts_doc
from dispatcher.keys import Keys, client_id
from dispatcher.ledger import ChunkData, Ledger
from dispatcher.receipts import read_uplinks
from dispatcher.sandbox import demo as creds
from dispatcher.sandbox import push_payloads
from dispatcher.sandbox.config import initial_config, parse_config
from dispatcher.sandbox.receipts import Receipt
from dispatcher.stack import Stack

pytestmark = pytest.mark.integration
PHONES = ["13900000001", "13900000002", "13900000003"]


@pytest.fixture
def hook(tmp_path: Path, redis_url: str, redis_client: redis.Redis) -> Iterator[tuple[Stack, Ledger]]:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(accounts_doc("http://127.0.0.1:9")))
    with Stack(tmp_path, env={"SMSD_ACCOUNTS_FILE": str(path), "SMSD_DATA_DIR": str(tmp_path)}) as stack:
        stack.start_redis(redis_url)
        stack.start_webhook(workers=2)
        yield stack, Ledger(redis_client)


def _accepted_chunk(ledger: Ledger, job_id: str = "j1") -> str:
    ledger.create_job(job_id, {"provider": "x", "account": "demo"}, [ChunkData(PHONES)], now_ms=1)
    ledger.claim(job_id, 0, provider="x", account="demo", now_ms=2)
    ledger.accept(job_id, 0, attempt=1, message_id="m1", failed_indexes=[], now_ms=3)
    return client_id(job_id, 0, 1)


def _opass_url(stack: Stack, token: str = OPASS_HOOK_TOKEN) -> str:
    return f"{stack.webhook_url}/hooks/opass/demo/{token}"


def _aiofish_url(stack: Stack) -> str:
    return f"{stack.webhook_url}/hooks/aiofish/demo/{AIOFISH_HOOK_TOKEN}"


def _post(job: push_payloads.PushJob, url: str) -> requests.Response:
    return requests.post(url, data=job.body, headers={"Content-Type": job.content_type}, timeout=5)


def test_opass_status_pushes_apply_once_and_late_contradictions_change_nothing(hook) -> None:  # type: ignore[no-untyped-def]
    stack, ledger = hook
    cid = _accepted_chunk(ledger)
    now = time.time()
    good = [Receipt("m1", PHONES[0], "DELIVRD", now, cid), Receipt("m1", PHONES[1], "UNDELIV", now, cid)]
    push = push_payloads.opass_status(creds.OPASS_API_KEY, good, _opass_url(stack))
    for _ in range(2):  # the vendor may push the same batch twice
        answer = _post(push, push.url)
        assert answer.status_code == 200 and answer.json() == {"code": 200, "message": "OK"}
    late = push_payloads.opass_status(creds.OPASS_API_KEY, [Receipt("m1", PHONES[0], "UNDELIV", time.time(), cid)],
                                      _opass_url(stack))
    assert _post(late, late.url).status_code == 200
    counts = ledger.counts("j1")
    assert (counts["delivered"], counts["failed"], counts["accepted"]) == (1, 1, 1)


def test_opass_push_with_a_wrong_api_key_or_token_is_refused(hook) -> None:  # type: ignore[no-untyped-def]
    stack, ledger = hook
    cid = _accepted_chunk(ledger)
    receipts = [Receipt("m1", PHONES[0], "DELIVRD", time.time(), cid)]
    forged = push_payloads.opass_status("someone-elses-key", receipts, _opass_url(stack))
    answer = _post(forged, forged.url)
    assert answer.status_code == 400
    assert "someone-elses-key" not in answer.text
    wrong_token = push_payloads.opass_status(creds.OPASS_API_KEY, receipts, _opass_url(stack, "guess"))
    assert _post(wrong_token, wrong_token.url).status_code == 404
    assert ledger.counts("j1")["delivered"] == 0


def test_opass_uplinks_are_stored_for_the_app(hook, redis_client) -> None:  # type: ignore[no-untyped-def]
    stack, _ = hook
    push = push_payloads.opass_uplink(creds.OPASS_API_KEY, "106900001", PHONES[2], "TD", time.time(),
                                      _opass_url(stack))
    assert _post(push, push.url).status_code == 200
    stored = read_uplinks(redis_client, Keys(), "opass", "demo")
    assert [(u["phone"], u["content"]) for u in stored] == [(PHONES[2], "TD")]


@pytest.mark.parametrize("mode", ["plain", "phone", "full"])
def test_every_aiofish_push_variant_is_applied_and_answered_0(hook, mode: str) -> None:  # type: ignore[no-untyped-def]
    stack, ledger = hook
    cid = _accepted_chunk(ledger)
    account = dataclasses.replace(parse_config(initial_config()).aiofish_accounts[creds.AIOFISH_ACCOUNT],
                                  push_mode=mode)
    report = push_payloads.aiofish_report(Receipt(cid, PHONES[1], "DELIVRD", time.time(), cid))
    push = push_payloads.aiofish_push(account, "report", report, _aiofish_url(stack), int(time.time() * 1000))
    answer = _post(push, push.url)
    assert answer.text == "0"
    assert ledger.counts("j1")["delivered"] == 1


def test_a_forged_aiofish_sign_is_refused(hook) -> None:  # type: ignore[no-untyped-def]
    stack, ledger = hook
    cid = _accepted_chunk(ledger)
    account = dataclasses.replace(parse_config(initial_config()).aiofish_accounts[creds.AIOFISH_ACCOUNT],
                                  push_mode="full", app_secret="not-the-secret")
    report = push_payloads.aiofish_report(Receipt(cid, PHONES[0], "DELIVRD", time.time(), cid))
    push = push_payloads.aiofish_push(account, "report", report, _aiofish_url(stack), int(time.time() * 1000))
    answer = _post(push, push.url)
    assert answer.status_code == 400 and answer.text != "0"
    assert ledger.counts("j1")["delivered"] == 0


def test_a_receipt_for_an_ambiguous_chunk_reconciles_it(hook) -> None:  # type: ignore[no-untyped-def]
    stack, ledger = hook
    ledger.create_job("j2", {}, [ChunkData(PHONES)], now_ms=1)
    ledger.claim("j2", 0, provider="x", account="demo", now_ms=2)
    ledger.mark_ambiguous("j2", 0, attempt=1, deadline_ms=10**13, code="reset", now_ms=3)
    cid = client_id("j2", 0, 1)
    push = push_payloads.opass_status(creds.OPASS_API_KEY, [Receipt("m", PHONES[0], "DELIVRD", time.time(), cid)],
                                      _opass_url(stack))
    assert _post(push, push.url).status_code == 200
    assert ledger.chunk("j2", 0)["state"] == "accepted"
    assert ledger.counts("j2")["delivered"] == 1


def test_malformed_and_oversized_pushes_get_a_clear_4xx_and_the_server_lives(hook) -> None:  # type: ignore[no-untyped-def]
    stack, _ = hook
    assert requests.post(_opass_url(stack), data=b"{not json", timeout=5).status_code == 400
    assert requests.post(_opass_url(stack), data=b"x" * (2 << 20), timeout=10).status_code == 413
    assert requests.post(_aiofish_url(stack), data=b"phoneNumber=1", timeout=5,
                         headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 400
    assert requests.get(f"{stack.webhook_url}/healthz", timeout=5).ok
    assert "answer_ms" in stack.log_text("webhook")
