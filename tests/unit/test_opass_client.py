"""The OpassClient shell without a network: what goes on the wire, and what comes back.

A small requests adapter records each request and answers from a script (the
"mount an adapter" way of injecting, never patching our own modules).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

import pytest
import requests

from dispatcher.errors import AmbiguousError, ThrottledError, TransientError, ValidationError
from dispatcher.providers.opass.account import OPASS_RECEIPT_PATH_JAVA, OpassAccount
from dispatcher.providers.opass.client import OpassClient
from tests.unit.scripted import ScriptedAdapter

BASE = "http://gateway.test"
TS_MS = 1641350184346
NONCE = "H95a7XT1h6"




def _client(
    *answers: tuple[int, bytes], templates: Mapping[str, str] | None = None, **account_kw: Any
) -> tuple[OpassClient, ScriptedAdapter]:
    adapter = ScriptedAdapter(*answers)
    session = requests.Session()
    session.mount(BASE, adapter)
    account = OpassAccount(name="unit", api_key="KEY", access_key="ACCESS", base_url=BASE, **account_kw)
    client = OpassClient(account, session=session, clock_ms=lambda: TS_MS, nonce=lambda: NONCE, templates=templates)
    return client, adapter


def _ok(data: Any) -> tuple[int, bytes]:
    return 200, json.dumps({"code": 200, "message": "OK", "data": data, "requestId": "r1"}).encode()


def _sign(message: str) -> str:
    return hmac.new(b"ACCESS", message.encode(), hashlib.sha256).hexdigest()


def _sent(adapter: ScriptedAdapter, n: int = 0) -> tuple[str, Mapping[str, str], Any]:
    request = adapter.requests[n]
    assert request.method == "POST"
    body = json.loads(request.body) if request.body else None
    return request.url or "", request.headers, body


def test_send_posts_the_manuals_signed_request_and_reads_the_answer() -> None:
    client, adapter = _client(_ok({"msgId": "574730770464800768", "failPhones": "13800000002"}))
    result = client.send(["13800000001", "13800000002", "13800000001"], "CODE", ["p1", "p2", "p3"])
    url, headers, body = _sent(adapter)
    assert url == f"{BASE}/message/send"
    assert headers["Content-Type"].startswith("application/json")
    # The manual's worked sign string, reproduced by the client with the pinned clock and nonce.
    expected = (
        'phones=13800000001,13800000002&templateCode=CODE&templateParam=["p1","p2","p3"]'
        "&x-api-key=KEY&x-nonce=H95a7XT1h6&x-sign-method=HmacSHA256&x-timestamp=1641350184346"
    )
    assert headers["x-sign"] == _sign(expected)
    assert body["phones"] == "13800000001,13800000002"
    assert result.message_id == "574730770464800768"
    assert result.accepted == ("13800000001",)
    assert [f.phone for f in result.failed] == ["13800000002"]
    assert result.duplicates == ("13800000001",)


def test_send_batch_posts_json_arrays_to_send_batch() -> None:
    client, adapter = _client(_ok({"msgId": "m"}))
    result = client.send_batch([("13800000001", ["明"]), ("13800000002", ["张三"])], "T", bid="b.0.1")
    url, _, body = _sent(adapter)
    assert url == f"{BASE}/message/sendBatch"
    assert json.loads(body["phonesJson"]) == ["13800000001", "13800000002"]
    assert json.loads(body["templateParamJson"]) == [["明"], ["张三"]]
    assert result.client_id == "b.0.1" and result.accepted == ("13800000001", "13800000002")


def test_invalid_input_sends_nothing() -> None:
    client, adapter = _client()
    with pytest.raises(ValidationError):
        client.send(["1"], "T")
    with pytest.raises(ValidationError):
        client.statistics("2024-01-01", "2024-01-02", page_size=51)
    assert adapter.requests == []


def test_templates_given_to_the_client_are_checked_before_sending() -> None:
    client, adapter = _client(templates={"T": "{验证码,6}"})
    with pytest.raises(ValidationError) as err:
        client.send(["13800000001"], "T", ["1234567"])
    assert err.value.fields == ("params[0]",)
    assert adapter.requests == []


def test_receipts_use_the_accounts_receipt_path() -> None:
    item = {"msgId": "m", "tel": "13800000001", "arrive": "DELIVRD", "arriveTime": "2308071315", "bid": "b"}
    client, adapter = _client(_ok([item]), receipt_path=OPASS_RECEIPT_PATH_JAVA)
    (receipt,) = client.pull_receipts(message_ids=["m"], bid="b")
    url, _, body = _sent(adapter)
    assert url == f"{BASE}/sms/arrive/qry"
    assert body == {"msgId": "m", "bid": "b"}
    assert receipt.delivered and receipt.client_id == "b"


def test_a_lost_query_answer_is_transient_but_a_lost_send_answer_ambiguous() -> None:
    client, _ = _client((200, b"<html>"), (200, b"<html>"))
    with pytest.raises(AmbiguousError):
        client.send(["13800000001"], "T")
    with pytest.raises(TransientError):
        client.balance()


def test_statistics_and_balance_post_their_bodies() -> None:
    stats = {"code": 200, "data": [{"totalCount": 2, "sendDate": "2024-01-01"}], "totalSize": 1}
    client, adapter = _client((200, json.dumps(stats).encode()), _ok([{"itemName": "行业短信", "residueValue": 5}]))
    page = client.statistics("2024-01-01", "2024-01-01", page=1, page_size=10)
    balance = client.balance()
    assert _sent(adapter, 0)[0] == f"{BASE}/sms/send/statistics"
    assert _sent(adapter, 0)[2] == {"startDate": "2024-01-01", "endDate": "2024-01-01", "page": 1, "pageSize": 10}
    url, headers, body = _sent(adapter, 1)
    assert url == f"{BASE}/sms/residueValue/qry" and body == {}
    assert headers["x-sign"] == _sign(
        "x-api-key=KEY&x-nonce=H95a7XT1h6&x-sign-method=HmacSHA256&x-timestamp=1641350184346"
    )
    assert page.rows[0].total == 2 and balance.total == 5


def test_a_throttled_query_says_when_to_retry() -> None:
    client, _ = _client((200, b'{"code":6000,"message":"\\u8bbf\\u95ee\\u9891\\u7e41"}'))
    with pytest.raises(ThrottledError) as err:
        client.balance()
    assert err.value.retry_after_s == 20.0


def test_health_is_unsigned_and_reports_ok() -> None:
    client, adapter = _client((200, b'{"status":"UP"}'))
    health = client.health()
    url, headers, _ = _sent(adapter)
    assert url == f"{BASE}/health/info"
    assert "x-sign" not in headers
    assert health.ok and "UP" in health.detail


@pytest.mark.parametrize("status", [503, 404, 302])
def test_health_reports_a_failing_gateway_instead_of_raising(status: int) -> None:
    client, _ = _client((status, b"down"))
    health = client.health()
    assert health.ok is False
    assert str(status) in health.detail
