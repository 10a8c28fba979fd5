"""What the aiofish clients make of every answer: codes, refusals, balances, receipts, replies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dispatcher.errors import (
    AccountFatalError,
    AmbiguousError,
    ProviderError,
    RecipientRejectedError,
    RequestRejectedError,
    ThrottledError,
    TransientError,
)
from dispatcher.providers.aiofish import client as fish
from dispatcher.providers.aiofish import requests as rq
from dispatcher.providers.aiofish import vsms as mv
from dispatcher.providers.aiofish.crypto import aes_encrypt_hex
from dispatcher.providers.aiofish.vsms import AiofishVsmsClient
from tests.unit.test_aiofish_requests import AES_KEY, NOW_MS, answer, client, make_account, recording_session
from tests.unit.test_code_tables import AIOFISH_CLASSES, AIOFISH_PAIRS

P1, P2, P3 = "13800000001", "13800000002", "13800000003"
# Every code and its class from the hand-written table (never from AIOFISH_CODES).
SMS_CODES = {c: cls for c, cls in AIOFISH_CLASSES.items() if c.startswith(("p:", "r:")) or c.isdigit()}
STRING_CODES = {c: cls for c, cls in AIOFISH_CLASSES.items() if c not in SMS_CODES}


def plan(mode: str = "plain", phones: tuple[str, ...] = (P1, P2, P3)) -> rq.SendPlan:
    return rq.plan_send(make_account(mode), list(phones), "【沙箱】hi", sms_id="c1", now_ms=NOW_MS)


def sms_doc(code: str) -> dict[str, Any]:
    """An SMS answer carrying ``code`` as aiofish writes it: a subStat beside its numeric code, or a bare number."""
    if code.startswith(("p:", "r:")):
        return {"code": AIOFISH_PAIRS[code], "subStat": code, "smsId": "s"}
    return {"code": int(code), "smsId": "s"}


# -- the code table, all of it -----------------------------------------------------------------------


@pytest.mark.parametrize(("code", "expected"), SMS_CODES.items(), ids=SMS_CODES.keys())
def test_every_sms_code_raises_its_class_or_passes(code: str, expected: Any) -> None:
    doc = sms_doc(code)
    if expected is None:
        fish.check_answer(doc, account="t", side_effect=True, retry_after_s=1.0)
        return
    with pytest.raises(ProviderError) as err:
        fish.check_answer(doc, account="t", side_effect=True, retry_after_s=1.0)
    assert type(err.value).__name__ == expected.__name__ and err.value.code == code


@pytest.mark.parametrize("provider", [mv.VSMS, mv.ISMS])
@pytest.mark.parametrize(("code", "expected"), STRING_CODES.items(), ids=STRING_CODES.keys())
def test_every_vsms_isms_code_raises_its_class_or_passes(code: str, expected: Any, provider: str) -> None:
    if expected is None:
        mv.check_code({"code": code}, provider=provider, account="t", side_effect=True)
        return
    with pytest.raises(ProviderError) as err:
        mv.check_code({"code": code}, provider=provider, account="t", side_effect=True)
    assert type(err.value).__name__ == expected.__name__ and err.value.code == code


@pytest.mark.parametrize("code", [200, "200"])
def test_code_200_may_be_a_number_or_text(code: object) -> None:
    result = fish.parse_send_answer({"code": code, "subStat": "r:000", "smsId": "s"}, plan(), account="t")
    assert result.accepted == (P1, P2, P3)


@pytest.mark.parametrize("code", [121, "121"])
def test_a_numeric_throttle_code_alone_throttles(code: object) -> None:
    with pytest.raises(ThrottledError) as err:
        fish.parse_send_answer({"code": code}, plan(), account="t")
    assert err.value.retry_after_s == fish.SEND_RETRY_AFTER_S


def test_success_needs_both_code_and_substat() -> None:
    with pytest.raises(RecipientRejectedError):
        fish.parse_send_answer({"code": 200, "subStat": "p:002", "smsId": "s"}, plan(), account="t")
    with pytest.raises(RequestRejectedError):
        fish.parse_send_answer({"code": 421, "subStat": "r:000", "smsId": "s"}, plan(), account="t")


def test_an_unknown_code_is_a_refusal_never_a_success() -> None:
    with pytest.raises(RequestRejectedError) as err:
        fish.parse_send_answer({"code": 200, "subStat": "p:123", "smsId": "s"}, plan(), account="t")
    assert err.value.code == "p:123"


def test_an_answer_without_any_code_is_ambiguous_for_a_send_and_transient_for_a_pull() -> None:
    with pytest.raises(AmbiguousError):
        fish.parse_send_answer({"smsId": "s"}, plan(), account="t")
    with pytest.raises(TransientError):
        fish.parse_reports({"resDetail": []}, account="t")


def test_a_success_without_sms_id_is_ambiguous() -> None:
    with pytest.raises(AmbiguousError):
        fish.parse_send_answer({"code": 200, "subStat": "r:000", "smsId": ""}, plan(), account="t")


def test_a_vendor_text_quoting_a_phone_is_masked_in_the_error() -> None:
    with pytest.raises(RecipientRejectedError) as err:
        fish.parse_send_answer({"code": 411, "subStat": "p:002", "subStatDes": f"号码错误:{P1}"}, plan(), account="t")
    assert P1 not in str(err.value) and "138****0001" in str(err.value)


# -- resDetail refusals ------------------------------------------------------------------------------


def test_res_detail_refusals_leave_accepted_and_become_failures() -> None:
    doc = {"code": 200, "subStat": "r:000", "smsId": "s1", "resDetail": [
        {"phoneNumber": P1, "stat": "r:000", "statDes": "提交成功"},
        {"phoneNumber": P2, "stat": "p:002", "statDes": "号码错误"},
        {"phoneNumber": P3},  # no stat: not an explicit refusal
        {"phoneNumber": "13999999999", "stat": "p:002"},  # a phone we never sent
    ]}
    result = fish.parse_send_answer(doc, plan(), account="t")
    assert result.accepted == (P1, P3)
    assert [(f.phone, f.code, f.description) for f in result.failed] == [(P2, "p:002", "号码错误")]
    assert (result.message_id, result.client_id) == ("s1", "c1")


def test_the_phone_variants_encrypted_echo_maps_back_to_plain_phones() -> None:
    sent = plan("phone")
    doc = {"code": 200, "subStat": "r:000", "smsId": "s1", "resDetail": [
        {"phoneNumber": aes_encrypt_hex(AES_KEY, P1), "stat": "r:000"},
        {"phoneNumber": aes_encrypt_hex(AES_KEY, P3).upper(), "stat": "p:002", "statDes": "号码错误"},
    ]}
    result = fish.parse_send_answer(doc, sent, account="t")
    assert result.accepted == (P1, P2) and [f.phone for f in result.failed] == [P3]


def test_res_detail_given_as_json_text_is_read_too() -> None:
    detail = json.dumps([{"phoneNumber": P2, "stat": "p:002"}])
    result = fish.parse_send_answer({"code": 200, "subStat": "r:000", "smsId": "s", "resDetail": detail}, plan(),
                                    account="t")
    assert [f.phone for f in result.failed] == [P2]


# -- balance, reports, replies -----------------------------------------------------------------------


def test_balance_reads_the_count_from_the_text() -> None:
    balance = fish.parse_balance({"revStat": "r:000", "revStatDes": "您的短信余额为:2670 条", "code": 200},
                                 account="t")
    assert balance.total == 2670 and balance.provider == "aiofish"


def test_balance_without_a_number_is_transient_and_a_throttle_waits_5_s() -> None:
    with pytest.raises(TransientError):
        fish.parse_balance({"revStat": "r:000", "revStatDes": "ok", "code": 200}, account="t")
    with pytest.raises(ThrottledError) as err:
        fish.parse_balance({"revStat": "p:010", "code": 121}, account="t")
    assert err.value.retry_after_s == 5.0


def test_balance_with_a_wrong_password_pauses_the_account() -> None:
    with pytest.raises(AccountFatalError) as err:
        fish.parse_balance({"revStat": "p:003", "revStatDes": "账号或密码错误", "code": 401}, account="t")
    assert err.value.code == "p:003"


def test_reports_use_stat_des_as_state_and_deliver_only_delivrd() -> None:
    doc = {"subStat": "r:000", "code": 200, "resDetail": [
        {"smsId": "s1", "phoneNumber": P1, "stat": "r:000", "statDes": "DELIVRD", "revTime": 1636429743000},
        {"smsId": "s1", "phoneNumber": P2, "stat": "r:004", "statDes": "REJECTD", "revTime": "1636429744000"},
        {"smsId": "s2", "phoneNumber": P3, "stat": "r:000"},  # no statDes: r:000 means delivered
        {"smsId": "s3", "phoneNumber": P3, "stat": "r:005"},
        {"phoneNumber": P1, "statDes": "DELIVRD"},  # no smsId: cannot be matched, skipped
        "garbage",
    ]}
    got = [(r.message_id, r.phone, r.status, r.delivered, r.at_ms, r.client_id)
           for r in fish.parse_reports(doc, account="t")]
    assert got == [("s1", P1, "DELIVRD", True, 1636429743000, "s1"), ("s1", P2, "REJECTD", False, 1636429744000, "s1"),
                   ("s2", P3, "DELIVRD", True, None, "s2"), ("s3", P3, "r:005", False, None, "s3")]


def test_replies_become_uplinks_with_their_sub_code() -> None:
    doc = {"revStat": "r:000", "revStatDes": "获取上行短信条数:1", "code": 200, "resDetail": [
        {"phoneNumber": P1, "content": "收到 TD", "subCode": "11", "revTime": 1616429743000, "demo": None},
        {"content": "no phone"},
    ]}
    [uplink] = fish.parse_replies(doc, account="t")
    assert (uplink.phone, uplink.content, uplink.ext, uplink.at_ms) == (P1, "收到 TD", "11", 1616429743000)


# -- transport-level answers through the client ------------------------------------------------------


def test_a_garbled_body_is_ambiguous_for_a_send_and_transient_for_a_pull() -> None:
    sender, _ = client("plain", (200, b"<html>oops"))
    with pytest.raises(AmbiguousError):
        sender.send([P1], "【沙箱】hi")
    puller, _ = client("plain", (200, b"<html>oops"))
    with pytest.raises(TransientError):
        puller.pull_receipts()


@pytest.mark.parametrize(("status", "cls"), [(415, RequestRejectedError), (405, RequestRejectedError),
                                             (502, AmbiguousError)])
def test_http_errors_of_a_send(status: int, cls: type[Exception]) -> None:
    sender, _ = client("plain", (status, b""))
    with pytest.raises(cls):
        sender.send([P1], "【沙箱】hi")


# -- vsms/isms answers -------------------------------------------------------------------------------


def media_plan() -> mv.MediaPlan:
    return mv.plan_vsms_send("k", "t", [P1, P2], uuid="u1", now_ms=NOW_MS)


def test_a_vsms_send_answer_names_its_msg_id_and_uuid() -> None:
    result = mv.parse_sent({"code": "success", "msgId": "m1"}, media_plan(), provider=mv.VSMS, account="t")
    assert (result.message_id, result.client_id, result.accepted) == ("m1", "u1", (P1, P2))


def test_a_vsms_success_without_msg_id_or_code_is_ambiguous() -> None:
    for doc in ({"code": "success"}, {"msgId": "m1"}):
        with pytest.raises(AmbiguousError):
            mv.parse_sent(doc, media_plan(), provider=mv.VSMS, account="t")


def test_template_status_is_read_and_an_unreadable_one_is_transient() -> None:
    status = mv.parse_template_status({"code": "success", "tplId": "t1", "auditStatus": 200, "auditReason": "ok"},
                                      "t1", account="t")
    assert status.approved and status.reason == "ok"
    assert not mv.parse_template_status({"code": "success", "auditStatus": "100"}, "t1", account="t").approved
    with pytest.raises(TransientError):
        mv.parse_template_status({"code": "success"}, "t1", account="t")


def test_a_template_submit_without_tpl_id_is_ambiguous() -> None:
    session, _ = recording_session(answer({"code": "success"}))
    vsms = AiofishVsmsClient(make_account(), session=session, clock_ms=lambda: NOW_MS)
    with pytest.raises(AmbiguousError):
        vsms.submit_template("t", [mv.Frame.of_text(1, 1, "【沙箱】hi")], {})
