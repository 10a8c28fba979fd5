"""The aiofish SMS client without a network: exactly what goes on the wire for every endpoint.

A small requests adapter records each request and answers from a script (the
"mount an adapter" way of injecting, never patching our own modules).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from dispatcher.errors import ConfigurationError, ValidationError
from dispatcher.providers.aiofish import requests as rq
from dispatcher.providers.aiofish.account import AiofishAccount
from dispatcher.providers.aiofish.client import AiofishClient
from dispatcher.providers.aiofish.crypto import aes_decrypt_hex, password_md5, verify_biz_sign
from tests.unit.scripted import ScriptedAdapter

BASE = "http://aiofish.test"
NOW_MS = 1_700_000_000_000
ACCOUNT, PASSWORD, SECRET, AES_KEY = "api003", "pw-secret", "app-secret-xyz", "unit-aes-key-16b"
PHONES = ["13800000001", "13800000002"]
TRICKY = '【沙箱】He said "hi" \\ back\nnew line\ttab 😀 </script> %20 +'
MODES = ["plain", "phone", "full"]




def recording_session(*answers: tuple[int, bytes]) -> tuple[requests.Session, ScriptedAdapter]:
    """A Session whose requests to :data:`BASE` go to a fresh ScriptedAdapter."""
    adapter = ScriptedAdapter(*answers)
    session = requests.Session()
    session.mount(BASE, adapter)
    return session, adapter


def make_account(mode: str = "plain", **kw: Any) -> AiofishAccount:
    return AiofishAccount(name="unit", account=ACCOUNT, password=PASSWORD, app_key="app-key", app_secret=SECRET,
                          aes_key=AES_KEY, encryption=mode, base_url=BASE, **kw)


def answer(doc: Mapping[str, Any]) -> tuple[int, bytes]:
    return 200, json.dumps(doc, ensure_ascii=False).encode()


ACCEPTED = answer({"code": 200, "smsId": "sid-1", "subStat": "r:000", "subStatDes": "处理成功"})


def client(mode: str = "plain", *answers: tuple[int, bytes]) -> tuple[AiofishClient, ScriptedAdapter]:
    session, adapter = recording_session(*(answers or (ACCEPTED,)))
    return AiofishClient(make_account(mode), session=session, clock_ms=lambda: NOW_MS), adapter


def posted(adapter: ScriptedAdapter, n: int = 0) -> tuple[str, dict[str, Any]]:
    """The path and JSON body of the n-th request (which must be a JSON POST)."""
    request = adapter.requests[n]
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json;charset=utf-8"
    assert isinstance(request.body, bytes)
    return urlsplit(request.url).path, json.loads(request.body)


def opened(body: Mapping[str, Any]) -> dict[str, Any]:
    """Check a fully encrypted body's envelope and sign; return what bizContent decrypts to."""
    assert set(body) == {"account", "ts", "bizContent", "sign"}
    assert body["account"] == ACCOUNT and body["ts"] == str(NOW_MS)
    assert verify_biz_sign(account=ACCOUNT, app_secret=SECRET, biz_content=body["bizContent"], ts=body["ts"],
                           sign=body["sign"])
    inner: dict[str, Any] = json.loads(aes_decrypt_hex(AES_KEY, body["bizContent"]))
    return inner


# -- sendSms and its two encrypted variants ----------------------------------------------------------


def test_plain_send_posts_the_manuals_fields_with_an_md5_password() -> None:
    fish, adapter = client("plain")
    result = fish.send(PHONES, "【沙箱】您好", sms_id="job.0.1", sub_code="12", send_time="2030-01-02 03:04:05")
    path, body = posted(adapter)
    assert path == "/rest/sms/sendSms"
    assert body == {"account": ACCOUNT, "password": password_md5(PASSWORD), "mobile": "13800000001,13800000002",
                    "content": "【沙箱】您好", "smsId": "job.0.1", "subCode": "12", "sendTime": "2030-01-02 03:04:05"}
    assert (result.message_id, result.client_id, result.accepted) == ("sid-1", "job.0.1", tuple(PHONES))


def test_optional_fields_left_out_are_absent_from_the_body() -> None:
    fish, adapter = client("plain")
    fish.send(PHONES[:1], "【沙箱】您好")
    assert set(posted(adapter)[1]) == {"account", "password", "mobile", "content"}


def test_phone_variant_encrypts_each_phone_on_its_own() -> None:
    fish, adapter = client("phone")
    fish.send(PHONES, "【沙箱】您好", sms_id="s1")
    path, body = posted(adapter)
    assert path == "/rest/sms/sendSmsByEncrypt"
    assert body["password"] == password_md5(PASSWORD)
    assert [aes_decrypt_hex(AES_KEY, c) for c in body["mobile"].split(",")] == PHONES
    assert PHONES[0].encode() not in adapter.requests[0].body  # type: ignore[operator]


def test_full_variant_encrypts_and_signs_the_whole_request() -> None:
    fish, adapter = client("full")
    fish.send(PHONES, "【沙箱】您好", sms_id="s1", sub_code="7", send_time="2030-01-02 03:04:05")
    path, body = posted(adapter)
    assert path == "/rest/sms/sendSms/encryption"
    assert opened(body) == {"mobile": "13800000001,13800000002", "content": "【沙箱】您好", "smsId": "s1",
                            "subCode": "7", "sendTime": "2030-01-02 03:04:05"}
    raw: bytes = adapter.requests[0].body  # type: ignore[assignment]
    assert PHONES[0].encode() not in raw and PASSWORD.encode() not in raw and SECRET.encode() not in raw


@pytest.mark.parametrize("mode", MODES)
def test_quotes_backslashes_newlines_and_emoji_reach_the_gateway_unchanged(mode: str) -> None:
    fish, adapter = client(mode)
    fish.send(PHONES[:1], TRICKY)
    _, body = posted(adapter)
    content = opened(body)["content"] if mode == "full" else body["content"]
    assert content == TRICKY


@pytest.mark.parametrize("mode", MODES)
def test_a_repeated_phone_is_sent_once_and_reported(mode: str) -> None:
    fish, adapter = client(mode)
    result = fish.send([PHONES[0], "+86" + PHONES[0], PHONES[1], f" {PHONES[1]} "], "【沙箱】您好")
    _, body = posted(adapter)
    mobile = opened(body)["mobile"] if mode == "full" else body["mobile"]
    if mode == "phone":
        mobile = ",".join(aes_decrypt_hex(AES_KEY, c) for c in mobile.split(","))
    assert mobile == "13800000001,13800000002"
    assert result.accepted == tuple(PHONES) and result.duplicates == tuple(PHONES)


def test_an_aware_send_time_is_sent_in_china_time() -> None:
    fish, adapter = client("plain")
    fish.send(PHONES[:1], "【沙箱】您好", send_time=dt.datetime(2030, 1, 1, 16, 0, tzinfo=dt.UTC))
    assert posted(adapter)[1]["sendTime"] == "2030-01-02 00:00:00"


def test_a_naive_send_time_is_taken_as_china_time() -> None:
    fish, adapter = client("plain")
    fish.send(PHONES[:1], "【沙箱】您好", send_time=dt.datetime(2030, 1, 2, 8, 30))
    assert posted(adapter)[1]["sendTime"] == "2030-01-02 08:30:00"


# -- batchSendSms -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "path"), [("plain", "/rest/sms/batchSendSms"), ("phone", "/rest/sms/batchSendSms")])
def test_batch_posts_one_content_per_phone(mode: str, path: str) -> None:
    fish, adapter = client(mode)
    result = fish.send_batch([(PHONES[0], "【沙箱】一"), (PHONES[1], TRICKY)], sms_id="b.1", sub_code="3")
    sent_path, body = posted(adapter)
    assert sent_path == path  # "phone" accounts have no encrypted batch: it goes plain
    assert body == {"account": ACCOUNT, "password": password_md5(PASSWORD), "smsId": "b.1", "subCode": "3",
                    "mobiles": [{"mobile": PHONES[0], "content": "【沙箱】一"},
                                {"mobile": PHONES[1], "content": TRICKY}]}
    assert result.accepted == tuple(PHONES)


def test_full_batch_is_encrypted_and_signed() -> None:
    fish, adapter = client("full")
    fish.send_batch([(PHONES[0], "【沙箱】一"), (PHONES[1], TRICKY)], send_time="2030-01-02 03:04:05")
    path, body = posted(adapter)
    assert path == "/rest/sms/batchSendSms/encryption"
    assert opened(body) == {"mobiles": [{"mobile": PHONES[0], "content": "【沙箱】一"},
                                        {"mobile": PHONES[1], "content": TRICKY}],
                            "sendTime": "2030-01-02 03:04:05"}


def test_batch_keeps_the_first_content_of_a_repeated_phone_and_reports_the_rest() -> None:
    fish, adapter = client("plain")
    result = fish.send_batch([(PHONES[0], "【沙箱】first"), (PHONES[1], "【沙箱】b"),
                              ("+86" + PHONES[0], "【沙箱】second"), (PHONES[0], "【沙箱】third")])
    assert posted(adapter)[1]["mobiles"] == [{"mobile": PHONES[0], "content": "【沙箱】first"},
                                             {"mobile": PHONES[1], "content": "【沙箱】b"}]
    assert result.duplicates == (PHONES[0], PHONES[0])


# -- the GET pulls -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "path", "doc"),
    [
        ("balance", "/rest/sms/getBalance", {"revStat": "r:000", "revStatDes": "您的短信余额为:2670 条", "code": 200}),
        ("pull_receipts", "/rest/sms/getReport", {"subStat": "r:000", "code": 200, "resDetail": []}),
        ("pull_replies", "/rest/sms/getReply", {"revStat": "r:000", "code": 200, "resDetail": []}),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_pulls_are_gets_with_account_and_md5_password(call: str, path: str, doc: dict[str, Any], mode: str) -> None:
    fish, adapter = client(mode, answer(doc))
    getattr(fish, call)()
    request = adapter.requests[0]
    url = urlsplit(request.url)
    assert (request.method, url.path, request.body) == ("GET", path, None)
    assert parse_qs(url.query) == {"account": [ACCOUNT], "password": [password_md5(PASSWORD)]}


# -- the plan itself ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_the_plan_carries_the_sms_id_that_receipts_will_echo(mode: str) -> None:
    """Receipts are matched by smsId: every variant, send and batch, keeps the one it sent."""
    assert rq.plan_send(make_account(mode), PHONES, "【沙箱】您好", sms_id="j.0.1", now_ms=NOW_MS).sms_id == "j.0.1"
    batch = rq.plan_batch(make_account(mode), [(PHONES[0], "【沙箱】您好")], sms_id="j.0.2", now_ms=NOW_MS)
    assert batch.sms_id == "j.0.2"


def test_a_sealed_body_needs_both_the_aes_key_and_the_app_secret() -> None:
    """A plain account with a key but no secret cannot seal; the message names the account and both keys."""
    account = AiofishAccount(name="unit", account=ACCOUNT, password=PASSWORD, aes_key=AES_KEY, base_url=BASE)
    with pytest.raises(ConfigurationError) as err:
        rq.sealed_body(account, {"mobile": PHONES[0]}, NOW_MS)
    assert str(err.value) == "aiofish:unit full encryption needs aes_key and app_secret"


def test_json_text_is_compact_and_keeps_non_ascii() -> None:
    """bizContent encrypts this text: no spaces after ',' or ':', Chinese as UTF-8, not \\u escapes."""
    assert rq.json_text({"mobile": "13800000001", "content": ["【沙箱】", 1]}) == \
        '{"mobile":"13800000001","content":["【沙箱】",1]}'


def _problems(call: Any, *args: Any, **kw: Any) -> list[str]:
    with pytest.raises(ValidationError) as err:
        call(*args, **kw)
    return [str(p) for p in err.value.problems]


def test_batch_item_messages_say_a_phone_content_pair_is_expected() -> None:
    account = make_account()
    assert _problems(rq.plan_batch, account, "13800000001", now_ms=NOW_MS) == [
        "items: must be a list of (phone, content) pairs"
    ]
    # A two-character string has two items but is not a pair; every malformed item is named.
    assert _problems(rq.plan_batch, account, [(PHONES[0], "【沙箱】一"), "ab", 7, (PHONES[1],)], now_ms=NOW_MS) == [
        "items[1]: must be a (phone, content) pair",
        "items[2]: must be a (phone, content) pair",
        "items[3]: must be a (phone, content) pair",
    ]


def test_the_manuals_caps_are_2000_phones_per_send_and_200_pairs_per_batch() -> None:
    many = [f"138{i:08d}" for i in range(2001)]
    assert _problems(rq.plan_send, make_account(), many, "【沙箱】您好", now_ms=NOW_MS) == [
        "phones: has 2001 distinct numbers; at most 2000 per call"
    ]
    assert _problems(rq.plan_batch, make_account(), [(p, "【沙箱】您好") for p in many[:201]], now_ms=NOW_MS) == [
        "items: has 201 distinct numbers; at most 200 per call"
    ]
