"""aiofish (飞鱼) SMS client: a thin shell over :mod:`~dispatcher.providers.aiofish_requests`.

Sends are side-effecting (a lost answer is Ambiguous); the GET pulls are not
(a lost answer is Transient). Throttles (p:010) carry ``retry_after_s``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import requests

from dispatcher.providers import aiofish_requests as rq
from dispatcher.providers.accounts import AiofishAccount
from dispatcher.providers.base import Clock, json_body, system_clock_ms
from dispatcher.providers.http import HttpTransport
from dispatcher.providers.results import Balance, Receipt, SendResult, Uplink

JSON_TYPE = "application/json;charset=utf-8"


class AiofishClient:
    """Plain and encrypted SMS sends, batches, balance, reports and replies of one account."""

    def __init__(self, account: AiofishAccount, *, session: requests.Session | None = None,
                 clock_ms: Clock = system_clock_ms) -> None:
        self.account = account
        self.clock_ms = clock_ms
        self.http = HttpTransport(provider=rq.PROVIDER, account=account.name, base_url=account.base_url,
                                  session=session, connect_timeout_s=account.connect_timeout_s,
                                  read_timeout_s=account.read_timeout_s)

    def _post(self, plan: rq.SendPlan) -> SendResult:
        answer = self.http.request("POST", plan.path, side_effect=True, body=json_body(plan.body),
                                   headers={"Content-Type": JSON_TYPE})
        doc = self.http.parse_json(answer, side_effect=True)
        return rq.parse_send_answer(doc, plan, account=self.account.name)

    def _get(self, path: str) -> dict[str, Any]:
        answer = self.http.request("GET", path, side_effect=False, params=rq.query_params(self.account))
        return self.http.parse_json(answer, side_effect=False)

    def send(self, phones: Sequence[str], content: str, *, sms_id: str | None = None, sub_code: str | None = None,
             send_time: Any = None) -> SendResult:
        """Send ``content`` (with its 【signature】) to up to 2000 phones, via the account's variant.

        Raises ``ValidationError`` before sending, or the error class of the answer.
        """
        return self._post(rq.plan_send(self.account, phones, content, sms_id=sms_id, sub_code=sub_code,
                                       send_time=send_time, now_ms=self.clock_ms()))

    def send_batch(self, items: Sequence[tuple[str, str]], *, sms_id: str | None = None,
                   sub_code: str | None = None, send_time: Any = None) -> SendResult:
        """Send per-phone content, up to 200 ``(phone, content)`` pairs (batchSendSms)."""
        return self._post(rq.plan_batch(self.account, items, sms_id=sms_id, sub_code=sub_code,
                                        send_time=send_time, now_ms=self.clock_ms()))

    def balance(self) -> Balance:
        """Messages left on the account (the manual advises one call per 5 s at most)."""
        return rq.parse_balance(self._get(rq.BALANCE_PATH), account=self.account.name)

    def pull_receipts(self) -> list[Receipt]:
        """Delivery reports not yet fetched (each is returned once by the gateway)."""
        return rq.parse_reports(self._get(rq.REPORT_PATH), account=self.account.name)

    def pull_replies(self) -> list[Uplink]:
        """Uplink (MO) replies not yet fetched."""
        return rq.parse_replies(self._get(rq.REPLY_PATH), account=self.account.name)
