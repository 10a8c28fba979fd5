"""A third gateway is one plug: registered here only, it is sent through, rate limited, pushed to
and looked up by the same send path as opass and aiofish, on a real Redis and real HTTP.

The toy gateway's "vendor" is this test (its client keeps what it was sent): the point is
that nothing outside the plug had to learn its name.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import redis

from dispatcher.config.accounts import AccountConfig, Accounts
from dispatcher.config.settings import Settings
from dispatcher.keys import client_id
from dispatcher.ledger import ChunkData
from dispatcher.limits import Limit
from dispatcher.providers import registry
from dispatcher.providers.base import system_clock_ms
from dispatcher.providers.results import Receipt, SendResult
from dispatcher.receipt_stream import StreamApplier
from dispatcher.records import RecordReader
from dispatcher.runtime import Runtime
from dispatcher.sending import send_chunk
from dispatcher.webhook import make_app

SECRET = "toy-hook-secret-0123456789abcdef"
PHONES = ["13800000001", "13800000002", "13800000003", "13800000004", "13800000005"]


@dataclass(frozen=True)
class ToyAccount:
    """The toy gateway's account settings."""

    name: str


class ToyClient:
    """The toy vendor: keeps every call it was sent."""

    sent: ClassVar[list[tuple[str, tuple[str, ...], str]]] = []

    def __init__(self, account: ToyAccount) -> None:
        self.account = account

    def send(self, phones: Sequence[str], text: str, *, cid: str) -> SendResult:
        ToyClient.sent.append((cid, tuple(phones), text))
        return SendResult("toy", self.account.name, f"toy-{cid}", cid, tuple(phones))


def _toy_send(client: Any, job: Mapping[str, str], phones: Sequence[str], _payloads: Sequence[Any] | None,
              cid: str) -> Any:
    return client.send(phones, job["text"], cid=cid)


def _toy_push(_account: Any, body: bytes, _environ: dict[str, Any]) -> tuple[list[Any], bytes, str]:
    doc = json.loads(body)
    return ([Receipt("toy", r["mid"], r["phone"], r["status"], r["status"] == "OK", None, r["cid"])
             for r in doc["receipts"]], b"thanks", "text/plain")


TOY = registry.Gateway(
    name="toy",
    account_class=ToyAccount,
    client=lambda account: ToyClient(account.gateway),
    kinds=(registry.JobKind("toy.send", 2, _toy_send),),
    limits={"send": (Limit("send", 1000, 1.0),)},
    parse_push=_toy_push,
)


@pytest.fixture
def toy() -> Iterator[registry.Gateway]:
    registry.register(TOY)
    ToyClient.sent.clear()
    yield TOY
    registry.unregister("toy")


@pytest.fixture
def runtime(redis_client: redis.Redis, toy: registry.Gateway) -> Runtime:
    account = AccountConfig("toy", ToyAccount("t1"), SECRET)  # type: ignore[arg-type]
    return Runtime(Settings(), accounts=Accounts({("toy", "t1"): account}), client=redis_client)


@pytest.fixture
def hook_url(runtime: Runtime) -> Iterator[str]:
    class Quiet(WSGIRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, make_app(lambda: runtime), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/toy/t1/{SECRET}"
    server.shutdown()
    server.server_close()


def test_a_gateway_registered_only_in_its_plug_is_sent_pushed_to_and_looked_up(runtime: Runtime,
                                                                              hook_url: str) -> None:
    rt = runtime
    chunks = [ChunkData(PHONES[i : i + 2]) for i in range(0, len(PHONES), registry.chunk_limits()["toy.send"])]
    rt.ledger.create_job("jt", {"provider": "toy", "account": "t1", "kind": "toy.send", "text": "hi", "tag": "x"},
                         chunks, now_ms=system_clock_ms())
    for n in range(len(chunks)):
        assert send_chunk(rt, "jt", n).note == "accepted"
    assert [phones for _, phones, _ in ToyClient.sent] == [tuple(c.phones) for c in chunks]
    # the limiter took each call from the toy's own documented budget
    assert rt.redis.exists(rt.keys.limiter("toy", "t1", "send"))

    push = {"receipts": [{"phone": p, "status": "OK" if p != PHONES[4] else "LOST",
                          "mid": f"toy-{client_id('jt', i // 2, 1)}", "cid": client_id("jt", i // 2, 1)}
                         for i, p in enumerate(PHONES)]}
    request = urllib.request.Request(hook_url, json.dumps(push).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.read() == b"thanks"
    StreamApplier(rt.ledger, "test").drain()

    states = {d.phone: (d.state, d.code) for d in RecordReader(rt.ledger).job_records("jt")}
    assert states == {**{p: ("delivered", "OK") for p in PHONES[:4]}, PHONES[4]: ("failed", "LOST")}
    (found,) = RecordReader(rt.ledger).by_phone(PHONES[4])
    assert (found.provider, found.message_id) == ("toy", f"toy-{client_id('jt', 2, 1)}")


def test_a_push_to_a_gateway_nobody_registered_is_not_found(runtime: Runtime, hook_url: str) -> None:
    request = urllib.request.Request(hook_url.replace("/toy/", "/nope/"), b"{}")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 404
    caught.value.close()
