"""The running sandbox accepts requests whose secrets were made outside this code.

The client-against-sandbox tests build every request with the project's own MD5, SHA256, x-sign
and AES helpers, which the sandbox also checks with. Here the secret parts come from elsewhere:
literals made with the openssl CLI (see tests/unit/test_crypto_known_answers.py and
tests/unit/test_sandbox_known_answers.py for the commands), the openssl CLI run now for what
must carry the current time, and hashlib applied to the manual's formula. The opass sign has
the same kind of check in tests/integration/test_sandbox_opass_samples.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from typing import Any

import pytest
import requests

from dispatcher.local.sandbox import demo
from tests.integration.test_sandbox_support import now_ms
from tests.unit.test_crypto_known_answers import AES_VECTORS, SANDBOX_PASSWORD_MD5, SANDBOX_X_SIGN

TEXT = "【沙箱】您的验证码是123456，5分钟内有效。"
P1_HEX, P2_HEX, LIST_HEX = (blob for _, _, blob in AES_VECTORS[:3])  # 13800000001, 13800000002, both as one
MANUAL_TS = "1638805414651"  # the vsms manual's ts, long outside the sandbox's window
OPENSSL = shutil.which("openssl")


def _post(base: str, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = requests.post(base + path, json=body, headers=headers, timeout=10).json()
    return answer


def test_the_openssl_md5_of_the_demo_password_logs_in(sandbox: Any, sandbox_url: str) -> None:
    body = {"account": demo.AIOFISH_ACCOUNT, "mobile": "13800000001", "content": TEXT}
    answer = _post(sandbox_url, "/rest/sms/sendSms", {**body, "password": SANDBOX_PASSWORD_MD5})
    assert (answer["code"], answer["subStat"]) == (200, "r:000"), answer
    refused = _post(sandbox_url, "/rest/sms/sendSms", {**body, "password": demo.AIOFISH_PASSWORD})
    assert (refused["code"], refused["subStat"]) == (401, "p:003")
    assert sandbox.ledger()["accepted"]["aiofish"] == {"13800000001": 1}


@pytest.mark.parametrize(("mobile", "reading"), [(f"{P1_HEX},{P2_HEX}", "each"), (LIST_HEX, "list")],
                         ids=["each-encrypted", "list-encrypted"])
def test_openssl_ciphertexts_of_numbers_are_sent_and_echoed(sandbox: Any, sandbox_url: str, mobile: str,
                                                           reading: str) -> None:
    body = {"account": demo.AIOFISH_ACCOUNT, "password": SANDBOX_PASSWORD_MD5, "mobile": mobile, "content": TEXT}
    answer = _post(sandbox_url, "/rest/sms/sendSmsByEncrypt", body)
    assert answer["subStat"] == "r:000", (reading, answer)
    assert [d["phoneNumber"] for d in answer["resDetail"]] == [P1_HEX, P2_HEX]
    assert sandbox.ledger()["accepted"]["aiofish"] == {"13800000001": 1, "13800000002": 1}


@pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is not on PATH: no independent AES")
def test_an_envelope_encrypted_by_openssl_and_signed_by_the_manuals_formula_is_sent(
    sandbox: Any, sandbox_url: str
) -> None:
    biz = json.dumps({"mobile": "13800000003", "content": TEXT}, ensure_ascii=False).encode()
    key_hex = demo.AIOFISH_AES_KEY.encode().hex()
    run = subprocess.run([str(OPENSSL), "enc", "-aes-128-ecb", "-nosalt", "-K", key_hex], input=biz,
                         capture_output=True, check=True, timeout=60)
    content, ts = run.stdout.hex(), str(now_ms())
    # The manual: sha256Hex of account=…&appSecret=…&bizContent=…&ts=… (TreeMap order, "&" and "=").
    text = f"account={demo.AIOFISH_ACCOUNT}&appSecret={demo.AIOFISH_APP_SECRET}&bizContent={content}&ts={ts}"
    sign = hashlib.sha256(text.encode()).hexdigest()
    envelope = {"account": demo.AIOFISH_ACCOUNT, "ts": ts, "bizContent": content, "sign": sign}
    answer = _post(sandbox_url, "/rest/sms/sendSms/encryption", envelope)
    assert answer["subStat"] == "r:000", answer
    assert sandbox.ledger()["accepted"]["aiofish"] == {"13800000003": 1}


def _isms(base: str, ts: str, sign: str) -> dict[str, Any]:
    body = {"appKey": demo.AIOFISH_APP_KEY, "ts": ts, "content": "hello! test sms", "mobiles": ["85212341234"]}
    return _post(base, "/rest/isms/sendIsms", body, {"x-sign": sign})


def test_the_openssl_x_sign_passes_the_sign_check(sandbox: Any, sandbox_url: str) -> None:
    # The sandbox checks appKey, then x-sign, then ts: with the manual's old ts, the right sign
    # gets as far as the ts check, a wrong one stops at the sign.
    assert _isms(sandbox_url, MANUAL_TS, SANDBOX_X_SIGN) == {"code": "invalid_ts"}
    assert _isms(sandbox_url, MANUAL_TS, SANDBOX_X_SIGN[:-1] + "0") == {"code": "invalid_sign"}


def test_an_x_sign_made_by_the_manuals_formula_sends(sandbox: Any, sandbox_url: str) -> None:
    ts = str(now_ms())
    # The manual: MD5(String.format("%s,%s,%s", appKey, ts, appSecret)), hex.
    sign = hashlib.md5(f"{demo.AIOFISH_APP_KEY},{ts},{demo.AIOFISH_APP_SECRET}".encode()).hexdigest()
    assert _isms(sandbox_url, ts, sign)["code"] == "success"
    assert sandbox.ledger()["accepted"]["aiofish-isms"] == {"85212341234": 1}
