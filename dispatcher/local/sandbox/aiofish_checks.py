"""aiofish SMS request checks: fields, encrypted phones, encrypted bodies. Pure.

Each check raises :class:`AiofishReject` carrying the ``subStat`` to answer; the
numeric code comes from ``AIOFISH_SUBSTAT_HTTP_CODE``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from dispatcher.local.sandbox.config import AiofishAccountConfig
from dispatcher.local.sandbox.timefmt import parse_send_time
from dispatcher.providers.aiofish.crypto import DecryptionError, aes_decrypt_hex, aes_encrypt_hex, verify_biz_sign

MAX_MOBILES = 2000
MAX_BATCH = 200
MAX_CONTENT = 500
_SIGNATURE = re.compile(r"【[^【】]+】")


class AiofishReject(Exception):
    """Raised to answer an aiofish SMS error with ``sub_stat`` (``p:0xx``)."""

    def __init__(self, sub_stat: str) -> None:
        super().__init__(sub_stat)
        self.sub_stat = sub_stat


@dataclass(frozen=True, slots=True)
class Common:
    """The optional fields every submit shares, checked."""

    sub_code: str | None
    client_sms_id: str | None
    start_s: float | None


def check_content(content: object, require_signature: bool) -> str:
    """Non-empty, at most 500 characters, carrying a ``【signature】``; else p:001."""
    if not isinstance(content, str) or not content.strip() or len(content) > MAX_CONTENT:
        raise AiofishReject("p:001")
    if require_signature and not _SIGNATURE.search(content):
        raise AiofishReject("p:001")
    return content


def check_common(body: dict[str, Any]) -> Common:
    """``subCode`` digits, ``smsId`` ≤ 32 chars, ``sendTime`` ``yyyy-MM-dd HH:mm:ss``; else p:999."""
    sub_code = body.get("subCode")
    if sub_code in (None, ""):
        sub_code = None
    elif not (isinstance(sub_code, str) and sub_code.isascii() and sub_code.isdigit()):
        raise AiofishReject("p:999")
    sms_id = body.get("smsId")
    if sms_id in (None, ""):
        sms_id = None
    elif not isinstance(sms_id, str) or len(sms_id) > 32:
        raise AiofishReject("p:999")
    try:
        start_s = parse_send_time(body.get("sendTime"))
    except ValueError as exc:
        raise AiofishReject("p:999") from exc
    return Common(sub_code, sms_id, start_s)


def split_mobiles(mobile: object) -> list[str]:
    """The comma list of ``mobile``: p:002 if missing/empty, p:006 beyond 2000 numbers."""
    if not isinstance(mobile, str) or not mobile.strip():
        raise AiofishReject("p:002")
    items = [m.strip() for m in mobile.split(",")]
    if len(items) > MAX_MOBILES:
        raise AiofishReject("p:006")
    return items


def decrypt_mobiles(aes_key: str | None, mobile: object) -> tuple[list[str], list[str]]:
    """Decrypt sendSmsByEncrypt's ``mobile``; return (what to echo, plain numbers).

    Both readings of the manual are accepted: each number encrypted on its own and
    the ciphertexts comma-joined (echoed as given), or the whole comma list
    encrypted as one (each number echoed encrypted on its own). Raises p:011 if
    anything does not decrypt, p:002/p:006 as :func:`split_mobiles`.
    """
    parts = split_mobiles(mobile)
    if aes_key is None:
        raise AiofishReject("p:008")
    try:
        if len(parts) == 1:
            plain = aes_decrypt_hex(aes_key, parts[0]).split(",")
            if len(plain) > MAX_MOBILES:
                raise AiofishReject("p:006")
            if len(plain) == 1:
                return parts, plain
            return [aes_encrypt_hex(aes_key, p.strip()) for p in plain], [p.strip() for p in plain]
        return parts, [aes_decrypt_hex(aes_key, p) for p in parts]
    except DecryptionError as exc:
        raise AiofishReject("p:011") from exc


def open_encrypted(
    fish: AiofishAccountConfig | None, body: dict[str, Any], now_ms: int, window_s: float
) -> tuple[AiofishAccountConfig, dict[str, Any]]:
    """Check an ``…/encryption`` envelope; return the account and the decrypted bizContent.

    Unknown account, bad sign or ``ts`` outside ±``window_s`` → p:003 (the closest
    documented code); an account without appSecret/AES key → p:008; bizContent that
    does not decrypt to a JSON object → p:011.
    """
    if fish is None:
        raise AiofishReject("p:003")
    if not fish.app_secret or not fish.aes_key:
        raise AiofishReject("p:008")
    ts, biz, sign = body.get("ts"), body.get("bizContent"), body.get("sign")
    if isinstance(ts, int) and not isinstance(ts, bool):
        ts = str(ts)  # a numeric ts signs as its decimal text
    if not (isinstance(ts, str) and isinstance(biz, str) and isinstance(sign, str)):
        raise AiofishReject("p:003")
    if not verify_biz_sign(account=fish.account, app_secret=fish.app_secret, biz_content=biz, ts=ts, sign=sign):
        raise AiofishReject("p:003")
    if not (ts.isascii() and ts.isdigit()) or abs(int(ts) - now_ms) > window_s * 1000:
        raise AiofishReject("p:003")
    try:
        obj = json.loads(aes_decrypt_hex(fish.aes_key, biz))
    except (DecryptionError, ValueError) as exc:
        raise AiofishReject("p:011") from exc
    if not isinstance(obj, dict):
        raise AiofishReject("p:011")
    return fish, obj


def batch_items(mobiles: object, require_signature: bool) -> tuple[list[object], list[str]]:
    """batchSendSms ``mobiles``: (raw numbers, contents). p:006 beyond 200, p:001 bad content."""
    if not isinstance(mobiles, list) or not mobiles:
        raise AiofishReject("p:002")
    if len(mobiles) > MAX_BATCH:
        raise AiofishReject("p:006")
    numbers: list[object] = []
    contents: list[str] = []
    for item in mobiles:
        if not isinstance(item, dict):
            raise AiofishReject("p:002")
        numbers.append(item.get("mobile"))
        contents.append(check_content(item.get("content"), require_signature))
    return numbers, contents
