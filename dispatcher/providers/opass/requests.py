"""opass requests: validation and request building, pure functions with the clock and nonce passed in.

Each endpoint has a ``plan_*`` function that checks the caller's input (collecting
every problem into one :class:`~dispatcher.errors.ValidationError`) and returns the
body fields to send; :func:`signed_request` adds the five ``x-*`` headers. Nothing
here does I/O: :mod:`dispatcher.providers.opass.client` sends what these build and
parses what comes back.

Empty optional fields are left out of the body entirely, so the body and the sign
string agree under every vendor sample's reading of empty values (SPEC ambiguity 3).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dispatcher.providers.base import json_body
from dispatcher.providers.opass.account import OpassAccount
from dispatcher.providers.opass.sign import signed_headers
from dispatcher.redact import build_repr, keys_repr, phones_repr
from dispatcher.validation import MAX_BID_CHARS, MAX_CONTENT_CHARS, Checker

PROVIDER = "opass"
SEND_PATH = "/message/send"
SEND_BATCH_PATH = "/message/sendBatch"
STATISTICS_PATH = "/sms/send/statistics"
BALANCE_PATH = "/sms/residueValue/qry"
HEALTH_PATH = "/health/info"
CONTENT_TYPE = "application/json;charset=UTF-8"
#: The manual's page-size bounds for /sms/send/statistics.
MAX_PAGE_SIZE = 50

# A template variable is written {name,maxLen}, e.g. {验证码,6} or {动态签名,20}.
_TEMPLATE_VARIABLE = re.compile(r"\{([^{},]+),(\d+)\}")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class OpassRequest:
    """A signed request ready to send: path, body fields and headers."""

    path: str
    fields: Mapping[str, Any]
    headers: Mapping[str, str]

    def __repr__(self) -> str:  # the fields hold phones and params, the headers the api key and signature
        return build_repr(self, path=repr(self.path), fields=keys_repr(self.fields), headers=keys_repr(self.headers))

    @property
    def body(self) -> bytes:
        """The body as sent: compact UTF-8 JSON of ``fields``."""
        return json_body(self.fields)


@dataclass(frozen=True, slots=True)
class SendPlan:
    """A validated send: which endpoint, the body fields, and the phones it covers.

    ``phones`` are the distinct normalised numbers sent, in the caller's order;
    ``duplicates`` the repeats dropped; ``client_id`` the bid (echoed in receipts).
    """

    path: str
    fields: Mapping[str, Any]
    phones: tuple[str, ...]
    duplicates: tuple[str, ...]
    client_id: str | None

    def __repr__(self) -> str:
        return build_repr(self, path=repr(self.path), fields=keys_repr(self.fields), phones=phones_repr(self.phones),
                          duplicates=phones_repr(self.duplicates), client_id=repr(self.client_id))


@dataclass(frozen=True, slots=True)
class TemplateVariable:
    """One ``{name,maxLen}`` variable of a template; ``max_len`` counts characters."""

    name: str
    max_len: int


def template_variables(text: str) -> tuple[TemplateVariable, ...]:
    """The variables of a template text, in order (``{name,maxLen}``; a dynamic signature counts)."""
    return tuple(TemplateVariable(m.group(1), int(m.group(2))) for m in _TEMPLATE_VARIABLE.finditer(text))


def signed_request(
    account: OpassAccount, path: str, fields: Mapping[str, Any], *, timestamp_ms: int, nonce: str
) -> OpassRequest:
    """Sign ``fields`` for ``path`` with the account's keys and sign method.

    ``timestamp_ms`` is epoch milliseconds (the gateway allows ±60 s of skew);
    ``nonce`` must be unique within that window.
    """
    headers = signed_headers(
        api_key=account.api_key,
        access_key=account.access_key,
        body=fields,
        timestamp_ms=timestamp_ms,
        nonce=nonce,
        method=account.sign_method,
    )
    return OpassRequest(path, dict(fields), {"Content-Type": CONTENT_TYPE, **headers})


def json_text(value: Any) -> str:
    """Serialise a JSON-valued field (templateParam, phonesJson…) exactly as it is signed and sent.

    Compact, non-ASCII kept: quotes, backslashes (``\\`` → ``\\\\``), newlines and
    emoji survive as standard JSON escapes, so the gateway decodes the exact values.
    """
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- sends ----------------------------------------------------------------------------------------


def plan_send(
    account: OpassAccount,
    phones: object,
    template_code: object,
    params: object = None,
    *,
    bid: object = None,
    extend_code: object = None,
    templates: Mapping[str, str] | None = None,
) -> SendPlan:
    """Validate a /message/send call (same params for every phone) and build its body.

    ``templates`` (template code → text with ``{name,maxLen}`` variables), when
    given, adds checks of the param count and of each value's length.
    Raises ValidationError naming each bad field and item (``phones[3]``, ``params[1]``, ``bid``).
    """
    check = Checker()
    code = _template_code(check, template_code, templates)
    client_id, extend = _optionals(check, bid, extend_code)
    recipients = check.phones(phones, field="phones", limit=account.batch_max)
    values = _params(check, params, "params", code, templates)
    check.done()
    fields: dict[str, Any] = {"phones": ",".join(recipients.phones), "templateCode": code}
    if values:
        fields["templateParam"] = json_text(values)
    _add_optionals(fields, client_id, extend)
    return SendPlan(SEND_PATH, fields, recipients.phones, recipients.duplicates, client_id)


def plan_send_batch(
    account: OpassAccount,
    recipients: object,
    template_code: object,
    *,
    bid: object = None,
    extend_code: object = None,
    templates: Mapping[str, str] | None = None,
) -> SendPlan:
    """Validate a /message/sendBatch call (params per phone) and build its body.

    ``recipients`` is a list of ``(phone, params)`` pairs. Problems name the
    recipient's index: ``recipients[2]`` (the phone or the pair), ``params[2]``
    (its count), ``params[2][0]`` (one value). A repeated phone is sent once, with
    the params of its first occurrence. When no recipient has params, the body
    carries the manual's no-variable form ``["",""…]`` (one ``""`` per phone).
    Raises ValidationError.
    """
    check = Checker()
    code = _template_code(check, template_code, templates)
    client_id, extend = _optionals(check, bid, extend_code)
    known = len(check.problems)
    pairs = _pairs(check, recipients)
    if len(check.problems) > known:
        check.done()  # the phone and params checks need well-formed pairs
    kept = check.phones([phone for phone, _ in pairs], field="recipients", limit=account.batch_max)
    rows = [_params(check, row, f"params[{i}]", code, templates) for i, (_, row) in enumerate(pairs)]
    if templates is None or code not in templates:
        # The counts the caller gave: a row's checked values leave out one that is not text.
        given: dict[int, int] = {}
        for i, (_, row) in enumerate(pairs):
            row = [] if row is None else row
            if isinstance(row, Sequence) and not isinstance(row, str):
                given.setdefault(len(row), i)
        check.same_length_seen(given, field="params")
    check.done()
    sent_rows = [rows[i] for i in kept.source_index]
    param_json = sent_rows if any(sent_rows) else ["" for _ in sent_rows]
    fields: dict[str, Any] = {
        "phonesJson": json_text(list(kept.phones)),
        "templateCode": code,
        "templateParamJson": json_text(param_json),
    }
    _add_optionals(fields, client_id, extend)
    return SendPlan(SEND_BATCH_PATH, fields, kept.phones, kept.duplicates, client_id)


def _template_code(check: Checker, value: object, templates: Mapping[str, str] | None) -> str:
    if not isinstance(value, str) or not value.strip():
        check.add("template_code", "must be a non-empty string")
        return ""
    if value != value.strip():
        check.add("template_code", "must not start or end with spaces")
    elif templates is not None and value not in templates:
        # The gateway would answer 60001; say so before anything is queued.
        check.add("template_code", f"{value!r} is not one of the configured templates")
    return value


def _optionals(check: Checker, bid: object, extend_code: object) -> tuple[str | None, str | None]:
    client_id = check.client_id(bid, field="bid", max_chars=MAX_BID_CHARS)
    extend = check.digits(extend_code, field="extend_code")
    return client_id, extend


def _add_optionals(fields: dict[str, Any], client_id: str | None, extend: str | None) -> None:
    # Never send a field we did not sign: empty optionals stay out of the body.
    if extend:
        fields["upExtendCode"] = extend
    if client_id:
        fields["bid"] = client_id


def _pairs(check: Checker, recipients: object) -> list[tuple[object, object]]:
    if isinstance(recipients, str) or not isinstance(recipients, Sequence):
        check.add("recipients", "must be a list of (phone, params) pairs")
        return []
    pairs: list[tuple[object, object]] = []
    for i, item in enumerate(recipients):
        if isinstance(item, str) or not isinstance(item, Sequence) or len(item) != 2:
            check.add(f"recipients[{i}]", "must be a (phone, params) pair")
            continue
        pairs.append((item[0], item[1]))
    return pairs


def _params(
    check: Checker, values: object, field: str, code: str, templates: Mapping[str, str] | None
) -> list[str]:
    """Check one phone's params; against the template's variables when it is known."""
    if values is None:
        values = []
    template = templates.get(code) if templates is not None else None
    if template is None:
        # No template to measure against: a value longer than a whole template cannot fit.
        return check.params(values, field=field, max_chars=MAX_CONTENT_CHARS)
    out = check.params(values, field=field)
    if isinstance(values, str) or not isinstance(values, Sequence):
        return out  # already named: not a list, so there is nothing to count
    # Count and measure what the caller gave: ``out`` skips a value that is not text, which
    # would shift every later value onto the wrong variable.
    variables = template_variables(template)
    if len(values) != len(variables):
        check.add(field, f"has {len(values)} values; template {code} has {len(variables)} variables")
    for i, (value, variable) in enumerate(zip(values, variables, strict=False)):
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if isinstance(text, str) and len(text) > variable.max_len:
            check.add(f"{field}[{i}]", f"is {len(text)} characters; {{{variable.name}}} allows {variable.max_len}")
    return out


# -- queries ----------------------------------------------------------------------------------------


def plan_receipt_query(message_ids: object = None, bid: object = None) -> dict[str, Any]:
    """Validate a receipt pull and build its body: ``msgId`` (comma-joined) and ``bid``, both optional.

    Raises ValidationError naming ``message_ids[i]`` or ``bid``.
    """
    check = Checker()
    ids: list[str] = []
    if message_ids is not None:
        if isinstance(message_ids, str) or not isinstance(message_ids, Sequence):
            check.add("message_ids", "must be a list of msgId strings")
        else:
            for i, mid in enumerate(message_ids):
                if not isinstance(mid, str) or not mid.strip() or "," in mid:
                    check.add(f"message_ids[{i}]", "must be a non-empty msgId without commas")
                elif mid.strip() not in ids:
                    ids.append(mid.strip())
    client_id = check.client_id(bid, field="bid", max_chars=MAX_BID_CHARS)
    check.done()
    fields: dict[str, Any] = {}
    if ids:
        fields["msgId"] = ",".join(ids)
    if client_id:
        fields["bid"] = client_id
    return fields


def plan_statistics(start_date: object, end_date: object, page: object = 1, page_size: object = 10) -> dict[str, Any]:
    """Validate a statistics query and build its body; dates as ``datetime.date`` or ``yyyy-MM-dd``.

    ``page`` ≥ 1 and ``page_size`` 1..50 are sent as JSON integers.
    Raises ValidationError naming ``start_date``, ``end_date``, ``page`` or ``page_size``.
    """
    check = Checker()
    start = _date(check, start_date, "start_date")
    end = _date(check, end_date, "end_date")
    if start and end and start > end:  # ISO dates compare correctly as text
        check.add("end_date", f"{end} is before start_date {start}")
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        check.add("page", "must be an integer ≥ 1")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        check.add("page_size", f"must be an integer from 1 to {MAX_PAGE_SIZE}")
    check.done()
    return {"startDate": start, "endDate": end, "page": page, "pageSize": page_size}


def _date(check: Checker, value: object, field: str) -> str:
    """The ``yyyy-MM-dd`` text of a date, or ``""`` after recording a problem."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value):
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    check.add(field, "must be a date or text like 2025-01-31")
    return ""
