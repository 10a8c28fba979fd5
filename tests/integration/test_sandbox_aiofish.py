"""aiofish SMS, vsms and isms over real HTTP: variants, auth, codes, HTTP 405/415, pulls."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from dispatcher.local.sandbox import demo
from dispatcher.local.stack import wait_for
from dispatcher.providers.aiofish.crypto import aes_encrypt_hex, password_md5
from tests.integration.test_sandbox_support import (
    fish_envelope,
    fish_plain,
    now_ms,
    vsms_headers,
)

TEXT = "【沙箱】您的验证码是123456，5分钟内有效。"
KEY = demo.AIOFISH_AES_KEY


def test_plain_send_answers_per_number_details(sandbox: Any, sandbox_url: str) -> None:
    answer = fish_plain(sandbox_url, "/rest/sms/sendSms",
                        {"mobile": "13800000001,123", "content": TEXT, "smsId": "client-1"}).json()
    assert answer["code"] == 200 and answer["subStat"] == "r:000" and answer["smsId"] == "client-1"
    assert answer["resDetail"] == [
        {"phoneNumber": "13800000001", "stat": "r:000", "statDes": "提交成功"},
        {"phoneNumber": "123", "stat": "p:002", "statDes": "号码错误"},
    ]
    assert sandbox.ledger()["accepted"]["aiofish"] == {"13800000001": 1}
    assert sandbox.messages("13800000001")[0]["text"] == TEXT


@pytest.mark.parametrize("joined", [False, True], ids=["each-encrypted", "list-encrypted"])
def test_phone_encrypted_send_accepts_both_readings_and_echoes_ciphertexts(
    sandbox: Any, sandbox_url: str, joined: bool
) -> None:
    numbers = ["13800000001", "13800000002"]
    each = [aes_encrypt_hex(KEY, n) for n in numbers]
    mobile = aes_encrypt_hex(KEY, ",".join(numbers)) if joined else ",".join(each)
    answer = fish_plain(sandbox_url, "/rest/sms/sendSmsByEncrypt", {"mobile": mobile, "content": TEXT}).json()
    assert answer["subStat"] == "r:000", answer
    assert [d["phoneNumber"] for d in answer["resDetail"]] == each
    assert len(answer["smsId"]) == 32
    assert sandbox.ledger()["accepted"]["aiofish"] == {"13800000001": 1, "13800000002": 1}


def test_phone_encrypted_send_with_a_wrong_key_is_a_decryption_failure(sandbox: Any, sandbox_url: str) -> None:
    mobile = aes_encrypt_hex("another-16b-key!", "13800000001")
    answer = fish_plain(sandbox_url, "/rest/sms/sendSmsByEncrypt", {"mobile": mobile, "content": TEXT}).json()
    assert (answer["code"], answer["subStat"]) == (122, "p:011")


def test_fully_encrypted_send_is_accepted_and_checked(sandbox: Any, sandbox_url: str) -> None:
    path = "/rest/sms/sendSms/encryption"
    biz = {"mobile": "13800000001,bad", "content": TEXT, "subCode": "11"}
    answer = requests.post(sandbox_url + path, json=fish_envelope(biz), timeout=5).json()
    assert answer["subStat"] == "r:000" and "resDetail" not in answer
    assert sandbox.ledger()["accepted"]["aiofish"] == {"13800000001": 1}

    tampered = fish_envelope(biz)
    tampered["sign"] = tampered["sign"][:-1] + ("0" if tampered["sign"][-1] != "0" else "1")
    stale = fish_envelope(biz, ts_ms=now_ms() - 6 * 60_000)
    wrong_key = fish_envelope(biz, key="another-16b-key!")
    for body, sub_stat in ((tampered, "p:003"), (stale, "p:003"), (wrong_key, "p:011")):
        got = requests.post(sandbox_url + path, json=body, timeout=5).json()
        assert got["subStat"] == sub_stat, (body, got)
    assert sandbox.ledger()["accepted"]["aiofish"] == {"13800000001": 1}


def test_batch_sends_plain_and_encrypted(sandbox: Any, sandbox_url: str) -> None:
    mobiles = [{"mobile": "13800000001", "content": TEXT, "templateId": "123"},
               {"mobile": "13800000002", "content": "【沙箱】第二条"}]
    plain = fish_plain(sandbox_url, "/rest/sms/batchSendSms", {"mobiles": mobiles, "sendTime": None})
    assert plain.json()["code"] == 200
    answer = requests.post(sandbox_url + "/rest/sms/batchSendSms/encryption",
                           json=fish_envelope({"mobiles": mobiles, "smsId": "b2"}), timeout=5).json()
    assert (answer["code"], answer["smsId"]) == (200, "b2")
    assert sandbox.messages("13800000002")[-1]["text"] == "【沙箱】第二条"
    too_many = [{"mobile": "13800000001", "content": TEXT}] * 201
    assert fish_plain(sandbox_url, "/rest/sms/batchSendSms", {"mobiles": too_many}).json()["subStat"] == "p:006"


@pytest.mark.parametrize(
    ("body", "code", "sub_stat"),
    [
        ({"password": password_md5("wrong"), "mobile": "13800000001", "content": TEXT}, 401, "p:003"),
        ({"mobile": "13800000001", "content": "no signature"}, 421, "p:001"),
        ({"mobile": "13800000001", "content": "【沙箱】" + "字" * 500}, 421, "p:001"),
        ({"mobile": "123,456", "content": TEXT}, 411, "p:002"),
        ({"mobile": ",".join(["13800000001"] * 2001), "content": TEXT}, 412, "p:006"),
    ],
)
def test_plain_send_errors_use_the_code_table(sandbox: Any, sandbox_url: str, body: dict, code: int,
                                              sub_stat: str) -> None:
    answer = fish_plain(sandbox_url, "/rest/sms/sendSms", body).json()
    assert (answer["code"], answer["subStat"], answer["smsId"]) == (code, sub_stat, None)
    assert sandbox.ledger()["accepted"]["aiofish"] == {}


def test_http_level_errors_415_and_405(sandbox: Any, sandbox_url: str) -> None:
    body = json.dumps({"account": demo.AIOFISH_ACCOUNT})
    assert requests.post(sandbox_url + "/rest/sms/sendSms", data=body, headers={"Content-Type": "text/plain"},
                         timeout=5).status_code == 415
    ok_type = {"Content-Type": "application/json;charset=utf-8"}
    assert requests.post(sandbox_url + "/rest/sms/sendSms", data=body, headers=ok_type, timeout=5).status_code == 200
    assert requests.get(sandbox_url + "/rest/sms/sendSms", timeout=5).status_code == 405
    assert requests.post(sandbox_url + "/rest/sms/getBalance", json={}, timeout=5).status_code == 405


def test_balance_is_charged_per_segment_and_limited_to_once_per_5_s(sandbox: Any, sandbox_url: str) -> None:
    sandbox.configure(aiofish={"accounts": {"sandbox": {"balance": 3}}})
    assert fish_plain(sandbox_url, "/rest/sms/sendSms", {"mobile": "13800000001", "content": "【沙箱】" + "字" * 70}
                      ).json()["code"] == 200  # 74 chars: 2 parts
    query = {"account": demo.AIOFISH_ACCOUNT, "password": password_md5(demo.AIOFISH_PASSWORD)}
    first = requests.get(sandbox_url + "/rest/sms/getBalance", params=query, timeout=5).json()
    assert first == {"revStat": "r:000", "revStatDes": "您的短信余额为:1 条", "code": 200, "demo": None}
    second = requests.get(sandbox_url + "/rest/sms/getBalance", params=query, timeout=5).json()
    assert (second["code"], second["revStat"]) == (121, "p:010")
    short = fish_plain(sandbox_url, "/rest/sms/sendSms", {"mobile": "13800000001,13800000002", "content": TEXT})
    assert (short.json()["code"], short.json()["subStat"]) == (102, "p:004")


def test_get_reply_returns_injected_uplinks_once(sandbox: Any, sandbox_url: str) -> None:
    sandbox.inject_uplink("aiofish", demo.AIOFISH_ACCOUNT, "13800000001", "收到", ext="11")
    query = {"account": demo.AIOFISH_ACCOUNT, "password": password_md5(demo.AIOFISH_PASSWORD)}
    first = requests.get(sandbox_url + "/rest/sms/getReply", params=query, timeout=5).json()
    assert first["code"] == 200 and first["revStatDes"] == "获取上行短信条数:1"
    [reply] = first["resDetail"]
    assert (reply["phoneNumber"], reply["content"], reply["subCode"]) == ("13800000001", "收到", "11")
    assert requests.get(sandbox_url + "/rest/sms/getReply", params=query, timeout=5).json()["resDetail"] == []


# ------------------------------------------------------------------ vsms / isms


def _vsms_template(url: str, title: str, ts: str | None = None, secret: str = demo.AIOFISH_APP_SECRET,
                   text: str = "【沙箱】您好#p_1#") -> dict[str, Any]:
    ts = ts or str(now_ms())
    data = {"appKey": demo.AIOFISH_APP_KEY, "ts": ts, "title": title, "content": [
        {"orderBy": 1, "frameIndex": 1, "extType": 2, "text": "aaa.jpg"},
        {"orderBy": 2, "frameIndex": 1, "extType": 1, "text": text}]}
    files: dict[str, Any] = {"data": (None, json.dumps(data, ensure_ascii=False)),
                             "file": ("aaa.jpg", b"\xff\xd8jpeg", "image/jpeg")}
    answer: dict[str, Any] = requests.post(url + "/rest/vsms/v1/tpl", files=files,
                                           headers=vsms_headers(ts, secret), timeout=5).json()
    return answer


def _tpl_status(url: str, tpl_id: str) -> dict[str, Any]:
    ts = str(now_ms())
    params = {"appKey": demo.AIOFISH_APP_KEY, "ts": ts, "tplId": tpl_id}
    answer: dict[str, Any] = requests.get(url + "/rest/vsms/v1/tpl/status", params=params,
                                          headers=vsms_headers(ts), timeout=5).json()
    return answer


def _vsms_post(url: str, path: str, body: dict[str, Any], ts: str | None = None,
               secret: str = demo.AIOFISH_APP_SECRET) -> dict[str, Any]:
    ts = ts or str(now_ms())
    full = {"appKey": demo.AIOFISH_APP_KEY, "ts": ts, **body}
    answer: dict[str, Any] = requests.post(url + path, json=full, headers=vsms_headers(ts, secret), timeout=5).json()
    return answer


def test_vsms_template_audit_then_messages(sandbox: Any, sandbox_url: str) -> None:
    sandbox.configure(time_scale=0.01)  # audit after 5 s x 0.01
    created = _vsms_template(sandbox_url, "测试")
    assert created["code"] == "success"
    tpl_id = created["tplId"]
    assert _vsms_post(sandbox_url, "/rest/vsms/v1/message", {"tplId": tpl_id, "mobiles": ["13800000001"]}) \
        == {"code": "invalid_tpl"}  # still pending audit
    wait_for(lambda: _tpl_status(sandbox_url, tpl_id)["auditStatus"] == 200, what="template approved")
    sent = _vsms_post(sandbox_url, "/rest/vsms/v1/message", {"tplId": tpl_id, "mobiles": ["13800000001"]})
    assert sent["code"] == "success" and len(sent["msgId"]) == 20
    with_vars = _vsms_post(sandbox_url, "/rest/vsms/v1/message/vars",
                           {"tplId": tpl_id, "uuid": "u-1", "mobiles": [{"phone": "13800000002", "vars": ["张三"]}]})
    assert with_vars["code"] == "success"
    assert sandbox.messages("13800000002")[0]["text"] == "[aaa.jpg]\n【沙箱】您好张三"
    assert _vsms_post(sandbox_url, "/rest/vsms/v1/message/vars",
                      {"tplId": tpl_id, "mobiles": [{"phone": "13800000002", "vars": ["x" * 16]}]}) \
        == {"code": "invalid_data"}
    assert _vsms_post(sandbox_url, "/rest/vsms/v1/message", {"tplId": tpl_id, "mobiles": ["123"]}) \
        == {"code": "invalid_mobile"}
    assert sandbox.ledger()["accepted"]["aiofish-vsms"] == {"13800000001": 1, "13800000002": 1}


def test_vsms_template_checks(sandbox: Any, sandbox_url: str) -> None:
    assert _vsms_template(sandbox_url, "") == {"code": "invalid_title"}
    assert _vsms_template(sandbox_url, "t", text="#p_6#") == {"code": "invalid_content"}
    sandbox.configure(vsms_resource_max_bytes=3)
    assert _vsms_template(sandbox_url, "t") == {"code": "resource_limit"}


def test_vsms_and_isms_check_the_x_sign(sandbox: Any, sandbox_url: str) -> None:
    body = {"content": "hello! test sms", "mobiles": ["85212341234"]}
    assert _vsms_post(sandbox_url, "/rest/isms/sendIsms", body)["code"] == "success"
    assert _vsms_post(sandbox_url, "/rest/isms/sendIsms", body, secret="wrong") == {"code": "invalid_sign"}
    stale = str(now_ms() - 6 * 60_000)
    assert _vsms_post(sandbox_url, "/rest/isms/sendIsms", body, ts=stale) == {"code": "invalid_ts"}
    assert _vsms_template(sandbox_url, "t", secret="wrong") == {"code": "invalid_sign"}
    assert requests.post(sandbox_url + "/rest/isms/sendIsms", json={**body, "appKey": "nobody", "ts": "1"},
                         headers={"x-sign": "x"}, timeout=5).json() == {"code": "invalid_appkey"}
    assert sandbox.ledger()["accepted"]["aiofish-isms"] == {"85212341234": 1}


def test_rejected_titles_are_rejected_by_the_audit(sandbox: Any, sandbox_url: str) -> None:
    sandbox.configure(time_scale=0.001)
    tpl_id = _vsms_template(sandbox_url, "REJECT me")["tplId"]
    status = wait_for(lambda: _tpl_status(sandbox_url, tpl_id), ok=lambda s: s["auditStatus"] != 100,
                        what="template audited")
    assert status["auditStatus"] == 400 and status["auditReason"]
