"""A third gateway is one plug: registered here only, it is sent through (its own send form, by
``Dispatcher.submit``), rate limited, pushed to and looked up by the same send path as opass and
aiofish, on a real Redis and real HTTP.

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

from dispatcher import jobs
from dispatcher.config.accounts import AccountConfig, Accounts
from dispatcher.config.settings import Settings
from dispatcher.keys import client_id
from dispatcher.limits import Limit
from dispatcher.producer import Dispatcher
from dispatcher.providers import registry
from dispatcher.providers.results import Receipt, SendResult
from dispatcher.receipt_stream import StreamApplier
from dispatcher.records import RecordReader
from dispatcher.runtime import Runtime
from dispatcher.sending import send_chunk
from dispatcher.validation import Checker
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


def _toy_check(account: Any, *, text: str, phones: Sequence[Any], priority: str = "bulk",
               send_at_ms: int | None = None) -> tuple[jobs.JobSpec, int]:
    """``Dispatcher.submit("toy", …)``'s checks: the shared recipient rules, the toy's own meta."""
    check = Checker()
    meta = jobs.common_meta(check, priority, send_at_ms)
    rows, _, duplicates, _ = jobs.recipients(check, phones, None, None, skip_invalid=False)
    check.done()
    meta.update(kind="toy.send", provider="toy", account=account.name, text=text, tag="x")
    return jobs.JobSpec("toy.send", "toy", account.name, meta, rows, duplicates=duplicates), 2


TOY = registry.Gateway(
    name="toy",
    account_class=ToyAccount,
    client=lambda account: ToyClient(account.gateway),
    kinds=(registry.JobKind("toy.send", 2, _toy_send),),
    limits={"send": (Limit("send", 1000, 1.0),)},
    parse_push=_toy_push,
    sends={"toy": _toy_check},
    has_balance=False,
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
    producer = Dispatcher(rt.settings, accounts=rt.accounts, client=rt.redis, enqueue=lambda *_: None)
    handle = producer.submit("toy", "t1", text="hi", phones=[*PHONES, PHONES[0]])
    job = handle.job_id
    assert (handle.total, handle.chunks, handle.duplicates) == (5, 3, 1)  # the toy's own chunk limit: 2
    for n in range(handle.chunks):
        assert send_chunk(rt, job, n).note == "accepted"
    assert [phones for _, phones, _ in ToyClient.sent] == [tuple(PHONES[i : i + 2]) for i in range(0, 5, 2)]
    # the limiter took each call from the toy's own documented budget
    assert rt.redis.exists(rt.keys.limiter("toy", "t1", "send"))

    push = {"receipts": [{"phone": p, "status": "OK" if p != PHONES[4] else "LOST",
                          "mid": f"toy-{client_id(job, i // 2, 1)}", "cid": client_id(job, i // 2, 1)}
                         for i, p in enumerate(PHONES)]}
    request = urllib.request.Request(hook_url, json.dumps(push).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.read() == b"thanks"
    StreamApplier(rt.ledger, "test").drain()

    states = {d.phone: (d.state, d.code) for d in RecordReader(rt.ledger).job_records(job)}
    assert states == {**{p: ("delivered", "OK") for p in PHONES[:4]}, PHONES[4]: ("failed", "LOST")}
    (found,) = RecordReader(rt.ledger).by_phone(PHONES[4])
    assert (found.provider, found.message_id) == ("toy", f"toy-{client_id(job, 2, 1)}")


def test_a_push_to_a_gateway_nobody_registered_is_not_found(runtime: Runtime, hook_url: str) -> None:
    request = urllib.request.Request(hook_url.replace("/toy/", "/nope/"), b"{}")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 404
    caught.value.close()
