"""A corpus of bad input: every call refused with what is wrong and where, nothing stored or sent.

Producer calls go through a real Dispatcher on a real Redis (its enqueue step
records instead of reaching a broker, so "nothing queued" is observable).
Pushes go over real HTTP to the webhook under gunicorn.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.errors import ConfigurationError, ValidationError
from dispatcher.local.demo import AIOFISH_HOOK_TOKEN, OPASS_HOOK_TOKEN, accounts_doc
from dispatcher.local.sandbox import demo as creds
from dispatcher.local.stack import Stack
from dispatcher.producer import Dispatcher
from dispatcher.providers.aiofish.crypto import aes_encrypt_hex, biz_sign

OK = "13800000001"
SIGNED = "【沙箱】您好"
T = "1000000000000000002"

# (call, kwargs, the field the error must name)
PRODUCER_CORPUS: list[tuple[str, dict[str, Any], str]] = [
    # phones
    ("template", {"phones": [OK, "1380000000"]}, "phones[1]"),
    ("template", {"phones": [OK, "138000000012"]}, "phones[1]"),
    ("template", {"phones": ["12800000001"]}, "phones[0]"),
    ("template", {"phones": ["23800000001"]}, "phones[0]"),
    ("template", {"phones": ["1380000000a"]}, "phones[0]"),
    ("template", {"phones": [""]}, "phones[0]"),
    ("template", {"phones": ["   "]}, "phones[0]"),
    ("template", {"phones": [None]}, "phones[0]"),
    ("template", {"phones": [13800000001]}, "phones[0]"),
    ("template", {"phones": [["13800000001"]]}, "phones[0]"),
    ("template", {"phones": ["+4413800000001"]}, "phones[0]"),
    ("template", {"phones": ["１３８００００００01"]}, "phones[0]"),  # full-width digits
    ("template", {"phones": ["13８00000001"]}, "phones[0]"),  # one full-width digit inside
    ("template", {"phones": ["138-0000-0001"]}, "phones[0]"),
    ("template", {"phones": []}, "phones"),
    ("template", {"phones": None, "recipients": None}, "phones"),
    ("template", {"phones": [OK], "recipients": [(OK, ["1"])]}, "phones"),
    # params
    ("template", {"phones": [OK], "params": [None]}, "params[0]"),
    ("template", {"phones": [OK], "params": [{"a": 1}]}, "params[0]"),
    ("template", {"phones": [OK], "params": "123456"}, "params"),
    ("template", {"phones": [OK], "params": ["bad\x00nul"]}, "params[0]"),
    ("template", {"phones": [OK], "params": ["\ud800 lone surrogate"]}, "params[0]"),
    ("template", {"phones": [OK], "params": [1.5]}, "params[0]"),
    ("template", {"phones": [OK], "params": [True]}, "params[0]"),
    ("template", {"phones": [OK], "params": ["ok", "长" * 501]}, "params[1]"),
    # per-phone params
    ("template", {"phones": None, "recipients": [(OK, ["a"]), ("13800000002", ["a", "b"])]}, "recipients[1]"),
    ("template", {"phones": None, "recipients": [(OK, "abc")]}, "recipients[0].params"),
    ("template", {"phones": None, "recipients": [(OK, [None])]}, "recipients[0].params[0]"),
    ("template", {"phones": None, "recipients": [(OK, ["a"]), ("13800000002", ["x" * 501])]},
     "recipients[1].params[0]"),
    ("template", {"phones": None, "recipients": [OK]}, "recipients[0]"),
    ("template", {"phones": None, "recipients": [(OK, ["a"], "extra")]}, "recipients[0]"),
    ("template", {"phones": None, "recipients": [("bad", ["a"])]}, "recipients[0].phone"),
    # other fields
    ("template", {"phones": [OK], "template_code": ""}, "template_code"),
    ("template", {"phones": [OK], "template_code": None}, "template_code"),
    ("template", {"phones": [OK], "bid": "x" * 65}, "bid"),
    ("template", {"phones": [OK], "bid": "含中文"}, "bid"),
    ("template", {"phones": [OK], "bid": ""}, "bid"),
    ("template", {"phones": [OK], "extend_code": "12a"}, "extend_code"),
    ("template", {"phones": [OK], "extend_code": "-1"}, "extend_code"),
    ("template", {"phones": [OK], "extend_code": "1" * 13}, "extend_code"),
    ("template", {"phones": [OK], "priority": "urgent"}, "priority"),
    ("template", {"phones": [OK], "priority": None}, "priority"),
    ("template", {"phones": [OK], "send_at": "tomorrow"}, "send_at"),
    ("template", {"phones": [OK], "send_at": -5}, "send_at"),
    # aiofish content
    ("content", {"phones": [OK], "content": "no signature"}, "content"),
    ("content", {"phones": [OK], "content": ""}, "content"),
    ("content", {"phones": [OK], "content": None}, "content"),
    ("content", {"phones": [OK], "content": 12345}, "content"),
    ("content", {"phones": [OK], "content": SIGNED + "长" * 500}, "content"),
    ("content", {"phones": [OK], "content": "【】empty signature"}, "content"),
    ("content", {"phones": [OK], "content": SIGNED + "\x00"}, "content"),
    ("content", {"phones": [OK], "content": SIGNED, "sms_id": "x" * 33}, "sms_id"),
    ("content", {"phones": [OK], "content": SIGNED, "sms_id": "has space"}, "sms_id"),
    ("content", {"phones": [OK], "content": SIGNED, "sub_code": "1.5"}, "sub_code"),
    ("content", {"phones": [OK], "content": SIGNED, "recipients": [(OK, SIGNED)]}, "content"),
    ("content", {"phones": None, "recipients": [(OK, "no signature")]}, "recipients[0].content"),
    ("content", {"phones": None, "recipients": [(OK, None)]}, "recipients[0].content"),
    ("content", {"phones": None, "recipients": [(OK, SIGNED), ("1", SIGNED)]}, "recipients[1].phone"),
    ("content", {"phones": ["bad", OK], "content": "also bad"}, "phones[0]"),
]


@pytest.fixture
def producer(redis_client: redis.Redis) -> tuple[Dispatcher, list[str]]:
    queued: list[str] = []
    accounts = parse_accounts(accounts_doc("http://127.0.0.1:9"))
    d = Dispatcher(Settings(), accounts=accounts, client=redis_client,
                   enqueue=lambda job_id, queue, countdown: queued.append(job_id))
    return d, queued


def test_the_producer_corpus_has_at_least_50_cases() -> None:
    assert len(PRODUCER_CORPUS) >= 50


@pytest.mark.parametrize(("kind", "kwargs", "field"), PRODUCER_CORPUS,
                         ids=[f"{i}-{c[2]}" for i, c in enumerate(PRODUCER_CORPUS)])
def test_bad_producer_calls_name_the_field_and_store_nothing(producer, redis_client, kind: str,  # type: ignore[no-untyped-def]
                                                             kwargs: dict[str, Any], field: str) -> None:
    d, queued = producer
    with pytest.raises(ValidationError) as err:
        if kind == "template":
            d.send_template("demo", **{"template_code": T, "params": ["123456"], **kwargs})
        else:
            d.send_content("demo", **kwargs)
    assert field in err.value.fields, (err.value.fields, str(err.value))
    assert str(err.value)  # a message a person can read
    assert redis_client.dbsize() == 0 and queued == []


def test_an_unknown_account_is_a_configuration_error_naming_the_known_ones(producer, redis_client) -> None:  # type: ignore[no-untyped-def]
    d, queued = producer
    with pytest.raises(ConfigurationError, match="opass:demo"):
        d.send_template("nope", template_code=T, phones=[OK], params=["1"])
    assert redis_client.dbsize() == 0 and queued == []


# ----------------------------------------------------------------------------- pushes


@pytest.fixture
def hook(tmp_path: Path, redis_url: str, redis_client: redis.Redis) -> Iterator[str]:
    path = tmp_path / "accounts.json"
    doc = accounts_doc("http://127.0.0.1:9")
    # A second aiofish account whose console pushes plain forms (the demo's pushes signed JSON).
    doc["aiofish"].append({**doc["aiofish"][0], "name": "plainhook", "account": "sandbox-plain",
                           "push_variant": "plain", "callback_secret": PLAIN_TOKEN})
    path.write_text(json.dumps(doc))
    with Stack(tmp_path, env={"SMSD_ACCOUNTS_FILE": str(path), "SMSD_DATA_DIR": str(tmp_path)}) as stack:
        stack.start_redis(redis_url)
        yield stack.start_webhook(workers=1)


def _sealed(obj: Any, *, secret: str = creds.AIOFISH_APP_SECRET, ts: int | str | None = None, key: str | None = None,
            account: str = creds.AIOFISH_ACCOUNT, sign: str | None = None) -> bytes:
    ts = ts or int(time.time() * 1000)
    biz = aes_encrypt_hex(key or creds.AIOFISH_AES_KEY, obj if isinstance(obj, str) else json.dumps(obj))
    sign = sign or biz_sign(account=account, app_secret=secret, biz_content=biz, ts=str(ts))
    return json.dumps({"account": account, "ts": str(ts), "bizContent": biz, "sign": sign},
                      ensure_ascii=False).encode()


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


PLAIN_TOKEN = secrets.token_urlsafe(32)


REPORT = {"phoneNumber": OK, "smsId": "j.0.1", "stat": 0, "statDes": "DELIVRD", "revTime": 1}
JSON, FORM = "application/json", "application/x-www-form-urlencoded"
OPASS_HOOK = f"/hooks/opass/demo/{OPASS_HOOK_TOKEN}"
FISH_HOOK = f"/hooks/aiofish/demo/{AIOFISH_HOOK_TOKEN}"
PLAIN_HOOK = f"/hooks/aiofish/plainhook/{PLAIN_TOKEN}"
PUSH_CORPUS: list[tuple[str, str, bytes, int]] = [
    (OPASS_HOOK, JSON, b"", 400),
    (OPASS_HOOK, JSON, b"{", 400),
    (OPASS_HOOK, JSON, b"[]", 400),
    (OPASS_HOOK, JSON, b'"text"', 400),
    (OPASS_HOOK, JSON, b'{"apiKey": "sandbox-api-key"}', 400),
    (OPASS_HOOK, JSON, b'{"apiKey": "sandbox-api-key", "data": "x"}', 400),
    (OPASS_HOOK, JSON, b'{"apiKey": "other", "data": []}', 400),
    (OPASS_HOOK, JSON, b'{"data": [{"msgId": "1", "tel": "1", "arriveResult": "DELIVRD"}]}', 400),
    (OPASS_HOOK, JSON, b'{"apiKey": "sandbox-api-key", "data": [{"tel": 5}]}', 400),
    (OPASS_HOOK, JSON, b"\xff\xfe not utf-8", 400),
    ("/hooks/opass/demo/wrong-token", JSON, b'{"apiKey": "sandbox-api-key", "data": []}', 404),
    ("/hooks/opass/nobody/x", JSON, b"{}", 404),
    ("/hooks/sms/demo/x", JSON, b"{}", 404),
    (FISH_HOOK, FORM, b"", 400),
    (FISH_HOOK, FORM, b"phoneNumber=13800000001", 400),
    (FISH_HOOK, FORM, b"phoneNumber=12&stat=0", 400),
    (FISH_HOOK, FORM, b"phoneNumber=13800000001&stat=zero", 400),
    (FISH_HOOK, FORM, b"phoneNumber=deadbeef&stat=0", 400),
    (FISH_HOOK, JSON, b"{not json", 400),
    (FISH_HOOK, JSON, _sealed(REPORT, secret="forged-secret"), 400),
    (FISH_HOOK, JSON, _sealed(REPORT, ts=1_000_000_000_000), 400),
    (FISH_HOOK, JSON, _sealed(REPORT, key="another-key-16by"), 400),
    (FISH_HOOK, JSON, _sealed(REPORT, account="someone-else"), 400),
    (FISH_HOOK, JSON, _sealed("not an object"), 400),
    (FISH_HOOK, JSON, json.dumps({"account": "sandbox", "ts": "1"}).encode(), 400),
    # Hostile bodies behind a valid token: a 4xx, never 503 ("retry me") or 500.
    (OPASS_HOOK, JSON, b'{"apiKey": "sandbox-api-key", "data": ' + _nested(100_000) + b"}", 400),
    (FISH_HOOK, JSON, _nested(100_000), 400),
    (FISH_HOOK, JSON, _sealed(REPORT, sign="签" * 64), 400),  # a non-ASCII sign
    (FISH_HOOK, JSON, _sealed(REPORT, ts="١٧٠٠٠٠٠٠٠٠٠٠٠"), 400),  # Arabic-Indic digits in ts
    (FISH_HOOK, JSON, _sealed({**REPORT, "stat": "²"}), 400),  # a digit int() cannot read
    (FISH_HOOK, JSON, _sealed({**REPORT, "stat": "٠"}), 400),  # non-ASCII digits in stat
    (PLAIN_HOOK, FORM, "phoneNumber=13800000001&smsId=j.0.1&stat=٠".encode(), 400),
    (PLAIN_HOOK, FORM, "phoneNumber=13800000001&smsId=j.0.1&stat=²".encode(), 400),
    # The form the account's console is not set to: refused whatever it says.
    (FISH_HOOK, FORM, b"phoneNumber=13800000001&smsId=j.0.1&stat=0", 400),
    (PLAIN_HOOK, JSON, _sealed(REPORT), 400),
]


def test_the_push_corpus_has_at_least_20_cases() -> None:
    assert len(PUSH_CORPUS) >= 20


@pytest.mark.parametrize(("path", "ctype", "body", "status"), PUSH_CORPUS,
                         ids=[str(i) for i in range(len(PUSH_CORPUS))])
def test_bad_pushes_get_a_clear_4xx_and_change_nothing(hook: str, redis_client: redis.Redis, path: str, ctype: str,
                                                       body: bytes, status: int) -> None:
    answer = requests.post(hook + path, data=body, headers={"Content-Type": ctype}, timeout=5)
    assert answer.status_code == status, answer.text
    assert answer.text and answer.text != "0"  # never the aiofish success body
    assert OK not in answer.text and "secret" not in answer.text.lower()
    assert redis_client.dbsize() == 0  # nothing applied or stored
    assert requests.get(hook + "/healthz", timeout=5).ok  # the server lives on


def test_an_oversized_push_is_refused(hook: str) -> None:
    answer = requests.post(hook + OPASS_HOOK, data=b"x" * (2 << 20), headers={"Content-Type": JSON}, timeout=10)
    assert answer.status_code == 413
