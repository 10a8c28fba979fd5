"""Every aiofish push variant parsed and verified; forgeries, stale and malformed pushes refused."""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from dispatcher.errors import PushVerificationError
from dispatcher.providers.aiofish.crypto import aes_encrypt_hex, biz_sign
from dispatcher.providers.aiofish.push import (
    DEFAULT_MAX_AGE_S,
    PUSH_OK_BODY,
    TemplateAudit,
    parse_isms_push,
    parse_sms_push,
    parse_vsms_push,
)
from dispatcher.providers.results import Receipt, Uplink
from tests.unit.test_aiofish_requests import ACCOUNT, AES_KEY, NOW_MS, SECRET, make_account

PHONE = "17530663764"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json;charset=utf-8"
# The manual's own samples of the report and deliver objects.
REPORT = {"stat": 6, "smsId": "03e2c9e81a54416ba2a046eac6f52b63", "phoneNumber": PHONE, "statDes": "REJECTD",
          "revTime": 1698636405820}
DELIVER = {"phoneNumber": PHONE, "content": "R", "subCode": "123", "smsId": "8b8a8939d5424bd0ad60aea59e995434"}


def form(obj: dict[str, Any], *, encrypt_phone: bool = False) -> bytes:
    fields = {k: str(v) for k, v in obj.items()}
    if encrypt_phone:
        fields["phoneNumber"] = aes_encrypt_hex(AES_KEY, fields["phoneNumber"])
    return urlencode(fields).encode()


def sealed(obj: Any, *, account: str = ACCOUNT, secret: str = SECRET, key: str = AES_KEY, ts: int = NOW_MS,
           sign: str | None = None, drop: str | None = None) -> bytes:
    biz = aes_encrypt_hex(key, obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False))
    doc = {"account": account, "ts": str(ts), "bizContent": biz,
           "sign": sign or biz_sign(account=account, app_secret=secret, biz_content=biz, ts=str(ts))}
    doc.pop(drop or "", None)
    return json.dumps(doc).encode()


def parse(body: bytes, ctype: str = FORM, **kw: Any) -> Receipt | Uplink:
    return parse_sms_push(body, ctype, make_account(), now_ms=NOW_MS, **kw)


def test_the_webhook_answers_zero() -> None:
    assert PUSH_OK_BODY == "0"


# -- the three SMS variants, reports and delivers ----------------------------------------------------


@pytest.mark.parametrize("variant", ["plain", "phone", "full"])
def test_a_report_in_every_variant_reads_the_same(variant: str) -> None:
    body = sealed(REPORT) if variant == "full" else form(REPORT, encrypt_phone=variant == "phone")
    receipt = parse(body, JSON if variant == "full" else FORM)
    assert receipt == Receipt("aiofish", REPORT["smsId"], PHONE, "REJECTD", False, 1698636405820, REPORT["smsId"], "6")


@pytest.mark.parametrize("variant", ["plain", "phone", "full"])
def test_a_deliver_in_every_variant_reads_the_same(variant: str) -> None:
    body = sealed(DELIVER) if variant == "full" else form(DELIVER, encrypt_phone=variant == "phone")
    uplink = parse(body, JSON if variant == "full" else FORM)
    assert uplink == Uplink("aiofish", PHONE, "R", "123", None, DELIVER["smsId"])


def test_stat_0_is_delivered() -> None:
    receipt = parse(form({**REPORT, "stat": 0, "statDes": "DELIVRD"}))
    assert isinstance(receipt, Receipt) and receipt.delivered and receipt.status == "DELIVRD"


def test_a_success_without_stat_des_still_reads_as_delivrd() -> None:
    receipt = parse(form({k: v for k, v in {**REPORT, "stat": 0}.items() if k != "statDes"}))
    assert isinstance(receipt, Receipt) and (receipt.status, receipt.delivered) == ("DELIVRD", True)


def test_form_content_with_plus_percent_and_chinese_is_decoded_exactly() -> None:
    uplink = parse(form({**DELIVER, "content": "退订 T+D 100% ok&=?"}))
    assert isinstance(uplink, Uplink) and uplink.content == "退订 T+D 100% ok&=?"


def test_a_json_body_is_recognised_without_a_json_content_type() -> None:
    assert isinstance(parse(sealed(REPORT), "text/plain"), Receipt)


# -- refusals ----------------------------------------------------------------------------------------


REFUSED: dict[str, tuple[bytes, str, str]] = {
    "forged sign": (sealed(REPORT, secret="forged-secret"), JSON, "sign does not match"),
    "sign of another body": (sealed(REPORT, sign=biz_sign(account=ACCOUNT, app_secret=SECRET, biz_content="00",
                                                          ts=str(NOW_MS))), JSON, "sign does not match"),
    "another account": (sealed(REPORT, account="someone-else"), JSON, "another account"),
    "wrong AES key": (sealed(REPORT, key="another-key-16by"), JSON, "does not decrypt"),
    "stale ts": (sealed(REPORT, ts=NOW_MS - int(DEFAULT_MAX_AGE_S * 1000) - 1), JSON, "outside the accepted window"),
    "ts far in the future": (sealed(REPORT, ts=NOW_MS + int(DEFAULT_MAX_AGE_S * 1000) + 1), JSON, "window"),
    "missing sign": (sealed(REPORT, drop="sign"), JSON, "lacks sign"),
    "missing ts": (sealed(REPORT, drop="ts"), JSON, "lacks ts"),
    "bad JSON": (b'{"account": "api003", ', JSON, "not valid JSON"),
    "JSON not an object": (b"[1, 2]", JSON, "not a JSON object"),
    "bizContent not an object": (sealed("[1]"), JSON, "not a JSON object"),
    "bizContent not JSON": (sealed("not json"), JSON, "bizContent is not JSON"),
    "report without smsId": (form({k: v for k, v in REPORT.items() if k != "smsId"}), FORM, "lacks smsId"),
    "report with a non-numeric stat": (form({**REPORT, "stat": "ok"}), FORM, "stat"),
    "phone that is not a mobile": (form({**REPORT, "phoneNumber": "12345"}), FORM, "phoneNumber"),
    "phone encrypted with another key": (form({**REPORT, "phoneNumber": aes_encrypt_hex("another-key-16by", PHONE)}),
                                         FORM, "phoneNumber"),
    "no phone": (form({k: v for k, v in REPORT.items() if k != "phoneNumber"}), FORM, "lacks phoneNumber"),
    "neither report nor deliver": (form({"phoneNumber": PHONE, "smsId": "x"}), FORM, "neither"),
    "not a form": (b"\xff\xfe", FORM, "form"),
    "a sealed report whose phone is not a mobile": (sealed({**REPORT, "phoneNumber": "1"}), JSON, "phoneNumber"),
}


@pytest.mark.parametrize(("body", "ctype", "reason"), REFUSED.values(), ids=REFUSED.keys())
def test_forged_stale_and_malformed_pushes_are_refused_without_leaking(body: bytes, ctype: str, reason: str) -> None:
    with pytest.raises(PushVerificationError, match=reason) as err:
        parse(body, ctype)
    for secret in (PHONE, AES_KEY, SECRET):
        assert secret not in str(err.value)


def test_the_window_is_configurable() -> None:
    body = sealed(REPORT, ts=NOW_MS - 120_000)
    assert isinstance(parse(body, JSON), Receipt)
    with pytest.raises(PushVerificationError, match="60 s"):
        parse(body, JSON, max_age_s=60)


def test_an_account_without_keys_cannot_open_encrypted_pushes() -> None:
    bare = dataclasses.replace(make_account(), aes_key=None, app_secret=None)
    with pytest.raises(PushVerificationError, match="no app_secret"):
        parse_sms_push(sealed(REPORT), JSON, bare, now_ms=NOW_MS)
    with pytest.raises(PushVerificationError, match="phoneNumber"):
        parse_sms_push(form(REPORT, encrypt_phone=True), FORM, bare, now_ms=NOW_MS)


# -- vsms and isms -----------------------------------------------------------------------------------


def test_a_vsms_status_push_with_the_manuals_sample() -> None:
    receipt = parse_vsms_push(b'{"msgId":"88f07db153f24a638779","phone":"18000000000","state":0,'
                              b'"statDes":"DELIVRD","revTime":"2021-12-06T19:00:00"}')
    # 2021-12-06 19:00 in China is 11:00 UTC.
    assert receipt == Receipt("aiofish-vsms", "88f07db153f24a638779", "18000000000", "DELIVRD", True,
                              1638788400000, None, "0")


def test_a_vsms_template_audit_push() -> None:
    approved = parse_vsms_push(b'{"tplId":"88f07db153f24a638779","state":200,"reason":"ok"}')
    rejected = parse_vsms_push(b'{"tplId":"t2","state":"400","reason":"\xe5\x9b\xbe"}')
    assert approved == TemplateAudit("88f07db153f24a638779", 200, "ok") and approved.approved
    assert isinstance(rejected, TemplateAudit) and not rejected.approved and rejected.reason == "图"


def test_an_isms_status_push_with_the_manuals_sample() -> None:
    receipt = parse_isms_push(b'{"msgId":"88f07db153f24a638779","mobile":"85212341234","state":0,'
                              b'"statDes":"DELIVRD","revTime":"2021-12-06 19:00:00"}')
    assert (receipt.provider, receipt.phone, receipt.delivered, receipt.at_ms) == (
        "aiofish-isms", "85212341234", True, 1638788400000)


def test_a_failed_isms_status_is_not_delivered_and_keeps_its_state() -> None:
    receipt = parse_isms_push(b'{"msgId":"m","mobile":85212341234,"state":1,"statDes":"UNDELIV","revTime":"?"}')
    assert (receipt.delivered, receipt.status, receipt.code, receipt.at_ms) == (False, "UNDELIV", "1", None)


MEDIA_REFUSED: dict[str, tuple[Any, bytes, str]] = {
    "vsms without state": (parse_vsms_push, b'{"msgId":"m","phone":"18000000000"}', "state"),
    "vsms without msgId": (parse_vsms_push, b'{"phone":"18000000000","state":0}', "msgId"),
    "vsms with a bad phone": (parse_vsms_push, b'{"msgId":"m","phone":"180","state":0}', "phone"),
    "audit with an empty tplId": (parse_vsms_push, b'{"tplId":"","state":200}', "tplId"),
    "audit without state": (parse_vsms_push, b'{"tplId":"t","reason":"x"}', "state"),
    "isms without mobile": (parse_isms_push, b'{"msgId":"m","state":0}', "mobile"),
    "isms not JSON": (parse_isms_push, b"msgId=m", "JSON"),
}


@pytest.mark.parametrize(("parser", "body", "reason"), MEDIA_REFUSED.values(), ids=MEDIA_REFUSED.keys())
def test_malformed_vsms_and_isms_pushes_are_refused(parser: Any, body: bytes, reason: str) -> None:
    with pytest.raises(PushVerificationError, match=reason):
        parser(body)
