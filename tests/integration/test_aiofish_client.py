"""aiofish clients against the running sandbox over real HTTP: every method, every error family."""

from __future__ import annotations

import dataclasses
import time

import pytest

from dispatcher.errors import AccountFatalError, AmbiguousError, ThrottledError, TransientError
from dispatcher.providers.accounts import AiofishAccount
from dispatcher.providers.aiofish import AiofishClient
from dispatcher.providers.aiofish_vsms import AiofishIsmsClient, AiofishVsmsClient, Frame
from dispatcher.redis_server import free_port

pytestmark = pytest.mark.integration
PHONES = ["13700000001", "13700000002"]
TEXT = '【沙箱】订单"A\\B"已发货\n谢谢😀'


def _wait(predicate, timeout_s: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_send_in_each_variant_reaches_the_gateway_exactly_as_written(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    result = AiofishClient(aiofish_account).send([*PHONES, "+86" + PHONES[0]], TEXT, sms_id="job.0.1")
    assert result.accepted == tuple(PHONES) and result.duplicates == (PHONES[0],)
    assert result.message_id == "job.0.1"
    assert sandbox.ledger()["accepted"]["aiofish"] == {PHONES[0]: 1, PHONES[1]: 1}
    assert sandbox.messages(PHONES[1])[-1]["text"] == TEXT


def test_batch_balance_receipts_once_and_replies(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    sandbox.configure(receipt_delay_s=0.1)
    client = AiofishClient(aiofish_account)
    before = client.balance().total
    client.send_batch([(PHONES[0], "【沙箱】一"), (PHONES[1], "【沙箱】二")], sms_id="job.1.1")
    receipts = _wait(lambda: client.pull_receipts())
    assert {(r.phone, r.client_id) for r in receipts} == {(PHONES[0], "job.1.1"), (PHONES[1], "job.1.1")}
    assert client.pull_receipts() == []  # each receipt is returned once
    sandbox.inject_uplink("aiofish", "sandbox", PHONES[0], "TD", "12")
    replies = _wait(lambda: client.pull_replies())
    assert [(u.phone, u.content) for u in replies] == [(PHONES[0], "TD")]
    time.sleep(5.1)  # the sandbox allows one balance query per 5 s, as the manual advises
    assert client.balance().total == before - 2


@pytest.mark.parametrize("aiofish_account", ["plain"], indirect=True)
def test_error_families_from_the_gateway(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    client = AiofishClient(aiofish_account)
    cases = [("p:010", ThrottledError), ("p:004", AccountFatalError), ("p:999", TransientError)]
    for code, cls in cases:
        sandbox.set_faults({"kind": "code", "code": code, "rate": 1.0, "count": 1, "path": "/rest/sms/"})
        with pytest.raises(cls) as err:
            client.send(PHONES[:1], "【沙箱】x")
        assert err.value.code == code
    sandbox.set_faults({"kind": "drop", "rate": 1.0, "count": 1, "path": "/rest/sms/"})
    with pytest.raises(AmbiguousError):
        client.send(PHONES[:1], "【沙箱】x")
    assert sandbox.ledger()["accepted"]["aiofish"] == {PHONES[0]: 1}  # the dropped one did arrive


def test_wrong_password_and_wrong_aes_key_pause_the_account(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    if aiofish_account.encryption == "full":
        bad = dataclasses.replace(aiofish_account, aes_key="wrong-key-16byte")
        expected = {"p:011", "p:003"}
    else:
        bad = dataclasses.replace(aiofish_account, password="wrong")
        expected = {"p:003"}
    with pytest.raises(AccountFatalError) as err:
        AiofishClient(bad).send(PHONES[:1], "【沙箱】x")
    assert err.value.code in expected
    assert sandbox.ledger()["accepted"]["aiofish"] == {}


def test_nothing_listening_is_transient() -> None:
    account = AiofishAccount(name="t", account="a", password="p", base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransientError):
        AiofishClient(account).send(PHONES[:1], "【沙箱】x")


@pytest.mark.parametrize("aiofish_account", ["plain"], indirect=True)
def test_vsms_template_audit_send_and_vars(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    sandbox.configure(vsms_audit_delay_s=0.2)
    vsms = AiofishVsmsClient(aiofish_account)
    tpl = vsms.submit_template("双十一", [Frame(1, 1, 2, "a.jpg"), Frame(1, 2, 1, "【沙箱】#p_1#您好")],
                               {"a.jpg": b"\xff\xd8 not really a jpeg"})
    assert _wait(lambda: vsms.template_status(tpl).approved)
    sent = vsms.send(tpl, PHONES)
    assert sent.message_id and sandbox.ledger()["accepted"]["aiofish-vsms"] == {PHONES[0]: 1, PHONES[1]: 1}
    vsms.send_vars(tpl, [(PHONES[0], ["张三"])])
    sandbox.set_faults({"kind": "code", "code": "request_limit", "rate": 1.0, "count": 1, "path": "/rest/vsms/"})
    with pytest.raises(ThrottledError):
        vsms.send(tpl, PHONES)


@pytest.mark.parametrize("aiofish_account", ["plain"], indirect=True)
def test_isms_send_with_country_codes(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    sent = AiofishIsmsClient(aiofish_account).send("hello from the sandbox", ["+85212341234", "447911123456"])
    assert sent.accepted == ("85212341234", "447911123456")
    assert sandbox.ledger()["accepted"]["aiofish-isms"] == {"85212341234": 1, "447911123456": 1}
