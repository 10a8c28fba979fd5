"""The aiofish SMS client against the real sandbox over real HTTP, in all three encryption variants.

Every client method, every error family, and the sandbox's pushes read back by our push parser.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dispatcher.errors import AccountFatalError, AmbiguousError, ThrottledError, TransientError
from dispatcher.local.sandbox import demo
from dispatcher.local.stack import wait_for
from dispatcher.providers.aiofish.account import AiofishAccount
from dispatcher.providers.aiofish.client import AiofishClient
from dispatcher.providers.aiofish.push import PUSH_OK_BODY, parse_sms_push
from dispatcher.providers.results import Receipt, Uplink
from dispatcher.redis_server import free_port

P1, P2, P3 = "13700000001", "13700000002", "13700000003"
TEXT = '【沙箱】订单"A\\B"已发货\n谢谢😀 100% +1'
ALL_DELIVERED = {"DELIVRD": 1.0, "UNDELIV": 0.0, "REJECTD": 0.0, "EXPIRED": 0.0, "UNKNOWN": 0.0}


class PushReceiver:
    """A tiny HTTP server that records each push and answers ``0``, as our webhook does."""

    def __init__(self) -> None:
        self.pushes: queue.Queue[tuple[str, str, bytes]] = queue.Queue()
        received = self.pushes

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.put((self.path, self.headers.get("Content-Type", ""), body))
                self.send_response(200)
                self.send_header("Content-Length", "1")
                self.end_headers()
                self.wfile.write(PUSH_OK_BODY.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def take(self, timeout_s: float = 10.0) -> tuple[str, str, bytes]:
        """The next push: (path, Content-Type, body)."""
        return self.pushes.get(timeout=timeout_s)

    def __enter__(self) -> PushReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[PushReceiver]:
    """A PushReceiver listening on a free loopback port for this test."""
    with PushReceiver() as rx:
        yield rx


def accepted(sandbox: Any) -> dict[str, int]:
    counts: dict[str, int] = sandbox.ledger()["accepted"].get("aiofish", {})
    return counts


# -- sends -------------------------------------------------------------------------------------------


def test_send_reaches_the_gateway_exactly_as_written_once_per_phone(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    result = AiofishClient(aiofish_account).send([P1, P2, "+86" + P1], TEXT, sms_id="job.0.1")
    assert (result.message_id, result.client_id) == ("job.0.1", "job.0.1")
    assert result.accepted == (P1, P2) and result.duplicates == (P1,) and result.failed == ()
    assert accepted(sandbox) == {P1: 1, P2: 1}
    assert [m["text"] for m in sandbox.messages(P2)] == [TEXT]


def test_without_sms_id_the_gateway_names_one(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    result = AiofishClient(aiofish_account).send([P1], "【沙箱】hi")
    assert result.message_id and result.client_id is None
    assert sandbox.messages(P1)[-1]["message_id"] == result.message_id


def test_batch_gives_each_phone_its_own_content(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    result = AiofishClient(aiofish_account).send_batch([(P1, "【沙箱】一"), (P2, TEXT), (P1, "【沙箱】again")],
                                                      sms_id="job.1.1")
    assert result.accepted == (P1, P2) and result.duplicates == (P1,)
    assert [m["text"] for m in sandbox.messages(P1)] == ["【沙箱】一"]
    assert [m["text"] for m in sandbox.messages(P2)] == [TEXT]
    assert accepted(sandbox) == {P1: 1, P2: 1}


@pytest.mark.parametrize("aiofish_account", ["plain", "phone"], indirect=True)
def test_a_refused_phone_is_reported_and_the_rest_go_out(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    sandbox.configure(blacklist=[P2])
    result = AiofishClient(aiofish_account).send([P1, P2, P3], "【沙箱】hi")
    assert result.accepted == (P1, P3)
    assert [(f.phone, f.code) for f in result.failed] == [(P2, "p:002")]  # the "phone" echo is mapped back
    assert accepted(sandbox) == {P1: 1, P3: 1}


# -- pulls -------------------------------------------------------------------------------------------


def test_balance_goes_down_by_the_parts_sent(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    sandbox.configure(limits={"aiofish_balance": None})
    client = AiofishClient(aiofish_account)
    before = client.balance().total
    client.send([P1, P2], "【沙箱】hi")
    client.send_batch([(P3, "【沙箱】" + "长" * 80)])  # 84 characters: two parts
    assert client.balance().total == before - 4


@pytest.mark.parametrize("aiofish_account", ["plain"], indirect=True)
def test_a_second_balance_query_within_5_s_is_throttled(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    client = AiofishClient(aiofish_account)
    client.balance()
    with pytest.raises(ThrottledError) as err:
        client.balance()
    assert (err.value.code, err.value.retry_after_s) == ("p:010", 5.0)


def test_receipts_are_pulled_once_with_the_sms_id_echoed(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    sandbox.configure(receipt_delay_s=0.2, outcomes=ALL_DELIVERED)
    client = AiofishClient(aiofish_account)
    client.send([P1], "【沙箱】一", sms_id="job.2.1")
    client.send_batch([(P2, "【沙箱】二")], sms_id="job.3.1")
    got: list[Receipt] = []
    wait_for(lambda: got.extend(client.pull_receipts()) or len(got) >= 2, what="two receipts pulled")
    assert sorted((r.phone, r.message_id, r.client_id, r.status, r.delivered) for r in got) == [
        (P1, "job.2.1", "job.2.1", "DELIVRD", True), (P2, "job.3.1", "job.3.1", "DELIVRD", True)]
    assert all(r.at_ms and abs(r.at_ms - time.time() * 1000) < 60_000 for r in got)
    assert client.pull_receipts() == []  # each receipt is returned once


@pytest.mark.parametrize("aiofish_account", ["plain", "full"], indirect=True)
def test_replies_are_pulled_once(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    client = AiofishClient(aiofish_account)
    sandbox.inject_uplink("aiofish", demo.AIOFISH_ACCOUNT, P1, "退订 TD", "12")
    [reply] = wait_for(client.pull_replies, what="a reply pulled")
    assert (reply.phone, reply.content, reply.ext) == (P1, "退订 TD", "12")
    assert client.pull_replies() == []


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "cls"), [("p:010", ThrottledError), ("p:004", AccountFatalError),
                                           ("p:999", TransientError)])
def test_gateway_codes_raise_their_family_and_send_nothing(sandbox, aiofish_account, code, cls) -> None:  # type: ignore[no-untyped-def]
    sandbox.set_faults({"kind": "code", "code": code, "rate": 1.0, "count": 1, "path": "/rest/sms/"})
    with pytest.raises(cls) as err:
        AiofishClient(aiofish_account).send([P1], "【沙箱】x")
    assert err.value.code == code
    assert accepted(sandbox) == {}


def test_a_dropped_answer_is_ambiguous_and_the_phone_was_accepted_once(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    sandbox.set_faults({"kind": "drop", "rate": 1.0, "count": 1, "path": "/rest/sms/"})
    with pytest.raises(AmbiguousError):
        AiofishClient(aiofish_account).send([P1], "【沙箱】x", sms_id="job.4.1")
    assert accepted(sandbox) == {P1: 1}


@pytest.mark.parametrize("aiofish_account", ["plain"], indirect=True)
def test_a_dropped_pull_answer_is_transient(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    sandbox.set_faults({"kind": "drop", "rate": 1.0, "count": 1, "path": "/rest/sms/getReport"})
    with pytest.raises(TransientError):
        AiofishClient(aiofish_account).pull_receipts()


def test_a_wrong_password_pauses_the_account(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    bad = dataclasses.replace(aiofish_account, password="wrong")
    client = AiofishClient(bad)
    calls: list[Callable[[], object]] = [client.balance, client.pull_receipts, client.pull_replies]
    if aiofish_account.encryption != "full":  # the full variant carries no password, only a sign
        calls.append(lambda: client.send([P1], "【沙箱】x"))
    for call in calls:
        with pytest.raises(AccountFatalError) as err:
            call()
        assert err.value.code == "p:003"
    assert accepted(sandbox) == {}


@pytest.mark.parametrize("aiofish_account", ["phone", "full"], indirect=True)
def test_a_wrong_aes_key_fails_decryption_and_pauses_the_account(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    bad = dataclasses.replace(aiofish_account, aes_key="wrong-key-16byte")
    with pytest.raises(AccountFatalError) as err:
        AiofishClient(bad).send([P1], "【沙箱】x")
    assert err.value.code == "p:011"
    assert accepted(sandbox) == {}


def test_nothing_listening_is_transient() -> None:
    account = AiofishAccount(name="t", account="a", password="p", base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransientError):
        AiofishClient(account).send([P1], "【沙箱】x")


# -- the sandbox's pushes, read by our parser --------------------------------------------------------


@pytest.mark.parametrize("push_mode", ["plain", "phone", "full"])
@pytest.mark.parametrize("aiofish_account", ["plain"], indirect=True)
def test_every_push_variant_the_gateway_sends_is_verified_and_read(sandbox, aiofish_account, receiver,  # type: ignore[no-untyped-def]
                                                                   push_mode: str) -> None:
    sandbox.configure(receipt_delay_s=0.1, receipt_mode="push", outcomes=ALL_DELIVERED, aiofish={"accounts": {
        demo.AIOFISH_ACCOUNT: {"push_mode": push_mode, "report_url": receiver.url + "/report",
                               "reply_url": receiver.url + "/reply"}}})
    AiofishClient(aiofish_account).send([P1], "【沙箱】hi", sms_id="job.5.1")
    path, ctype, body = receiver.take()
    assert path == "/report"
    receipt = parse_sms_push(body, ctype, aiofish_account, now_ms=int(time.time() * 1000))
    assert isinstance(receipt, Receipt)
    assert (receipt.phone, receipt.message_id, receipt.delivered) == (P1, "job.5.1", True)
    sandbox.inject_uplink("aiofish", demo.AIOFISH_ACCOUNT, P2, "TD", "7")
    path, ctype, body = receiver.take()
    uplink = parse_sms_push(body, ctype, aiofish_account, now_ms=int(time.time() * 1000))
    assert isinstance(uplink, Uplink) and (path, uplink.phone, uplink.content, uplink.ext) == ("/reply", P2, "TD", "7")
