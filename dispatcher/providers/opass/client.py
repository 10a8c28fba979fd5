"""opass (经分助手) client: a thin shell around pure request builders and answer parsers.

:mod:`~dispatcher.providers.opass.requests` validates input and builds signed
requests; the ``parse_*`` functions here read the gateway's answers;
:class:`~dispatcher.providers.http.HttpTransport` sends and translates transport
failures. Every call is a signed JSON POST; only ``/health/info`` is unsigned.

What a failure means for the caller:

* a gateway code maps through :data:`~dispatcher.providers.opass.codes.OPASS_CODES`
  to one error class; throttles (6000) carry ``retry_after_s`` of 1 s for sends and
  20 s for queries (3 queries a minute per enterprise by default);
* a send whose answer is lost or incomplete (no ``code``, or 200 without a
  ``msgId``) is :class:`~dispatcher.errors.AmbiguousError`; the same for a query is
  :class:`~dispatcher.errors.TransientError`, as queries are safe to repeat.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import requests

from dispatcher.errors import AmbiguousError, DispatchError, TransientError
from dispatcher.phones import mask_in_text, normalise_mainland
from dispatcher.providers.base import Clock, raise_for_code, system_clock_ms
from dispatcher.providers.fields import text_field, whole_number
from dispatcher.providers.http import HttpTransport
from dispatcher.providers.opass.account import OpassAccount
from dispatcher.providers.opass.codes import OPASS_CODES
from dispatcher.providers.opass.push import receipt_from_item
from dispatcher.providers.opass.requests import (
    BALANCE_PATH,
    CONTENT_TYPE,
    HEALTH_PATH,
    PROVIDER,
    STATISTICS_PATH,
    SendPlan,
    plan_receipt_query,
    plan_send,
    plan_send_batch,
    plan_statistics,
    signed_request,
)
from dispatcher.providers.opass.sign import new_nonce
from dispatcher.providers.results import (
    Balance,
    BalanceItem,
    DailyStatistics,
    Health,
    PhoneFailure,
    Receipt,
    SendResult,
    StatisticsPage,
)

SEND_RETRY_AFTER_S = 1.0
#: Query endpoints share a budget of 3 calls a minute: wait a third of it.
QUERY_RETRY_AFTER_S = 20.0
#: ``PhoneFailure.code`` for a phone the gateway listed in ``data.failPhones``.
FAIL_PHONES_CODE = "failPhones"
_FAIL_PHONES_TEXT = "refused at submit (format, blacklist…)"
_HEALTH_DETAIL_CHARS = 200


# -- answer parsing (pure) ---------------------------------------------------------------------------


def scrub(text: str) -> str:
    """``text`` with every mainland mobile number in it masked (``138****1234``).

    Gateway messages may quote a number back; this runs before any reaches an exception.
    """
    return mask_in_text(text)


def check_code(doc: Mapping[str, Any], *, account: str, side_effect: bool, retry_after_s: float) -> None:
    """Return if the answer's ``code`` (int or string) is 200; else raise its error class.

    An answer without a code is Ambiguous for a send (``side_effect``) and
    Transient for a query.
    """
    code = doc.get("code")
    request_id = text_field(doc, "requestId")
    if code is None or isinstance(code, bool | dict | list):
        cls = AmbiguousError if side_effect else TransientError
        raise cls("answer carries no code", provider=PROVIDER, account=account, request_id=request_id)
    message = doc.get("message")
    raise_for_code(
        OPASS_CODES,
        code,
        provider=PROVIDER,
        account=account,
        message=scrub(message) if isinstance(message, str) and message.strip() else None,
        request_id=request_id,
        retry_after_s=retry_after_s,
    )


def parse_send_answer(doc: Mapping[str, Any], plan: SendPlan, *, account: str) -> SendResult:
    """Read a /message/send or /message/sendBatch answer into a SendResult.

    Phones listed in ``data.failPhones`` become ``failed``; the rest ``accepted``
    (possibly none: the batch still has a msgId, so it is a result, not an error).
    Raises the code's error class, or AmbiguousError for a 200 without ``msgId``
    (the gateway's answer is incomplete: it may have taken the batch).
    """
    check_code(doc, account=account, side_effect=True, retry_after_s=SEND_RETRY_AFTER_S)
    data = doc.get("data")
    data = data if isinstance(data, dict) else {}
    request_id = text_field(doc, "requestId")
    # The sendBatch table spells it data.msgid; the samples say msgId.
    message_id = text_field(data, "msgId") or text_field(data, "msgid")
    if message_id is None:
        raise AmbiguousError(
            "answer 200 carries no msgId; the batch may have been taken",
            provider=PROVIDER, account=account, code="200", request_id=request_id,
        )
    refused = fail_phones(data.get("failPhones"))
    # Most answers refuse no phone: then a chunk's 1000 phones are not looked up one by one.
    return SendResult(
        provider=PROVIDER,
        account=account,
        message_id=message_id,
        client_id=plan.client_id,
        accepted=tuple(p for p in plan.phones if p not in refused) if refused else tuple(plan.phones),
        failed=tuple(PhoneFailure(p, FAIL_PHONES_CODE, _FAIL_PHONES_TEXT) for p in plan.phones if p in refused)
        if refused else (),
        duplicates=plan.duplicates,
        request_id=request_id,
    )


def fail_phones(value: object) -> frozenset[str]:
    """The normalised phones of a ``failPhones`` value (comma-separated text, or a list)."""
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
    phones = set()
    for item in items:
        raw = str(item).strip()
        if raw:
            phones.add(normalise_mainland(raw) or raw)
    return frozenset(phones)


def parse_receipts_answer(doc: Mapping[str, Any], *, account: str) -> list[Receipt]:
    """Read a receipt pull answer; ``delivered`` is true only for DELIVRD.

    Items without msgId, tel or status are skipped: raising would lose the valid
    ones, which the gateway returns only once.
    """
    check_code(doc, account=account, side_effect=False, retry_after_s=QUERY_RETRY_AFTER_S)
    data = doc.get("data")
    receipts = []
    for item in data if isinstance(data, list) else []:
        if isinstance(item, dict):
            # The pull names the state "arrive"; accept the push's "arriveResult" too.
            receipt = receipt_from_item(item, status_key="arrive" if "arrive" in item else "arriveResult")
            if receipt is not None:
                receipts.append(receipt)
    return receipts


def parse_statistics_answer(
    doc: Mapping[str, Any], *, account: str, page: int, page_size: int
) -> StatisticsPage:
    """Read a statistics answer; ``totalSize`` may sit at the top level or inside ``data``."""
    check_code(doc, account=account, side_effect=False, retry_after_s=QUERY_RETRY_AFTER_S)
    data = doc.get("data")
    rows: list[Any] = data if isinstance(data, list) else []
    total: object = doc.get("totalSize")
    if isinstance(data, dict):
        # A paged object: the rows are its one list-valued field.
        rows = next((v for v in data.values() if isinstance(v, list)), [])
        total = data.get("totalSize", total)
    parsed = tuple(
        DailyStatistics(
            send_date=text_field(row, "sendDate") or "",
            total=to_int(row.get("totalCount")),
            success=to_int(row.get("successCount")),
            failed=to_int(row.get("failCount")),
            no_receipt=to_int(row.get("noReceiptCount")),
        )
        for row in rows
        if isinstance(row, dict)
    )
    total_size = to_int(total) if total is not None else len(parsed)
    return StatisticsPage(rows=parsed, total_size=total_size, page=page, page_size=page_size)


def parse_balance_answer(doc: Mapping[str, Any], *, account: str) -> Balance:
    """Read a balance answer: one item per product (行业短信, 会员短信, 推广短信)."""
    check_code(doc, account=account, side_effect=False, retry_after_s=QUERY_RETRY_AFTER_S)
    data = doc.get("data")
    items = tuple(
        BalanceItem(name=text_field(item, "itemName") or "", remaining=to_int(item.get("residueValue")))
        for item in (data if isinstance(data, list) else [])
        if isinstance(item, dict)
    )
    return Balance(provider=PROVIDER, account=account, items=items)


def to_int(value: object) -> int:
    """An integer field that may arrive as a number or as text; 0 when unreadable (see whole_number)."""
    return whole_number(value) or 0


# -- the client --------------------------------------------------------------------------------------


class OpassClient:
    """Talks to one opass account: send, sendBatch, receipts, statistics, balance, health.

    ``session`` is injectable (it must not retry POSTs); ``clock_ms`` returns epoch
    milliseconds and ``nonce`` a fresh nonce per request (tests pin both).
    ``templates`` maps template code → text with ``{name,maxLen}`` variables; when
    given, sends are also checked against it before anything goes out.
    """

    def __init__(
        self,
        account: OpassAccount,
        *,
        session: requests.Session | None = None,
        clock_ms: Clock = system_clock_ms,
        nonce: Callable[[], str] = new_nonce,
        templates: Mapping[str, str] | None = None,
    ) -> None:
        self.account = account
        self.templates = dict(templates) if templates is not None else None
        self._clock_ms = clock_ms
        self._nonce = nonce
        self._transport = HttpTransport(
            provider=PROVIDER,
            account=account.name,
            base_url=account.base_url,
            session=session,
            connect_timeout_s=account.connect_timeout_s,
            read_timeout_s=account.read_timeout_s,
        )

    def send(
        self,
        phones: Sequence[str],
        template_code: str,
        params: Sequence[str | int] | None = None,
        *,
        bid: str | None = None,
        extend_code: str | int | None = None,
    ) -> SendResult:
        """Send one template with the same ``params`` to up to ``account.batch_max`` phones.

        Raises ValidationError before sending; after, the class of the gateway's code,
        or AmbiguousError when the answer was lost (never resend blindly: reconcile by ``bid``).
        """
        plan = plan_send(
            self.account, phones, template_code, params, bid=bid, extend_code=extend_code, templates=self.templates
        )
        return parse_send_answer(self._post(plan.path, plan.fields, side_effect=True), plan, account=self.account.name)

    def send_batch(
        self,
        recipients: Sequence[tuple[str, Sequence[str | int]]],
        template_code: str,
        *,
        bid: str | None = None,
        extend_code: str | int | None = None,
    ) -> SendResult:
        """Send one template with per-phone params: ``recipients`` is ``[(phone, params), …]``.

        Raises as :meth:`send` does.
        """
        plan = plan_send_batch(
            self.account, recipients, template_code, bid=bid, extend_code=extend_code, templates=self.templates
        )
        return parse_send_answer(self._post(plan.path, plan.fields, side_effect=True), plan, account=self.account.name)

    def pull_receipts(self, *, message_ids: Sequence[str] | None = None, bid: str | None = None) -> list[Receipt]:
        """Pull pending receipts (each is returned once only; last 6 h; up to 600 a call).

        Uses ``account.receipt_path``. Raises ValidationError, or a ProviderError
        (TransientError when the answer was lost: the call sends nothing). A lost
        answer may still have used up the receipts it carried; pushes and the 72 h
        "unknown" sweep cover those.
        """
        fields = plan_receipt_query(message_ids, bid)
        doc = self._post(self.account.receipt_path, fields, side_effect=False)
        return parse_receipts_answer(doc, account=self.account.name)

    def statistics(
        self, start_date: dt.date | str, end_date: dt.date | str, *, page: int = 1, page_size: int = 10
    ) -> StatisticsPage:
        """Send volume per day between two dates (``datetime.date`` or ``yyyy-MM-dd``), one page.

        ``page`` ≥ 1, ``page_size`` 1..50. Raises ValidationError or a ProviderError.
        """
        fields = plan_statistics(start_date, end_date, page, page_size)
        doc = self._post(STATISTICS_PATH, fields, side_effect=False)
        return parse_statistics_answer(doc, account=self.account.name, page=page, page_size=page_size)

    def balance(self) -> Balance:
        """Remaining messages per product (the gateway allows one call per 15 s). Raises ProviderError."""
        doc = self._post(BALANCE_PATH, {}, side_effect=False)
        return parse_balance_answer(doc, account=self.account.name)

    def health(self) -> Health:
        """POST the unsigned ``/health/info``; never raises: a failure is ``ok=False`` with its detail."""
        started = time.perf_counter()
        try:
            answer = self._transport.request(
                "POST", HEALTH_PATH, side_effect=False, headers={"Content-Type": CONTENT_TYPE}
            )
        except DispatchError as exc:
            return Health(ok=False, latency_ms=(time.perf_counter() - started) * 1000.0, detail=str(exc))
        detail = scrub(answer.body[:_HEALTH_DETAIL_CHARS].decode("utf-8", errors="replace"))
        return Health(ok=True, latency_ms=answer.elapsed_ms, detail=detail)

    def _post(self, path: str, fields: Mapping[str, Any], *, side_effect: bool) -> dict[str, Any]:
        request = signed_request(self.account, path, fields, timestamp_ms=self._clock_ms(), nonce=self._nonce())
        answer = self._transport.request(
            "POST", request.path, side_effect=side_effect, body=request.body, headers=request.headers
        )
        return self._transport.parse_json(answer, side_effect=side_effect)
