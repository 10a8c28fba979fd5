"""The webhook under gunicorn: real pushes land once; forged, misplaced or malformed ones change nothing.

Pushes are built byte for byte by the sandbox's own vendor-side encoders
(``dispatcher.local.sandbox.push_payloads``) and sent over real HTTP. The webhook
only records them on the receipt stream; each test then applies the stream with
a real :class:`~dispatcher.receipt_stream.StreamApplier` (what every Celery
worker runs) and looks at the ledger.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import structlog

from dispatcher.keys import Keys, client_id
from dispatcher.ledger import ChunkData, Ledger
from dispatcher.local.demo import accounts_doc
from dispatcher.local.sandbox import demo as creds
from dispatcher.local.sandbox import push_payloads
from dispatcher.local.sandbox.config import initial_config, parse_config
from dispatcher.local.sandbox.receipts import Receipt
from dispatcher.local.stack import Stack
from dispatcher.receipt_stream import StreamApplier
from dispatcher.receipts import MAX_UPLINK_CHARS, read_uplinks

PHONES = ["13900000001", "13900000002", "13900000003"]
VARIANTS = ("plain", "phone", "full")
#: A fresh random path token per account, as every deployment must have.
TOKENS = {name: secrets.token_urlsafe(32)
          for name in ("opass:demo", "opass:other", *(f"aiofish:{v}" for v in VARIANTS))}


def _accounts() -> dict[str, Any]:
    doc = accounts_doc("http://127.0.0.1:9")
    demo = doc["opass"][0]
    doc["opass"] = [{**demo, "callback_secret": TOKENS["opass:demo"]},
                    {**demo, "name": "other", "api_key": "other-api-key", "callback_secret": TOKENS["opass:other"]}]
    fish = doc["aiofish"][0]
    # One vendor login per entry; only the full form names it (and it must be the sandbox's).
    doc["aiofish"] = [{**fish, "name": v, "push_variant": v, "callback_secret": TOKENS[f"aiofish:{v}"],
                       "account": fish["account"] if v == "full" else f"{fish['account']}-{v}"} for v in VARIANTS]
    return doc


#: This module's key prefix (see the ``hook`` fixture).
KEYS = Keys(prefix="webhook-test")


@pytest.fixture
def hook(tmp_path: Path, redis_url: str, redis_client: redis.Redis) -> Iterator[tuple[Stack, Ledger]]:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(_accounts()))
    # Keys of this test's own: a Celery worker another test left stopping on the shared Redis must
    # not apply (and log) this test's receipts before the test's own applier reads them.
    with Stack(tmp_path, env={"SMSD_ACCOUNTS_FILE": str(path), "SMSD_DATA_DIR": str(tmp_path),
                              "SMSD_KEY_PREFIX": KEYS.prefix}) as stack:
        stack.start_redis(redis_url)
        stack.start_webhook(workers=2)
        yield stack, Ledger(redis_client, KEYS)


@contextlib.contextmanager
def _unready_webhook(tmp_path: Path, redis_url: str, accounts: dict[str, Any] | None) -> Iterator[Stack]:
    """A real gunicorn webhook over ``accounts`` (``None``: an accounts file that is not there), not
    expected to be ready."""
    path = tmp_path / ("accounts.json" if accounts is not None else "no-such-accounts.json")
    if accounts is not None:
        path.write_text(json.dumps(accounts))
    with Stack(tmp_path, env={"SMSD_ACCOUNTS_FILE": str(path), "SMSD_DATA_DIR": str(tmp_path)}) as stack:
        stack.start_redis(redis_url)
        stack.start_webhook(workers=1, expect_ready=False)
        yield stack


def _apply(ledger: Ledger) -> None:
    """Apply everything the webhook recorded, as a worker's applier would."""
    StreamApplier(ledger, "test").drain()


def _job(ledger: Ledger, job_id: str, provider: str, account: str, *, state: str = "accepted") -> str:
    """A one-chunk job of ``provider:account`` left in ``state``; return the bid of its attempt 1."""
    ledger.create_job(job_id, {"provider": provider, "account": account}, [ChunkData(PHONES)], now_ms=1)
    if state != "pending":
        ledger.claim(job_id, 0, provider=provider, account=account, now_ms=2)
    if state == "accepted":
        ledger.accept(job_id, 0, attempt=1, message_id="m1", failed_indexes=[], now_ms=3)
    elif state == "ambiguous":
        ledger.mark_ambiguous(job_id, 0, attempt=1, deadline_ms=10**13, code="reset", now_ms=3)
    elif state == "released":  # provably never left: refused connection, -1
        ledger.release(job_id, 0, attempt=1, expected="sending", code="-1", now_ms=3)
    return client_id(job_id, 0, 1)


def _opass_url(stack: Stack, account: str = "demo", token: str | None = None) -> str:
    return f"{stack.webhook_url}/hooks/opass/{account}/{token or TOKENS[f'opass:{account}']}"


def _aiofish_url(stack: Stack, variant: str) -> str:
    return f"{stack.webhook_url}/hooks/aiofish/{variant}/{TOKENS[f'aiofish:{variant}']}"


def _post(job: push_payloads.PushJob, url: str | None = None) -> requests.Response:
    return requests.post(url or job.url, data=job.body, headers={"Content-Type": job.content_type}, timeout=5)


def _opass_push(stack: Stack, cid: str, phone: str = PHONES[0], state: str = "DELIVRD",
                **url: Any) -> requests.Response:
    push = push_payloads.opass_status(creds.OPASS_API_KEY, [Receipt("m1", phone, state, time.time(), cid)],
                                      _opass_url(stack, **url))
    return _post(push)


def _aiofish_push(stack: Stack, cid: str, *, form: str, to: str, phone: str = PHONES[1]) -> requests.Response:
    account = dataclasses.replace(parse_config(initial_config()).aiofish_accounts[creds.AIOFISH_ACCOUNT],
                                  push_mode=form)
    report = push_payloads.aiofish_report(Receipt(cid, phone, "DELIVRD", time.time(), cid))
    return _post(push_payloads.aiofish_push(account, "report", report, _aiofish_url(stack, to),
                                            int(time.time() * 1000)))


def _stats(client: redis.Redis) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in client.hgetall(KEYS.stats()).items()}


def test_opass_status_pushes_apply_once_and_late_contradictions_change_nothing(hook) -> None:  # type: ignore[no-untyped-def]
    stack, ledger = hook
    cid = _job(ledger, "j1", "opass", "demo")
    now = time.time()
    good = [Receipt("m1", PHONES[0], "DELIVRD", now, cid), Receipt("m1", PHONES[1], "UNDELIV", now, cid)]
    push = push_payloads.opass_status(creds.OPASS_API_KEY, good, _opass_url(stack))
    for _ in range(2):  # the vendor may push the same batch twice
        answer = _post(push)
        assert answer.status_code == 200 and answer.json() == {"code": 200, "message": "OK"}
    assert _opass_push(stack, cid, PHONES[0], "UNDELIV").status_code == 200  # late and contradicting
    _apply(ledger)
    counts = ledger.counts("j1")
    assert (counts["delivered"], counts["failed"], counts["accepted"]) == (1, 1, 1)


def test_a_push_is_answered_before_it_is_applied(hook) -> None:  # type: ignore[no-untyped-def]
    stack, ledger = hook
    cid = _job(ledger, "j1", "opass", "demo")
    assert _opass_push(stack, cid).status_code == 200
    assert ledger.counts("j1")["delivered"] == 0  # recorded on the stream, not yet applied
    assert ledger.r.xlen(KEYS.receipt_stream()) == 1
    _apply(ledger)
    assert ledger.counts("j1")["delivered"] == 1
    assert ledger.r.xlen(KEYS.receipt_stream()) == 0  # applied entries are deleted with their ack


def test_a_receipt_with_a_hostile_phone_does_not_sink_the_good_ones_in_its_push(hook) -> None:  # type: ignore[no-untyped-def]
    stack, ledger = hook
    cid = _job(ledger, "j1", "opass", "demo")
    receipts = [Receipt("m1", PHONES[0], "DELIVRD", time.time(), cid),
                Receipt("m1", "139,00000002", "DELIVRD", time.time(), cid),  # a comma inside tel
                Receipt("m1", PHONES[1], "UNDELIV", time.time(), cid)]
    assert _post(push_payloads.opass_status(creds.OPASS_API_KEY, receipts, _opass_url(stack))).status_code == 200
    _apply(ledger)
    counts = ledger.counts("j1")
    assert (counts["delivered"], counts["failed"], counts["accepted"]) == (1, 1, 1)


def test_a_stream_entry_not_written_by_the_webhook_is_dropped_and_the_next_push_still_applies(hook) -> None:  # type: ignore[no-untyped-def]
    """Whatever else lands on the receipt stream (another writer's fields, a truncated entry) is
    logged, acknowledged and deleted: it can neither move a phone nor block the entries behind it."""
    stack, ledger = hook
    cid = _job(ledger, "j1", "opass", "demo")
    stream = KEYS.receipt_stream()
    ledger.r.xadd(stream, {"owner": "opass:demo", "groups": "not packed receipts"})
    ledger.r.xadd(stream, {"something": "else"})
    assert _opass_push(stack, cid).status_code == 200
    with structlog.testing.capture_logs() as logs:
        _apply(ledger)
    assert ledger.counts("j1")["delivered"] == 1
    assert ledger.r.xlen(stream) == 0
    assert [e["entries"] for e in logs if e["event"] == "receipts.corrupt_entry"] == [2]


def test_opass_push_with_a_wrong_api_key_or_token_is_refused(hook) -> None:  # type: ignore[no-untyped-def]
    stack, ledger = hook
    cid = _job(ledger, "j1", "opass", "demo")
    receipts = [Receipt("m1", PHONES[0], "DELIVRD", time.time(), cid)]
    forged = push_payloads.opass_status("someone-elses-key", receipts, _opass_url(stack))
    answer = _post(forged)
    assert answer.status_code == 400
    assert "someone-elses-key" not in answer.text
    assert _opass_push(stack, cid, token="guess").status_code == 404
    _apply(ledger)
    assert ledger.counts("j1")["delivered"] == 0


def test_opass_uplinks_are_stored_for_the_app(hook, redis_client) -> None:  # type: ignore[no-untyped-def]
    stack, _ = hook
    push = push_payloads.opass_uplink(creds.OPASS_API_KEY, "106900001", PHONES[2], "TD", time.time(),
                                      _opass_url(stack))
    assert _post(push).status_code == 200
    stored = read_uplinks(redis_client, KEYS, "opass", "demo")
    assert [(u["phone"], u["content"]) for u in stored] == [(PHONES[2], "TD")]


def test_a_huge_reply_is_kept_cut_to_a_bounded_size(hook, redis_client) -> None:  # type: ignore[no-untyped-def]
    stack, _ = hook
    push = push_payloads.opass_uplink(creds.OPASS_API_KEY, "1" * 500, PHONES[2], "回" * 200_000, time.time(),
                                      _opass_url(stack))
    assert _post(push).status_code == 200
    [stored] = read_uplinks(redis_client, KEYS, "opass", "demo")
    assert stored["truncated"] and len(stored["content"]) == MAX_UPLINK_CHARS and len(stored["ext"]) == 64


@pytest.mark.parametrize("variant", VARIANTS)
def test_an_aiofish_hook_takes_only_the_push_form_its_console_is_set_to(hook, variant: str) -> None:  # type: ignore[no-untyped-def]
    stack, ledger = hook
    cid = _job(ledger, "j1", "aiofish", variant)
    for other in VARIANTS:
        if other != variant:
            refused = _aiofish_push(stack, cid, form=other, to=variant)
            assert refused.status_code == 400 and refused.text != "0"
    _apply(ledger)
    assert ledger.counts("j1")["delivered"] == 0
    assert _aiofish_push(stack, cid, form=variant, to=variant).text == "0"
    _apply(ledger)
    assert ledger.counts("j1")["delivered"] == 1


def test_a_forged_aiofish_sign_is_refused(hook) -> None:  # type: ignore[no-untyped-def]
    stack, ledger = hook
    cid = _job(ledger, "j1", "aiofish", "full")
    account = dataclasses.replace(parse_config(initial_config()).aiofish_accounts[creds.AIOFISH_ACCOUNT],
                                  push_mode="full", app_secret="not-the-secret")
    report = push_payloads.aiofish_report(Receipt(cid, PHONES[0], "DELIVRD", time.time(), cid))
    push = push_payloads.aiofish_push(account, "report", report, _aiofish_url(stack, "full"), int(time.time() * 1000))
    answer = _post(push)
    assert answer.status_code == 400 and answer.text != "0"
    _apply(ledger)
    assert ledger.counts("j1")["delivered"] == 0


def test_a_receipt_for_an_ambiguous_chunk_reconciles_it(hook) -> None:  # type: ignore[no-untyped-def]
    stack, ledger = hook
    cid = _job(ledger, "j2", "opass", "demo", state="ambiguous")
    assert _opass_push(stack, cid).status_code == 200
    _apply(ledger)
    assert ledger.chunk("j2", 0)["state"] == "accepted"
    assert ledger.counts("j2")["delivered"] == 1


def test_a_receipt_arriving_while_its_chunk_is_still_sending_lands(hook) -> None:  # type: ignore[no-untyped-def]
    stack, ledger = hook
    cid = _job(ledger, "j3", "opass", "demo", state="sending")  # a fast gateway, a slow worker
    assert _opass_push(stack, cid).status_code == 200
    _apply(ledger)
    assert ledger.counts("j3")["delivered"] == 1
    assert ledger.accept("j3", 0, attempt=1, message_id="m", failed_indexes=[], now_ms=5) == "late"
    assert ledger.counts("j3")["delivered"] == 1


FORGERIES = {
    # (job's provider, job's account, chunk state, hook the receipt is pushed through)
    "never-claimed chunk": ("opass", "demo", "pending", "opass:demo"),
    "attempt that provably never left": ("opass", "demo", "released", "opass:demo"),
    "another account's job": ("opass", "other", "accepted", "opass:demo"),
    "another provider's job": ("opass", "demo", "accepted", "aiofish:full"),
}


@pytest.mark.parametrize("case", list(FORGERIES))
def test_a_receipt_that_is_not_evidence_changes_nothing_and_is_answered_like_a_real_one(hook, case: str) -> None:  # type: ignore[no-untyped-def]
    stack, ledger = hook
    provider, account, state, via = FORGERIES[case]
    cid = _job(ledger, "j1", provider, account, state=state)
    before = ledger.chunk("j1", 0)
    if via.startswith("opass"):
        answer = _opass_push(stack, cid, account=via.split(":")[1])
        assert answer.status_code == 200 and answer.json() == {"code": 200, "message": "OK"}
    else:
        answer = _aiofish_push(stack, cid, form="full", to="full", phone=PHONES[0])
        assert answer.status_code == 200 and answer.text == "0"
    with structlog.testing.capture_logs() as logs:
        _apply(ledger)
    [line] = [e for e in logs if e["event"] == "receipts.refused"]  # one log line, ids but no phone
    assert line["job_id"] == "j1" and PHONES[0] not in str(line)
    after = ledger.chunk("j1", 0)
    assert after["state"] == before["state"] == {"released": "pending"}.get(state, state)
    assert ledger.counts("j1")["delivered"] == 0
    stats = _stats(ledger.r)
    assert stats.get("receipts_foreign", 0) + stats.get("receipts_unclaimed", 0) == 1


def test_replayed_and_reordered_receipts_change_nothing(hook) -> None:  # type: ignore[no-untyped-def]
    stack, ledger = hook
    first = _job(ledger, "j1", "opass", "demo", state="ambiguous")
    ledger.release("j1", 0, attempt=1, expected="ambiguous", code="reconciled-unsent", now_ms=4)
    ledger.claim("j1", 0, provider="opass", account="demo", now_ms=5)
    ledger.accept("j1", 0, attempt=2, message_id="m2", failed_indexes=[], now_ms=6)
    second = client_id("j1", 0, 2)
    for cid, phone, state in [(second, PHONES[0], "DELIVRD"), (first, PHONES[0], "UNDELIV"),  # late, older attempt
                              (second, PHONES[0], "UNDELIV"), (second, PHONES[1], "UNDELIV"),
                              (second, PHONES[1], "DELIVRD")]:
        assert _opass_push(stack, cid, phone, state).status_code == 200
        _apply(ledger)
    counts = ledger.counts("j1")
    assert (counts["delivered"], counts["failed"], counts["accepted"]) == (1, 1, 1)
    assert _stats(ledger.r)["receipts_older_attempt"] == 1  # the duplicate submission is on record


def test_malformed_and_oversized_pushes_get_a_clear_4xx_and_the_server_lives(hook) -> None:  # type: ignore[no-untyped-def]
    stack, _ = hook
    assert requests.post(_opass_url(stack), data=b"{not json", timeout=5).status_code == 400
    assert requests.post(_opass_url(stack), data=b"x" * (2 << 20), timeout=10).status_code == 413
    assert requests.post(_aiofish_url(stack, "plain"), data=b"phoneNumber=1", timeout=5,
                         headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 400
    assert requests.get(f"{stack.webhook_url}/healthz", timeout=5).ok
    assert "answer_ms" in stack.log_text("webhook")


@pytest.mark.parametrize("secret", ["demo-opass-hook-token", "short-but-random-Zq81"])
def test_a_published_or_short_callback_secret_is_never_served(tmp_path: Path, redis_url: str, secret: str) -> None:
    doc = accounts_doc("http://127.0.0.1:9")
    doc["opass"][0]["callback_secret"] = secret
    with _unready_webhook(tmp_path, redis_url, doc) as stack:
        health = requests.get(f"{stack.webhook_url}/healthz", timeout=5)
        assert health.status_code == 503 and "opass:demo" in health.text and secret not in health.text
        push = push_payloads.opass_status(creds.OPASS_API_KEY, [], f"{stack.webhook_url}/hooks/opass/demo/{secret}")
        assert _post(push).status_code == 404
        assert "webhook.account_refused" in stack.log_text("webhook")
        assert secret not in stack.log_text("webhook")


def test_a_refused_aiofish_secret_is_reported_once_not_once_per_channel(tmp_path: Path, redis_url: str) -> None:
    """The video and international SMS channels share the aiofish entry's callback secret: /healthz names
    the entry's problem once (it named it three times, as aiofish, aiofish-vsms and aiofish-isms)."""
    doc = accounts_doc("http://127.0.0.1:9")
    doc["aiofish"][0]["callback_secret"] = "short-but-random-Zq81"
    with _unready_webhook(tmp_path, redis_url, doc) as stack:
        health = requests.get(f"{stack.webhook_url}/healthz", timeout=5)
        assert health.status_code == 503
        assert health.text.startswith("not ready: ")
        named = [problem.split(": ")[0] for problem in health.text.removeprefix("not ready: ").split("; ")]
        assert named == ["aiofish:demo"]


def test_a_webhook_whose_accounts_cannot_be_loaded_answers_503_so_the_vendor_retries(tmp_path: Path,
                                                                                     redis_url: str) -> None:
    """A real gunicorn webhook started with an accounts file that is not there: not ready on /healthz,
    and every push gets a 503 (the vendors retry a 5xx) logged as misconfigured, not a 4xx or a 500."""
    with _unready_webhook(tmp_path, redis_url, None) as stack:
        health = requests.get(f"{stack.webhook_url}/healthz", timeout=5)
        assert (health.status_code, health.text) == (503, "not ready")
        push = push_payloads.opass_status(creds.OPASS_API_KEY, [], f"{stack.webhook_url}/hooks/opass/demo/token")
        answer = _post(push)
        assert (answer.status_code, answer.text) == (503, "not ready")
        assert "webhook.misconfigured" in stack.log_text("webhook")


def _vsms_push(stack: Stack, msg_id: str, phone: str = PHONES[2], account: str = "full") -> requests.Response:
    """A vsms status push as the vendor sends it: the msgId its answer gave, no uuid."""
    push = push_payloads.vsms_status(creds.AIOFISH_APP_KEY, Receipt(msg_id, phone, "DELIVRD", time.time(), None),
                                     f"{stack.webhook_url}/hooks/aiofish-vsms/{account}/{TOKENS[f'aiofish:{account}']}")
    return _post(push)


def test_a_vsms_status_push_is_matched_by_its_msgid_and_one_that_overtook_the_answer_is_pushed_again(
    hook,  # type: ignore[no-untyped-def]
) -> None:
    """vsms pushes echo no uuid: the msgId names the chunk. Before the send's answer (and its msgId)
    is recorded the push is answered 503, so the vendor pushes again; after, it is applied once."""
    stack, ledger = hook
    ledger.create_job("v1", {"provider": "aiofish-vsms", "account": "full"}, [ChunkData(PHONES)], now_ms=1)
    ledger.claim("v1", 0, provider="aiofish-vsms", account="full", now_ms=2)
    early = _vsms_push(stack, "vsms-msg-1")
    assert (early.status_code, early.text) == (503, "message id not known yet")
    ledger.accept("v1", 0, attempt=1, message_id="vsms-msg-1", failed_indexes=[], now_ms=3)
    again = _vsms_push(stack, "vsms-msg-1")
    assert (again.status_code, again.text) == (200, "0")
    _apply(ledger)
    counts = ledger.counts("v1")
    assert (counts["delivered"], counts["accepted"]) == (1, 2)


def test_a_vsms_status_push_through_another_accounts_hook_is_not_evidence(hook) -> None:  # type: ignore[no-untyped-def]
    """The msgId resolves to a chunk of aiofish-vsms:full; pushed through the hook of account plain
    it is kept out of the job (the owner check), as for SMS receipts."""
    stack, ledger = hook
    ledger.create_job("v2", {"provider": "aiofish-vsms", "account": "full"}, [ChunkData(PHONES)], now_ms=1)
    ledger.claim("v2", 0, provider="aiofish-vsms", account="full", now_ms=2)
    ledger.accept("v2", 0, attempt=1, message_id="vsms-msg-2", failed_indexes=[], now_ms=3)
    assert _vsms_push(stack, "vsms-msg-2", account="plain").status_code == 200
    _apply(ledger)
    assert ledger.counts("v2")["delivered"] == 0
    assert _stats(ledger.r)["receipts_foreign"] == 1
