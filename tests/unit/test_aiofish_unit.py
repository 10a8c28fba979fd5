"""aiofish requests, answers and pushes without a network: what a caller would notice."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from dispatcher.errors import AmbiguousError, PushVerificationError, ValidationError
from dispatcher.providers import aiofish_requests as rq
from dispatcher.providers.accounts import AiofishAccount
from dispatcher.providers.aiofish_codes import AIOFISH_CODES
from dispatcher.providers.aiofish_crypto import aes_decrypt_hex, aes_encrypt_hex, biz_sign, verify_biz_sign
from dispatcher.providers.aiofish_push import parse_isms_push, parse_sms_push, parse_vsms_push
from dispatcher.sandbox import demo

NOW = 1_700_000_000_000


def account(mode: str = "plain") -> AiofishAccount:
    return AiofishAccount(name="t", account=demo.AIOFISH_ACCOUNT, password=demo.AIOFISH_PASSWORD,
                          app_key=demo.AIOFISH_APP_KEY, app_secret=demo.AIOFISH_APP_SECRET,
                          aes_key=demo.AIOFISH_AES_KEY, encryption=mode, base_url="http://127.0.0.1:9")


TRICKY = '【沙箱】He said "hi" \\ back\nslash 😀'


def test_the_full_variant_encrypts_exactly_what_was_meant_and_signs_it() -> None:
    plan = rq.plan_send(account("full"), ["13800000001"], TRICKY, sms_id="j.0.1", now_ms=NOW)
    body = plan.body
    assert plan.path == "/rest/sms/sendSms/encryption"
    assert verify_biz_sign(account="sandbox", app_secret=demo.AIOFISH_APP_SECRET, biz_content=body["bizContent"],
                           ts=body["ts"], sign=body["sign"])
    inner = json.loads(aes_decrypt_hex(demo.AIOFISH_AES_KEY, body["bizContent"]))
    assert inner == {"mobile": "13800000001", "content": TRICKY, "smsId": "j.0.1"}


def test_the_phone_variant_encrypts_each_phone_and_maps_the_echo_back() -> None:
    plan = rq.plan_send(account("phone"), ["13800000001", "13800000002"], "【沙箱】hi", now_ms=NOW)
    cipher = plan.body["mobile"].split(",")
    assert [aes_decrypt_hex(demo.AIOFISH_AES_KEY, c) for c in cipher] == ["13800000001", "13800000002"]
    answer = {"code": 200, "smsId": "s1", "subStat": "r:000",
              "resDetail": [{"phoneNumber": cipher[1], "stat": "p:002", "statDes": "号码错误"}]}
    result = rq.parse_send_answer(answer, plan, account="t")
    assert result.accepted == ("13800000001",)
    assert [f.phone for f in result.failed] == ["13800000002"]


def test_a_success_without_sms_id_is_ambiguous() -> None:
    plan = rq.plan_send(account(), ["13800000001"], "【沙箱】hi", now_ms=NOW)
    with pytest.raises(AmbiguousError):
        rq.parse_send_answer({"code": 200, "subStat": "r:000"}, plan, account="t")


@pytest.mark.parametrize(("code", "info"), [(c, i) for c, i in AIOFISH_CODES.items() if i.error is not None])
def test_every_error_code_raises_its_class(code: str, info) -> None:  # type: ignore[no-untyped-def]
    doc = {"code": code} if not code.startswith(("p:", "r:")) else {"code": 999, "subStat": code}
    with pytest.raises(info.error) as err:
        rq.check_answer(doc, account="t", side_effect=True)
    assert err.value.code == code


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: rq.plan_send(account(), ["13800000001", "1"], "【沙箱】hi", now_ms=NOW), "phones[1]"),
        (lambda: rq.plan_send(account(), [f"138{i:08d}" for i in range(2001)], "【沙箱】hi", now_ms=NOW), "phones"),
        (lambda: rq.plan_send(account(), ["13800000001"], "no signature", now_ms=NOW), "content"),
        (lambda: rq.plan_send(account(), ["13800000001"], "【沙箱】" + "长" * 500, now_ms=NOW), "content"),
        (lambda: rq.plan_send(account(), ["13800000001"], "【沙箱】hi", sms_id="x" * 33, now_ms=NOW), "sms_id"),
        (lambda: rq.plan_send(account(), ["13800000001"], "【沙箱】hi", sub_code="12a", now_ms=NOW), "sub_code"),
        (lambda: rq.plan_send(account(), ["13800000001"], "【沙箱】hi", send_time="tomorrow", now_ms=NOW), "send_time"),
        (lambda: rq.plan_batch(account(), [(f"138{i:08d}", "【沙箱】x") for i in range(201)], now_ms=NOW), "items"),
        (lambda: rq.plan_batch(account(), [("13800000001", "【沙箱】x"), ("13800000002", "")], now_ms=NOW),
         "items[1].content"),
    ],
)
def test_each_rule_names_its_field(call, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as err:
        call()
    assert field in err.value.fields


def test_duplicates_are_sent_once_and_reported() -> None:
    plan = rq.plan_send(account(), ["13800000001", "+8613800000001", "13800000002"], "【沙箱】hi", now_ms=NOW)
    assert plan.body["mobile"] == "13800000001,13800000002"
    assert plan.duplicates == ("13800000001",)


def _report(stat: int = 0) -> dict:
    return {"phoneNumber": "13800000001", "smsId": "j.0.1", "stat": stat, "statDes": "DELIVRD" if stat == 0
            else "REJECTD", "revTime": NOW}


def test_plain_and_phone_encrypted_form_pushes_parse() -> None:
    plain = parse_sms_push(urlencode(_report()).encode(), "application/x-www-form-urlencoded", account(), now_ms=NOW)
    assert (plain.phone, plain.delivered, plain.client_id) == ("13800000001", True, "j.0.1")  # type: ignore[union-attr]
    enc = {**_report(6), "phoneNumber": aes_encrypt_hex(demo.AIOFISH_AES_KEY, "13800000001")}
    receipt = parse_sms_push(urlencode(enc).encode(), "application/x-www-form-urlencoded", account(), now_ms=NOW)
    assert (receipt.phone, receipt.delivered, receipt.status) == ("13800000001", False, "REJECTD")  # type: ignore[union-attr]


def _sealed(obj: dict, *, secret: str = demo.AIOFISH_APP_SECRET, ts: int = NOW) -> bytes:
    biz = aes_encrypt_hex(demo.AIOFISH_AES_KEY, json.dumps(obj))
    sign = biz_sign(account="sandbox", app_secret=secret, biz_content=biz, ts=str(ts))
    return json.dumps({"account": "sandbox", "ts": str(ts), "bizContent": biz, "sign": sign}).encode()


def test_fully_encrypted_report_and_deliver_parse() -> None:
    receipt = parse_sms_push(_sealed(_report()), "application/json", account(), now_ms=NOW)
    assert receipt.delivered  # type: ignore[union-attr]
    deliver = {"phoneNumber": "13800000001", "content": "TD", "subCode": "12", "smsId": "x"}
    uplink = parse_sms_push(_sealed(deliver), "application/json", account(), now_ms=NOW)
    assert (uplink.content, uplink.ext) == ("TD", "12")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "ctype", "reason"),
    [
        (_sealed(_report(), secret="forged"), "application/json", "sign"),
        (_sealed(_report(), ts=NOW - 2 * 86_400_000), "application/json", "window"),
        (b"{not json", "application/json", "JSON"),
        (b"phoneNumber=12345&stat=0", "application/x-www-form-urlencoded", "phoneNumber"),
        (b"phoneNumber=13800000001", "application/x-www-form-urlencoded", "neither"),
    ],
)
def test_forged_stale_and_malformed_pushes_are_refused(body: bytes, ctype: str, reason: str) -> None:
    with pytest.raises(PushVerificationError, match=reason) as err:
        parse_sms_push(body, ctype, account(), now_ms=NOW)
    assert "13800000001" not in str(err.value)


def test_vsms_isms_and_audit_pushes_parse() -> None:
    status = parse_vsms_push(b'{"msgId":"m","phone":"13800000001","state":0,"statDes":"DELIVRD",'
                             b'"revTime":"2021-12-06T19:00:00"}')
    assert status.delivered  # type: ignore[union-attr]
    audit = parse_vsms_push(b'{"tplId":"t1","state":400,"reason":"no"}')
    assert (audit.tpl_id, audit.state) == ("t1", 400)  # type: ignore[union-attr]
    isms = parse_isms_push(b'{"msgId":"m","mobile":"85212341234","state":1,"statDes":"UNDELIV"}')
    assert (isms.phone, isms.delivered) == ("85212341234", False)
