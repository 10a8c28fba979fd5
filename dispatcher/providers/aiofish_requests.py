"""aiofish SMS requests and answers: validation, the three send variants, parsing. Pure.

Send variants (``AiofishAccount.encryption``):

* ``plain`` → ``/rest/sms/sendSms``: ``password`` is the MD5 of the password;
* ``phone`` → ``/rest/sms/sendSmsByEncrypt``: each phone AES-encrypted on its
  own, comma-joined. The manual shows one phone; its per-phone ``resDetail``
  echo only makes sense with per-phone ciphertexts, so that is our reading;
* ``full`` → ``/rest/sms/sendSms/encryption``: the whole body AES-encrypted as
  ``bizContent`` and signed with SHA256 over ``account, appSecret, bizContent, ts``.

batchSendSms has a plain and a fully encrypted variant only; ``phone`` accounts
send batches plain (their password still travels as MD5).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dispatcher.errors import AmbiguousError, TransientError
from dispatcher.providers.accounts import AiofishAccount
from dispatcher.providers.aiofish_codes import AIOFISH_CODES
from dispatcher.providers.aiofish_crypto import aes_decrypt_hex, aes_encrypt_hex, biz_sign, password_md5
from dispatcher.providers.base import raise_for_code
from dispatcher.providers.results import Balance, BalanceItem, PhoneFailure, Receipt, SendResult, Uplink
from dispatcher.validation import MAX_SMS_ID_CHARS, Checker

PROVIDER = "aiofish"
MAX_SEND_PHONES = 2000
MAX_BATCH_ITEMS = 200
SEND_PATHS = {"plain": "/rest/sms/sendSms", "phone": "/rest/sms/sendSmsByEncrypt",
              "full": "/rest/sms/sendSms/encryption"}
BATCH_PATHS = {"plain": "/rest/sms/batchSendSms", "phone": "/rest/sms/batchSendSms",
               "full": "/rest/sms/batchSendSms/encryption"}
BALANCE_PATH = "/rest/sms/getBalance"
REPORT_PATH = "/rest/sms/getReport"
REPLY_PATH = "/rest/sms/getReply"
DELIVERED = "DELIVRD"
_BALANCE = re.compile(r"(-?\d+)")


@dataclass(frozen=True, slots=True)
class SendPlan:
    """A validated send: the path, the JSON body, and how to read the answer."""

    path: str
    body: dict[str, Any]
    phones: tuple[str, ...]
    duplicates: tuple[str, ...]
    sms_id: str | None
    #: ciphertext → phone, to read sendSmsByEncrypt's encrypted resDetail echo
    echo: Mapping[str, str]


def _options(check: Checker, sms_id: Any, sub_code: Any, send_time: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if (sid := check.client_id(sms_id, field="sms_id", max_chars=MAX_SMS_ID_CHARS)) is not None:
        out["smsId"] = sid
    if (sub := check.digits(sub_code, field="sub_code")) is not None:
        out["subCode"] = sub
    if (when := check.send_time(send_time, field="send_time")) is not None:
        out["sendTime"] = when
    return out


def _envelope(account: AiofishAccount, inner: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    """The fully encrypted body ``{account, ts, bizContent, sign}`` around ``inner``."""
    if not account.aes_key or not account.app_secret:
        raise ValueError("full encryption needs aes_key and app_secret")
    biz = aes_encrypt_hex(account.aes_key, json.dumps(inner, ensure_ascii=False, separators=(",", ":")))
    ts = str(now_ms)
    return {"account": account.account, "ts": ts, "bizContent": biz,
            "sign": biz_sign(account=account.account, app_secret=account.app_secret, biz_content=biz, ts=ts)}


def plan_send(account: AiofishAccount, phones: Sequence[Any], content: Any, *, sms_id: Any = None,
              sub_code: Any = None, send_time: Any = None, now_ms: int) -> SendPlan:
    """Validate and build a same-content send; raises ``ValidationError`` naming every problem."""
    check = Checker()
    recipients = check.phones(phones, limit=MAX_SEND_PHONES)
    text = check.text(content, field="content")
    check.signature(text, field="content")
    options = _options(check, sms_id, sub_code, send_time)
    check.done()
    mode = account.encryption
    echo: dict[str, str] = {}
    if mode == "full":
        body = _envelope(account, {"mobile": ",".join(recipients.phones), "content": text, **options}, now_ms)
    else:
        mobiles = list(recipients.phones)
        if mode == "phone":
            mobiles = [aes_encrypt_hex(account.aes_key or "", p) for p in recipients.phones]
            echo = dict(zip(mobiles, recipients.phones, strict=True))
        body = {"account": account.account, "password": password_md5(account.password),
                "mobile": ",".join(mobiles), "content": text, **options}
    return SendPlan(SEND_PATHS[mode], body, recipients.phones, recipients.duplicates, options.get("smsId"), echo)


def plan_batch(account: AiofishAccount, items: Sequence[tuple[Any, Any]], *, sms_id: Any = None,
               sub_code: Any = None, send_time: Any = None, now_ms: int) -> SendPlan:
    """Validate and build a per-phone-content batch (≤ 200); the first of a repeated phone wins."""
    check = Checker()
    if isinstance(items, str) or not isinstance(items, Sequence) or not items:
        check.add("items", "must be a non-empty list of (phone, content) pairs")
        items = []
    pairs = [i if isinstance(i, tuple | list) and len(i) == 2 else (i, None) for i in items]
    recipients = check.phones([p for p, _ in pairs], field="items", limit=MAX_BATCH_ITEMS)
    mobiles = []
    for phone, index in zip(recipients.phones, recipients.source_index, strict=True):
        text = check.text(pairs[index][1], field=f"items[{index}].content")
        check.signature(text, field=f"items[{index}].content")
        mobiles.append({"mobile": phone, "content": text})
    options = _options(check, sms_id, sub_code, send_time)
    check.done()
    inner = {"mobiles": mobiles, **options}
    if account.encryption == "full":
        body = _envelope(account, inner, now_ms)
    else:
        body = {"account": account.account, "password": password_md5(account.password), **inner}
    return SendPlan(BATCH_PATHS[account.encryption], body, recipients.phones, recipients.duplicates,
                    options.get("smsId"), {})


def query_params(account: AiofishAccount) -> dict[str, str]:
    """The ``account``/``password`` query of the GET pulls."""
    return {"account": account.account, "password": password_md5(account.password)}


def check_answer(doc: Mapping[str, Any], *, account: str, side_effect: bool, retry_after_s: float = 1.0) -> None:
    """Return if the answer says success (code 200 and subStat/revStat r:000); else raise its class."""
    status = doc.get("subStat", doc.get("revStat"))
    code = doc.get("code")
    if status is None and code is None:
        cls = AmbiguousError if side_effect else TransientError
        raise cls("answer carries no code", provider=PROVIDER, account=account)
    text = doc.get("subStatDes") or doc.get("revStatDes")
    message = text if isinstance(text, str) and text else None
    for value in (status, code):  # subStat first: it is the finer of the two
        if value is not None:
            raise_for_code(AIOFISH_CODES, value, provider=PROVIDER, account=account, message=message,
                           retry_after_s=retry_after_s)


def parse_send_answer(doc: Mapping[str, Any], plan: SendPlan, *, account: str) -> SendResult:
    """Read a send/batch answer; ``resDetail`` entries not ``r:000`` become failures."""
    check_answer(doc, account=account, side_effect=True)
    sms_id = doc.get("smsId")
    if not isinstance(sms_id, str) or not sms_id:
        raise AmbiguousError("answer r:000 carries no smsId; the send may have been taken",
                             provider=PROVIDER, account=account, code="r:000")
    failed: list[PhoneFailure] = []
    for item in doc.get("resDetail") or []:
        if not isinstance(item, Mapping) or item.get("stat") == "r:000":
            continue
        raw = str(item.get("phoneNumber", ""))
        phone = plan.echo.get(raw, raw)
        failed.append(PhoneFailure(phone, str(item.get("stat")), str(item.get("statDes") or "")))
    refused = {f.phone for f in failed}
    accepted = tuple(p for p in plan.phones if p not in refused)
    return SendResult(PROVIDER, account, sms_id, plan.sms_id, accepted, tuple(failed), plan.duplicates)


def parse_balance(doc: Mapping[str, Any], *, account: str) -> Balance:
    """Read getBalance: the count is inside ``revStatDes`` ("您的短信余额为:2670 条")."""
    check_answer(doc, account=account, side_effect=False, retry_after_s=5.0)
    match = _BALANCE.search(str(doc.get("revStatDes", "")))
    if match is None:
        raise TransientError("balance answer has no number", provider=PROVIDER, account=account)
    return Balance(PROVIDER, account, (BalanceItem("短信", int(match.group(1))),))


def _ms(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_reports(doc: Mapping[str, Any], *, account: str) -> list[Receipt]:
    """Read getReport: ``statDes`` is the state; delivered only for DELIVRD."""
    check_answer(doc, account=account, side_effect=False, retry_after_s=60.0)
    out = []
    for item in doc.get("resDetail") or []:
        if not isinstance(item, Mapping) or not item.get("phoneNumber"):
            continue
        state = str(item.get("statDes") or ("DELIVRD" if item.get("stat") == "r:000" else item.get("stat")))
        sms_id = str(item.get("smsId") or "")
        out.append(Receipt(PROVIDER, sms_id, str(item["phoneNumber"]), state, state == DELIVERED,
                           _ms(item.get("revTime")), sms_id or None, str(item.get("stat") or "")))
    return out


def parse_replies(doc: Mapping[str, Any], *, account: str) -> list[Uplink]:
    """Read getReply into uplinks."""
    check_answer(doc, account=account, side_effect=False, retry_after_s=60.0)
    return [
        Uplink(PROVIDER, str(i["phoneNumber"]), str(i.get("content") or ""), str(i.get("subCode") or "") or None,
               _ms(i.get("revTime")))
        for i in doc.get("resDetail") or []
        if isinstance(i, Mapping) and i.get("phoneNumber")
    ]


def decrypt_phone(account: AiofishAccount, value: str) -> str:
    """Decrypt one AES-hex phone with the account's key (raises ``DecryptionError``)."""
    if not account.aes_key:
        raise ValueError("no aes_key")
    return aes_decrypt_hex(account.aes_key, value)
