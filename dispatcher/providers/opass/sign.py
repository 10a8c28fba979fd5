"""opass request signing: pure functions, the clock and nonce passed in.

The sign string is every body field and every ``x-*`` header except ``x-sign``,
sorted by key, joined as ``key=value`` with ``&``; values are the raw strings (JSON
fields go in as the exact JSON text sent). ``x-sign`` is the lower-case hex
HMAC of that string keyed with the accessKey, using the digest ``x-sign-method``
names.

The vendor's samples disagree on empty values (SPEC ambiguity 3): the Python, C#
and VB samples skip empty/None fields, the PHP and Postman samples include every
field they send. Our client never sends a field it did not sign (it omits empty
fields from the body), so every reading yields the same string.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any

SIGN_METHODS: Mapping[str, Callable[..., Any]] = {
    "HmacMD5": hashlib.md5,
    "HmacSHA1": hashlib.sha1,
    "HmacSHA224": hashlib.sha224,
    "HmacSHA256": hashlib.sha256,
    "HmacSHA384": hashlib.sha384,
    "HmacSHA512": hashlib.sha512,
}
DEFAULT_SIGN_METHOD = "HmacSHA256"
SIGNED_HEADERS = ("x-api-key", "x-nonce", "x-sign-method", "x-timestamp")


def sign_value(value: Any) -> str:
    """Render one field value the way the vendor samples put it in the sign string.

    Strings go in raw; numbers as their decimal text; booleans as ``true``/``false``;
    arrays and objects as compact JSON (the Postman sample's ``JSON.stringify``).
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def sign_string(fields: Mapping[str, Any], *, skip_empty: bool = True) -> str:
    """Build the sign string from body fields plus the signed headers.

    ``skip_empty`` drops keys whose value is ``None`` or ``""`` (the Python sample's
    reading); pass ``False`` for the PHP sample's reading. Keys sort by code point,
    which is what every sample's sort yields for opass's ASCII field names.
    """
    parts = []
    for key in sorted(fields):
        value = fields[key]
        if skip_empty and (value is None or value == ""):
            continue
        parts.append(f"{key}={sign_value(value)}")
    return "&".join(parts)


def hmac_hex(access_key: str, method: str, message: str) -> str:
    """Return the lower-case hex HMAC of ``message`` keyed with ``access_key``.

    Raises ``KeyError`` if ``method`` is not one of :data:`SIGN_METHODS`.
    """
    digest = SIGN_METHODS[method]
    return hmac.new(access_key.encode(), message.encode(), digest).hexdigest()


def new_nonce() -> str:
    """Return a fresh 16-digit nonce (digits satisfy both manual readings; ≥ 10 chars)."""
    return f"{secrets.randbelow(10**16):016d}"


def signed_headers(
    *,
    api_key: str,
    access_key: str,
    body: Mapping[str, Any],
    timestamp_ms: int,
    nonce: str,
    method: str = DEFAULT_SIGN_METHOD,
) -> dict[str, str]:
    """Return the five ``x-*`` headers for a request whose JSON body is ``body``.

    Raises ``KeyError`` for an unknown sign method.
    """
    headers = {
        "x-api-key": api_key,
        "x-nonce": nonce,
        "x-sign-method": method,
        "x-timestamp": str(timestamp_ms),
    }
    text = sign_string({**body, **headers})
    headers["x-sign"] = hmac_hex(access_key, method, text)
    return headers


def candidate_sign_strings(fields: Mapping[str, Any]) -> list[str]:
    """Every sign string a vendor sample could have built for these fields.

    Used by the sandbox to accept what the Python/C# samples (skip empty), the PHP
    sample (empty and null as ``key=``) and the Postman sample (null as ``key=null``)
    produce, and nothing else.
    """
    strings = [sign_string(fields)]
    if any(v is None or v == "" for v in fields.values()):
        strings.append(sign_string(fields, skip_empty=False))
        if any(v is None for v in fields.values()):
            nulls = {k: ("null" if v is None else v) for k, v in fields.items()}
            strings.append(sign_string(nulls, skip_empty=False))
    return strings


def verify_sign(
    access_key: str, method: str, fields: Mapping[str, Any], given_sign: str
) -> bool:
    """Whether ``given_sign`` is a valid sign of ``fields`` under any sample's reading.

    Returns ``False`` (never raises) for an unknown method.
    """
    if method not in SIGN_METHODS:
        return False
    given = given_sign.strip().lower()
    return any(
        hmac.compare_digest(hmac_hex(access_key, method, text).encode(), given.encode())
        for text in candidate_sign_strings(fields)
    )
