"""opass request building and signing: known answers from the manual, every endpoint's body."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from dispatcher.errors import ValidationError
from dispatcher.providers.opass.account import OPASS_RECEIPT_PATH, OpassAccount
from dispatcher.providers.opass.requests import (
    BALANCE_PATH,
    SEND_BATCH_PATH,
    SEND_PATH,
    TemplateVariable,
    json_text,
    plan_receipt_query,
    plan_send,
    plan_send_batch,
    plan_statistics,
    signed_request,
    template_variables,
)

# The manual's worked example of the sign string (接口签名 → 签名生成), verbatim but
# for its placeholders: 手机号1,手机号2 → P1,P2, 审核通过的模板编号 → CODE, 你的apiKey → KEY.
MANUAL_SIGN_STRING = (
    'phones=P1,P2&templateCode=CODE&templateParam=["p1","p2","p3"]'
    "&x-api-key=KEY&x-nonce=H95a7XT1h6&x-sign-method=HmacSHA256&x-timestamp=1641350184346"
)
MANUAL_TS_MS = 1641350184346
MANUAL_NONCE = "H95a7XT1h6"
ACCESS_KEY = "ACCESS"
HASHLIB_NAMES = {
    "HmacMD5": "md5",
    "HmacSHA1": "sha1",
    "HmacSHA224": "sha224",
    "HmacSHA256": "sha256",
    "HmacSHA384": "sha384",
    "HmacSHA512": "sha512",
}


def _account(**kw: object) -> OpassAccount:
    return OpassAccount(name="unit", api_key="KEY", access_key=ACCESS_KEY, base_url="http://gateway.test", **kw)  # type: ignore[arg-type]


def _expected_sign(message: str, method: str = "HmacSHA256") -> str:
    return hmac.new(ACCESS_KEY.encode(), message.encode(), getattr(hashlib, HASHLIB_NAMES[method])).hexdigest()


def test_the_manuals_worked_sign_string_is_what_we_sign() -> None:
    fields = {"phones": "P1,P2", "templateCode": "CODE", "templateParam": json_text(["p1", "p2", "p3"])}
    request = signed_request(_account(), SEND_PATH, fields, timestamp_ms=MANUAL_TS_MS, nonce=MANUAL_NONCE)
    assert request.headers["x-sign"] == _expected_sign(MANUAL_SIGN_STRING)
    assert request.headers["x-api-key"] == "KEY"
    assert request.headers["x-nonce"] == MANUAL_NONCE
    assert request.headers["x-timestamp"] == str(MANUAL_TS_MS)
    assert request.headers["x-sign-method"] == "HmacSHA256"


def test_a_validated_send_signs_the_manuals_string_with_real_phones() -> None:
    plan = plan_send(_account(), ["13800000001", "13800000002"], "CODE", ["p1", "p2", "p3"])
    request = signed_request(_account(), plan.path, plan.fields, timestamp_ms=MANUAL_TS_MS, nonce=MANUAL_NONCE)
    expected = MANUAL_SIGN_STRING.replace("P1,P2", "13800000001,13800000002")
    assert request.headers["x-sign"] == _expected_sign(expected)
    assert json.loads(request.body) == {
        "phones": "13800000001,13800000002",
        "templateCode": "CODE",
        "templateParam": '["p1","p2","p3"]',
    }


@pytest.mark.parametrize("method", sorted(HASHLIB_NAMES))
def test_every_sign_method_produces_its_hmac(method: str) -> None:
    fields = {"phones": "13800000001", "templateCode": "T1"}
    request = signed_request(_account(sign_method=method), SEND_PATH, fields, timestamp_ms=1, nonce="0123456789")
    message = (
        f"phones=13800000001&templateCode=T1&x-api-key=KEY&x-nonce=0123456789"
        f"&x-sign-method={method}&x-timestamp=1"
    )
    assert request.headers["x-sign-method"] == method
    assert request.headers["x-sign"] == _expected_sign(message, method)


def test_the_body_is_compact_utf8_json_with_a_json_content_type() -> None:
    plan = plan_send(_account(), ["13800000001"], "T", ["张三"])
    request = signed_request(_account(), plan.path, plan.fields, timestamp_ms=1, nonce="0123456789")
    assert request.body == '{"phones":"13800000001","templateCode":"T","templateParam":"[\\"张三\\"]"}'.encode()
    assert request.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    "value",
    ['say "hi"', "C:\\temp\\new", "line1\nline2\r\n", "emoji 😀👍🏽", "测\\试一\\下", "tab\tand }{,"],
)
def test_template_params_reach_the_gateway_exactly(value: str) -> None:
    plan = plan_send(_account(), ["13800000001"], "T", [value, "plain"])
    request = signed_request(_account(), plan.path, plan.fields, timestamp_ms=1, nonce="0123456789")
    sent = json.loads(request.body)["templateParam"]
    assert json.loads(sent) == [value, "plain"]
    # The signed text is the JSON text as sent, not a re-rendering of it.
    expected = (
        f"phones=13800000001&templateCode=T&templateParam={sent}"
        "&x-api-key=KEY&x-nonce=0123456789&x-sign-method=HmacSHA256&x-timestamp=1"
    )
    assert request.headers["x-sign"] == _expected_sign(expected)


def test_a_backslash_is_escaped_as_two_inside_template_param() -> None:
    plan = plan_send(_account(), ["13800000001"], "T", ["测\\试"])
    assert plan.fields["templateParam"] == '["测\\\\试"]'


def test_empty_optionals_are_left_out_of_body_and_sign() -> None:
    plan = plan_send(_account(), ["13800000001"], "T", [], bid=None, extend_code=None)
    assert plan.fields == {"phones": "13800000001", "templateCode": "T"}
    request = signed_request(_account(), plan.path, plan.fields, timestamp_ms=5, nonce="0123456789")
    message = (
        "phones=13800000001&templateCode=T&x-api-key=KEY&x-nonce=0123456789&x-sign-method=HmacSHA256&x-timestamp=5"
    )
    assert request.headers["x-sign"] == _expected_sign(message)


def test_send_carries_bid_and_extend_code_and_normalises_phones() -> None:
    plan = plan_send(_account(), ["+8613800000001", "0086 13800000002".replace(" ", ""), "8613800000003"], "T",
                     ["1", 2], bid="job-1.0.1", extend_code=12)
    assert plan.path == SEND_PATH
    assert plan.fields == {
        "phones": "13800000001,13800000002,13800000003",
        "templateCode": "T",
        "templateParam": '["1","2"]',
        "upExtendCode": "12",
        "bid": "job-1.0.1",
    }
    assert plan.client_id == "job-1.0.1"


def test_a_repeated_phone_is_sent_once_and_reported() -> None:
    plan = plan_send(_account(), ["13800000001", "+8613800000001", "13800000002"], "T")
    assert plan.fields["phones"] == "13800000001,13800000002"
    assert plan.duplicates == ("13800000001",)


def test_send_batch_pairs_each_phone_with_its_params() -> None:
    plan = plan_send_batch(
        _account(), [("13800000001", ["明", "1"]), ("13800000002", ["张三", 2])], "T", bid="b", extend_code="7"
    )
    assert plan.path == SEND_BATCH_PATH
    assert json.loads(plan.fields["phonesJson"]) == ["13800000001", "13800000002"]
    assert json.loads(plan.fields["templateParamJson"]) == [["明", "1"], ["张三", "2"]]
    assert plan.fields["bid"] == "b" and plan.fields["upExtendCode"] == "7"


def test_send_batch_without_variables_uses_the_manuals_empty_string_form() -> None:
    plan = plan_send_batch(_account(), [("13800000001", []), ("13800000002", ()), ("13800000003", [])], "T")
    assert plan.fields["templateParamJson"] == '["","",""]'


def test_send_batch_keeps_the_first_params_of_a_repeated_phone() -> None:
    plan = plan_send_batch(_account(), [("13800000001", ["a"]), ("13800000002", ["b"]), ("13800000001", ["c"])], "T")
    assert json.loads(plan.fields["phonesJson"]) == ["13800000001", "13800000002"]
    assert json.loads(plan.fields["templateParamJson"]) == [["a"], ["b"]]
    assert plan.duplicates == ("13800000001",)


def test_receipt_query_joins_message_ids_and_omits_what_is_absent() -> None:
    assert plan_receipt_query(["1", "2", "1"], "bid-1") == {"msgId": "1,2", "bid": "bid-1"}
    assert plan_receipt_query() == {}
    assert OPASS_RECEIPT_PATH == "/sms/arriveRes/qry"


def test_statistics_sends_iso_dates_and_integer_paging() -> None:
    import datetime as dt

    fields = plan_statistics(dt.date(2024, 1, 2), "2024-01-31", 2, 50)
    assert fields == {"startDate": "2024-01-02", "endDate": "2024-01-31", "page": 2, "pageSize": 50}
    request = signed_request(_account(), "/sms/send/statistics", fields, timestamp_ms=1, nonce="0123456789")
    assert json.loads(request.body)["page"] == 2  # a JSON number, not text
    message = (
        "endDate=2024-01-31&page=2&pageSize=50&startDate=2024-01-02"
        "&x-api-key=KEY&x-nonce=0123456789&x-sign-method=HmacSHA256&x-timestamp=1"
    )
    assert request.headers["x-sign"] == _expected_sign(message)


def test_balance_signs_only_the_headers_and_sends_an_empty_object() -> None:
    request = signed_request(_account(), BALANCE_PATH, {}, timestamp_ms=MANUAL_TS_MS, nonce=MANUAL_NONCE)
    # The manual's own example for this endpoint.
    message = "x-api-key=KEY&x-nonce=H95a7XT1h6&x-sign-method=HmacSHA256&x-timestamp=1641350184346"
    assert request.headers["x-sign"] == _expected_sign(message)
    assert request.body == b"{}"


def test_template_variables_are_read_in_order_with_their_lengths() -> None:
    assert template_variables("{姓名,10}您好，您本次收入{金额,10}元。") == (
        TemplateVariable("姓名", 10),
        TemplateVariable("金额", 10),
    )
    assert template_variables("{动态签名,20}您有一个事务需要处理。")[0] == TemplateVariable("动态签名", 20)
    assert template_variables("您有一个事务需要处理。") == ()


def test_send_batch_body_is_the_manuals_three_fields_as_json_text() -> None:
    """The manual's sendBatch sample: phonesJson and templateParamJson are JSON text, templateCode plain."""
    plan = plan_send_batch(_account(), [("15900000000", ["明"]), ("13500000000", ["张三"])], "67587116174517")
    # The manual's example values: "[\"15900000\",\"13500000\"]" and "[[\"明\"],[\"张三\"]]" (compact, UTF-8 kept).
    assert plan.fields == {
        "phonesJson": '["15900000000","13500000000"]',
        "templateCode": "67587116174517",
        "templateParamJson": '[["明"],["张三"]]',
    }


def test_statistics_pages_default_to_the_manuals_1_and_10() -> None:
    """The manual: page 默认1, pageSize 默认10."""
    assert plan_statistics("2024-01-01", "2024-01-31") == {
        "startDate": "2024-01-01", "endDate": "2024-01-31", "page": 1, "pageSize": 10,
    }


def test_json_text_is_compact_and_keeps_non_ascii() -> None:
    """What is signed is what is sent: no spaces after ',' or ':', Chinese as UTF-8, not \\u escapes."""
    assert json_text({"a": ["测试", "b"]}) == '{"a":["测试","b"]}'


def test_a_brace_group_whose_name_holds_a_comma_is_text_not_a_variable() -> None:
    """Variables are {name,maxLen} (the manual's {事务编号,30}); "{1,2,3}" is literal text, as the sandbox reads it."""
    assert template_variables("编号{1,2,3}：{事务编号,30}") == (TemplateVariable("事务编号", 30),)


def test_a_chunk_read_back_from_the_ledger_is_sent_as_stored_and_not_scanned_again() -> None:
    """The numbers of a stored chunk (``split_phones``) build the same request as the same numbers given by an
    app; they are not scanned again, which a list from anywhere else always is; the count limit still holds."""
    from dispatcher.ledger import join_phones, split_phones
    from dispatcher.phones import StoredNumbers

    numbers = [f"1380000{i:04d}" for i in range(1000)]
    stored = split_phones(join_phones(numbers, 11), 11)
    assert isinstance(stored, StoredNumbers)
    assert plan_send(_account(), stored, "T", ["1"]).fields == plan_send(_account(), numbers, "T", ["1"]).fields
    # A bad number in a plain list is refused; the same in numbers marked as stored is taken as checked.
    bad = ["1380000000x"]
    with pytest.raises(ValidationError, match=r"phones\[0\]"):
        plan_send(_account(), bad, "T", ["1"])
    assert plan_send(_account(), StoredNumbers(bad), "T", ["1"]).fields["phones"] == "1380000000x"
    with pytest.raises(ValidationError, match="phones"):
        plan_send(_account(), StoredNumbers([*numbers, "13900000000"]), "T", ["1"])
