"""aiofish (飞鱼) SMS client: a thin shell around pure request builders and answer parsers.

:mod:`~dispatcher.providers.aiofish.requests` validates input and builds bodies;
the ``parse_*`` functions here read the gateway's answers;
:class:`~dispatcher.providers.http.HttpTransport` sends and translates transport
failures.

What a failure means for the caller:

* success is ``code`` 200 (number or text) **and** ``subStat``/``revStat``
  ``r:000``; otherwise the finer of the two (the ``p:0xx`` status, else the
  numeric code) maps through :data:`~dispatcher.providers.aiofish.codes.AIOFISH_CODES`
  to one error class. Throttles (p:010) carry ``retry_after_s``;
* a send whose answer is lost or incomplete (no code, or success without
  ``smsId``) is :class:`~dispatcher.errors.AmbiguousError`; the same for a GET
  pull is :class:`~dispatcher.errors.TransientError`: pulls change nothing we send.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from dispatcher.errors import AmbiguousError, TransientError
from dispatcher.phones import mask_in_text, normalise_mainland
from dispatcher.providers.aiofish import requests as rq
from dispatcher.providers.aiofish.account import AiofishAccount
from dispatcher.providers.aiofish.codes import AIOFISH_CODES
from dispatcher.providers.base import Clock, json_body, raise_for_code, system_clock_ms
from dispatcher.providers.fields import text_field, whole_number
from dispatcher.providers.http import HttpTransport
from dispatcher.providers.results import Balance, BalanceItem, PhoneFailure, Receipt, SendResult, Uplink

PROVIDER = rq.PROVIDER
ACCEPTED = "r:000"
DELIVERED = "DELIVRD"
SEND_RETRY_AFTER_S = 1.0
#: "建议查询间隔为5秒": a throttled balance query waits that long.
BALANCE_RETRY_AFTER_S = 5.0
#: getReport/getReply have no documented rate; they are polled about once a minute.
PULL_RETRY_AFTER_S = 60.0
BALANCE_ITEM = "短信"
_COUNT = re.compile(r"-?[0-9]+")  # [0-9], not \d: int() would also read other scripts' digits


# -- answer parsing (pure) ---------------------------------------------------------------------------


def check_answer(doc: Mapping[str, Any], *, account: str, side_effect: bool, retry_after_s: float) -> None:
    """Return if the answer says success; else raise the error class of its code.

    Success needs every code present to mean success: ``subStat`` (sends,
    getReport) or ``revStat`` (getBalance, getReply), and ``code`` (int or text).
    An answer with neither is Ambiguous for a send and Transient for a pull.
    """
    status = doc.get("subStat", doc.get("revStat"))
    code = doc.get("code")
    if status is None and code is None:
        cls = AmbiguousError if side_effect else TransientError
        raise cls("answer carries no code", provider=PROVIDER, account=account)
    text = doc.get("subStatDes", doc.get("revStatDes"))
    # Vendor texts may quote a number back: mask it before it reaches an exception.
    message = mask_in_text(text) if isinstance(text, str) and text.strip() else None
    for value in (status, code):  # subStat first: p:0xx is finer than the numeric code
        if value is not None:
            raise_for_code(AIOFISH_CODES, value, provider=PROVIDER, account=account, message=message,
                           retry_after_s=retry_after_s, side_effect=side_effect)


def _detail(value: object) -> list[Mapping[str, Any]]:
    """``resDetail`` items; the manual types it as String, so JSON text is read too."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def refusals(detail: object, plan: rq.SendPlan) -> tuple[PhoneFailure, ...]:
    """The phones ``resDetail`` marks with a stat other than r:000, mapped back to plain phones.

    An item without a stat is not a refusal (only an explicit code removes a
    phone from ``accepted``; its receipt tells the rest). Items naming a phone
    we did not send are ignored.
    """
    sent = set(plan.phones)
    out: dict[str, PhoneFailure] = {}
    for item in _detail(detail):
        stat, raw = text_field(item, "stat"), text_field(item, "phoneNumber")
        if stat is None or stat == ACCEPTED or raw is None:
            continue
        phone = plan.echo.get(raw.lower()) or normalise_mainland(raw) or raw  # hex echo in either case
        if phone in sent and phone not in out:
            out[phone] = PhoneFailure(phone, stat, mask_in_text(text_field(item, "statDes") or ""))
    return tuple(out.values())


def parse_send_answer(doc: Mapping[str, Any], plan: rq.SendPlan, *, account: str) -> SendResult:
    """Read a send or batch answer into a SendResult.

    Raises the code's error class, or AmbiguousError for a success without
    ``smsId`` (the answer is incomplete: the gateway may have taken the send).
    """
    check_answer(doc, account=account, side_effect=True, retry_after_s=SEND_RETRY_AFTER_S)
    sms_id = text_field(doc, "smsId")
    if sms_id is None:
        raise AmbiguousError("answer r:000 carries no smsId; the send may have been taken",
                             provider=PROVIDER, account=account, code=ACCEPTED)
    failed = refusals(doc.get("resDetail"), plan)
    refused = {f.phone for f in failed}
    return SendResult(PROVIDER, account, sms_id, plan.sms_id, tuple(p for p in plan.phones if p not in refused),
                      failed, plan.duplicates)


def parse_balance(doc: Mapping[str, Any], *, account: str) -> Balance:
    """Read getBalance: the count is inside ``revStatDes`` ("您的短信余额为:2670 条").

    Raises the code's error class, or TransientError when no number can be read.
    """
    check_answer(doc, account=account, side_effect=False, retry_after_s=BALANCE_RETRY_AFTER_S)
    match = _COUNT.search(str(doc.get("revStatDes", "")))
    count = whole_number(match.group()) if match else None
    if count is None:
        raise TransientError("balance answer has no number", provider=PROVIDER, account=account)
    return Balance(PROVIDER, account, (BalanceItem(BALANCE_ITEM, count),))


def epoch_ms(value: object) -> int | None:
    """Epoch milliseconds from a number or digit text; ``None`` when unreadable or before 1970."""
    ms = whole_number(value)
    return ms if ms is not None and ms >= 0 else None


def receipt_from_report(item: Mapping[str, Any]) -> Receipt | None:
    """A Receipt from one getReport item, or ``None`` when it lacks smsId or phone.

    ``statDes`` is the carrier state; delivered only for DELIVRD. Without a
    ``statDes``, ``stat`` r:000 counts as delivered and any other stat is the state.
    """
    sms_id, raw = text_field(item, "smsId"), text_field(item, "phoneNumber")
    stat, state = text_field(item, "stat"), text_field(item, "statDes")
    if sms_id is None or raw is None or (stat is None and state is None):
        return None
    if state is None:
        state = DELIVERED if stat == ACCEPTED else str(stat)
    return Receipt(PROVIDER, sms_id, normalise_mainland(raw) or raw, state, state == DELIVERED,
                   epoch_ms(item.get("revTime")), sms_id, stat)


def parse_reports(doc: Mapping[str, Any], *, account: str) -> list[Receipt]:
    """Read getReport. Unreadable items are skipped: raising would lose the good ones,
    which the gateway returns only once."""
    check_answer(doc, account=account, side_effect=False, retry_after_s=PULL_RETRY_AFTER_S)
    return [r for r in map(receipt_from_report, _detail(doc.get("resDetail"))) if r is not None]


def parse_replies(doc: Mapping[str, Any], *, account: str) -> list[Uplink]:
    """Read getReply into uplinks (``ext`` is the subCode); items without a phone are skipped."""
    check_answer(doc, account=account, side_effect=False, retry_after_s=PULL_RETRY_AFTER_S)
    out = []
    for item in _detail(doc.get("resDetail")):
        raw = text_field(item, "phoneNumber")
        if raw is None:
            continue
        content = item.get("content")
        out.append(Uplink(PROVIDER, normalise_mainland(raw) or raw, content if isinstance(content, str) else "",
                          text_field(item, "subCode"), epoch_ms(item.get("revTime")), text_field(item, "smsId")))
    return out


# -- the client --------------------------------------------------------------------------------------


class AiofishClient:
    """Talks to one aiofish SMS account: send (three variants), batch, balance, reports, replies.

    ``session`` is injectable (it must not retry POSTs by itself); ``clock_ms``
    returns epoch milliseconds (the ``ts`` of the encrypted variants).
    """

    def __init__(self, account: AiofishAccount, *, session: requests.Session | None = None,
                 clock_ms: Clock = system_clock_ms) -> None:
        self.account = account
        self._clock_ms = clock_ms
        self._http = HttpTransport(provider=PROVIDER, account=account.name, base_url=account.base_url,
                                   session=session, connect_timeout_s=account.connect_timeout_s,
                                   read_timeout_s=account.read_timeout_s)

    def send(self, phones: Sequence[str], content: str, *, sms_id: str | None = None,
             sub_code: str | None = None, send_time: dt.datetime | str | None = None) -> SendResult:
        """Send ``content`` (with its 【signature】) to up to 2000 mainland phones.

        The variant follows ``account.encryption``. ``sms_id`` (≤ 32 chars) is
        echoed in receipts; ``sub_code`` digits; ``send_time`` schedules the send
        (China time). Raises ValidationError before sending; after, the class of
        the gateway's code, or AmbiguousError when the answer was lost (never
        resend blindly: reconcile by ``sms_id``).
        """
        plan = rq.plan_send(self.account, phones, content, sms_id=sms_id, sub_code=sub_code,
                            send_time=send_time, now_ms=self._clock_ms())
        return self._send(plan)

    def send_batch(self, items: Sequence[tuple[str, str]], *, sms_id: str | None = None,
                   sub_code: str | None = None, send_time: dt.datetime | str | None = None) -> SendResult:
        """Send per-phone content: up to 200 ``(phone, content)`` pairs.

        ``full`` accounts use the encrypted batch; ``plain`` and ``phone`` accounts
        the plain one (there is no phone-encrypted batch). Raises as :meth:`send`.
        """
        plan = rq.plan_batch(self.account, items, sms_id=sms_id, sub_code=sub_code, send_time=send_time,
                             now_ms=self._clock_ms())
        return self._send(plan)

    def balance(self) -> Balance:
        """Messages left on the account (advised at most once per 5 s). Raises ProviderError."""
        return parse_balance(self._get(rq.BALANCE_PATH), account=self.account.name)

    def pull_receipts(self) -> list[Receipt]:
        """Delivery reports not yet fetched; the gateway returns each once. Raises ProviderError.

        A lost answer (TransientError) may have used up the receipts it carried;
        pushes and the 72 h "unknown" sweep cover those.
        """
        return parse_reports(self._get(rq.REPORT_PATH), account=self.account.name)

    def pull_replies(self) -> list[Uplink]:
        """Uplink (MO) replies not yet fetched, each returned once. Raises ProviderError."""
        return parse_replies(self._get(rq.REPLY_PATH), account=self.account.name)

    def _send(self, plan: rq.SendPlan) -> SendResult:
        answer = self._http.request("POST", plan.path, side_effect=True, body=json_body(plan.body),
                                    headers={"Content-Type": rq.CONTENT_TYPE})
        doc = self._http.parse_json(answer, side_effect=True)
        return parse_send_answer(doc, plan, account=self.account.name)

    def _get(self, path: str) -> dict[str, Any]:
        answer = self._http.request("GET", path, side_effect=False, params=rq.query_params(self.account))
        return self._http.parse_json(answer, side_effect=False)
