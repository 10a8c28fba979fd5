"""opass gateway behaviour over real HTTP: validation codes, batches, balance, queries, limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.integration.test_sandbox_support import TPL_CODE, TPL_NO_VARS, TPL_TWO, opass, phones


def send(url: str, **body: Any) -> dict[str, Any]:
    return opass(url, "/message/send", body)


def test_send_answers_the_vendor_envelope_and_renders_the_template(sandbox: Any, sandbox_url: str) -> None:
    answer = send(sandbox_url, phones="13800000001", templateCode=TPL_TWO, templateParam='["张三","12.5"]', bid="b-1")
    assert answer["code"] == 200 and answer["message"] == "OK"
    assert set(answer) == {"code", "message", "data", "requestId"}
    assert answer["data"]["desc"] == "提交成功" and "failPhones" not in answer["data"]
    [message] = sandbox.messages("13800000001")
    assert message["text"] == "张三您好，您本次收入12.5元。"
    assert (message["gateway"], message["message_id"]) == ("opass", answer["data"]["msgId"])
    assert message["client_id"] == "b-1"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"templateCode": TPL_CODE}, 40004),
        ({"phones": "13800000001"}, 40004),
        ({"phones": "13800000001", "templateCode": TPL_CODE, "templateParam": '["1"]', "upExtendCode": "1a"}, 40004),
        ({"phones": "13800000001", "templateCode": TPL_CODE, "templateParam": '["1"]', "bid": "x" * 65}, 40004),
        ({"phones": "13800000001", "templateCode": "999"}, 60001),
        ({"phones": "13800000001", "templateCode": TPL_CODE, "templateParam": "[1]"}, 60006),
        ({"phones": "13800000001", "templateCode": TPL_CODE, "templateParam": "not json"}, 60006),
        ({"phones": "13800000001", "templateCode": TPL_CODE, "templateParam": '["1","2"]'}, 60003),
        ({"phones": "13800000001", "templateCode": TPL_CODE, "templateParam": '["1234567"]'}, 60004),
        ({"phones": "12345,abc", "templateCode": TPL_NO_VARS}, 60007),
        ({"phones": ",".join(phones(1001)), "templateCode": TPL_NO_VARS}, 60008),
    ],
)
def test_send_refuses_bad_requests_with_the_manuals_code(sandbox: Any, sandbox_url: str, body: dict, code: int) -> None:
    assert send(sandbox_url, **body)["code"] == code
    assert sandbox.ledger()["accepted"]["opass"] == {}


def test_bad_and_blacklisted_numbers_go_to_fail_phones_and_the_rest_is_sent(sandbox: Any, sandbox_url: str) -> None:
    sandbox.configure(blacklist=["13800000002"])
    answer = send(sandbox_url, phones="13800000001,13800000002,1234,+8613800000003", templateCode=TPL_NO_VARS)
    assert answer["code"] == 200
    assert answer["data"]["failPhones"] == "13800000002,1234"
    assert sandbox.ledger()["accepted"]["opass"] == {"13800000001": 1, "13800000003": 1}


def test_send_batch_accepts_both_forms_for_a_template_without_variables(sandbox: Any, sandbox_url: str) -> None:
    numbers = json.dumps(["13800000001", "13800000002"])
    for params in ('["",""]', "[[],[]]"):
        answer = opass(sandbox_url, "/message/sendBatch",
                       {"phonesJson": numbers, "templateCode": TPL_NO_VARS, "templateParamJson": params})
        assert answer["code"] == 200, (params, answer)
    assert sandbox.ledger()["accepted"]["opass"] == {"13800000001": 2, "13800000002": 2}


def test_send_batch_renders_one_text_per_phone_and_checks_counts(sandbox: Any, sandbox_url: str) -> None:
    body = {"phonesJson": '["13800000001","13800000002"]', "templateCode": TPL_TWO,
            "templateParamJson": '[["明","1"],["张三","2"]]'}
    assert opass(sandbox_url, "/message/sendBatch", body)["code"] == 200
    assert sandbox.messages("13800000002")[0]["text"] == "张三您好，您本次收入2元。"
    assert opass(sandbox_url, "/message/sendBatch", {**body, "templateParamJson": '[["明","1"]]'})["code"] == 60002
    assert opass(sandbox_url, "/message/sendBatch", {**body, "phonesJson": "{}"})["code"] == 60007
    sandbox.configure(batch_max=1)
    assert opass(sandbox_url, "/message/sendBatch", body)["code"] == 60008


def test_sends_cost_one_unit_per_segment_and_short_balance_answers_40002(sandbox: Any, sandbox_url: str) -> None:
    long_code = "2000000000000000001"
    sandbox.configure(opass={"templates": {long_code: "字" * 80},  # 80 chars: 2 parts of 67
                             "accounts": {"sandbox-api-key": {"balance": {"行业短信": 5}}}},
                      limits={"opass_query": None, "opass_residue": None})
    assert send(sandbox_url, phones="13800000001,13800000002", templateCode=long_code)["code"] == 200
    left = opass(sandbox_url, "/sms/residueValue/qry", {})["data"]
    assert left[0] == {"itemName": "行业短信", "residueValue": 1}
    assert [i["itemName"] for i in left] == ["行业短信", "会员短信", "推广短信"]
    assert send(sandbox_url, phones="13800000003,13800000004", templateCode=TPL_NO_VARS)["code"] == 40002
    assert "13800000003" not in sandbox.ledger()["accepted"]["opass"]


def test_statistics_count_what_was_really_sent_per_day(sandbox: Any, sandbox_url: str) -> None:
    sandbox.configure(receipt_delay_s=0.0, outcomes={"DELIVRD": 1.0}, limits={"opass_query": None})
    send(sandbox_url, phones=",".join(phones(5)), templateCode=TPL_NO_VARS)
    answer = opass(sandbox_url, "/sms/send/statistics", {"startDate": "2000-01-01", "endDate": "2999-12-31"})
    assert answer["code"] == 200 and answer["totalSize"] == 1
    [row] = answer["data"]
    assert (row["totalCount"], row["successCount"], row["failCount"], row["noReceiptCount"]) == (5, 5, 0, 0)
    for bad in ({"startDate": "2024/01/01", "endDate": "2024-01-02"},
                {"startDate": "2024-01-01", "endDate": "2024-01-02", "pageSize": 51}):
        assert opass(sandbox_url, "/sms/send/statistics", bad)["code"] == 40004


def test_residue_value_is_limited_to_once_per_15_s(sandbox: Any, sandbox_url: str) -> None:
    codes = [opass(sandbox_url, "/sms/residueValue/qry", {})["code"] for _ in range(4)]
    assert codes == [200, 6000, 6000, 6000]
    limits = sandbox.stats()["limits"]["opass"]["sandbox-api-key"]
    assert limits["opass_residue"] == {"max_seen": 1, "max_attempted": 4, "refused": 3, "limit": 1, "window_s": 15.0}


def test_query_apis_share_three_calls_per_minute(sandbox: Any, sandbox_url: str) -> None:
    codes = [opass(sandbox_url, "/sms/arriveRes/qry", {})["code"] for _ in range(3)]
    day = {"startDate": "2024-01-01", "endDate": "2024-01-01"}
    codes.append(opass(sandbox_url, "/sms/send/statistics", day)["code"])
    assert codes == [200, 200, 200, 6000]


def test_send_rate_limit_answers_6000_and_reports_the_busiest_window(sandbox: Any, sandbox_url: str) -> None:
    sandbox.configure(limits={"opass_send": {"max": 2, "window_s": 60}})
    codes = [send(sandbox_url, phones="13800000001", templateCode=TPL_NO_VARS)["code"] for _ in range(3)]
    assert codes == [200, 200, 6000]
    assert sandbox.stats()["limits"]["opass"]["sandbox-api-key"]["opass_send"]["max_seen"] == 2


def test_ip_whitelist_and_unsigned_requests(sandbox: Any, sandbox_url: str) -> None:
    assert requests.post(sandbox_url + "/message/send", json={}, timeout=5).json()["code"] == 2001
    sandbox.configure(opass={"accounts": {"sandbox-api-key": {"ip_whitelist": ["10.9.9.9"]}}})
    assert send(sandbox_url, phones="13800000001", templateCode=TPL_NO_VARS)["code"] == 2000


def test_health_check_is_unsigned(sandbox_url: str) -> None:
    for path in ("/health/info", "/health/info/"):
        assert requests.post(sandbox_url + path, timeout=5).json() == {"code": 200, "message": "OK",
                                                                       "data": {"status": "UP"}}
