"""opass answer parsing: every code to its one class, failPhones, receipts, statistics, balance."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from dispatcher.errors import (
    AccountFatalError,
    AmbiguousError,
    ProviderError,
    RequestRejectedError,
    ThrottledError,
    TransientError,
)
from dispatcher.providers.opass.account import OpassAccount
from dispatcher.providers.opass.client import (
    FAIL_PHONES_CODE,
    parse_balance_answer,
    parse_receipts_answer,
    parse_send_answer,
    parse_statistics_answer,
)
from dispatcher.providers.opass.requests import SendPlan, plan_send
from tests.unit.test_code_tables import OPASS_CLASSES

ACCOUNT = OpassAccount(name="unit", api_key="KEY", access_key="ACCESS")
PHONES = ["13800000001", "13800000002", "13800000003", "13800000001"]


def _plan(bid: str | None = "job.0.1") -> SendPlan:
    return plan_send(ACCOUNT, PHONES, "T", bid=bid)


def _ok(data: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"code": 200, "message": "OK", "data": data, "requestId": "req-1", **top}


#: Every opass error code and its class, from the hand-written table (never from OPASS_CODES).
ERROR_CLASSES = {code: cls for code, cls in OPASS_CLASSES.items() if cls is not None}


def test_an_accepted_send_gives_msg_id_bid_request_id_and_duplicates() -> None:
    result = parse_send_answer(_ok({"msgId": "574730770464800768"}), _plan(), account="unit")
    assert result.provider == "opass"
    assert result.account == "unit"
    assert result.message_id == "574730770464800768"
    assert result.client_id == "job.0.1"
    assert result.accepted == ("13800000001", "13800000002", "13800000003")
    assert result.failed == ()
    assert result.duplicates == ("13800000001",)
    assert result.request_id == "req-1"


def test_fail_phones_are_failed_and_the_rest_accepted() -> None:
    doc = _ok({"msgId": "m", "desc": "null", "failPhones": "13800000002,+8613800000003"})
    result = parse_send_answer(doc, _plan(), account="unit")
    assert result.accepted == ("13800000001",)
    assert [f.phone for f in result.failed] == ["13800000002", "13800000003"]
    assert {f.code for f in result.failed} == {FAIL_PHONES_CODE}


def test_fail_phones_as_a_json_list_are_read_too() -> None:
    result = parse_send_answer(_ok({"msgId": "m", "failPhones": ["13800000001"]}), _plan(), account="unit")
    assert [f.phone for f in result.failed] == ["13800000001"]


@pytest.mark.parametrize("code", [200, "200", " 200 "])
def test_the_success_code_may_be_a_number_or_text(code: object) -> None:
    doc = {"code": code, "data": {"msgId": 574730770464800768}}
    assert parse_send_answer(doc, _plan(), account="unit").message_id == "574730770464800768"


def test_the_batch_tables_lower_case_msgid_is_read() -> None:
    assert parse_send_answer(_ok({"msgid": "m2"}), _plan(), account="unit").message_id == "m2"


@pytest.mark.parametrize("data", [{}, {"msgId": ""}, {"msgId": None}, None, "x"])
def test_a_200_without_a_msg_id_is_ambiguous(data: object) -> None:
    with pytest.raises(AmbiguousError) as err:
        parse_send_answer({"code": 200, "data": data, "requestId": "r"}, _plan(), account="unit")
    assert err.value.request_id == "r"


def test_an_answer_without_a_code_is_ambiguous_for_a_send_and_transient_for_a_query() -> None:
    with pytest.raises(AmbiguousError):
        parse_send_answer({"data": {"msgId": "m"}}, _plan(), account="unit")
    with pytest.raises(TransientError):
        parse_receipts_answer({"data": []}, account="unit")


@pytest.mark.parametrize(("code", "expected"), ERROR_CLASSES.items(), ids=ERROR_CLASSES.keys())
@pytest.mark.parametrize("as_text", [False, True], ids=["int", "str"])
def test_every_opass_code_raises_its_class_from_a_send(code: str, expected: type[ProviderError],
                                                       as_text: bool) -> None:
    doc = {"code": code if as_text else int(code), "message": "gateway says no", "requestId": "req-9"}
    with pytest.raises(ProviderError) as err:
        parse_send_answer(doc, _plan(), account="unit")
    assert type(err.value).__name__ == expected.__name__
    assert err.value.code == code
    assert err.value.request_id == "req-9"
    assert err.value.account == "unit"


@pytest.mark.parametrize(("code", "expected"), ERROR_CLASSES.items(), ids=ERROR_CLASSES.keys())
def test_every_opass_code_raises_its_class_from_a_query(code: str, expected: type[ProviderError]) -> None:
    with pytest.raises(ProviderError) as err:
        parse_balance_answer({"code": int(code)}, account="unit")
    assert type(err.value).__name__ == expected.__name__


def test_throttles_wait_one_second_for_sends_and_twenty_for_queries() -> None:
    with pytest.raises(ThrottledError) as send_err:
        parse_send_answer({"code": 6000}, _plan(), account="unit")
    assert send_err.value.retry_after_s == 1.0
    for parse in (
        lambda d: parse_receipts_answer(d, account="unit"),
        lambda d: parse_balance_answer(d, account="unit"),
        lambda d: parse_statistics_answer(d, account="unit", page=1, page_size=10),
    ):
        with pytest.raises(ThrottledError) as query_err:
            parse(dict(code="6000"))
        assert query_err.value.retry_after_s == 20.0


def test_an_unknown_code_is_a_rejected_request() -> None:
    with pytest.raises(RequestRejectedError, match="unknown gateway code"):
        parse_send_answer({"code": 12345}, _plan(), account="unit")


def test_a_phone_quoted_in_a_gateway_message_is_masked() -> None:
    with pytest.raises(AccountFatalError) as err:
        parse_send_answer({"code": 2001, "message": "13812345678 签名错误"}, _plan(), account="unit")
    assert "13812345678" not in str(err.value)
    assert "138****5678" in str(err.value)


def test_receipts_are_read_with_beijing_time_and_bid() -> None:
    doc = _ok([])
    doc["data"] = [
        {"msgId": "640614750879358976", "tel": "13800000001", "arrive": "DELIVRD", "arriveTime": "2308071315",
         "bid": "202303231335001220"},
        {"msgId": "640614750879358976", "tel": "13800000002", "arrive": "UNDELIV", "arriveTime": "2308071316"},
    ]
    first, second = parse_receipts_answer(doc, account="unit")
    at = dt.datetime(2023, 8, 7, 5, 15, tzinfo=dt.UTC)  # 13:15 in Beijing
    assert (first.message_id, first.phone, first.status, first.delivered) == (
        "640614750879358976", "13800000001", "DELIVRD", True)
    assert first.at_ms == int(at.timestamp() * 1000)
    assert first.client_id == "202303231335001220"
    assert (second.status, second.delivered, second.client_id) == ("UNDELIV", False, None)


@pytest.mark.parametrize("state", ["EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD", "delivrd"])
def test_only_delivrd_counts_as_delivered(state: str) -> None:
    doc = _ok([])
    doc["data"] = [{"msgId": "m", "tel": "13800000001", "arrive": state, "arriveTime": "2308071315"}]
    assert parse_receipts_answer(doc, account="unit")[0].delivered is False


def test_unreadable_receipt_items_are_skipped_and_bad_times_left_empty() -> None:
    doc = _ok([])
    doc["data"] = [
        {"tel": "13800000001", "arrive": "DELIVRD"},
        "junk",
        {"msgId": "m", "tel": "13800000002", "arrive": "DELIVRD", "arriveTime": "2313991315"},
    ]
    (receipt,) = parse_receipts_answer(doc, account="unit")
    assert receipt.phone == "13800000002" and receipt.at_ms is None


def test_an_empty_receipt_answer_is_no_receipts() -> None:
    assert parse_receipts_answer({"code": 200, "message": "查询成功"}, account="unit") == []


def test_statistics_rows_and_top_level_total() -> None:
    doc = _ok([])
    doc["data"] = [{"totalCount": 10, "successCount": "8", "failCount": 1, "noReceiptCount": 1,
                    "sendDate": "2024-01-02"}]
    doc["totalSize"] = 31
    page = parse_statistics_answer(doc, account="unit", page=2, page_size=1)
    assert page.total_size == 31 and (page.page, page.page_size) == (2, 1)
    row = page.rows[0]
    assert (row.send_date, row.total, row.success, row.failed, row.no_receipt) == ("2024-01-02", 10, 8, 1, 1)


def test_statistics_total_size_inside_data() -> None:
    doc = _ok({"list": [{"totalCount": 3, "sendDate": "2024-01-03"}], "totalSize": "7"})
    page = parse_statistics_answer(doc, account="unit", page=1, page_size=10)
    assert page.total_size == 7
    assert page.rows[0].total == 3 and page.rows[0].success == 0


def test_balance_items_and_total() -> None:
    doc = {"code": 200, "data": [
        {"itemName": "行业短信", "residueValue": 9784},
        {"itemName": "会员短信", "residueValue": "10007"},
        {"itemName": "推广短信", "residueValue": 6506},
    ]}
    balance = parse_balance_answer(doc, account="unit")
    assert [i.name for i in balance.items] == ["行业短信", "会员短信", "推广短信"]
    assert balance.total == 9784 + 10007 + 6506
    assert (balance.provider, balance.account) == ("opass", "unit")
