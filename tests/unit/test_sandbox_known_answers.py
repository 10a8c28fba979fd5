"""The sandbox's signature and encryption checks against known answers made outside this code.

The sandbox checks requests with the client's own signing and AES code, so a bug on both sides
would pass every client-against-sandbox test. Here each check the sandbox makes is fed vectors
from the manuals and the openssl CLI instead (literals, each with where it came from):

* opass request sign (``opass_auth.authenticate``): the manual's C# sample string and key under
  all six methods, and the PHP (empty as ``key=``, HmacMD5) and Postman (``null``, JSON of
  arrays, ``true``, numbers) readings: tests/unit/test_opass_sign.py and below;
* aiofish plain password (the sandbox config's MD5 the login compares with);
* sendSmsByEncrypt ``mobile`` (both readings) and the ciphertexts the sandbox echoes;
* …/encryption envelopes (SHA256 sign + AES bizContent);
* the phone-encrypted and fully encrypted pushes the sandbox sends.

The vsms/isms ``x-sign`` check lives in an HTTP handler: tests/integration/test_sandbox_known_answers.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from typing import Any
from urllib.parse import parse_qs

import pytest

from dispatcher.local.sandbox.aiofish_checks import AiofishReject, decrypt_mobiles, open_encrypted
from dispatcher.local.sandbox.config import AiofishAccountConfig, OpassAccountConfig, parse_config
from dispatcher.local.sandbox.defaults import DEFAULTS
from dispatcher.local.sandbox.opass_auth import OpassReject, authenticate
from dispatcher.local.sandbox.push_payloads import aiofish_push
from tests.unit.test_crypto_known_answers import AES_VECTORS, KEY, SANDBOX_PASSWORD_MD5
from tests.unit.test_opass_sign import (
    API_KEY,
    BODY,
    MANUAL_KEY,
    MANUAL_SIGNS,
    NONCE,
    PHP_EMPTY_SIGN,
    POSTMAN_NULL_SIGN,
    TS_MS,
)

# Postman reading of two more bodies (JSON.stringify for the array, JS text for 15 and true):
#   printf '%s' 'phones=15900582939&templateCode=580467552590397440&templateParam=["张三","生日祝福"]&x-api-key=22a71bfe4f9cab1dbce7e16bd71138c2&x-nonce=8052433127&x-sign-method=HmacSHA256&x-timestamp=1618810991174' | openssl dgst -sha256 -hmac '你的密钥'  # noqa: E501
#   printf '%s' 'phones=15900582939&templateCode=580467552590397440&upExtendCode=15&urgent=true&x-api-key=…&x-nonce=8052433127&x-sign-method=HmacSHA256&x-timestamp=1618810991174' | openssl dgst -sha256 -hmac '你的密钥'  # noqa: E501
POSTMAN_LIST_SIGN = "c90c50d0281d1d744da3f7646f9b505bb8f0a313b2ddc489006143ed7b653eec"
POSTMAN_NUMBER_BOOL_SIGN = "95bab7c685f7c54be740d294a90587723ae9d91650fd9fae7f498b07886854be"

P1_HEX, P2_HEX, LIST_HEX = (blob for _, _, blob in AES_VECTORS[:3])  # 13800000001, 13800000002, both as one
BIZ = '{"mobile":"13800000001","content":"【沙箱】您的验证码是123456"}'
BIZ_HEX = AES_VECTORS[5][2]
MANUAL_TS = "1698632973036"  # the ts of the manual's …/encryption sample
# printf '%s' "account=sandbox&appSecret=sandbox-app-secret&bizContent=$BIZ_HEX&ts=1698632973036" | openssl dgst -sha256
BIZ_SIGN = "ff4070731fb0e22390992bad46011292fe42794e5ee286cf797b87ac9e369b5e"
# A report push, encrypted and signed by hand (AES as AES_VECTORS, then SHA256 as BIZ_SIGN):
#   printf '%s' '{"phoneNumber":"13800000001","smsId":"c1","stat":0,"statDes":"DELIVRD","revTime":1698632973000}'
REPORT = {"phoneNumber": "13800000001", "smsId": "c1", "stat": 0, "statDes": "DELIVRD", "revTime": 1698632973000}
REPORT_HEX = ("7f32ca04d84dd1ad0ffe1b683441717e0ed861f7de92340f6920e90a834bf8b9daa393e64195ff2749a9e8b8199b2d60"
              "4d4380171ce6174bae51dac6b5a3f5618e557f1da393afae9f0a3eea8987acf1ab722b24223dfcd191941eaa1315247e")
REPORT_SIGN = "418d95742df3aac156d1175a42173f2aed282670ca31f1bb22fc15fc55901aa3"

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is not on PATH: no independent AES")
OPASS_ACCOUNT = OpassAccountConfig(api_key=API_KEY, access_key=MANUAL_KEY, balance={}, ip_whitelist=None,
                                   signature="", status_url=None, uplink_url=None, limits={})


def fish_account(push_mode: str = "plain") -> AiofishAccountConfig:
    """The sandbox's demo aiofish account with a chosen push mode."""
    return AiofishAccountConfig(
        account="sandbox", password_md5=SANDBOX_PASSWORD_MD5, app_key="sandbox-app-key",
        app_secret="sandbox-app-secret", aes_key=KEY, balance=0, push_mode=push_mode, report_url=None,
        reply_url=None, vsms_status_url=None, vsms_audit_url=None, isms_status_url=None, limits={})


# -- opass: authenticate() with the manual's vector ------------------------------------------------------


def _authenticate(method: str, sign: str, body: dict[str, Any]) -> tuple[OpassAccountConfig, str]:
    headers = {"x-api-key": API_KEY, "x-nonce": NONCE, "x-sign-method": method, "x-timestamp": str(TS_MS),
               "x-sign": sign}
    return authenticate(headers, body, {API_KEY: OPASS_ACCOUNT}, None, TS_MS, 60.0)


@pytest.mark.parametrize("method", sorted(MANUAL_SIGNS))
def test_the_manual_request_is_authenticated_under_every_method(method: str) -> None:
    assert _authenticate(method, MANUAL_SIGNS[method], dict(BODY)) == (OPASS_ACCOUNT, NONCE)


@pytest.mark.parametrize(("method", "sign", "extra"), [
    ("HmacMD5", PHP_EMPTY_SIGN, {"upExtendCode": ""}),
    ("HmacSHA256", POSTMAN_NULL_SIGN, {"upExtendCode": None}),
    ("HmacSHA256", POSTMAN_LIST_SIGN, {"templateParam": ["张三", "生日祝福"]}),
    ("HmacSHA256", POSTMAN_NUMBER_BOOL_SIGN, {"upExtendCode": 15, "urgent": True}),
], ids=["php-empty", "postman-null", "postman-array", "postman-number-bool"])
def test_each_sample_reading_is_authenticated(method: str, sign: str, extra: dict[str, Any]) -> None:
    assert _authenticate(method, sign, {**BODY, **extra}) == (OPASS_ACCOUNT, NONCE)


@pytest.mark.parametrize("method", sorted(MANUAL_SIGNS))
def test_a_changed_body_is_refused(method: str) -> None:
    with pytest.raises(OpassReject) as err:
        _authenticate(method, MANUAL_SIGNS[method], {**BODY, "phones": "15900582938"})
    assert (err.value.code, err.value.message) == ("2001", "API授权错误")


def test_a_sign_presented_under_another_method_is_refused() -> None:
    # The MD5 sign of the manual's MD5 string, claimed to be HmacSHA1 (so the string differs too).
    with pytest.raises(OpassReject) as err:
        _authenticate("HmacSHA1", MANUAL_SIGNS["HmacMD5"], dict(BODY))
    assert err.value.code == "2001"


# -- aiofish: the password the sandbox's login compares with ----------------------------------------------


def test_the_sandbox_demo_password_is_checked_as_its_md5() -> None:
    config = parse_config(DEFAULTS)
    assert config.aiofish_accounts["sandbox"].password_md5 == SANDBOX_PASSWORD_MD5


# -- aiofish: sendSmsByEncrypt mobile, both readings -------------------------------------------------------


def test_numbers_encrypted_one_by_one_are_read_and_echoed_as_given() -> None:
    given = f"{P1_HEX},{P2_HEX.upper()}"
    assert decrypt_mobiles(KEY, given) == ([P1_HEX, P2_HEX.upper()], ["13800000001", "13800000002"])


def test_a_list_encrypted_as_one_is_read_and_echoed_number_by_number() -> None:
    # The echo is each number encrypted on its own: compared with openssl's ciphertexts.
    assert decrypt_mobiles(KEY, LIST_HEX) == ([P1_HEX, P2_HEX], ["13800000001", "13800000002"])


def test_a_single_encrypted_number_is_read() -> None:
    assert decrypt_mobiles(KEY, P1_HEX) == ([P1_HEX], ["13800000001"])


def test_a_number_encrypted_under_another_key_is_a_decryption_failure() -> None:
    with pytest.raises(AiofishReject) as err:
        decrypt_mobiles("another-key-16by", P1_HEX)
    assert err.value.sub_stat == "p:011"


# -- aiofish: …/encryption envelopes -----------------------------------------------------------------------


@pytest.mark.parametrize("ts", [MANUAL_TS, int(MANUAL_TS)], ids=["text", "number"])
def test_an_envelope_made_with_openssl_is_opened(ts: object) -> None:
    body = {"account": "sandbox", "ts": ts, "bizContent": BIZ_HEX, "sign": BIZ_SIGN}
    account = fish_account()
    assert open_encrypted(account, body, int(MANUAL_TS), 300.0) == (account, json.loads(BIZ))


@pytest.mark.parametrize(("field", "value"), [("sign", BIZ_SIGN[:-1] + "0"), ("ts", "1698632973037"),
                                              ("bizContent", LIST_HEX)])
def test_an_envelope_with_a_changed_field_fails_its_sign(field: str, value: str) -> None:
    body = {"account": "sandbox", "ts": MANUAL_TS, "bizContent": BIZ_HEX, "sign": BIZ_SIGN, field: value}
    with pytest.raises(AiofishReject) as err:
        open_encrypted(fish_account(), body, int(MANUAL_TS), 300.0)
    assert err.value.sub_stat == "p:003"


# -- aiofish: what the sandbox pushes -------------------------------------------------------------------


@needs_openssl
def test_a_fully_encrypted_push_opens_with_openssl_and_carries_the_manuals_sign() -> None:
    job = aiofish_push(fish_account("full"), "report", REPORT, "http://hook", int(MANUAL_TS))
    envelope = json.loads(job.body)
    assert (envelope["account"], envelope["ts"]) == ("sandbox", MANUAL_TS)
    # Read back by openssl, not by our AES: the JSON layout is the sandbox's choice, its content is not.
    plain = subprocess.run([str(OPENSSL), "enc", "-d", "-aes-128-ecb", "-nosalt", "-K", KEY.encode().hex()],
                           input=bytes.fromhex(envelope["bizContent"]), capture_output=True, check=True, timeout=60)
    assert json.loads(plain.stdout) == REPORT
    # The manual's generateSign: sha256Hex("account=…&appSecret=…&bizContent=…&ts=…").
    text = f"account=sandbox&appSecret=sandbox-app-secret&bizContent={envelope['bizContent']}&ts={MANUAL_TS}"
    assert envelope["sign"] == hashlib.sha256(text.encode()).hexdigest()


def test_the_compact_report_push_is_byte_for_byte_openssls() -> None:
    # With the sandbox's compact JSON the whole envelope is known in advance (REPORT_HEX, REPORT_SIGN).
    job = aiofish_push(fish_account("full"), "report", REPORT, "http://hook", int(MANUAL_TS))
    assert json.loads(job.body) == {"account": "sandbox", "ts": MANUAL_TS, "bizContent": REPORT_HEX,
                                    "sign": REPORT_SIGN}


def test_a_phone_encrypted_push_carries_openssls_ciphertext() -> None:
    job = aiofish_push(fish_account("phone"), "report", REPORT, "http://hook", int(MANUAL_TS))
    form = {k: v[0] for k, v in parse_qs(job.body.decode()).items()}
    assert form == {"phoneNumber": P1_HEX, "smsId": "c1", "stat": "0", "statDes": "DELIVRD",
                    "revTime": "1698632973000"}
