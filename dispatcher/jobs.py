"""Turning a producer's request into a validated, chunked job: what every gateway's sends share. Pure.

A job has one *kind* (``<gateway>.<form>``, e.g. a template to every phone, or a
text per phone); each gateway's plug builds its own kinds' jobs from the pieces
here (:func:`recipients`, :func:`common_meta`, :class:`JobSpec`) in its
``jobs.py``, and says which ``Dispatcher.send_<form>`` call each one serves
(``Gateway.sends``). :func:`international_job` serves any gateway that sends one
text to numbers with their country code.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import compress
from typing import Any

from dispatcher.errors import Problem, ValidationError
from dispatcher.ledger import ChunkData, chunk_width
from dispatcher.phones import all_unique_mainland, describe_bad, normalise_international, normalise_mainland
from dispatcher.redact import build_repr, keys_repr, phones_repr, size_repr
from dispatcher.validation import MAX_SMS_ID_CHARS, Checker

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
    #: Recipients on the account's suppression list (:meth:`without`): recorded, never sent.
    suppressed: list[str] = field(default_factory=list, repr=False)

    def __repr__(self) -> str:  # meta holds the content or params; phones and payloads are personal
        return build_repr(self, kind=repr(self.kind), account=repr(self.account), meta=keys_repr(self.meta),
                          phones=phones_repr(self.phones), payloads=size_repr(self.payloads),
                          duplicates=str(self.duplicates), invalid=str(len(self.invalid)),
                          suppressed=str(len(self.suppressed)))

    def chunks(self, size: int) -> Iterator[ChunkData]:
        """The recipients to send, cut into chunks of at most ``size``, in order."""
        for start in range(0, len(self.phones), size):
            end = start + size
            phones = self.phones[start:end]
            yield ChunkData(phones, self.payloads[start:end] if self.payloads is not None else None,
                            chunk_width(phones) if self.international else None)

    def suppressed_chunks(self, size: int) -> Iterator[ChunkData]:
        """The suppressed recipients cut into chunks of at most ``size`` (no payloads: nothing is sent)."""
        for start in range(0, len(self.suppressed), size):
            phones = self.suppressed[start : start + size]
            yield ChunkData(phones, None, chunk_width(phones) if self.international else None)

    def without(self, flags: Sequence[int]) -> JobSpec:
        """This job with the recipients flagged (1, one flag per phone) moved to :attr:`suppressed`. Pure."""
        keep = [not f for f in flags]
        payloads = list(compress(self.payloads, keep)) if self.payloads is not None else None
        return replace(self, phones=list(compress(self.phones, keep)), payloads=payloads,
                       suppressed=self.suppressed + list(compress(self.phones, flags)))


def recipients(
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


def common_meta(check: Checker, priority: str, send_at_ms: int | None) -> dict[str, str]:
    if priority not in PRIORITIES:
        check.add("priority", f"must be one of {PRIORITIES}, got {priority!r}")
    if send_at_ms is not None and (not isinstance(send_at_ms, int) or send_at_ms < 0):
        check.add("send_at", "must be a datetime or epoch milliseconds")
    return {"priority": priority, "send_at_ms": str(send_at_ms or 0)}


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
    meta = common_meta(check, priority, send_at_ms)
    if phones is None:
        check.add("phones", "give the numbers to send to")
    rows, _, dups, skipped = recipients(check, phones if phones is not None else [], None, None, skip_invalid,
                                         international=True)
    check.done()
    meta.update(kind=kind, provider=provider, account=account, content=text, tag=uuid or "",
                segments="international")
    return JobSpec(kind, provider, account, meta, rows, None, dups, tuple(skipped), international=True)


__all__ = ["JobSpec", "ValidationError", "common_meta", "international_job", "recipients"]
