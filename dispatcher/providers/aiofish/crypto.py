"""aiofish cryptography: AES/ECB/PKCS5, the SHA256 body sign, MD5 passwords, x-sign.

Pure functions. The AES key is provisioned per account (SPEC ambiguity 7): it is
used as given, its UTF-8 bytes taken directly, and must be 16, 24 or 32 bytes.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from Crypto.Cipher import AES
from Crypto.Util.Padding import pad, unpad

from dispatcher.errors import ConfigurationError


class DecryptionError(ValueError):
    """Raised when a ciphertext is not hex, not whole blocks, or badly padded."""


def _cipher(key: str | bytes) -> Any:
    raw = key.encode() if isinstance(key, str) else key
    if len(raw) not in (16, 24, 32):
        raise ConfigurationError(f"AES key must be 16, 24 or 32 bytes, got {len(raw)}")
    return AES.new(raw, AES.MODE_ECB)


def aes_encrypt_hex(key: str | bytes, plaintext: str) -> str:
    """Encrypt UTF-8 ``plaintext`` with AES/ECB/PKCS5Padding; return lower-case hex.

    Raises ``ConfigurationError`` for a key of the wrong length.
    """
    return _cipher(key).encrypt(pad(plaintext.encode(), AES.block_size)).hex()


def aes_decrypt_hex(key: str | bytes, ciphertext_hex: str) -> str:
    """Decrypt hex AES/ECB/PKCS5Padding ciphertext to text.

    Raises ``DecryptionError`` if the input is not valid hex, not whole blocks,
    badly padded or not UTF-8; ``ConfigurationError`` for a bad key length.
    """
    try:
        data = bytes.fromhex(ciphertext_hex.strip())
    except ValueError as exc:
        raise DecryptionError("ciphertext is not hex") from exc
    if not data or len(data) % AES.block_size:
        raise DecryptionError("ciphertext is not a whole number of AES blocks")
    try:
        return unpad(_cipher(key).decrypt(data), AES.block_size).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecryptionError("wrong key or corrupted ciphertext") from exc


def biz_sign(*, account: str, app_secret: str, biz_content: str, ts: str) -> str:
    """SHA256 hex of ``account=…&appSecret=…&bizContent=…&ts=…`` (keys sorted)."""
    text = f"account={account}&appSecret={app_secret}&bizContent={biz_content}&ts={ts}"
    return hashlib.sha256(text.encode()).hexdigest()


def verify_biz_sign(
    *, account: str, app_secret: str, biz_content: str, ts: str, sign: str
) -> bool:
    """Whether ``sign`` is the SHA256 body sign of these values (constant time)."""
    expected = biz_sign(account=account, app_secret=app_secret, biz_content=biz_content, ts=ts)
    # As bytes: compare_digest refuses str with non-ASCII characters (a hostile sign).
    return hmac.compare_digest(expected.encode(), sign.strip().lower().encode())


def password_md5(password: str) -> str:
    """Lower-case hex MD5 of the account password, as every plain SMS call sends it."""
    return hashlib.md5(password.encode(), usedforsecurity=False).hexdigest()


def x_sign(*, app_key: str, ts: str, app_secret: str) -> str:
    """vsms/isms ``x-sign`` header: MD5 hex of ``appKey,ts,appSecret``."""
    return hashlib.md5(f"{app_key},{ts},{app_secret}".encode(), usedforsecurity=False).hexdigest()
