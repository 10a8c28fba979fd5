"""Known answers from the manuals, and AES checked against an independent implementation (openssl)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from dispatcher.errors import ConfigurationError
from dispatcher.providers.aiofish_crypto import (
    DecryptionError,
    aes_decrypt_hex,
    aes_encrypt_hex,
    biz_sign,
    password_md5,
    verify_biz_sign,
    x_sign,
)
from dispatcher.providers.opass_sign import sign_string

KEY = "sandbox-aes-k128"
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is not on PATH: no independent AES")
MANUAL_SIGN_INPUT = {"account": "api003", "app_secret": "ba92fa4836984eb98156e6ec8a6b2454",
                     "biz_content": "10e18d2ebaebdb485cae33dca2", "ts": "1698632973036"}
MANUAL_SIGN = "1f825da81826e47c4dbff9a5c785cb8c141dcb1a5343d3650bfe6794879ef400"
# Plaintexts around the block size (PKCS5 adds a whole block at exactly 16 bytes), Chinese, JSON.
TEXTS = ["", "1", "138123456789012", "1381234567890123", "13812345678901234", "x" * 32,
         "【沙箱】您的验证码是123456", '{"mobile":"13800000001","content":"a\\"b"}']


def test_the_sha256_body_sign_matches_the_manuals_vector() -> None:
    assert biz_sign(**MANUAL_SIGN_INPUT) == MANUAL_SIGN


def test_the_manuals_sign_verifies_and_a_changed_one_does_not() -> None:
    assert verify_biz_sign(**MANUAL_SIGN_INPUT, sign=MANUAL_SIGN.upper())
    assert not verify_biz_sign(**MANUAL_SIGN_INPUT, sign=MANUAL_SIGN[:-1] + "1")
    assert not verify_biz_sign(**{**MANUAL_SIGN_INPUT, "ts": "1698632973037"}, sign=MANUAL_SIGN)


def test_opass_sign_string_example_from_the_manual() -> None:
    fields = {"phones": "P1,P2", "templateCode": "CODE", "templateParam": '["p1","p2","p3"]',
              "x-api-key": "KEY", "x-nonce": "H95a7XT1h6", "x-sign-method": "HmacSHA256",
              "x-timestamp": "1641350184346"}
    assert sign_string(fields) == ('phones=P1,P2&templateCode=CODE&templateParam=["p1","p2","p3"]'
                                   "&x-api-key=KEY&x-nonce=H95a7XT1h6&x-sign-method=HmacSHA256"
                                   "&x-timestamp=1641350184346")


def _openssl(key: str, data: bytes, *, decrypt: bool) -> bytes:
    cipher = f"-aes-{len(key.encode()) * 8}-ecb"
    args = [str(OPENSSL), "enc", cipher, "-K", key.encode().hex(), "-nosalt", *(["-d"] if decrypt else [])]
    return subprocess.run(args, input=data, capture_output=True, check=True).stdout


@needs_openssl
@pytest.mark.parametrize("text", TEXTS)
def test_openssl_decrypts_what_we_encrypt(text: str) -> None:
    ours = aes_encrypt_hex(KEY, text)
    assert _openssl(KEY, bytes.fromhex(ours), decrypt=True).decode() == text


@needs_openssl
@pytest.mark.parametrize("text", TEXTS)
def test_we_decrypt_what_openssl_encrypts(text: str) -> None:
    theirs = _openssl(KEY, text.encode(), decrypt=False).hex()
    assert aes_decrypt_hex(KEY, theirs) == text
    assert aes_decrypt_hex(KEY, theirs.upper()) == text  # hex case is not significant


@needs_openssl
@pytest.mark.parametrize("key", ["sandbox-aes-k192-24bytes", "sandbox-aes-key256-32bytes-long!"])
def test_longer_keys_agree_with_openssl_too(key: str) -> None:
    ours = aes_encrypt_hex(key, "13812345678")
    assert _openssl(key, bytes.fromhex(ours), decrypt=True) == b"13812345678"
    assert aes_decrypt_hex(key, _openssl(key, b"13812345678", decrypt=False).hex()) == "13812345678"


def test_ciphertext_is_lower_case_hex_of_whole_blocks() -> None:
    blob = aes_encrypt_hex(KEY, "1381234567890123")
    assert len(blob) == 64 and blob == blob.lower()  # 16 bytes of text + a full padding block


@pytest.mark.parametrize("bad", ["zz", "", "00" * 15])
def test_malformed_ciphertext_is_a_decryption_error(bad: str) -> None:
    with pytest.raises(DecryptionError):
        aes_decrypt_hex(KEY, bad)


def test_a_wrong_key_or_truncated_ciphertext_is_a_decryption_error() -> None:
    blob = aes_encrypt_hex(KEY, "13812345678")
    for key, data in ((KEY, blob[:-2]), ("another-key-16by", blob)):
        with pytest.raises(DecryptionError):
            aes_decrypt_hex(key, data)


def test_a_key_of_the_wrong_length_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        aes_encrypt_hex("short", "x")


def test_md5_password_known_answer() -> None:
    # Computed independently: printf 'sandbox-password' | openssl dgst -md5
    assert password_md5("sandbox-password") == "911b7bf55b7b03cdfe2af9d1e68e4897"


def test_x_sign_is_md5_of_comma_joined_app_key_ts_secret() -> None:
    # printf 'k,1638805414651,s' | openssl dgst -md5
    assert x_sign(app_key="k", ts="1638805414651", app_secret="s") == "2017ea43d785d3b8b2803b0dad602cee"
