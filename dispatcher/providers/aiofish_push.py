"""aiofish pushes: parse and verify every variant. Pure.

SMS reports and uplinks come one per request in three variants:

* plain form (``application/x-www-form-urlencoded``);
* the same form with ``phoneNumber`` AES-encrypted (hex) with the account's key;
* fully encrypted JSON ``{account, ts, bizContent, sign}``: the sign (SHA256) is
  checked in constant time, ``ts`` must be within ``max_age_s`` (24 h by default:
  the vendor retries a failed push up to an hour later, and a replay older than a
  day is refused), ``bizContent`` decrypts to the report or deliver object.

vsms status, vsms template audit and isms status pushes are plain JSON. The
webhook answers :data:`PUSH_OK_BODY`; anything else makes the vendor retry.
Every failure raises :class:`PushVerificationError`, never quoting a phone or key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from dispatcher.errors import PushVerificationError
from dispatcher.phones import normalise_mainland
from dispatcher.providers.accounts import AiofishAccount
from dispatcher.providers.aiofish_crypto import DecryptionError, aes_decrypt_hex, verify_biz_sign
from dispatcher.providers.results import Receipt, Uplink

PUSH_OK_BODY = "0"
DEFAULT_MAX_AGE_S = 24 * 3600.0
DELIVERED = "DELIVRD"


@dataclass(frozen=True, slots=True)
class TemplateAudit:
    """A vsms template's audit result: ``state`` 200 approved, 400 rejected."""

    tpl_id: str
    state: int
    reason: str = ""


def _decode_json(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise PushVerificationError("body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise PushVerificationError("body is not a JSON object")
    return doc


def _decode_form(body: bytes) -> dict[str, str]:
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body)))
    except (UnicodeDecodeError, ValueError):
        raise PushVerificationError("body is not a valid form") from None


def _unwrap(doc: Mapping[str, Any], account: AiofishAccount, now_ms: int, max_age_s: float) -> dict[str, Any]:
    """Verify and decrypt a fully encrypted push; return the inner object."""
    missing = [k for k in ("account", "ts", "bizContent", "sign") if not isinstance(doc.get(k), str | int)]
    if missing:
        raise PushVerificationError(f"encrypted push lacks {', '.join(missing)}")
    if str(doc["account"]) != account.account:
        raise PushVerificationError("encrypted push names another account")
    if not account.app_secret or not account.aes_key:
        raise PushVerificationError("account has no app_secret/aes_key to verify an encrypted push")
    ts, biz = str(doc["ts"]), str(doc["bizContent"])
    if not verify_biz_sign(account=account.account, app_secret=account.app_secret, biz_content=biz, ts=ts,
                           sign=str(doc["sign"])):
        raise PushVerificationError("sign does not match")
    if not ts.isdigit() or abs(now_ms - int(ts)) > max_age_s * 1000:
        raise PushVerificationError("ts is missing or outside the accepted window (replay?)")
    try:
        inner = json.loads(aes_decrypt_hex(account.aes_key, biz))
    except (DecryptionError, ValueError):
        raise PushVerificationError("bizContent does not decrypt with the account's key") from None
    if not isinstance(inner, dict):
        raise PushVerificationError("bizContent is not a JSON object")
    return inner


def _phone(value: Any, account: AiofishAccount) -> str:
    """A plain phone, or one the account's key decrypts (the phone-encrypted variant)."""
    text = str(value or "").strip()
    phone = normalise_mainland(text)
    if phone is not None:
        return phone
    if account.aes_key and text:
        try:
            phone = normalise_mainland(aes_decrypt_hex(account.aes_key, text))
        except DecryptionError:
            phone = None
    if phone is None:
        raise PushVerificationError("phoneNumber is neither a mobile number nor one encrypted with the account's key")
    return phone


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _item(obj: Mapping[str, Any], account: AiofishAccount) -> Receipt | Uplink:
    phone = _phone(obj.get("phoneNumber"), account)
    sms_id = str(obj.get("smsId") or "") or None
    if "stat" in obj:
        stat = _int(obj.get("stat"))
        if stat is None:
            raise PushVerificationError("report stat is not a number")
        state = str(obj.get("statDes") or (DELIVERED if stat == 0 else stat))
        return Receipt("aiofish", sms_id or "", phone, state, stat == 0, _int(obj.get("revTime")), sms_id, str(stat))
    if "content" in obj:
        return Uplink("aiofish", phone, str(obj["content"]), str(obj.get("subCode") or "") or None, None, sms_id)
    raise PushVerificationError("push is neither a report (stat) nor a deliver (content)")


def parse_sms_push(body: bytes, content_type: str, account: AiofishAccount, *, now_ms: int,
                   max_age_s: float = DEFAULT_MAX_AGE_S) -> Receipt | Uplink:
    """Parse one SMS report/deliver push in any of the three variants; raises ``PushVerificationError``."""
    if "json" in content_type.lower() or body.lstrip()[:1] == b"{":
        return _item(_unwrap(_decode_json(body), account, now_ms, max_age_s), account)
    return _item(_decode_form(body), account)


def parse_vsms_push(body: bytes) -> Receipt | TemplateAudit:
    """Parse a vsms status push ``{msgId, phone, state, …}`` or template audit ``{tplId, state, reason}``."""
    doc = _decode_json(body)
    state = _int(doc.get("state"))
    if state is None:
        raise PushVerificationError("state is missing or not a number")
    if "tplId" in doc:
        return TemplateAudit(str(doc["tplId"]), state, str(doc.get("reason") or ""))
    return _media_receipt(doc, "aiofish-vsms", "phone", state)


def parse_isms_push(body: bytes) -> Receipt:
    """Parse an isms status push ``{msgId, mobile, state, statDes, revTime}``."""
    doc = _decode_json(body)
    state = _int(doc.get("state"))
    if state is None:
        raise PushVerificationError("state is missing or not a number")
    return _media_receipt(doc, "aiofish-isms", "mobile", state)


def _media_receipt(doc: Mapping[str, Any], provider: str, phone_key: str, state: int) -> Receipt:
    msg_id, phone = doc.get("msgId"), doc.get(phone_key)
    if not msg_id or not phone:
        raise PushVerificationError(f"status push lacks msgId or {phone_key}")
    status = str(doc.get("statDes") or (DELIVERED if state == 0 else state))
    return Receipt(provider, str(msg_id), str(phone), status, state == 0, None, None, str(state))
