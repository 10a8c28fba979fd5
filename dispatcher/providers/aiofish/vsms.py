"""aiofish video SMS (vsms) and international SMS (isms) clients.

Both products authenticate every request with the header ``x-sign`` = MD5 hex of
``appKey,ts,appSecret`` (``ts`` in epoch milliseconds, also sent in the body or
query) and answer string codes (``success``, ``invalid_mobile``…) from the same
:data:`~dispatcher.providers.aiofish.codes.AIOFISH_CODES` table.

Figures the manual leaves open, and what we chose:

* ``mobile_limit`` has no number: a call carries at most :data:`MAX_MOBILES`
  phones (our assumption; the sandbox's ``vsms_mobile_max`` defaults to the same);
* ``uuid`` has no length: at most :data:`MAX_UUID_CHARS`; a template ``title``
  at most :data:`MAX_TITLE_CHARS` (both ours, to catch mistakes early).

Request building and answer parsing are pure functions; the two client classes
only sign, send and parse.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from dispatcher.errors import AmbiguousError, ConfigurationError, TransientError
from dispatcher.phones import mask_in_text
from dispatcher.providers.aiofish.account import AiofishAccount
from dispatcher.providers.aiofish.codes import AIOFISH_CODES
from dispatcher.providers.aiofish.crypto import x_sign
from dispatcher.providers.aiofish.requests import json_text, pairs
from dispatcher.providers.base import Clock, json_body, raise_for_code, system_clock_ms
from dispatcher.providers.fields import text_field, whole_number
from dispatcher.providers.http import HttpTransport
from dispatcher.providers.results import SendResult, TemplateStatus
from dispatcher.redact import build_repr, keys_repr, phones_repr
from dispatcher.validation import GATEWAY_TZ, SEND_TIME_FORMAT, Checker

VSMS, ISMS = "aiofish-vsms", "aiofish-isms"
MAX_MOBILES = 1000
MAX_VARS = 5
MAX_VAR_CHARS = 15
MAX_UUID_CHARS = 64
MAX_TITLE_CHARS = 100
EXT_TEXT, EXT_FILE = 1, 2
TPL_PATH = "/rest/vsms/v1/tpl"
TPL_STATUS_PATH = "/rest/vsms/v1/tpl/status"
SEND_PATH = "/rest/vsms/v1/message"
SEND_VARS_PATH = "/rest/vsms/v1/message/vars"
ISMS_PATH = "/rest/isms/sendIsms"
CONTENT_TYPE = "application/json;charset=utf-8"
RETRY_AFTER_S = 1.0  # request_limit names no window
_PLACEHOLDER = re.compile(r"#p_([^#]*)#")


@dataclass(frozen=True, slots=True)
class Frame:
    """One item of a vsms template: text (``ext_type`` 1, may hold ``#p_1#``..``#p_5#``)
    or the name of an uploaded file (``ext_type`` 2), at ``order_by`` within frame ``frame_index``."""

    frame_index: int
    order_by: int
    ext_type: int
    text: str

    @classmethod
    def of_text(cls, frame_index: int, order_by: int, text: str) -> Frame:
        """A text item."""
        return cls(frame_index, order_by, EXT_TEXT, text)

    @classmethod
    def of_file(cls, frame_index: int, order_by: int, filename: str) -> Frame:
        """An item showing the uploaded file ``filename``."""
        return cls(frame_index, order_by, EXT_FILE, filename)


@dataclass(frozen=True, slots=True)
class MediaPlan:
    """A validated vsms/isms send: path, JSON body, phones sent, repeats dropped, the uuid."""

    path: str
    body: Mapping[str, Any]
    phones: tuple[str, ...]
    duplicates: tuple[str, ...]
    uuid: str | None

    def __repr__(self) -> str:  # the body holds phones and per-phone variables
        return build_repr(self, path=repr(self.path), body=keys_repr(self.body), phones=phones_repr(self.phones),
                          duplicates=phones_repr(self.duplicates), uuid=repr(self.uuid))


# -- request building (pure) -------------------------------------------------------------------------


def sign_headers(app_key: str, app_secret: str, ts: str) -> dict[str, str]:
    """The ``x-sign`` header for a request whose ``ts`` (epoch ms text) is ``ts``."""
    return {"x-sign": x_sign(app_key=app_key, ts=ts, app_secret=app_secret)}


def _frame(check: Checker, i: int, frame: object, files: Mapping[str, bytes] | None) -> dict[str, Any] | None:
    """One frame as the gateway's item; ``files`` ``None`` when unusable (not checked against then)."""
    field = f"frames[{i}]"
    if not isinstance(frame, Frame):
        check.add(field, "must be a Frame")
        return None
    for name, value in (("frame_index", frame.frame_index), ("order_by", frame.order_by)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            check.add(f"{field}.{name}", "must be an integer ≥ 1")
    if frame.ext_type == EXT_FILE and files is not None and frame.text not in files:
        check.add(f"{field}.text", "names a file that is not among files")
    elif frame.ext_type == EXT_TEXT:
        check.text(frame.text, field=f"{field}.text")
        bad = [p for p in _PLACEHOLDER.findall(frame.text) if p not in {"1", "2", "3", "4", "5"}]
        if bad:
            check.add(f"{field}.text", "variables are #p_1#..#p_5# only")
    elif frame.ext_type != EXT_FILE:
        check.add(f"{field}.ext_type", "must be 1 (text) or 2 (file)")
    return {"orderBy": frame.order_by, "frameIndex": frame.frame_index, "extType": frame.ext_type,
            "text": frame.text}


def plan_template(app_key: str, title: object, frames: object, files: object, *, ts: str) -> list[tuple[str, Any]]:
    """Validate a template and build its multipart form: ``data`` (JSON) and one ``file`` per upload.

    Raises ValidationError naming ``title``, ``frames[i].text``, ``files[name]``….
    """
    check = Checker()
    check.text(title, field="title", max_chars=MAX_TITLE_CHARS)
    uploads: Mapping[str, bytes] = files if isinstance(files, Mapping) else {}
    if not isinstance(files, Mapping):
        check.add("files", "must map file names to their bytes")
    for name, blob in uploads.items():
        if not isinstance(name, str) or not name.strip() or not isinstance(blob, bytes | bytearray) or not blob:
            check.add(f"files[{name!r}]", "needs a non-empty name and non-empty bytes")
    items: list[dict[str, Any]] = []
    if isinstance(frames, str) or not isinstance(frames, Sequence) or not frames:
        check.add("frames", "must be a non-empty list of Frame")
    else:
        seen: set[tuple[Any, Any]] = set()
        for i, frame in enumerate(frames):
            item = _frame(check, i, frame, uploads if isinstance(files, Mapping) else None)
            if item is not None:
                if (item["frameIndex"], item["orderBy"]) in seen:
                    check.add(f"frames[{i}]", "repeats the frame_index and order_by of an earlier item")
                seen.add((item["frameIndex"], item["orderBy"]))
                items.append(item)
    check.done()
    data = {"appKey": app_key, "ts": ts, "title": title, "content": items}
    form: list[tuple[str, Any]] = [("data", (None, json_text(data)))]
    for name, blob in uploads.items():
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        form.append(("file", (name, bytes(blob), mime)))
    return form


def _options(check: Checker, uuid: object, schedule_time: object, now_ms: int) -> dict[str, str]:
    """``uuid`` and ``scheduleTime`` (which the manual says must be later than now)."""
    out: dict[str, str] = {}
    if (u := check.client_id(uuid, field="uuid", max_chars=MAX_UUID_CHARS)) is not None:
        out["uuid"] = u
    if (when := check.send_time(schedule_time, field="schedule_time")) is not None:
        at = dt.datetime.strptime(when, SEND_TIME_FORMAT).replace(tzinfo=GATEWAY_TZ)
        if at.timestamp() * 1000 <= now_ms:
            check.add("schedule_time", f"{when} (China time) is not later than now")
        out["scheduleTime"] = when
    return out


def _tpl_id(check: Checker, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        check.add("tpl_id", "must be a non-empty template id without spaces")
        return ""
    return value


def plan_vsms_send(app_key: str, tpl_id: object, phones: object, *, uuid: object = None,
                   schedule_time: object = None, now_ms: int) -> MediaPlan:
    """Validate and build /rest/vsms/v1/message: one template to ≤ 1000 mainland phones.

    ``now_ms`` (epoch ms) is the ``ts`` and the bound ``schedule_time`` must pass. Raises ValidationError.
    """
    check = Checker()
    tpl = _tpl_id(check, tpl_id)
    kept = check.phones(phones, limit=MAX_MOBILES)
    options = _options(check, uuid, schedule_time, now_ms)
    check.done()
    body = {"appKey": app_key, "ts": str(now_ms), "tplId": tpl, "mobiles": list(kept.phones), **options}
    return MediaPlan(SEND_PATH, body, kept.phones, kept.duplicates, options.get("uuid"))


def plan_vsms_vars(app_key: str, tpl_id: object, recipients: object, *, uuid: object = None,
                   schedule_time: object = None, now_ms: int) -> MediaPlan:
    """Validate and build /rest/vsms/v1/message/vars: ``(phone, values)`` pairs.

    Each phone fills ``#p_1#``.. with ≤ 5 values of ≤ 15 characters, and every
    phone the same number (they fill one template). Problems name
    ``recipients[i]`` and ``recipients[i].vars[j]``. Raises ValidationError.
    """
    check = Checker()
    tpl = _tpl_id(check, tpl_id)
    options = _options(check, uuid, schedule_time, now_ms)
    given = pairs(check, recipients, field="recipients", what="(phone, vars)")
    check.done()
    kept = check.phones([phone for phone, _ in given], field="recipients", limit=MAX_MOBILES)
    rows = [check.params(values, field=f"recipients[{i}].vars", max_count=MAX_VARS, max_chars=MAX_VAR_CHARS)
            for i, (_, values) in enumerate(given)]
    for i, row in enumerate(rows):
        if len(row) != len(rows[0]):
            check.add(f"recipients[{i}].vars", f"has {len(row)} values; recipients[0] has {len(rows[0])}")
            break
    check.done()
    mobiles = [{"phone": phone, "vars": rows[i]} for phone, i in zip(kept.phones, kept.source_index, strict=True)]
    body = {"appKey": app_key, "ts": str(now_ms), "tplId": tpl, "mobiles": mobiles, **options}
    return MediaPlan(SEND_VARS_PATH, body, kept.phones, kept.duplicates, options.get("uuid"))


def plan_isms(app_key: str, content: object, phones: object, *, uuid: object = None,
              schedule_time: object = None, now_ms: int) -> MediaPlan:
    """Validate and build /rest/isms/sendIsms: ``content`` to ≤ 1000 numbers with country code.

    Phones are sent as digits, country code first (``+852…`` → ``852…``).
    International text needs no 【signature】. Raises ValidationError.
    """
    check = Checker()
    text = check.text(content, field="content")
    kept = check.phones(phones, limit=MAX_MOBILES, international=True)
    options = _options(check, uuid, schedule_time, now_ms)
    check.done()
    body = {"appKey": app_key, "ts": str(now_ms), "content": text, "mobiles": list(kept.phones), **options}
    return MediaPlan(ISMS_PATH, body, kept.phones, kept.duplicates, options.get("uuid"))


# -- answer parsing (pure) ---------------------------------------------------------------------------


def check_code(doc: Mapping[str, Any], *, provider: str, account: str, side_effect: bool) -> None:
    """Return if ``code`` is ``success``; else raise its class (no code: Ambiguous/Transient)."""
    code = text_field(doc, "code")
    if code is None:
        cls = AmbiguousError if side_effect else TransientError
        raise cls("answer carries no code", provider=provider, account=account)
    text = text_field(doc, "msg") or text_field(doc, "message")
    raise_for_code(AIOFISH_CODES, code, provider=provider, account=account,
                   message=mask_in_text(text) if text else None, retry_after_s=RETRY_AFTER_S,
                   side_effect=side_effect)


def parse_sent(doc: Mapping[str, Any], plan: MediaPlan, *, provider: str, account: str) -> SendResult:
    """Read a send answer ``{code, msgId}``; success without msgId is Ambiguous."""
    check_code(doc, provider=provider, account=account, side_effect=True)
    msg_id = text_field(doc, "msgId")
    if msg_id is None:
        raise AmbiguousError("success without msgId; the send may have been taken",
                             provider=provider, account=account, code="success")
    return SendResult(provider, account, msg_id, plan.uuid, plan.phones, (), plan.duplicates)


def parse_submitted(doc: Mapping[str, Any], *, account: str) -> str:
    """The ``tplId`` of a template submit answer; success without one is Ambiguous."""
    check_code(doc, provider=VSMS, account=account, side_effect=True)
    tpl_id = text_field(doc, "tplId")
    if tpl_id is None:
        raise AmbiguousError("success without tplId; the template may have been created",
                             provider=VSMS, account=account, code="success")
    return tpl_id


def parse_template_status(doc: Mapping[str, Any], tpl_id: str, *, account: str) -> TemplateStatus:
    """Read a template status answer; an unreadable ``auditStatus`` is Transient."""
    check_code(doc, provider=VSMS, account=account, side_effect=False)
    status = whole_number(text_field(doc, "auditStatus"))
    if status is None or status < 0:
        raise TransientError("answer has no auditStatus", provider=VSMS, account=account)
    return TemplateStatus(text_field(doc, "tplId") or tpl_id, status, text_field(doc, "auditReason"))


# -- the clients -------------------------------------------------------------------------------------


class _SignedClient:
    """What vsms and isms share: the appKey/appSecret, the clock, the transport."""

    provider = VSMS

    def __init__(self, account: AiofishAccount, *, session: requests.Session | None = None,
                 clock_ms: Clock = system_clock_ms) -> None:
        if not account.app_key or not account.app_secret:
            raise ConfigurationError(f"aiofish:{account.name} needs app_key and app_secret for vsms/isms")
        self.account = account
        self._app_key, self._app_secret = account.app_key, account.app_secret
        self._clock_ms = clock_ms
        self._http = HttpTransport(provider=self.provider, account=account.name, base_url=account.base_url,
                                   session=session, connect_timeout_s=account.connect_timeout_s,
                                   read_timeout_s=account.read_timeout_s)

    def _send(self, plan: MediaPlan) -> SendResult:
        headers = {**sign_headers(self._app_key, self._app_secret, plan.body["ts"]), "Content-Type": CONTENT_TYPE}
        answer = self._http.request("POST", plan.path, side_effect=True, body=json_body(plan.body), headers=headers)
        doc = self._http.parse_json(answer, side_effect=True)
        return parse_sent(doc, plan, provider=self.provider, account=self.account.name)


class AiofishVsmsClient(_SignedClient):
    """Video SMS of one account: submit a template (with files), poll its audit, send it.

    ``session`` is injectable; ``clock_ms`` returns epoch milliseconds (the ``ts``).
    Raises ConfigurationError when the account has no app_key/app_secret.
    """

    def submit_template(self, title: str, frames: Sequence[Frame], files: Mapping[str, bytes]) -> str:
        """Submit a template for audit (multipart: ``data`` JSON and a ``file`` per upload); return its tplId.

        ``files`` maps each file name used by a file frame to its bytes. Raises
        ValidationError before sending, then the answer code's class, or
        AmbiguousError when the answer was lost (a resubmit may create a twin).
        """
        ts = str(self._clock_ms())
        form = plan_template(self._app_key, title, frames, files, ts=ts)
        answer = self._http.request("POST", TPL_PATH, side_effect=True, files=form,
                                    headers=sign_headers(self._app_key, self._app_secret, ts))
        return parse_submitted(self._http.parse_json(answer, side_effect=True), account=self.account.name)

    def template_status(self, tpl_id: str) -> TemplateStatus:
        """The template's audit state (100 pending, 200 approved, 400 rejected). Raises ProviderError."""
        check = Checker()
        tpl = _tpl_id(check, tpl_id)
        check.done()
        ts = str(self._clock_ms())
        answer = self._http.request("GET", TPL_STATUS_PATH, side_effect=False,
                                    params={"appKey": self._app_key, "ts": ts, "tplId": tpl},
                                    headers=sign_headers(self._app_key, self._app_secret, ts))
        doc = self._http.parse_json(answer, side_effect=False)
        return parse_template_status(doc, tpl, account=self.account.name)

    def send(self, tpl_id: str, phones: Sequence[str], *, uuid: str | None = None,
             schedule_time: dt.datetime | str | None = None) -> SendResult:
        """Send an approved template to up to 1000 mainland phones.

        ``uuid`` is our message id; ``schedule_time`` (China time) must be later
        than now. Raises ValidationError, the answer code's class, or AmbiguousError.
        """
        return self._send(plan_vsms_send(self._app_key, tpl_id, phones, uuid=uuid, schedule_time=schedule_time,
                                         now_ms=self._clock_ms()))

    def send_vars(self, tpl_id: str, recipients: Sequence[tuple[str, Sequence[str]]], *, uuid: str | None = None,
                  schedule_time: dt.datetime | str | None = None) -> SendResult:
        """Send an approved template with per-phone values for ``#p_1#``..``#p_5#``.

        ``recipients`` is ``[(phone, [value, …]), …]``: ≤ 5 values of ≤ 15
        characters each. Raises as :meth:`send`.
        """
        return self._send(plan_vsms_vars(self._app_key, tpl_id, recipients, uuid=uuid,
                                         schedule_time=schedule_time, now_ms=self._clock_ms()))


class AiofishIsmsClient(_SignedClient):
    """International SMS of one account: text to numbers with their country code.

    Raises ConfigurationError when the account has no app_key/app_secret.
    """

    provider = ISMS

    def send(self, content: str, phones: Sequence[str], *, uuid: str | None = None,
             schedule_time: dt.datetime | str | None = None) -> SendResult:
        """Send ``content`` to up to 1000 international numbers (``+852…``, ``00852…`` or ``852…``).

        Raises ValidationError, the answer code's class, or AmbiguousError.
        """
        return self._send(plan_isms(self._app_key, content, phones, uuid=uuid, schedule_time=schedule_time,
                                    now_ms=self._clock_ms()))
