"""The opass manual's vendor samples, ported faithfully, are accepted by the sandbox.

Each port reproduces its sample's signing and body encoding: the Python sample
(skip-falsy sign string, ``requests.post(json=…)`` with ``upExtendCode: None``),
PHP (``ksort``, every field, ``json_encode`` escaping, ``mt_rand`` nonce,
``time()*1000``, HmacMD5), C# (SortedDictionary, skip empty, 5-9 digit nonce,
System.Text.Json escaping), Postman (``JSON.stringify`` of non-strings, ``null``
as text, 10-digit nonce) and Java (TreeMap, HmacSHA224, fastjson, ``/sms/arrive/qry``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
import requests

from dispatcher.local.sandbox import demo
from tests.integration.test_sandbox_support import TPL_CODE, TPL_TWO, opass

KEY, SECRET = demo.OPASS_API_KEY, demo.OPASS_ACCESS_KEY
DIGESTS = {"HmacSHA256": hashlib.sha256, "HmacMD5": hashlib.md5, "HmacSHA224": hashlib.sha224}


@dataclass(frozen=True)
class Call:
    """A request as a sample would send it, plus how it encodes bodies (to tamper with one)."""

    url: str
    headers: dict[str, str]
    fields: dict[str, Any]
    encode: Callable[[dict[str, Any]], bytes]

    def send(self) -> dict[str, Any]:
        answer: dict[str, Any] = requests.post(self.url, data=self.encode(self.fields), headers=self.headers,
                                               timeout=10).json()
        return answer

    def tampered(self) -> Call:
        """The same request with the last digit of ``phones``/``phonesJson``/``msgId`` changed."""
        name = next(k for k in ("phones", "phonesJson", "msgId") if k in self.fields)
        value = self.fields[name]
        i = max(pos for pos, ch in enumerate(value) if ch.isdigit())
        flipped = value[:i] + ("1" if value[i] != "1" else "2") + value[i + 1 :]
        return replace(self, fields={**self.fields, name: flipped})


def _hmac(method: str, key: str, text: str) -> str:
    return hmac.new(key.encode(), text.encode(), DIGESTS[method]).hexdigest()


# ------------------------------------------------------------------ Python sample


def python_sample(base: str, phones: str, *, ts_ms: int | None = None, key: str = SECRET) -> Call:
    """``SMSSendUtils.sms_api_send`` with a template parameter and ``upExtendCode=None``."""
    headers = {
        "x-sign-method": "HmacSHA256",
        "x-api-key": KEY,
        "x-nonce": str(random.randint(1, int(1e10 - 1))),
        "x-timestamp": str(ts_ms or int(round(time.time() * 1000))),  # noqa: RUF046 - the sample's own code
    }
    data = {"phones": phones, "templateCode": TPL_CODE, "templateParam": '["测试1"]', "upExtendCode": None}
    sorted_params = dict(sorted(dict(data, **headers).items()))
    query = ""
    for k, v in sorted_params.items():
        if k and v:
            query += k + "=" + v + "&"
    headers["x-sign"] = _hmac("HmacSHA256", key, query[:-1])
    headers["Content-Type"] = "application/json"  # what requests.post(json=...) sets
    return Call(base + "/message/send", headers, data, lambda d: json.dumps(d).encode())


# ------------------------------------------------------------------ PHP sample


def php_json_encode(value: dict[str, Any]) -> bytes:
    """PHP ``json_encode`` defaults: ``\\uXXXX`` for non-ASCII, ``\\/`` for slashes."""
    return json.dumps(value, separators=(",", ":")).replace("/", "\\/").encode()


def php_sample(base: str, phones: str, *, ts_ms: int | None = None, key: str = SECRET) -> Call:
    """The PHP sample: every field signed, ``ksort``, ``mt_rand`` nonce, ``time()*1000``, HmacMD5."""
    headers: dict[str, Any] = {
        "x-sign-method": "HmacMD5",
        "x-api-key": KEY,
        "x-nonce": random.randint(0, 2**31 - 1),
        "x-timestamp": (ts_ms // 1000 if ts_ms else int(time.time())) * 1000,
    }
    js_arr = {"phones": phones, "templateCode": TPL_TWO, "templateParam": '["张三/李四","100"]', "upExtendCode": "123"}
    sign_dic = dict(sorted({**js_arr, **headers}.items()))
    dic_str = "&".join(f"{k}={v}" for k, v in sign_dic.items())
    wire = {k: str(v) for k, v in headers.items()}
    wire["Content-Type"] = "application/json"
    wire["x-sign"] = _hmac("HmacMD5", key, dic_str)
    return Call(base + "/message/send", wire, js_arr, php_json_encode)


# ------------------------------------------------------------------ C# sample


def dotnet_json(value: dict[str, str]) -> bytes:
    """System.Text.Json's default encoder: non-ASCII and HTML-sensitive characters as ``\\uXXXX``."""
    def escape(text: str) -> str:
        out = []
        for ch in text:
            if ch == "\\":
                out.append("\\\\")
            elif 0x20 <= ord(ch) < 0x7F and ch not in "\"'<>&+`":
                out.append(ch)
            else:
                out.append(f"\\u{ord(ch):04X}")
        return "".join(out)
    return ("{" + ",".join(f'"{escape(k)}":"{escape(v)}"' for k, v in value.items()) + "}").encode()


def csharp_sample(base: str, phones: str, *, ts_ms: int | None = None, key: str = SECRET) -> Call:
    """The C# sample: SortedDictionary, skip null/empty, ``Random.Next(10000, 999999999)``, HmacSHA256."""
    headers = {
        "x-sign-method": "HmacSHA256",
        "x-api-key": KEY,
        "x-nonce": str(random.randint(10000, 999999999 - 1)),
        "x-timestamp": str(ts_ms or int(time.time() * 1000)),
    }
    js_arr = {"phones": phones, "templateCode": TPL_TWO, "templateParam": '["张三","生日祝福"]'}
    # Ordinal and culture order agree for these ASCII keys.
    query = "&".join(f"{k}={v}" for k, v in sorted({**js_arr, **headers}.items()) if k and v)
    wire = {**headers, "x-sign": _hmac("HmacSHA256", key, query), "Content-Type": "application/json"}
    return Call(base + "/message/send", wire, js_arr, dotnet_json)


# ------------------------------------------------------------------ Postman sample


def postman_sample(base: str, phones: str, *, ts_ms: int | None = None, key: str = SECRET) -> Call:
    """The Postman pre-request script: every key, non-strings via ``JSON.stringify``, ``null`` as text."""
    param: dict[str, Any] = {"phones": phones, "templateCode": TPL_CODE, "templateParam": '["654321"]',
                             "upExtendCode": None}
    param["x-sign-method"] = "HmacSHA256"
    param["x-api-key"] = KEY
    param["x-nonce"] = "".join(str(random.randint(0, 9)) for _ in range(10))
    param["x-timestamp"] = str(ts_ms or int(time.time() * 1000))
    kv = []
    for k in sorted(param):
        obj = param[k]
        if isinstance(obj, dict | list):
            kv.append(k + "=" + json.dumps(obj, separators=(",", ":"), ensure_ascii=False))
        else:
            kv.append(k + "=" + ("null" if obj is None else str(obj)))
    headers = {k: param[k] for k in ("x-api-key", "x-sign-method", "x-nonce", "x-timestamp")}
    headers["x-sign"] = _hmac("HmacSHA256", key, "&".join(kv))
    headers["Content-Type"] = "application/json"
    body = {k: v for k, v in param.items() if not k.startswith("x-")}
    return Call(base + "/message/send", headers, body, lambda d: json.dumps(d, ensure_ascii=False).encode())


# ------------------------------------------------------------------ Java sample


def _java(base: str, path: str, body: dict[str, Any], ts_ms: int | None, key: str) -> Call:
    headers = {"x-api-key": KEY, "x-nonce": str(random.randint(10**9, 10**10 - 1)),
               "x-sign-method": "HmacSHA224", "x-timestamp": str(ts_ms or int(time.time() * 1000))}
    tree = dict(sorted({**body, **headers}.items()))
    wire = {**headers, "x-sign": _hmac("HmacSHA224", key, "&".join(f"{k}={v}" for k, v in tree.items())),
            "Content-Type": "application/json; charset=UTF-8"}
    return Call(base + path, wire, body, lambda d: json.dumps(d, ensure_ascii=False, separators=(",", ":")).encode())


def java_batch_sample(base: str, phones: str, *, ts_ms: int | None = None, key: str = SECRET) -> Call:
    """``SMSSendUtils.send(templateCode, phonesAndParams)``: sendBatch, HmacSHA224, fastjson."""
    numbers = phones.split(",")
    body = {"phonesJson": json.dumps(numbers, separators=(",", ":")),
            "templateParamJson": json.dumps([["李四", "222"] for _ in numbers], ensure_ascii=False,
                                            separators=(",", ":")),
            "templateCode": TPL_TWO}
    return _java(base, "/message/sendBatch", body, ts_ms, key)


SAMPLES = {"python": python_sample, "php": php_sample, "csharp": csharp_sample, "postman": postman_sample,
           "java": java_batch_sample}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_vendor_sample_is_accepted_and_every_alteration_is_refused(sandbox: Any, sandbox_url: str, name: str) -> None:
    sample = SAMPLES[name]
    numbers = "13912340001,13912340002"
    good = sample(sandbox_url, numbers)

    forged = good.tampered().send()
    assert forged["code"] == 2001, forged  # checked before the nonce, so the nonce is not burned
    accepted = good.send()
    assert accepted["code"] == 200, accepted
    assert len(accepted["data"]["msgId"]) == 18 and accepted["data"]["msgId"].isdigit()
    assert good.send()["code"] == 2001  # replayed nonce
    stale = sample(sandbox_url, numbers, ts_ms=int(time.time() * 1000) - 61_000).send()
    assert stale["code"] == 2001 and "时间戳" in stale["message"]
    assert sample(sandbox_url, numbers, key="not-the-access-key").send()["code"] == 2001

    assert sandbox.ledger()["accepted"]["opass"] == {"13912340001": 1, "13912340002": 1}


def test_csharp_body_really_carries_unicode_escapes() -> None:
    body = dotnet_json({"templateParam": '["张三"]'})
    assert b"\\u0022\\u5F20\\u4E09\\u0022" in body


def test_java_receipt_query_on_its_own_path_with_hmac_sha224(sandbox: Any, sandbox_url: str) -> None:
    sandbox.configure(receipt_delay_s=0.0, limits={"opass_query": {"max": 100, "window_s": 60}})
    sent = opass(sandbox_url, "/message/send", {"phones": "13912340003", "templateCode": TPL_CODE,
                                                "templateParam": '["123456"]', "bid": "java-bid"})
    msg_id = sent["data"]["msgId"]
    call = _java(sandbox_url, "/sms/arrive/qry", {"msgId": msg_id}, None, SECRET)
    assert call.tampered().send()["code"] == 2001
    answer = call.send()
    assert answer["code"] == 200
    assert [(r["msgId"], r["tel"], r["bid"]) for r in answer["data"]] == [(msg_id, "13912340003", "java-bid")]
