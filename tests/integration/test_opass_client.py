"""OpassClient against the real sandbox over real HTTP: every method, every error family.

The sandbox checks signatures, timestamps and nonces as the manual says, renders
templates, keeps a ledger of what it accepted and injects faults on request.
"""

from __future__ import annotations

import dataclasses
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dispatcher.errors import (
    AccountFatalError,
    AmbiguousError,
    RequestRejectedError,
    ThrottledError,
    TransientError,
)
from dispatcher.local.sandbox import demo
from dispatcher.providers.opass.account import OPASS_RECEIPT_PATH_JAVA, OpassAccount
from dispatcher.providers.opass.client import OpassClient
from dispatcher.providers.opass.push import PUSH_ANSWER_BODY, PUSH_ANSWER_CONTENT_TYPE, parse_push
from dispatcher.providers.opass.sign import new_nonce
from dispatcher.providers.results import Receipt, Uplink

FIXED = "1000000000000000001"  # 您有一个事务需要处理。
CODE = "1000000000000000002"  # 您的验证码是{验证码,6}，5分钟内有效。
INCOME = "1000000000000000003"  # {姓名,10}您好，您本次收入{金额,10}元。


def _phones(n: int, start: int = 1) -> list[str]:
    return [f"139{i:08d}" for i in range(start, start + n)]


def _accepted_times(sandbox: Any, phone: str) -> int:
    """How many times the sandbox accepted an SMS for ``phone`` on opass."""
    accepted = sandbox.ledger()["accepted"]["opass"]
    if isinstance(accepted, dict):
        return int(accepted.get(phone, 0))
    return list(accepted).count(phone)


def _texts(sandbox: Any, phone: str) -> list[str]:
    """The rendered texts the sandbox holds for ``phone``."""
    out = []
    for message in sandbox.messages(phone):
        out.append(message if isinstance(message, str) else (message.get("text") or message.get("content")))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def push_inbox() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback webhook that records each pushed body and answers as ours does."""
    bodies: list[bytes] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            self.send_response(200)
            self.send_header("Content-Type", PUSH_ANSWER_CONTENT_TYPE)
            self.send_header("Content-Length", str(len(PUSH_ANSWER_BODY)))
            self.end_headers()
            self.wfile.write(PUSH_ANSWER_BODY)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/opass/push", bodies
    server.shutdown()
    server.server_close()
    thread.join(5)


# -- every method --------------------------------------------------------------------------------


def test_send_a_fixed_template_to_several_phones(sandbox: Any, opass_account: OpassAccount) -> None:
    phones = _phones(3)
    result = OpassClient(opass_account).send([*phones, phones[0]], FIXED, bid="job1.0.1")
    assert result.message_id
    assert result.accepted == tuple(phones)
    assert result.duplicates == (phones[0],)
    assert result.client_id == "job1.0.1"
    assert all(_accepted_times(sandbox, p) == 1 for p in phones)
    assert _texts(sandbox, phones[0])[-1].endswith("您有一个事务需要处理。")


def test_send_renders_the_exact_param_values(sandbox: Any, opass_account: OpassAccount) -> None:
    (phone,) = _phones(1)
    name, amount = 'a"\\b\n😀', "1,000"
    OpassClient(opass_account).send([phone], INCOME, [name, amount])
    assert _texts(sandbox, phone)[-1].endswith(f"{name}您好，您本次收入{amount}元。")


def test_send_batch_gives_each_phone_its_own_values(sandbox: Any, opass_account: OpassAccount) -> None:
    a, b = _phones(2)
    result = OpassClient(opass_account).send_batch([(a, ["张三", "300.09"]), (b, ['李"四\\', "222"])], INCOME)
    assert result.accepted == (a, b)
    assert _texts(sandbox, a)[-1].endswith("张三您好，您本次收入300.09元。")
    assert _texts(sandbox, b)[-1].endswith('李"四\\您好，您本次收入222元。')


def test_send_batch_of_a_template_without_variables(sandbox: Any, opass_account: OpassAccount) -> None:
    phones = _phones(2)
    result = OpassClient(opass_account).send_batch([(p, []) for p in phones], FIXED)
    assert result.accepted == tuple(phones)


def test_templates_known_to_the_client_match_the_sandboxes(sandbox: Any, opass_account: OpassAccount) -> None:
    client = OpassClient(opass_account, templates=demo.OPASS_TEMPLATES)
    (phone,) = _phones(1)
    assert client.send([phone], CODE, ["123456"]).accepted == (phone,)
    assert "123456" in _texts(sandbox, phone)[-1]


def test_receipts_are_pulled_once_each_with_the_bid(sandbox: Any, opass_account: OpassAccount) -> None:
    sandbox.configure(receipt_delay_s=0.0)  # due at acceptance, which happened before send() returned
    client = OpassClient(opass_account)
    phones = _phones(3)
    sent = client.send(phones, FIXED, bid="job2.0.1")
    receipts = client.pull_receipts(message_ids=[sent.message_id])
    now_ms = time.time_ns() // 1_000_000
    assert sorted(r.phone for r in receipts) == phones
    assert {r.message_id for r in receipts} == {sent.message_id}
    assert {r.client_id for r in receipts} == {"job2.0.1"}
    # yyMMddHHmm in Beijing time: minute resolution, and no 8-hour shift.
    assert all(r.at_ms is not None and abs(r.at_ms - now_ms) < 120_000 for r in receipts)
    assert all(r.delivered == (r.status == "DELIVRD") for r in receipts)
    assert client.pull_receipts(message_ids=[sent.message_id]) == []


def test_receipts_by_the_java_samples_path(sandbox: Any, opass_account: OpassAccount) -> None:
    sandbox.configure(receipt_delay_s=0.0)  # due at acceptance, which happened before send() returned
    client = OpassClient(dataclasses.replace(opass_account, receipt_path=OPASS_RECEIPT_PATH_JAVA))
    phones = _phones(2)
    client.send(phones, FIXED, bid="job3.0.1")
    receipts = client.pull_receipts(bid="job3.0.1")
    assert sorted(r.phone for r in receipts) == phones


def test_statistics_balance_and_health(sandbox: Any, opass_account: OpassAccount) -> None:
    client = OpassClient(opass_account)
    client.send(_phones(2), FIXED)
    page = client.statistics("2000-01-01", "2099-12-31", page=1, page_size=50)
    assert page.total_size >= len(page.rows)
    assert sum(row.total for row in page.rows) >= 2
    balance = client.balance()
    assert balance.items and balance.total > 0
    health = client.health()
    assert health.ok and health.latency_ms > 0


def test_blacklisted_phones_come_back_as_fail_phones(sandbox: Any, opass_account: OpassAccount) -> None:
    good, bad = _phones(2)
    sandbox.configure(blacklist=[bad])
    result = OpassClient(opass_account).send([good, bad], FIXED)
    assert result.accepted == (good,)
    assert [(f.phone, f.code) for f in result.failed] == [(bad, "failPhones")]
    assert (_accepted_times(sandbox, good), _accepted_times(sandbox, bad)) == (1, 0)


def test_a_second_balance_within_15_s_is_throttled_for_20_s(sandbox: Any, opass_account: OpassAccount) -> None:
    client = OpassClient(opass_account)
    client.balance()
    with pytest.raises(ThrottledError) as err:
        client.balance()
    assert (err.value.code, err.value.retry_after_s) == ("6000", 20.0)


def test_status_and_uplink_pushes_from_the_sandbox_parse(
    sandbox: Any, opass_account: OpassAccount, push_inbox: tuple[str, list[bytes]]
) -> None:
    url, bodies = push_inbox
    hooks = {"status_url": url, "uplink_url": url}
    sandbox.configure(receipt_delay_s=0.05, opass={"accounts": {demo.OPASS_API_KEY: hooks}})
    phones = _phones(2)
    sent = OpassClient(opass_account).send(phones, FIXED, bid="job5.0.1")
    sandbox.inject_uplink("opass", demo.OPASS_API_KEY, phones[0], "退订 TD")
    assert sandbox.wait_idle(10.0)
    parsed = [item for body in bodies for item in parse_push(body, expected_api_key=demo.OPASS_API_KEY)]
    receipts = [p for p in parsed if isinstance(p, Receipt)]
    uplinks = [p for p in parsed if isinstance(p, Uplink)]
    assert sorted(r.phone for r in receipts) == phones
    assert {(r.message_id, r.client_id) for r in receipts} == {(sent.message_id, "job5.0.1")}
    assert [(u.phone, u.content) for u in uplinks] == [(phones[0], "退订 TD")]
    assert uplinks[0].ext


# -- the gateway's own refusals ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error"),
    [("6000", ThrottledError), ("40002", AccountFatalError), ("-1", TransientError)],
)
def test_fault_codes_raise_their_family(sandbox: Any, opass_account: OpassAccount, code: str, error: type) -> None:
    sandbox.set_faults({"kind": "code", "code": code, "rate": 1.0, "count": 1, "path": "/message/send"})
    (phone,) = _phones(1)
    with pytest.raises(error) as err:
        OpassClient(opass_account).send([phone], FIXED)
    assert err.value.code == code
    assert _accepted_times(sandbox, phone) == 0


def test_an_unknown_template_is_a_rejected_request(sandbox: Any, opass_account: OpassAccount) -> None:
    with pytest.raises(RequestRejectedError) as err:
        OpassClient(opass_account).send(_phones(1), "9999999999999999999")
    assert err.value.code == "60001"


def test_a_stale_clock_is_an_auth_failure(sandbox: Any, opass_account: OpassAccount) -> None:
    client = OpassClient(opass_account, clock_ms=lambda: time.time_ns() // 1_000_000 - 61_000)
    with pytest.raises(AccountFatalError) as err:
        client.send(_phones(1), FIXED)
    assert err.value.code == "2001"


def test_a_replayed_nonce_is_an_auth_failure(sandbox: Any, opass_account: OpassAccount) -> None:
    nonce = new_nonce()
    client = OpassClient(opass_account, nonce=lambda: nonce)
    (phone,) = _phones(1)
    client.send([phone], FIXED)
    with pytest.raises(AccountFatalError) as err:
        client.send([phone], FIXED)
    assert err.value.code == "2001"
    assert _accepted_times(sandbox, phone) == 1


def test_a_wrong_access_key_is_an_auth_failure(sandbox: Any, opass_account: OpassAccount) -> None:
    client = OpassClient(dataclasses.replace(opass_account, access_key="not-the-key"))
    with pytest.raises(AccountFatalError) as err:
        client.send(_phones(1), FIXED)
    assert err.value.code == "2001"
    assert "not-the-key" not in str(err.value)


@pytest.mark.parametrize("method", ["HmacMD5", "HmacSHA1", "HmacSHA224", "HmacSHA384", "HmacSHA512"])
def test_every_sign_method_is_accepted(sandbox: Any, opass_account: OpassAccount, method: str) -> None:
    client = OpassClient(dataclasses.replace(opass_account, sign_method=method))
    assert client.send(_phones(1), FIXED).message_id


# -- transport faults ----------------------------------------------------------------------------


def test_a_dropped_answer_is_ambiguous_and_the_sms_was_accepted_once(
    sandbox: Any, opass_account: OpassAccount
) -> None:
    sandbox.set_faults({"kind": "drop", "rate": 1.0, "count": 1, "path": "/message/send"})
    phones = _phones(2)
    with pytest.raises(AmbiguousError):
        OpassClient(opass_account).send(phones, FIXED, bid="job4.0.1")
    assert [_accepted_times(sandbox, p) for p in phones] == [1, 1]


def test_a_reset_connection_is_ambiguous(sandbox: Any, opass_account: OpassAccount) -> None:
    sandbox.set_faults({"kind": "reset", "rate": 1.0, "count": 1, "path": "/message/send"})
    with pytest.raises(AmbiguousError):
        OpassClient(opass_account).send(_phones(1), FIXED)


def test_a_slow_answer_past_the_read_timeout_is_ambiguous(sandbox: Any, opass_account: OpassAccount) -> None:
    sandbox.set_faults({"kind": "slow", "delay_ms": 1500, "rate": 1.0, "count": 1, "path": "/message/send"})
    client = OpassClient(dataclasses.replace(opass_account, read_timeout_s=0.3))
    with pytest.raises(AmbiguousError):
        client.send(_phones(1), FIXED)


def test_a_refused_connection_is_transient(sandbox: Any, opass_account: OpassAccount) -> None:
    sandbox.set_faults({"kind": "refuse", "duration_ms": 1000, "rate": 1.0, "count": 1, "path": "/message/send"})
    with pytest.raises(TransientError):
        OpassClient(opass_account).send(_phones(1), FIXED)


def test_nothing_listening_is_transient_and_health_says_so(opass_account: OpassAccount) -> None:
    client = OpassClient(dataclasses.replace(opass_account, base_url=f"http://127.0.0.1:{_free_port()}"))
    with pytest.raises(TransientError):
        client.send(_phones(1), FIXED)
    health = client.health()
    assert health.ok is False and "connection not established" in health.detail
