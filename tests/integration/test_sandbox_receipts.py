"""Receipts: pulled once each (≤ 600 per opass call), outcome mix, pushes in every vendor format."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any
from urllib.parse import parse_qs

import requests

from dispatcher.local.sandbox import demo
from dispatcher.providers.aiofish.crypto import aes_decrypt_hex, password_md5, verify_biz_sign
from tests.integration.test_sandbox_support import (
    TPL_NO_VARS,
    Receiver,
    fish_plain,
    now_ms,
    opass,
    phones,
    vsms_headers,
)

API_KEY, ACCOUNT = demo.OPASS_API_KEY, demo.AIOFISH_ACCOUNT
TEXT = "【沙箱】您的验证码是123456。"
FAST = {"receipt_delay_s": 0.0, "limits": {"opass_query": None}}


def pull_all(url: str, body: dict[str, Any] | None = None) -> list[list[dict[str, Any]]]:
    """Pull until an empty answer; return each call's data."""
    calls: list[list[dict[str, Any]]] = []
    while True:
        answer = opass(url, "/sms/arriveRes/qry", body or {})
        assert answer["code"] == 200, answer
        if not answer["data"]:
            return calls
        calls.append(answer["data"])


def within(count: int, n: int, p: float) -> bool:
    """Whether ``count`` is within 5 standard deviations of a Binomial(n, p) mean (false alarm < 1e-6)."""
    return abs(count - n * p) <= 5 * math.sqrt(n * p * (1 - p))


def test_opass_pull_returns_each_receipt_once_at_most_600_per_call(sandbox: Any, sandbox_url: str) -> None:
    sandbox.configure(**FAST, outcomes={"DELIVRD": 0.5, "UNDELIV": 0.3, "none": 0.2})
    numbers = phones(2000)
    for i in range(2):
        chunk = ",".join(numbers[i * 1000 : (i + 1) * 1000])
        assert opass(sandbox_url, "/message/send", {"phones": chunk, "templateCode": TPL_NO_VARS,
                                                     "bid": f"bid-{i}"})["code"] == 200
    calls = pull_all(sandbox_url)
    assert all(len(c) <= 600 for c in calls) and len(calls[0]) == 600
    receipts = [r for c in calls for r in c]
    assert len({(r["msgId"], r["tel"]) for r in receipts}) == len(receipts)  # each once
    states = Counter(r["arrive"] for r in receipts)
    assert set(states) == {"DELIVRD", "UNDELIV"}
    assert within(states["DELIVRD"], 2000, 0.5) and within(states["UNDELIV"], 2000, 0.3)
    assert within(2000 - len(receipts), 2000, 0.2)  # "none": no receipt ever
    assert {r["bid"] for r in receipts} == {"bid-0", "bid-1"}
    assert all(len(r["arriveTime"]) == 10 and r["arriveTime"].isdigit() for r in receipts)


def test_outcomes_are_reproducible_after_a_reset(sandbox: Any, sandbox_url: str) -> None:
    def run() -> list[tuple[str, str, str]]:
        sandbox.configure(**FAST)
        opass(sandbox_url, "/message/send", {"phones": ",".join(phones(300)), "templateCode": TPL_NO_VARS})
        return sorted((r["msgId"], r["tel"], r["arrive"]) for c in pull_all(sandbox_url) for r in c)

    first = run()
    sandbox.reset()
    assert run() == first


def test_pull_filters_by_msg_id_and_bid(sandbox: Any, sandbox_url: str) -> None:
    sandbox.configure(**FAST, outcomes={"DELIVRD": 1.0})
    ids = [opass(sandbox_url, "/message/send", {"phones": f"1370000000{i}", "templateCode": TPL_NO_VARS,
                                                 "bid": f"b{i}"})["data"]["msgId"] for i in range(3)]
    [only] = opass(sandbox_url, "/sms/arriveRes/qry", {"msgId": ids[1]})["data"]
    assert (only["msgId"], only["bid"]) == (ids[1], "b1")
    [by_bid] = opass(sandbox_url, "/sms/arriveRes/qry", {"bid": "b2"})["data"]
    assert by_bid["tel"] == "13700000002"
    assert [r["bid"] for r in opass(sandbox_url, "/sms/arriveRes/qry", {})["data"]] == ["b0"]


def test_aiofish_get_report_echoes_sms_id_once(sandbox: Any, sandbox_url: str) -> None:
    sandbox.configure(receipt_delay_s=0.0, outcomes={"REJECTD": 1.0})
    fish_plain(sandbox_url, "/rest/sms/sendSms", {"mobile": "13700000001", "content": TEXT, "smsId": "mine"})
    query = {"account": ACCOUNT, "password": password_md5(demo.AIOFISH_PASSWORD)}
    first = requests.get(sandbox_url + "/rest/sms/getReport", params=query, timeout=5).json()
    assert first["subStatDes"] == "获取状态报告记录数:1"
    [item] = first["resDetail"]
    assert (item["smsId"], item["phoneNumber"], item["stat"], item["statDes"]) == ("mine", "13700000001", "r:004",
                                                                                   "REJECTD")
    assert isinstance(item["revTime"], int)
    assert requests.get(sandbox_url + "/rest/sms/getReport", params=query, timeout=5).json()["resDetail"] == []


def test_opass_status_and_uplink_pushes(sandbox: Any, sandbox_url: str) -> None:
    with Receiver(answers=[(200, b"ok", 0.0)]).running() as hook:
        sandbox.configure(**FAST, receipt_mode="push", opass={"accounts": {API_KEY: {
            "status_url": hook.url + "/status", "uplink_url": hook.url + "/uplink"}}})
        opass(sandbox_url, "/message/send", {"phones": ",".join(phones(150)), "templateCode": TPL_NO_VARS,
                                             "bid": "push-bid"})
        hook.wait_for(2)
        sandbox.inject_uplink("opass", API_KEY, "13900000001", "TD", ext="12")
        got = hook.wait_for(3)
    statuses = [r.json() for r in got if r.path == "/status"]
    assert sorted(len(s["data"]) for s in statuses) == [50, 100]  # opass_push_batch = 100
    item = statuses[0]["data"][0]
    assert statuses[0]["apiKey"] == API_KEY and set(item) == {"msgId", "tel", "arriveResult", "arriveTime", "bid"}
    assert item["bid"] == "push-bid"
    [uplink] = [r.json() for r in got if r.path == "/uplink"]
    assert uplink["data"][0]["tel"] == "13900000001" and uplink["data"][0]["srcId"].endswith("12")
    assert opass(sandbox_url, "/sms/arriveRes/qry", {})["data"] == []  # push mode: nothing to pull
    assert sandbox.stats()["pushes"]["opass"]["succeeded"] == 3


def _send_fish(url: str) -> None:
    fish_plain(url, "/rest/sms/sendSms", {"mobile": "13700000001", "content": TEXT, "smsId": "s-1"})


def test_aiofish_plain_push_is_a_form_and_retried_until_the_body_is_0(sandbox: Any, sandbox_url: str) -> None:
    with Receiver(answers=[(200, b"fail", 0.0), (200, b" 0\n", 0.0)]).running() as hook:
        sandbox.configure(receipt_delay_s=0.0, time_scale=0.001, outcomes={"REJECTD": 1.0},
                          aiofish={"accounts": {ACCOUNT: {"report_url": hook.url, "push_mode": "plain"}}})
        _send_fish(sandbox_url)
        first, second = hook.wait_for(2)[:2]
    assert first.body == second.body  # the same report, retried 5 min x time_scale later
    assert first.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    form = {k: v[0] for k, v in parse_qs(first.body.decode()).items()}
    assert form["phoneNumber"] == "13700000001" and form["smsId"] == "s-1"
    assert (form["stat"], form["statDes"]) == ("6", "REJECTD") and form["revTime"].isdigit()
    pushes = sandbox.stats()["pushes"]["aiofish"]
    assert (pushes["attempted"], pushes["failed"], pushes["retried"], pushes["succeeded"]) == (2, 1, 1, 1)


def test_aiofish_phone_encrypted_push(sandbox: Any, sandbox_url: str) -> None:
    with Receiver().running() as hook:
        sandbox.configure(receipt_delay_s=0.0, aiofish={"accounts": {ACCOUNT: {"report_url": hook.url,
                                                                               "push_mode": "phone"}}})
        _send_fish(sandbox_url)
        [got] = hook.wait_for(1)
    form = {k: v[0] for k, v in parse_qs(got.body.decode()).items()}
    assert aes_decrypt_hex(demo.AIOFISH_AES_KEY, form["phoneNumber"]) == "13700000001"


def test_aiofish_full_encrypted_report_and_reply_pushes(sandbox: Any, sandbox_url: str) -> None:
    with Receiver().running() as hook:
        sandbox.configure(receipt_delay_s=0.0, outcomes={"DELIVRD": 1.0}, aiofish={"accounts": {ACCOUNT: {
            "report_url": hook.url + "/report", "reply_url": hook.url + "/reply", "push_mode": "full"}}})
        _send_fish(sandbox_url)
        hook.wait_for(1)
        sandbox.inject_uplink("aiofish", ACCOUNT, "13700000001", "R", ext="123")
        got = hook.wait_for(2)
    decoded = {}
    for item in got:
        envelope = item.json()
        assert envelope["account"] == ACCOUNT and item.headers["Content-Type"].startswith("application/json")
        assert verify_biz_sign(account=ACCOUNT, app_secret=demo.AIOFISH_APP_SECRET,
                               biz_content=envelope["bizContent"], ts=envelope["ts"], sign=envelope["sign"])
        decoded[item.path] = json.loads(aes_decrypt_hex(demo.AIOFISH_AES_KEY, envelope["bizContent"]))
    assert decoded["/report"]["stat"] == 0 and decoded["/report"]["statDes"] == "DELIVRD"
    assert decoded["/reply"] == {"phoneNumber": "13700000001", "content": "R", "subCode": "123", "smsId": "s-1"}


def test_vsms_isms_and_audit_pushes(sandbox: Any, sandbox_url: str) -> None:
    with Receiver().running() as hook:
        sandbox.configure(receipt_delay_s=0.0, time_scale=0.001, outcomes={"DELIVRD": 1.0}, aiofish={"accounts": {
            ACCOUNT: {"isms_status_url": hook.url + "/isms", "vsms_audit_url": hook.url + "/audit",
                      "vsms_status_url": hook.url + "/vsms"}}})
        ts = str(now_ms())
        data = {"appKey": demo.AIOFISH_APP_KEY, "ts": ts, "title": "t",
                "content": [{"orderBy": 1, "frameIndex": 1, "extType": 1, "text": "【沙箱】hi"}]}
        tpl = requests.post(sandbox_url + "/rest/vsms/v1/tpl", files={"data": (None, json.dumps(data))},
                            headers=vsms_headers(ts), timeout=5).json()
        body = {"appKey": demo.AIOFISH_APP_KEY, "ts": ts, "content": "hi", "mobiles": ["+85212341234"]}
        requests.post(sandbox_url + "/rest/isms/sendIsms", json=body, headers=vsms_headers(ts), timeout=5)
        hook.wait_for(2)  # the audit push says the template is approved
        message = {"appKey": demo.AIOFISH_APP_KEY, "ts": ts, "tplId": tpl["tplId"], "mobiles": ["13700000001"]}
        sent = requests.post(sandbox_url + "/rest/vsms/v1/message", json=message, headers=vsms_headers(ts),
                             timeout=5).json()
        got = {r.path: r.json() for r in hook.wait_for(3)}
    assert got["/audit"] == {"tplId": tpl["tplId"], "state": 200, "reason": "ok"}
    vsms = got["/vsms"]
    assert (vsms["msgId"], vsms["phone"], vsms["state"], vsms["statDes"]) == (sent["msgId"], "13700000001", 0,
                                                                               "DELIVRD")
    assert vsms["revTime"][10] == "T"
    isms = got["/isms"]
    assert (isms["mobile"], isms["state"], isms["statDes"]) == ("85212341234", 0, "DELIVRD")
    assert len(isms["revTime"]) == 19 and isms["revTime"][10] == " "


def test_opass_push_stops_after_three_consecutive_slow_answers(sandbox: Any, sandbox_url: str) -> None:
    with Receiver(answers=[(200, b"ok", 1.2)]).running() as hook:
        sandbox.configure(**FAST, time_scale=0.0001, opass={"accounts": {API_KEY: {"status_url": hook.url}}})
        opass(sandbox_url, "/message/send", {"phones": "13700000001", "templateCode": TPL_NO_VARS})
        hook.wait_for(3, timeout_s=15)
        assert sandbox.wait_idle(timeout_s=5)  # nothing in flight, no retry scheduled
        stats = sandbox.stats()
    assert stats["push_stopped"] == {"opass": {API_KEY: True}}
    assert len(hook.got) == 3  # the fourth (60 min x time_scale) retry never happened
    assert stats["pushes"]["opass"]["answer_ms"]["max"] >= 1000
    sandbox.configure(opass={"accounts": {API_KEY: {"status_url": hook.url + "/registered-again"}}})
    assert sandbox.stats()["push_stopped"] == {"opass": {}}  # re-registering resumes pushes
