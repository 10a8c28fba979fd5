"""aiofish's sends as jobs: SMS (``send_content``), video SMS (``send_video``) and international
SMS (``send_international``), each checked and cut to the calls that send it. Pure.

==================  ==========================================  ===============================
kind                shape                                        gateway call
==================  ==========================================  ===============================
aiofish.send        the same content for everyone                sendSms (variant), 2000 a call
aiofish.batch       content per phone                            batchSendSms, 200 a call
aiofish-vsms.       one video template to everyone               /rest/vsms/v1/message, 1000
 message
aiofish-vsms.vars   one video template, #p_1#..#p_5# per phone   /rest/vsms/v1/message/vars, 1000
aiofish-isms.send   one text to numbers with a country code      /rest/isms/v1/message, 1000
==================  ==========================================  ===============================
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dispatcher import jobs
from dispatcher.providers.aiofish.vsms import ISMS, MAX_MOBILES, MAX_UUID_CHARS, VSMS
from dispatcher.validation import MAX_SMS_ID_CHARS, Checker

NAME = "aiofish"
SEND, BATCH = f"{NAME}.send", f"{NAME}.batch"
VSMS_MESSAGE, VSMS_VARS = f"{VSMS}.message", f"{VSMS}.vars"
ISMS_SEND = f"{ISMS}.send"
#: Most batchSendSms items a call (the manual's 200) and sendSms phones a call (2000).
BATCH_MAX, SEND_MAX = 200, 2000
#: vsms ``vars``: at most 5 values (``#p_1#``..``#p_5#``) of at most 15 characters.
MAX_VARS, MAX_VAR_CHARS = 5, 15


def check_content_send(account: Any, **arguments: Any) -> tuple[jobs.JobSpec, int]:
    """``send_content``'s checks for ``account`` (an ``AccountConfig``): ``(job, chunk size)``.

    Raises ``ValidationError`` listing every problem.
    """
    spec = content_job(account.name, **arguments)
    return spec, BATCH_MAX if spec.kind == BATCH else SEND_MAX


def check_video_send(account: Any, **arguments: Any) -> tuple[jobs.JobSpec, int]:
    """``send_video``'s checks for ``account``: ``(job, chunk size)``; raises ``ValidationError``.

    The template's known audit state is checked by the producer (it needs Redis).
    """
    return video_job(account.name, **arguments), MAX_MOBILES


def check_international_send(account: Any, *, content: str | None = None, phones: Iterable[Any] | None = None,
                             **arguments: Any) -> tuple[jobs.JobSpec, int]:
    """``send_international``'s checks for ``account``: ``(job, chunk size)``; raises ``ValidationError``."""
    spec = jobs.international_job(account.name, kind=ISMS_SEND, provider=ISMS, content=content, phones=phones,
                                  uuid_max_chars=MAX_UUID_CHARS, **arguments)
    return spec, MAX_MOBILES


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
) -> jobs.JobSpec:
    """Validate an aiofish free-content job; raises ``ValidationError`` listing every problem."""
    check = Checker()
    if recipients is None:
        text = check.text(content, field="content")
        check.signature(text, field="content")
    elif content is not None:
        check.add("content", "give content (same for all) or recipients (per phone), not both")
    sub = check.digits(sub_code, field="sub_code")
    check.client_id(sms_id, field="sms_id", max_chars=MAX_SMS_ID_CHARS)
    meta = jobs.common_meta(check, priority, send_at_ms)

    def per_phone(value: Any, where: str) -> str:
        text = check.text(value, field=f"{where}.content")
        check.signature(text, field=f"{where}.content")
        return text

    rows, payloads, dups, skipped = jobs.recipients(
        check, phones, recipients, per_phone if recipients is not None else None, skip_invalid)
    check.done()
    kind = BATCH if recipients is not None else SEND
    meta.update(kind=kind, provider=NAME, account=account, content=content or "",
                sub_code=sub or "", tag=sms_id or "")
    return jobs.JobSpec(kind, NAME, account, meta, rows, payloads, dups, tuple(skipped))




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
) -> jobs.JobSpec:
    """Validate an aiofish video SMS job; raises ``ValidationError`` listing every problem.

    ``phones`` get the template as it is; ``recipients`` are ``(phone, [value, …])`` filling
    ``#p_1#``..: at most 5 values of at most 15 characters, every phone the same number.
    """
    check = Checker()
    if not isinstance(template_id, str) or not template_id.strip() or template_id != template_id.strip():
        check.add("template_id", "must be the audited template's id, without spaces")
    check.client_id(uuid, field="uuid", max_chars=MAX_UUID_CHARS)
    meta = jobs.common_meta(check, priority, send_at_ms)
    widths: dict[int, int] = {}

    def per_phone(values: Any, where: str) -> list[str]:
        got = check.params(values, field=f"{where}.vars", max_count=MAX_VARS, max_chars=MAX_VAR_CHARS)
        widths.setdefault(len(got), int(where.split("[")[1].rstrip("]")))
        return got

    rows, payloads, dups, skipped = jobs.recipients(
        check, phones, recipients, per_phone if recipients is not None else None, skip_invalid)
    check.same_length_seen(widths, field="recipients")
    check.done()
    kind = VSMS_VARS if recipients is not None else VSMS_MESSAGE
    meta.update(kind=kind, provider=VSMS, account=account, template_id=template_id, tag=uuid or "")
    return jobs.JobSpec(kind, VSMS, account, meta, rows, payloads, dups, tuple(skipped))
