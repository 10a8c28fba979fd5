"""opass pushes: status reports and uplinks parsed, forged and malformed bodies refused."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from dispatcher.errors import PushVerificationError
from dispatcher.providers.opass.push import PUSH_ANSWER_BODY, parse_arrive_time, parse_push
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


# -- exact outcomes: what a webhook log line and a receipt say -------------------------------------------

UPLINK = {"srcId": "10690001", "tel": PHONE, "content": "退订 TD", "arriveTime": "2104091735"}
REFUSALS: dict[str, tuple[bytes, str]] = {
    "not JSON": (b"{not json", "opass push body is not UTF-8 JSON"),
    "not UTF-8": (b'{"apiKey": "\xff"}', "opass push body is not UTF-8 JSON"),
    "not an object": (b"[1,2]", "opass push body is not a JSON object"),
    "no apiKey": (_body({"data": []}), "opass push has no apiKey"),
    "empty apiKey": (_body({"apiKey": "", "data": []}), "opass push has no apiKey"),
    # A number or a list is no key at all, not a key to compare.
    "numeric apiKey": (_body({"apiKey": 8767, "data": []}), "opass push has no apiKey"),
    "list apiKey": (_body({"apiKey": [API_KEY], "data": []}), "opass push has no apiKey"),
    "wrong apiKey": (_body({"apiKey": API_KEY[:-1] + "1", "data": []}),
                     "opass push apiKey does not match this account"),
    "data missing": (_body({"apiKey": API_KEY}), "opass push data is not a list"),
    "item not an object": (_body({"apiKey": API_KEY, "data": [_status(), 7]}), "opass push data[1] is not an object"),
    # The kind is named from the item itself, and the first item it disagrees with is named.
    "uplink after two reports": (_body({"apiKey": API_KEY, "data": [_status(), _status(), UPLINK]}),
                                 "opass push data[2] is an uplink, data[0] a status report"),
    "report after an uplink": (_body({"apiKey": API_KEY, "data": [UPLINK, _status()]}),
                               "opass push data[1] is a status report, data[0] an uplink"),
    # A reply carrying a msgId but no arriveResult is half a report: neither kind, not an uplink.
    "uplink with a msgId": (_body({"apiKey": API_KEY, "data": [{**UPLINK, "msgId": "577951956854276096"}]}),
                            "opass push data[0] is neither a status report nor an uplink"),
    "report without tel": (_body({"apiKey": API_KEY, "data": [_status(), _status(tel=None)]}),
                           "opass push data[1] lacks a required field (msgId, tel, status or content)"),
    "report with a blank status": (_body({"apiKey": API_KEY, "data": [_status(arriveResult="  ")]}),
                                   "opass push data[0] lacks a required field (msgId, tel, status or content)"),
    "report with a boolean msgId": (_body({"apiKey": API_KEY, "data": [_status(msgId=True)]}),
                                    "opass push data[0] lacks a required field (msgId, tel, status or content)"),
    "uplink with a list as tel": (_body({"apiKey": API_KEY, "data": [{**UPLINK, "tel": [PHONE]}]}),
                                  "opass push data[0] lacks a required field (msgId, tel, status or content)"),
}


@pytest.mark.parametrize(("body", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_each_refusal_says_exactly_what_is_wrong_and_where(body: bytes, message: str) -> None:
    """The whole message: what is wrong, the item's index, never its phone or the key."""
    with pytest.raises(PushVerificationError) as err:
        parse_push(body, expected_api_key=API_KEY)
    assert str(err.value) == message


def test_a_manual_report_reads_whole_and_json_numbers_count_as_text() -> None:
    """Every Receipt field from the manual's item; msgId as a JSON number reads as its digits, blanks are absent."""
    item = _status(msgId=577951956854276096, tel=f" {PHONE} ", bid=" ", arriveResult="DELIVRD")
    (receipt,) = parse_push(_body({"apiKey": API_KEY, "data": [item]}), expected_api_key=API_KEY)
    assert receipt == Receipt("opass", "577951956854276096", PHONE, "DELIVRD", True, _epoch_ms(2021, 4, 9, 9, 35),
                              None, None)


@pytest.mark.parametrize(("bid", "client_id"), [("xxxx", "xxxx"), (42, "42"), (True, None), ({"a": 1}, None),
                                                ("", None)])
def test_the_echoed_bid_is_text_or_absent(bid: object, client_id: str | None) -> None:
    """The bid comes back as we sent it; a boolean or an object is no bid (receipts match by it)."""
    (receipt,) = parse_push(_body({"apiKey": API_KEY, "data": [_status(bid=bid)]}), expected_api_key=API_KEY)
    assert isinstance(receipt, Receipt) and receipt.client_id == client_id


def test_a_manual_uplink_reads_whole() -> None:
    """Every Uplink field from the manual's item: provider opass, srcId as ext, no message id."""
    (uplink,) = parse_push(_body({"apiKey": API_KEY, "data": [UPLINK]}), expected_api_key=API_KEY)
    assert uplink == Uplink("opass", PHONE, "退订 TD", "10690001", _epoch_ms(2021, 4, 9, 9, 35), None)


@pytest.mark.parametrize(("value", "at"), [
    ("2104091735", (2021, 4, 9, 9, 35)),
    ("0001010000", (1999, 12, 31, 16, 0)),  # yy 00 is 2000; midnight in Beijing is 16:00 UTC the day before
    ("2402291200", (2024, 2, 29, 4, 0)),  # a leap day exists in 2024
])
def test_arrive_times_are_beijing_minutes(value: str, at: tuple[int, ...]) -> None:
    """``yyMMddHHmm`` in UTC+8, to the minute, as epoch milliseconds."""
    assert parse_arrive_time(value) == _epoch_ms(*at)


@pytest.mark.parametrize("value", ["２１０４０９１７３５", "2302291200", "2104 91735"])
def test_anything_but_ten_ascii_digits_of_a_real_date_is_unreadable(value: str) -> None:
    """Only ten ASCII digits of a real date are a time: strptime alone would read ``2104 91735`` (day " 9")."""
    assert parse_arrive_time(value) is None
