"""What the vendors push, byte for byte, and their retry schedules. Pure.

opass pushes JSON batches (success = any 2xx); aiofish, vsms and isms push one
item per request and count only the body ``0`` as success.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from dispatcher.errors import ConfigurationError
from dispatcher.local.sandbox.config import AiofishAccountConfig
from dispatcher.local.sandbox.receipts import AIOFISH_PUSH_STAT, Receipt
from dispatcher.local.sandbox.timefmt import arrive_time, isms_time, vsms_time
from dispatcher.providers.aiofish.crypto import aes_encrypt_hex, biz_sign

#: Unscaled retry delays after a failed push (multiplied by ``time_scale``).
RETRY_OPASS_S = (300.0, 600.0, 3600.0)
RETRY_PLAIN_S = (300.0, 600.0, 3600.0)  # aiofish plain, vsms, isms
RETRY_ENCRYPTED_S = (60.0, 300.0, 600.0, 3600.0)  # aiofish phone-encrypted and full
JSON_TYPE = "application/json;charset=utf-8"
FORM_TYPE = "application/x-www-form-urlencoded;charset=utf-8"


@dataclass(frozen=True, slots=True)
class PushJob:
    """One push request and how to judge and retry it."""

    gateway: str  # stats key: opass, aiofish, aiofish-vsms, aiofish-isms
    account: str
    kind: str  # status, uplink, report, reply, audit
    url: str
    body: bytes
    content_type: str
    zero_body: bool  # success needs the body "0" (else any 2xx)
    retry_delays_s: tuple[float, ...]
    attempt: int = 0

    def next_attempt(self) -> PushJob:
        """The same push, one attempt later."""
        return replace(self, attempt=self.attempt + 1)


def is_success(job: PushJob, status: int, body: bytes) -> bool:
    """Whether the receiver's answer counts as success under the vendor's rule."""
    if job.zero_body:
        return body.strip() == b"0"
    return 200 <= status < 300


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def opass_status(api_key: str, receipts: Sequence[Receipt], url: str) -> PushJob:
    """An opass status push of up to ``opass_push_batch`` receipts."""
    data = [
        {"msgId": r.msg_id, "tel": r.phone, "arriveResult": r.state, "arriveTime": arrive_time(r.arrive_s),
         "bid": r.client_id}
        for r in receipts
    ]
    return PushJob("opass", api_key, "status", url, _json({"apiKey": api_key, "data": data}), JSON_TYPE,
                   False, RETRY_OPASS_S)


def opass_uplink(api_key: str, src_id: str, phone: str, content: str, at_s: float, url: str) -> PushJob:
    """An opass uplink (MO) push."""
    data = [{"srcId": src_id, "tel": phone, "content": content, "arriveTime": arrive_time(at_s)}]
    return PushJob("opass", api_key, "uplink", url, _json({"apiKey": api_key, "data": data}), JSON_TYPE,
                   False, RETRY_OPASS_S)


def aiofish_report(receipt: Receipt) -> dict[str, Any]:
    """The aiofish report object (before any encryption)."""
    return {
        "phoneNumber": receipt.phone,
        "smsId": receipt.msg_id,
        "stat": AIOFISH_PUSH_STAT[receipt.state],
        "statDes": receipt.state,
        "revTime": int(receipt.arrive_s * 1000),
    }


def aiofish_deliver(phone: str, content: str, sub_code: str | None, sms_id: str | None) -> dict[str, Any]:
    """The aiofish deliver (uplink) object (before any encryption)."""
    return {"phoneNumber": phone, "content": content, "subCode": sub_code or "", "smsId": sms_id or ""}


def aiofish_push(account: AiofishAccountConfig, kind: str, obj: Mapping[str, Any], url: str, now_ms: int) -> PushJob:
    """Encode ``obj`` for the account's push mode: plain form, phone-encrypted form, or full JSON.

    Raises ``ConfigurationError`` if the mode needs a key the account lacks.
    """
    mode = account.push_mode
    if mode == "full":
        if account.aes_key is None or account.app_secret is None:
            raise ConfigurationError(f"aiofish:{account.account} push_mode=full needs aes_key and app_secret")
        biz = aes_encrypt_hex(account.aes_key, json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
        ts = str(now_ms)
        sign = biz_sign(account=account.account, app_secret=account.app_secret, biz_content=biz, ts=ts)
        body = _json({"account": account.account, "ts": ts, "bizContent": biz, "sign": sign})
        return PushJob("aiofish", account.account, kind, url, body, JSON_TYPE, True, RETRY_ENCRYPTED_S)
    fields = {k: "" if v is None else str(v) for k, v in obj.items()}
    delays: tuple[float, ...] = RETRY_PLAIN_S
    if mode == "phone":
        if account.aes_key is None:
            raise ConfigurationError(f"aiofish:{account.account} push_mode=phone needs aes_key")
        fields["phoneNumber"] = aes_encrypt_hex(account.aes_key, fields["phoneNumber"])
        delays = RETRY_ENCRYPTED_S
    return PushJob("aiofish", account.account, kind, url, urlencode(fields).encode(), FORM_TYPE, True, delays)


def vsms_status(app_key: str, receipt: Receipt, url: str) -> PushJob:
    """A video-SMS status push."""
    body = {"msgId": receipt.msg_id, "phone": receipt.phone, "state": AIOFISH_PUSH_STAT[receipt.state],
            "statDes": receipt.state, "revTime": vsms_time(receipt.arrive_s)}
    return PushJob("aiofish-vsms", app_key, "status", url, _json(body), JSON_TYPE, True, RETRY_PLAIN_S)


def isms_status(app_key: str, receipt: Receipt, url: str) -> PushJob:
    """An international-SMS status push."""
    body = {"msgId": receipt.msg_id, "mobile": receipt.phone, "state": AIOFISH_PUSH_STAT[receipt.state],
            "statDes": receipt.state, "revTime": isms_time(receipt.arrive_s)}
    return PushJob("aiofish-isms", app_key, "status", url, _json(body), JSON_TYPE, True, RETRY_PLAIN_S)


def vsms_audit(app_key: str, tpl_id: str, state: int, reason: str, url: str) -> PushJob:
    """A video-SMS template audit push."""
    body = {"tplId": tpl_id, "state": state, "reason": reason}
    return PushJob("aiofish-vsms", app_key, "audit", url, _json(body), JSON_TYPE, True, RETRY_PLAIN_S)
