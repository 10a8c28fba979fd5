"""aiofish pushes (the gateway calls our webhook): parse and verify every variant. Pure.

SMS reports and uplinks (deliver) come one per request, in the variant set in the
vendor console:

* plain form (``application/x-www-form-urlencoded``): report ``phoneNumber,
  smsId, stat (0 = success), statDes, revTime (ms)``; deliver ``phoneNumber,
  content, subCode, smsId``;
* the same form with ``phoneNumber`` AES-encrypted (hex) with the account's key;
* fully encrypted JSON ``{account, ts, bizContent, sign}``: the account must be
  ours, the SHA256 sign is compared in constant time, ``ts`` must lie within
  ``max_age_s`` of now, and ``bizContent`` decrypts to the report or deliver object.

Why a 24 h window by default: the vendor retries a failed push after 1, 5 and 10
minutes and then 1 hour (SPEC ambiguity 6), and the manual does not say whether a
retry carries a fresh ``ts``; if it keeps the first one, a genuine push arrives
over an hour "late", and a short window would refuse it for good. A replay older
than a day is refused; one inside the window is harmless because applying
receipts is idempotent.

The plain variants carry no signature at all: the only proof of origin is the
secret webhook URL. vsms status, vsms template audit and isms status pushes are
plain JSON for the same reason.

The webhook answers :data:`PUSH_OK_BODY` to every push it accepted; anything else
makes the vendor retry. Every failure raises :class:`PushVerificationError` with
a message that never quotes a phone or a key.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from dispatcher.errors import PushVerificationError
from dispatcher.phones import normalise_international, normalise_mainland
from dispatcher.providers.aiofish.account import AiofishAccount
from dispatcher.providers.aiofish.crypto import DecryptionError, aes_decrypt_hex, verify_biz_sign
from dispatcher.providers.fields import text_field, whole_number
from dispatcher.providers.results import Receipt, Uplink
from dispatcher.validation import GATEWAY_TZ

PROVIDER, VSMS, ISMS = "aiofish", "aiofish-vsms", "aiofish-isms"
PUSH_OK_BODY = "0"
DEFAULT_MAX_AGE_S = 24 * 3600.0
DELIVERED = "DELIVRD"
#: vsms writes ``2021-12-06T19:00:00``, isms ``2021-12-06 19:00:00`` (China time).
_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")
_ENVELOPE = ("account", "ts", "bizContent", "sign")


@dataclass(frozen=True, slots=True)
class TemplateAudit:
    """A vsms template's audit result: ``state`` 200 approved, 400 rejected, with the reason."""

    tpl_id: str
    state: int
    reason: str = ""

    @property
    def approved(self) -> bool:
        """Whether the template may now be used to send."""
        return self.state == 200


# -- decoding ----------------------------------------------------------------------------------------


def _decode_json(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise PushVerificationError("body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise PushVerificationError("body is not a JSON object")
    return doc


def _decode_form(body: bytes) -> dict[str, str]:
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body)))
    except (UnicodeDecodeError, ValueError):
        raise PushVerificationError("body is not a valid UTF-8 form") from None


def time_ms(value: object) -> int | None:
    """Epoch ms of a push time: milliseconds, or vsms/isms text in China time; ``None`` if unreadable."""
    number = whole_number(value)
    if number is not None:
        return number
    if isinstance(value, str):
        for fmt in _TIME_FORMATS:
            try:
                return int(dt.datetime.strptime(value.strip(), fmt).replace(tzinfo=GATEWAY_TZ).timestamp() * 1000)
            except ValueError:
                continue
    return None


# -- SMS reports and uplinks -------------------------------------------------------------------------


def unseal(doc: Mapping[str, Any], account: AiofishAccount, *, now_ms: int, max_age_s: float) -> dict[str, Any]:
    """Verify and decrypt a fully encrypted push; return the object inside ``bizContent``.

    Raises PushVerificationError for a missing field, another account, a wrong
    sign, a ``ts`` further than ``max_age_s`` from ``now_ms`` (either way), or a
    bizContent the account's key does not open into a JSON object.
    """
    missing = [k for k in _ENVELOPE if text_field(doc, k) is None]
    if missing:
        raise PushVerificationError(f"encrypted push lacks {', '.join(missing)}")
    name, ts, biz, sign = (str(text_field(doc, k)) for k in _ENVELOPE)
    if name != account.account:
        raise PushVerificationError("encrypted push names another account")
    if not account.app_secret or not account.aes_key:
        raise PushVerificationError("account has no app_secret and aes_key to open an encrypted push")
    if not verify_biz_sign(account=account.account, app_secret=account.app_secret, biz_content=biz, ts=ts,
                           sign=sign):
        raise PushVerificationError("sign does not match")
    # A ts far in the future is refused as well: it would outlive any replay window.
    when = whole_number(ts) if ts.isascii() and ts.isdigit() else None
    if when is None or abs(now_ms - when) > max_age_s * 1000:
        raise PushVerificationError(f"ts is outside the accepted window of {max_age_s:g} s (stale or replayed)")
    try:
        text = aes_decrypt_hex(account.aes_key, biz)
    except DecryptionError:
        raise PushVerificationError("bizContent does not decrypt with the account's key") from None
    try:
        inner = json.loads(text)
    except (ValueError, RecursionError):
        raise PushVerificationError("bizContent is not JSON") from None
    if not isinstance(inner, dict):
        raise PushVerificationError("bizContent is not a JSON object")
    return inner


def push_phone(value: object, account: AiofishAccount, *, encrypted: bool | None = None) -> str:
    """The mainland phone of ``phoneNumber``: plain, or AES hex the account's key opens.

    ``encrypted`` True takes only the AES form, False only the plain one, None
    either. Raises PushVerificationError.
    """
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not text:
        raise PushVerificationError("push lacks phoneNumber")
    phone = normalise_mainland(text) if encrypted is not True else None
    if phone is None and encrypted is False:
        raise PushVerificationError("phoneNumber is not a mobile number (the account's push_variant is plain)")
    if phone is None and account.aes_key:
        try:
            phone = normalise_mainland(aes_decrypt_hex(account.aes_key, text))
        except DecryptionError:
            phone = None
    if phone is None:
        raise PushVerificationError("phoneNumber is neither a mobile number nor one encrypted with the account's key")
    return phone


def sms_item(obj: Mapping[str, Any], account: AiofishAccount, *, encrypted: bool | None = None) -> Receipt | Uplink:
    """A Receipt from a report (has ``stat``) or an Uplink from a deliver (has ``content``).

    A report needs ``smsId`` (receipts are matched by it) and a numeric ``stat``;
    ``delivered`` is ``stat == 0``. ``encrypted`` is passed to :func:`push_phone`.
    Raises PushVerificationError.
    """
    sms_id = text_field(obj, "smsId")
    if "stat" in obj:
        phone = push_phone(obj.get("phoneNumber"), account, encrypted=encrypted)
        stat = whole_number(obj.get("stat"))
        if stat is None:
            raise PushVerificationError("report stat is missing or not a number")
        if sms_id is None:
            raise PushVerificationError("report lacks smsId")
        status = text_field(obj, "statDes") or (DELIVERED if stat == 0 else str(stat))
        return Receipt(PROVIDER, sms_id, phone, status, stat == 0, time_ms(obj.get("revTime")), sms_id, str(stat))
    if "content" in obj:
        phone = push_phone(obj.get("phoneNumber"), account, encrypted=encrypted)
        content = obj["content"]
        if not isinstance(content, str):
            raise PushVerificationError("deliver content is not text")
        return Uplink(PROVIDER, phone, content, text_field(obj, "subCode"), time_ms(obj.get("revTime")), sms_id)
    raise PushVerificationError("push is neither a report (stat) nor a deliver (content)")


def parse_sms_push(body: bytes, content_type: str, account: AiofishAccount, *, now_ms: int,
                   max_age_s: float = DEFAULT_MAX_AGE_S, variant: str | None = None) -> Receipt | Uplink:
    """Parse and verify one SMS report or deliver push.

    A JSON body (by ``content_type`` or a leading ``{``) is the fully encrypted
    variant; anything else is a form. ``variant`` (``plain``, ``phone`` or
    ``full``) is the form the account's console is set to: a push in another
    form is refused, so an unsigned form cannot stand in for a signed push.
    ``None`` takes any (parsing tools only). ``now_ms`` is epoch ms; ``max_age_s``
    the accepted ``ts`` distance (encrypted variant only). Raises PushVerificationError.
    """
    if "json" in content_type.lower() or body.lstrip()[:1] == b"{":
        if variant not in (None, "full"):
            raise PushVerificationError(f"a fully encrypted push, but the account's push_variant is {variant}")
        return sms_item(unseal(_decode_json(body), account, now_ms=now_ms, max_age_s=max_age_s), account)
    if variant == "full":
        raise PushVerificationError("an unsigned form push, but the account's push_variant is full")
    return sms_item(_decode_form(body), account, encrypted=None if variant is None else variant == "phone")


# -- vsms and isms -----------------------------------------------------------------------------------


def _state(doc: Mapping[str, Any]) -> int:
    state = whole_number(doc.get("state"))
    if state is None:
        raise PushVerificationError("state is missing or not a number")
    return state


def _status_receipt(doc: Mapping[str, Any], provider: str, phone_key: str,
                    normalise: Callable[[object], str | None]) -> Receipt:
    state = _state(doc)
    msg_id, raw = text_field(doc, "msgId"), text_field(doc, phone_key)
    if msg_id is None:
        raise PushVerificationError("status push lacks msgId")
    phone = normalise(raw)
    if phone is None:
        raise PushVerificationError(f"status push {phone_key} is missing or not a valid number")
    status = text_field(doc, "statDes") or (DELIVERED if state == 0 else str(state))
    return Receipt(provider, msg_id, phone, status, state == 0, time_ms(doc.get("revTime")), None, str(state))


def parse_vsms_push(body: bytes) -> Receipt | TemplateAudit:
    """Parse a vsms status push ``{msgId, phone, state, statDes, revTime}`` or a
    template audit push ``{tplId, state, reason}``. Raises PushVerificationError."""
    doc = _decode_json(body)
    if "tplId" in doc:
        tpl_id = text_field(doc, "tplId")
        if tpl_id is None:
            raise PushVerificationError("audit push has an empty tplId")
        return TemplateAudit(tpl_id, _state(doc), text_field(doc, "reason") or "")
    return _status_receipt(doc, VSMS, "phone", normalise_mainland)


def parse_isms_push(body: bytes) -> Receipt:
    """Parse an isms status push ``{msgId, mobile, state, statDes, revTime}``. Raises PushVerificationError."""
    return _status_receipt(_decode_json(body), ISMS, "mobile", normalise_international)
