"""aiofish video SMS (vsms) and international SMS (isms) clients.

Both authenticate with the header ``x-sign`` = MD5 of ``appKey,ts,appSecret`` and
answer string codes (``success``, ``invalid_mobile`` …) from the same aiofish
code table. The manual names ``mobile_limit`` without a number: we cap a call at
:data:`MAX_MOBILES` (our assumption; the sandbox uses the same figure).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from dispatcher.errors import AmbiguousError, TransientError
from dispatcher.providers.accounts import AiofishAccount
from dispatcher.providers.aiofish_codes import AIOFISH_CODES
from dispatcher.providers.aiofish_crypto import x_sign
from dispatcher.providers.base import Clock, json_body, raise_for_code, system_clock_ms
from dispatcher.providers.http import HttpTransport
from dispatcher.providers.results import SendResult, TemplateStatus
from dispatcher.validation import Checker

MAX_MOBILES = 1000
MAX_VARS = 5
MAX_VAR_CHARS = 15
TPL_PATH = "/rest/vsms/v1/tpl"
TPL_STATUS_PATH = "/rest/vsms/v1/tpl/status"
SEND_PATH = "/rest/vsms/v1/message"
SEND_VARS_PATH = "/rest/vsms/v1/message/vars"
ISMS_PATH = "/rest/isms/sendIsms"


@dataclass(frozen=True, slots=True)
class Frame:
    """One element of a vsms template: text (``ext_type`` 1) or a file name (2)."""

    frame_index: int
    order_by: int
    ext_type: int
    text: str


class _SignedClient:
    """What vsms and isms share: the appKey, the x-sign header, the code check."""

    provider = "aiofish"

    def __init__(self, account: AiofishAccount, *, session: requests.Session | None = None,
                 clock_ms: Clock = system_clock_ms) -> None:
        if not account.app_key or not account.app_secret:
            from dispatcher.errors import ConfigurationError

            raise ConfigurationError(f"aiofish:{account.name} needs app_key and app_secret for vsms/isms")
        self.account = account
        self.app_key, self.app_secret = account.app_key, account.app_secret
        self.clock_ms = clock_ms
        self.http = HttpTransport(provider=self.provider, account=account.name, base_url=account.base_url,
                                  session=session, connect_timeout_s=account.connect_timeout_s,
                                  read_timeout_s=account.read_timeout_s)

    def _auth(self) -> tuple[str, dict[str, str]]:
        ts = str(self.clock_ms())
        return ts, {"x-sign": x_sign(app_key=self.app_key, ts=ts, app_secret=self.app_secret)}

    def _check(self, doc: Mapping[str, Any], *, side_effect: bool) -> None:
        code = doc.get("code")
        if code is None:
            cls = AmbiguousError if side_effect else TransientError
            raise cls("answer carries no code", provider=self.provider, account=self.account.name)
        raise_for_code(AIOFISH_CODES, code, provider=self.provider, account=self.account.name)

    def _post_json(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        answer = self.http.request("POST", path, side_effect=True, body=json_body(body),
                                   headers={**headers, "Content-Type": "application/json"})
        doc = self.http.parse_json(answer, side_effect=True)
        self._check(doc, side_effect=True)
        return doc

    def _sent(self, doc: Mapping[str, Any], phones: tuple[str, ...], dups: tuple[str, ...],
              uuid: str | None) -> SendResult:
        msg_id = doc.get("msgId")
        if not isinstance(msg_id, str) or not msg_id:
            raise AmbiguousError("success without msgId; the send may have been taken",
                                 provider=self.provider, account=self.account.name, code="success")
        return SendResult(self.provider, self.account.name, msg_id, uuid, phones, (), dups)

    @staticmethod
    def _common(check: Checker, uuid: Any, schedule_time: Any) -> dict[str, str]:
        out = {}
        if (u := check.client_id(uuid, field="uuid", max_chars=64)) is not None:
            out["uuid"] = u
        if (when := check.send_time(schedule_time, field="schedule_time")) is not None:
            out["scheduleTime"] = when
        return out


class AiofishVsmsClient(_SignedClient):
    """Video SMS: submit a template (multipart with files), poll its audit, send."""

    def submit_template(self, title: str, frames: Sequence[Frame], files: Mapping[str, bytes]) -> str:
        """Submit a template for audit; return its ``tplId``. Raises ``ValidationError`` first."""
        check = Checker()
        check.text(title, field="title", max_chars=100)
        for i, f in enumerate(frames):
            if f.ext_type not in (1, 2):
                check.add(f"frames[{i}].ext_type", "must be 1 (text) or 2 (file)")
            elif f.ext_type == 2 and f.text not in files:
                check.add(f"frames[{i}].text", "names a file that is not among files")
        if not frames:
            check.add("frames", "must not be empty")
        check.done()
        ts, headers = self._auth()
        data = {"appKey": self.app_key, "ts": ts, "title": title,
                "content": [{"orderBy": f.order_by, "frameIndex": f.frame_index, "extType": f.ext_type,
                             "text": f.text} for f in frames]}
        multipart: list[tuple[str, Any]] = [("data", (None, json.dumps(data, ensure_ascii=False)))]
        multipart += [("file", (name, content)) for name, content in files.items()]
        answer = self.http.request("POST", TPL_PATH, side_effect=True, files=multipart, headers=headers)
        doc = self.http.parse_json(answer, side_effect=True)
        self._check(doc, side_effect=True)
        return str(doc["tplId"])

    def template_status(self, tpl_id: str) -> TemplateStatus:
        """The template's audit state (100 pending, 200 approved, 400 rejected)."""
        ts, headers = self._auth()
        answer = self.http.request("GET", TPL_STATUS_PATH, side_effect=False, headers=headers,
                                   params={"appKey": self.app_key, "ts": ts, "tplId": tpl_id})
        doc = self.http.parse_json(answer, side_effect=False)
        self._check(doc, side_effect=False)
        return TemplateStatus(str(doc.get("tplId", tpl_id)), int(doc.get("auditStatus", 0)),
                              doc.get("auditReason") or None)

    def send(self, tpl_id: str, phones: Sequence[str], *, uuid: str | None = None,
             schedule_time: Any = None) -> SendResult:
        """Send an approved template to up to :data:`MAX_MOBILES` mainland phones."""
        check = Checker()
        recipients = check.phones(phones, limit=MAX_MOBILES)
        extra = self._common(check, uuid, schedule_time)
        check.done()
        ts, headers = self._auth()
        body = {"appKey": self.app_key, "ts": ts, "tplId": tpl_id, "mobiles": list(recipients.phones), **extra}
        return self._sent(self._post_json(SEND_PATH, body, headers), recipients.phones, recipients.duplicates,
                          extra.get("uuid"))

    def send_vars(self, tpl_id: str, recipients: Sequence[tuple[str, Sequence[str]]], *, uuid: str | None = None,
                  schedule_time: Any = None) -> SendResult:
        """Send with per-phone values for ``#p_1#``..``#p_5#`` (≤ 5 values of ≤ 15 characters)."""
        check = Checker()
        pairs = [r if isinstance(r, tuple | list) and len(r) == 2 else (r, []) for r in recipients]
        kept = check.phones([p for p, _ in pairs], field="recipients", limit=MAX_MOBILES)
        mobiles = []
        for phone, i in zip(kept.phones, kept.source_index, strict=True):
            values = check.params(pairs[i][1], field=f"recipients[{i}].vars", max_count=MAX_VARS,
                                  max_chars=MAX_VAR_CHARS)
            mobiles.append({"phone": phone, "vars": values})
        extra = self._common(check, uuid, schedule_time)
        check.done()
        ts, headers = self._auth()
        body = {"appKey": self.app_key, "ts": ts, "tplId": tpl_id, "mobiles": mobiles, **extra}
        return self._sent(self._post_json(SEND_VARS_PATH, body, headers), kept.phones, kept.duplicates,
                          extra.get("uuid"))


class AiofishIsmsClient(_SignedClient):
    """International SMS: text to numbers with their country code."""

    def send(self, content: str, phones: Sequence[str], *, uuid: str | None = None,
             schedule_time: Any = None) -> SendResult:
        """Send ``content`` to up to :data:`MAX_MOBILES` international numbers (E.164 digits)."""
        check = Checker()
        text = check.text(content, field="content")
        recipients = check.phones(phones, limit=MAX_MOBILES, international=True)
        extra = self._common(check, uuid, schedule_time)
        check.done()
        ts, headers = self._auth()
        body = {"appKey": self.app_key, "ts": ts, "content": text, "mobiles": list(recipients.phones), **extra}
        return self._sent(self._post_json(ISMS_PATH, body, headers), recipients.phones, recipients.duplicates,
                          extra.get("uuid"))
