"""Known answers from the manuals, and AES checked against an independent implementation (openssl)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dispatcher.errors import ConfigurationError
from dispatcher.providers.aiofish import crypto as aiofish_crypto
from dispatcher.providers.aiofish.crypto import (
    DecryptionError,
    aes_decrypt_hex,
    aes_encrypt_hex,
    biz_sign,
    password_md5,
    verify_biz_sign,
    x_sign,
)
from dispatcher.providers.opass.sign import sign_string

KEY = "sandbox-aes-k128"
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is not on PATH: no independent AES")
MANUAL_SIGN_INPUT = {"account": "api003", "app_secret": "ba92fa4836984eb98156e6ec8a6b2454",
                     "biz_content": "10e18d2ebaebdb485cae33dca2", "ts": "1698632973036"}
MANUAL_SIGN = "1f825da81826e47c4dbff9a5c785cb8c141dcb1a5343d3650bfe6794879ef400"
# Plaintexts around the block size (PKCS5 adds a whole block at exactly 16 bytes), Chinese, JSON.
# AES/ECB/PKCS5 known answers, made with the openssl CLI (K = the key's bytes as hex):
#   printf '%s' 13800000001 | openssl enc -aes-128-ecb -nosalt -K $(printf '%s' sandbox-aes-k128 | xxd -p) | xxd -p
# (-aes-192-ecb / -aes-256-ecb for the longer keys). Key, plaintext, ciphertext.
AES_VECTORS = [
    (KEY, "13800000001", "57ff9486a35cf071a2f88b7970c2e08c"),
    (KEY, "13800000002", "a54ba96180c206f675129e8033d75010"),
    (KEY, "13800000001,13800000002", "c3e9e1799cdb56dd671a9f74c4ca985e2a3cc810accefaada365bdeeffe3dd24"),
    (KEY, "", "d8e22d2da91bf3c1db9be157d8ba1f17"),  # padding only: one whole block
    (KEY, "1381234567890123", "1b405faec821fb4fcaf26294e42ccaa9d8e22d2da91bf3c1db9be157d8ba1f17"),
    (KEY, '{"mobile":"13800000001","content":"【沙箱】您的验证码是123456"}',
     "8993e685d6ddce75d56ca7e244c02c7990924f9325c934185f5b7893a53d38a8cc1809de07b55bf52b86d49a440440cc"
     "450392aaf05c0d3a2f4c379789fbb675471b5a80920e27a35922fc19a82fd066"),
    ("sandbox-aes-k192-24bytes", "13800000001", "5136aadd25f40bfcd13394bbed3a1aec"),
    ("sandbox-aes-key256-32bytes-long!", "13800000001", "8c90d9e081e5b167c6c74cddd7b972d4"),
]
# printf '%s' sandbox-password | openssl dgst -md5
SANDBOX_PASSWORD_MD5 = "911b7bf55b7b03cdfe2af9d1e68e4897"
# printf '%s' 'sandbox-app-key,1638805414651,sandbox-app-secret' | openssl dgst -md5 (the vsms manual's ts)
SANDBOX_X_SIGN = "3b5e86b80ec46de2df05ba8c61f1ec0b"
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
    assert password_md5("sandbox-password") == SANDBOX_PASSWORD_MD5


def test_x_sign_is_md5_of_comma_joined_app_key_ts_secret() -> None:
    # printf 'k,1638805414651,s' | openssl dgst -md5
    assert x_sign(app_key="k", ts="1638805414651", app_secret="s") == "2017ea43d785d3b8b2803b0dad602cee"


def test_x_sign_of_the_sandbox_demo_app_key() -> None:
    assert x_sign(app_key="sandbox-app-key", ts="1638805414651", app_secret="sandbox-app-secret") == SANDBOX_X_SIGN


@pytest.mark.parametrize(("key", "text", "blob"), AES_VECTORS, ids=[f"{len(k)}-{len(t)}" for k, _, t in AES_VECTORS])
def test_aes_matches_the_openssl_vectors_both_ways(key: str, text: str, blob: str) -> None:
    assert aes_encrypt_hex(key, text) == blob
    assert aes_decrypt_hex(key, blob) == text


def test_a_key_given_as_bytes_is_used_as_those_bytes() -> None:
    key, text, blob = AES_VECTORS[0]
    assert aes_encrypt_hex(key.encode(), text) == blob
    assert aes_decrypt_hex(key.encode(), blob) == text


@pytest.mark.parametrize("key", ["short", "x" * 17, b"x" * 15])
def test_the_key_length_error_names_the_length_found(key: str | bytes) -> None:
    with pytest.raises(ConfigurationError) as err:
        aes_encrypt_hex(key, "x")
    assert str(err.value) == f"AES key must be 16, 24 or 32 bytes, got {len(key)}"


@pytest.mark.parametrize(("blob", "message"), [
    ("zz", "ciphertext is not hex"),
    ("", "ciphertext is not a whole number of AES blocks"),
    ("00" * 15, "ciphertext is not a whole number of AES blocks"),
    ("00" * 17, "ciphertext is not a whole number of AES blocks"),
    # The first vector with its last byte changed: its last block decrypts to invalid padding.
    ("57ff9486a35cf071a2f88b7970c2e08c"[:-2] + "00", "wrong key or corrupted ciphertext"),
], ids=["not-hex", "empty", "short", "ragged", "bad-padding"])
def test_each_decryption_failure_says_what_is_wrong(blob: str, message: str) -> None:
    with pytest.raises(DecryptionError) as err:
        aes_decrypt_hex(KEY, blob)
    assert str(err.value) == message


def test_a_wrong_key_says_wrong_key() -> None:
    with pytest.raises(DecryptionError) as err:
        aes_decrypt_hex("another-key-16by", AES_VECTORS[0][2])
    assert str(err.value) == "wrong key or corrupted ciphertext"


# An OpenSSL configured as on a FIPS host: only algorithms with the fips property may be used for
# security, so md5() refuses unless called with usedforsecurity=False. The vendors require MD5
# (password, x-sign), which is not a security use on our side: the helpers must work there too.
FIPS_LIKE_CONF = """openssl_conf = openssl_init
[openssl_init]
alg_section = evp_properties
[evp_properties]
default_properties = fips=yes
"""
_FIPS_PROBE = """
import hashlib
try:
    hashlib.md5(b"")
    print("md5 allowed")
except ValueError:
    from dispatcher.providers.aiofish.crypto import password_md5, x_sign
    print(password_md5("sandbox-password"))
    print(x_sign(app_key="sandbox-app-key", ts="1638805414651", app_secret="sandbox-app-secret"))
"""


def test_md5_helpers_work_where_openssl_refuses_md5_for_security(tmp_path: Path) -> None:
    conf = tmp_path / "fips-like.cnf"
    conf.write_text(FIPS_LIKE_CONF, encoding="ascii")
    root = Path(aiofish_crypto.__file__).resolve().parents[2]  # the tree this test imported
    env = {**os.environ, "OPENSSL_CONF": str(conf), "PYTHONPATH": str(root)}
    run = subprocess.run([sys.executable, "-c", _FIPS_PROBE], env=env, capture_output=True, text=True,
                         check=False, timeout=120)
    if run.stdout.strip() == "md5 allowed":
        pytest.skip("this Python's OpenSSL ignores OPENSSL_CONF: cannot stand in for a FIPS host")
    assert run.returncode == 0, f"failed under a FIPS-like OpenSSL: {run.stderr.strip().splitlines()[-1:]}"
    here = [password_md5("sandbox-password"),
            x_sign(app_key="sandbox-app-key", ts="1638805414651", app_secret="sandbox-app-secret")]
    assert run.stdout.split() == here == [SANDBOX_PASSWORD_MD5, SANDBOX_X_SIGN]
