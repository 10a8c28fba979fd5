"""OpassClient against the real sandbox over real HTTP: every method, every error family.

The sandbox checks signatures, timestamps and nonces as the manual says, renders
templates, keeps a ledger of what it accepted and injects faults on request.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from typing import Any

import pytest

from dispatcher.errors import (
    AccountFatalError,
    AmbiguousError,
    RequestRejectedError,
    ThrottledError,
    TransientError,
)
from dispatcher.providers.accounts import OPASS_RECEIPT_PATH_JAVA, OpassAccount
from dispatcher.providers.opass import OpassClient
from dispatcher.providers.opass_sign import new_nonce
from dispatcher.sandbox import demo

pytestmark = pytest.mark.integration

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


def _wait_for(predicate: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    sandbox.configure(receipt_delay_s=0.2)
    client = OpassClient(opass_account)
    phones = _phones(3)
    sent = client.send(phones, FIXED, bid="job2.0.1")
    time.sleep(0.4)  # the sandbox produces receipts 0.2 s after accepting
    receipts = client.pull_receipts(message_ids=[sent.message_id])
    assert sorted(r.phone for r in receipts) == phones
    assert {r.message_id for r in receipts} == {sent.message_id}
    assert {r.client_id for r in receipts} == {"job2.0.1"}
    assert all(r.at_ms is not None for r in receipts)
    assert client.pull_receipts(message_ids=[sent.message_id]) == []


def test_receipts_by_the_java_samples_path(sandbox: Any, opass_account: OpassAccount) -> None:
    sandbox.configure(receipt_delay_s=0.2)
    client = OpassClient(dataclasses.replace(opass_account, receipt_path=OPASS_RECEIPT_PATH_JAVA))
    phones = _phones(2)
    client.send(phones, FIXED, bid="job3.0.1")
    time.sleep(0.4)
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
