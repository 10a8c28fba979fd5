"""opass pushes: status reports and uplinks parsed, forged and malformed bodies refused."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from dispatcher.errors import PushVerificationError
from dispatcher.providers.opass_push import PUSH_ANSWER_BODY, parse_arrive_time, parse_push
from dispatcher.providers.results import Receipt, Uplink

API_KEY = "8767fd835ca3a4eb6f69129d71971760"
PHONE = "18551067101"


def _body(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def _status(**item: Any) -> dict[str, Any]:
    base = {"msgId": "577951956854276096", "tel": PHONE, "arriveResult": "UNDELIV", "arriveTime": "2104091735",
            "bid": "xxxx"}
    return {**base, **item}


def _epoch_ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp() * 1000)


def test_the_manuals_status_push_becomes_receipts() -> None:
    body = _body({"apiKey": API_KEY, "data": [_status(), _status(tel="18551067102", arriveResult="DELIVRD", bid="")]})
    first, second = parse_push(body, expected_api_key=API_KEY)
    assert isinstance(first, Receipt) and isinstance(second, Receipt)
    assert (first.provider, first.message_id, first.phone, first.status) == (
        "opass", "577951956854276096", PHONE, "UNDELIV")
    assert first.delivered is False and second.delivered is True
    assert first.at_ms == _epoch_ms(2021, 4, 9, 9, 35)  # 17:35 in Beijing
    assert first.client_id == "xxxx" and second.client_id is None


def test_the_manuals_uplink_push_becomes_uplinks() -> None:
    item = {"srcId": "10690001", "tel": PHONE, "content": "退订 TD", "arriveTime": "2104091735"}
    (uplink,) = parse_push(_body({"apiKey": API_KEY, "data": [item]}), expected_api_key=API_KEY)
    assert isinstance(uplink, Uplink)
    assert (uplink.phone, uplink.content, uplink.ext) == (PHONE, "退订 TD", "10690001")
    assert uplink.at_ms == _epoch_ms(2021, 4, 9, 9, 35)


def test_an_empty_push_is_no_items() -> None:
    assert parse_push(_body({"apiKey": API_KEY, "data": []}), expected_api_key=API_KEY) == []


@pytest.mark.parametrize("key", ["wrong-key", API_KEY[:-1], API_KEY + "0", "", None])
def test_a_push_with_another_api_key_is_refused_without_echoing_secrets(key: object) -> None:
    doc: dict[str, Any] = {"data": [_status()]}
    if key is not None:
        doc["apiKey"] = key
    with pytest.raises(PushVerificationError, match="apiKey") as err:
        parse_push(_body(doc), expected_api_key=API_KEY)
    assert API_KEY not in str(err.value) and PHONE not in str(err.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not UTF-8 JSON"),
        (b"\xff\xfe{}", "not UTF-8 JSON"),
        (b"[1,2]", "not a JSON object"),
        (_body({"apiKey": API_KEY}), "data is not a list"),
        (_body({"apiKey": API_KEY, "data": {"msgId": "1"}}), "data is not a list"),
        (_body({"apiKey": API_KEY, "data": ["x"]}), r"data\[0\] is not an object"),
        (_body({"apiKey": API_KEY, "data": [{"tel": PHONE}]}), r"data\[0\] is neither"),
        (
            _body({"apiKey": API_KEY, "data": [_status(), {"tel": PHONE, "content": "hi"}]}),
            r"data\[1\] is an uplink, data\[0\] a status report",
        ),
        (_body({"apiKey": API_KEY, "data": [_status(tel="")]}), r"data\[0\] lacks a required field"),
        (_body({"apiKey": API_KEY, "data": [{"tel": PHONE, "content": 5}]}), r"data\[0\] lacks a required field"),
    ],
)
def test_malformed_pushes_are_refused_with_a_clear_message(body: bytes, message: str) -> None:
    with pytest.raises(PushVerificationError, match=message) as err:
        parse_push(body, expected_api_key=API_KEY)
    assert PHONE not in str(err.value) and API_KEY not in str(err.value)


def test_the_webhook_answer_is_the_gateways_success_shape() -> None:
    assert json.loads(PUSH_ANSWER_BODY) == {"code": 200, "message": "OK"}


@pytest.mark.parametrize("value", ["21040917", "2104091735x", "2113091735", "2104321735", None, 2104091735])
def test_unreadable_arrive_times_are_none(value: object) -> None:
    assert parse_arrive_time(value) is None
