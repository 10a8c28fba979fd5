"""Known answers from the manuals, and AES checked against an independent implementation."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

from dispatcher.providers.aiofish_crypto import (
    DecryptionError,
    aes_decrypt_hex,
    aes_encrypt_hex,
    biz_sign,
    password_md5,
    x_sign,
)
from dispatcher.providers.opass_sign import sign_string

KEY = "sandbox-aes-k128"
openssl = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(openssl is None, reason="the openssl CLI is not installed")


def test_aiofish_sha256_sign_vector_from_the_manual() -> None:
    assert biz_sign(account="api003", app_secret="ba92fa4836984eb98156e6ec8a6b2454",
                    biz_content="10e18d2ebaebdb485cae33dca2", ts="1698632973036") == \
        "1f825da81826e47c4dbff9a5c785cb8c141dcb1a5343d3650bfe6794879ef400"


def test_opass_sign_string_example_from_the_manual() -> None:
    fields = {"phones": "P1,P2", "templateCode": "CODE", "templateParam": '["p1","p2","p3"]',
              "x-api-key": "KEY", "x-nonce": "H95a7XT1h6", "x-sign-method": "HmacSHA256",
              "x-timestamp": "1641350184346"}
    assert sign_string(fields) == ('phones=P1,P2&templateCode=CODE&templateParam=["p1","p2","p3"]'
                                   "&x-api-key=KEY&x-nonce=H95a7XT1h6&x-sign-method=HmacSHA256"
                                   "&x-timestamp=1641350184346")


def _openssl(args: list[str], data: bytes) -> bytes:
    return subprocess.run([openssl, "enc", "-aes-128-ecb", "-K", KEY.encode().hex(), "-nosalt", *args],  # type: ignore[list-item]
                          input=data, capture_output=True, check=True).stdout


@needs_openssl
@pytest.mark.parametrize("text", ["13812345678", "x" * 16, "", "【沙箱】您的验证码是123456", '{"mobile":"1"}'])
def test_our_aes_decrypts_with_openssl_and_back(text: str) -> None:
    ours = aes_encrypt_hex(KEY, text)
    assert _openssl(["-d"], bytes.fromhex(ours)).decode() == text
    theirs = _openssl([], text.encode()).hex()
    assert theirs == ours  # ECB + PKCS5 is deterministic: byte-identical
    assert aes_decrypt_hex(KEY, theirs) == text


def test_a_wrong_key_or_broken_ciphertext_is_a_decryption_error() -> None:
    blob = aes_encrypt_hex(KEY, "13812345678")
    for bad in ("zz", blob[:-2], aes_encrypt_hex("another-key-16by", "x")):
        with pytest.raises(DecryptionError):
            aes_decrypt_hex(KEY, bad)


def test_md5_password_and_x_sign() -> None:
    assert password_md5("sandbox-password") == hashlib.md5(b"sandbox-password").hexdigest()
    assert x_sign(app_key="k", ts="1638805414651", app_secret="s") == hashlib.md5(b"k,1638805414651,s").hexdigest()
