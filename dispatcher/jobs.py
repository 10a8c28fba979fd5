"""Turning a producer's request into a validated, chunked job. Pure: no Redis here.

A job has one *kind*, chosen from its shape:

==============  ==========================================  ================
kind            shape                                        gateway call
==============  ==========================================  ================
opass.send      one template, the same params for everyone   /message/send
opass.batch     one template, params per phone              /message/sendBatch
aiofish.send    the same content for everyone                sendSms (variant)
aiofish.batch   content per phone                            batchSendSms
aiofish-vsms.   one video template to everyone               /rest/vsms/v1/message
 message
aiofish-vsms.   one video template, #p_1#..#p_5# per phone   /rest/vsms/v1/message/vars
 vars
==============  ==========================================  ================
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from dispatcher.errors import Problem, ValidationError
from dispatcher.ledger import ChunkData, chunk_width
from dispatcher.phones import all_unique_mainland, describe_bad, normalise_international, normalise_mainland
from dispatcher.redact import build_repr, keys_repr, phones_repr, size_repr
from dispatcher.templates import Template
from dispatcher.validation import MAX_BID_CHARS, MAX_PARAM_CHARS, MAX_SMS_ID_CHARS, Checker

CHUNK_LIMITS = {"opass.send": 1000, "opass.batch": 1000, "aiofish.send": 2000, "aiofish.batch": 200}
PRIORITIES = ("otp", "bulk")
MAX_JOB_RECIPIENTS = 10_000_000


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A validated job: what to send (``meta``) and to whom (``recipients``)."""

    kind: str
    provider: str
    account: str
    meta: dict[str, str]
    #: the distinct normalised phones, in the caller's order
    phones: list[str] = field(repr=False)
    #: one payload per phone (params or content) for the per-phone kinds, else None
    payloads: list[Any] | None = field(default=None, repr=False)
    duplicates: int = 0
    invalid: tuple[Problem, ...] = ()
    #: Numbers with their country code (international SMS): chunks are stored at :func:`chunk_width`.
    international: bool = False

    def __repr__(self) -> str:  # meta holds the content or params; phones and payloads are personal
        return build_repr(self, kind=repr(self.kind), account=repr(self.account), meta=keys_repr(self.meta),
                          phones=phones_repr(self.phones), payloads=size_repr(self.payloads),
                          duplicates=str(self.duplicates), invalid=str(len(self.invalid)))

    def chunks(self, size: int) -> Iterator[ChunkData]:
        """The recipients cut into chunks of at most ``size``, in order."""
        for start in range(0, len(self.phones), size):
            end = start + size
            phones = self.phones[start:end]
            yield ChunkData(phones, self.payloads[start:end] if self.payloads is not None else None,
                            chunk_width(phones) if self.international else None)


def _recipients(
    check: Checker,
    phones: Iterable[Any] | None,
    pairs: Iterable[tuple[Any, Any]] | None,
    payload_check: Any,
    skip_invalid: bool,
    international: bool = False,
) -> tuple[list[str], list[Any] | None, int, list[Problem]]:
    """Normalise and de-duplicate recipients: ``(phones, payloads or None, duplicates, skipped)``.

    Problems are collected in ``check`` with their index. A list of distinct,
    already-normalised numbers (the usual campaign) is checked in one pass at C
    speed; anything else goes through the per-item loop.
    """
    if (phones is None) == (pairs is None):
        check.add("phones", "give either phones (same message for all) or recipients (per phone), not both")
        return [], None, 0, []
    if phones is not None:
        given = phones if isinstance(phones, list) else list(phones)
        if not international and len(given) <= MAX_JOB_RECIPIENTS and all_unique_mainland(given):
            return given, None, 0, []
        phones = given
    items: Iterable[Any] = ((p, None) for p in phones) if phones is not None else (pairs or ())
    field_name = "phones" if phones is not None else "recipients"
    seen: set[str] = set()
    out: list[str] = []
    values: list[Any] = []
    dups = 0
    skipped: list[Problem] = []
    for i, item in enumerate(items):
        if phones is None and not (isinstance(item, tuple | list) and len(item) == 2):
            check.add(f"recipients[{i}]", "must be a (phone, value) pair")
            continue
        raw, payload = item
        phone = normalise_international(raw) if international else normalise_mainland(raw)
        where = f"{field_name}[{i}]" if phones is not None else f"recipients[{i}].phone"
        if phone is None:
            expected = ("a number with its country code: 8 to 15 digits, +/00 allowed" if international
                        else "an 11-digit mainland mobile")
            problem = Problem(where, f"{describe_bad(raw)} (expected {expected})")
            if skip_invalid:
                skipped.append(problem)
            else:
                check.problems.append(problem)
            continue
        if payload_check is not None:
            payload = payload_check(payload, f"recipients[{i}]")
        if phone in seen:
            dups += 1
            continue
        seen.add(phone)
        out.append(phone)
        values.append(payload)
        if len(out) > MAX_JOB_RECIPIENTS:
            check.add(field_name, f"more than {MAX_JOB_RECIPIENTS} recipients in one job")
            break
    if not out and not check.problems:
        check.add(field_name, "no valid recipient")
    return out, values if pairs is not None else None, dups, skipped


def _common(check: Checker, priority: str, send_at_ms: int | None) -> dict[str, str]:
    if priority not in PRIORITIES:
        check.add("priority", f"must be one of {PRIORITIES}, got {priority!r}")
    if send_at_ms is not None and (not isinstance(send_at_ms, int) or send_at_ms < 0):
        check.add("send_at", "must be a datetime or epoch milliseconds")
    return {"priority": priority, "send_at_ms": str(send_at_ms or 0)}


def template_job(
    account: str,
    *,
    template_code: str,
    phones: Iterable[Any] | None = None,
    params: Sequence[Any] | None = None,
    recipients: Iterable[tuple[Any, Sequence[Any]]] | None = None,
    bid: str | None = None,
    extend_code: str | None = None,
    priority: str = "bulk",
    send_at_ms: int | None = None,
    skip_invalid: bool = False,
    template: Template | None = None,
) -> JobSpec:
    """Validate an opass template job; raises ``ValidationError`` listing every problem.

    Each template value may be at most ``MAX_PARAM_CHARS`` (500) characters. With
    ``template`` (declared in the accounts file) every phone's values must also
    match it: one per variable, each within the variable's ``maxLen``.
    """
    check = Checker()
    if not isinstance(template_code, str) or not template_code.strip():
        check.add("template_code", "must be the approved template's code")
    same = check.params(params or [], field="params", max_chars=MAX_PARAM_CHARS) if params is not None else []
    if template is not None and recipients is None:
        _match_template(check, template, params or [], same, "params")
    if params is not None and recipients is not None:
        check.add("params", "give params (same for all) or recipients (per phone), not both")
    extend = check.digits(extend_code, field="extend_code")
    check.client_id(bid, field="bid", max_chars=MAX_BID_CHARS)
    meta = _common(check, priority, send_at_ms)

    widths: dict[int, int] = {}

    def per_phone(values: Any, where: str) -> list[str]:
        got = check.params(values, field=f"{where}.params", max_chars=MAX_PARAM_CHARS)
        widths.setdefault(len(got), int(where.split("[")[1].rstrip("]")))
        if template is not None:
            _match_template(check, template, values, got, f"{where}.params")
        return got

    rows, payloads, dups, skipped = _recipients(
        check, phones, recipients, per_phone if recipients is not None else None, skip_invalid)
    if template is None:  # with a template each recipient's count was checked against it, by name
        check.same_length_seen(widths, field="recipients")
    check.done()
    kind = "opass.batch" if recipients is not None else "opass.send"
    meta.update(kind=kind, provider="opass", account=account, template_code=template_code.strip(),
                params=json.dumps(same, ensure_ascii=False), extend_code=extend or "", tag=bid or "")
    return JobSpec(kind, "opass", account, meta, rows, payloads, dups, tuple(skipped))


def _match_template(check: Checker, template: Template, given: Any, values: list[str], field: str) -> None:
    """Check one phone's values against a declared template, naming ``field`` and the variable.

    ``given`` is what the caller passed, ``values`` what :meth:`Checker.params` kept of it.
    """
    if isinstance(given, str) or not isinstance(given, Sequence):
        return  # not a list: already refused as such
    wrong_count = template.count_problem(len(given))
    if wrong_count:
        check.add(field, wrong_count)
    elif len(values) == len(given):  # else a value of the wrong type is refused and the rest no longer line up
        for index, message in template.problems(values):
            if index is not None and len(values[index]) <= MAX_PARAM_CHARS:  # longer: refused by Checker.params
                check.add(f"{field}[{index}]", message)


def content_job(
    account: str,
    *,
    content: str | None = None,
    phones: Iterable[Any] | None = None,
    recipients: Iterable[tuple[Any, str]] | None = None,
    sms_id: str | None = None,
    sub_code: str | None = None,
    priority: str = "bulk",
    send_at_ms: int | None = None,
    skip_invalid: bool = False,
) -> JobSpec:
    """Validate an aiofish free-content job; raises ``ValidationError`` listing every problem."""
    check = Checker()
    if recipients is None:
        text = check.text(content, field="content")
        check.signature(text, field="content")
    elif content is not None:
        check.add("content", "give content (same for all) or recipients (per phone), not both")
    sub = check.digits(sub_code, field="sub_code")
    check.client_id(sms_id, field="sms_id", max_chars=MAX_SMS_ID_CHARS)
    meta = _common(check, priority, send_at_ms)

    def per_phone(value: Any, where: str) -> str:
        text = check.text(value, field=f"{where}.content")
        check.signature(text, field=f"{where}.content")
        return text

    rows, payloads, dups, skipped = _recipients(
        check, phones, recipients, per_phone if recipients is not None else None, skip_invalid)
    check.done()
    kind = "aiofish.batch" if recipients is not None else "aiofish.send"
    meta.update(kind=kind, provider="aiofish", account=account, content=content or "",
                sub_code=sub or "", tag=sms_id or "")
    return JobSpec(kind, "aiofish", account, meta, rows, payloads, dups, tuple(skipped))


def international_job(
    account: str,
    *,
    kind: str,
    provider: str,
    content: str | None,
    phones: Iterable[Any] | None,
    uuid: str | None = None,
    priority: str = "bulk",
    send_at_ms: int | None = None,
    skip_invalid: bool = False,
    uuid_max_chars: int = MAX_SMS_ID_CHARS,
) -> JobSpec:
    """Validate an international SMS job (``kind`` of gateway ``provider``): one text to numbers with
    their country code (``+852…``, ``00852…`` or ``852…``, kept as digits); no 【signature】 needed.

    The caller's ``uuid`` is kept as the job's tag. Raises ``ValidationError`` naming
    ``phones[i]``, ``content``, ``uuid``… (``skip_invalid``: bad numbers listed, not refused).
    """
    check = Checker()
    text = check.text(content, field="content")
    check.client_id(uuid, field="uuid", max_chars=uuid_max_chars)
    meta = _common(check, priority, send_at_ms)
    if phones is None:
        check.add("phones", "give the numbers to send to")
    rows, _, dups, skipped = _recipients(check, phones if phones is not None else [], None, None, skip_invalid,
                                         international=True)
    check.done()
    meta.update(kind=kind, provider=provider, account=account, content=text, tag=uuid or "",
                segments="international")
    return JobSpec(kind, provider, account, meta, rows, None, dups, tuple(skipped), international=True)




#: vsms: a template id, the caller's uuid (kept as the job's tag), values per phone.
VSMS, MAX_VSMS_UUID_CHARS, MAX_VSMS_VARS, MAX_VSMS_VAR_CHARS = "aiofish-vsms", 64, 5, 15


def video_job(
    account: str,
    *,
    template_id: str,
    phones: Iterable[Any] | None = None,
    recipients: Iterable[tuple[Any, Sequence[Any]]] | None = None,
    uuid: str | None = None,
    priority: str = "bulk",
    send_at_ms: int | None = None,
    skip_invalid: bool = False,
) -> JobSpec:
    """Validate an aiofish video SMS job; raises ``ValidationError`` listing every problem.

    ``phones`` get the template as it is; ``recipients`` are ``(phone, [value, …])`` filling
    ``#p_1#``..: at most 5 values of at most 15 characters, every phone the same number.
    """
    check = Checker()
    if not isinstance(template_id, str) or not template_id.strip() or template_id != template_id.strip():
        check.add("template_id", "must be the audited template's id, without spaces")
    check.client_id(uuid, field="uuid", max_chars=MAX_VSMS_UUID_CHARS)
    meta = _common(check, priority, send_at_ms)
    widths: dict[int, int] = {}

    def per_phone(values: Any, where: str) -> list[str]:
        got = check.params(values, field=f"{where}.vars", max_count=MAX_VSMS_VARS, max_chars=MAX_VSMS_VAR_CHARS)
        widths.setdefault(len(got), int(where.split("[")[1].rstrip("]")))
        return got

    rows, payloads, dups, skipped = _recipients(
        check, phones, recipients, per_phone if recipients is not None else None, skip_invalid)
    check.same_length_seen(widths, field="recipients")
    check.done()
    kind = f"{VSMS}.vars" if recipients is not None else f"{VSMS}.message"
    meta.update(kind=kind, provider=VSMS, account=account, template_id=template_id, tag=uuid or "")
    return JobSpec(kind, VSMS, account, meta, rows, payloads, dups, tuple(skipped))


__all__ = ["CHUNK_LIMITS", "JobSpec", "ValidationError", "content_job", "international_job", "template_job",
           "video_job"]
