"""How the command line shows :class:`~dispatcher.deliveries.Delivery` records: tables and JSON. Pure.

Phones are masked (``138****1234``) unless the caller asks to reveal them: what
a command prints ends up in shell history, terminal scrollback and CI logs.
Times are the local time zone's ISO 8601 with milliseconds.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from dispatcher.deliveries import Delivery
from dispatcher.phones import mask

#: Shown in a table cell that has no value (no vendor code yet, no message id…).
EMPTY = "-"
#: Columns of ``status JOB --phones`` (one job: its id and account are in the funnel line above).
JOB_COLUMNS = ("PHONE", "STATE", "CODE", "MESSAGE ID", "TIME", "DETAIL")
#: Columns of ``lookup`` (records of any job and account).
LOOKUP_COLUMNS = ("TIME", "JOB", "ACCOUNT", "PHONE", "STATE", "CODE", "MESSAGE ID", "TAG", "DETAIL")


def local_time(at_ms: int, tz: dt.tzinfo | None = None) -> str:
    """Epoch ms as ISO 8601 with ms in ``tz`` (default: this machine's zone); ``""`` for 0 (no time)."""
    if not at_ms:
        return ""
    when = dt.datetime.fromtimestamp(at_ms // 1000, tz=dt.UTC) + dt.timedelta(milliseconds=at_ms % 1000)
    return when.astimezone(tz).isoformat(timespec="milliseconds")


def shown_phone(phone: str, *, reveal: bool) -> str:
    """The phone as printed: masked unless ``reveal``."""
    return phone if reveal else mask(phone)


def cell(value: object) -> str:
    """A value made safe for one table cell: one line, no control characters (a vendor's text is untrusted)."""
    text = "" if value is None else str(value)
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text or EMPTY


def width(text: str) -> int:
    """Terminal columns ``text`` takes: East Asian wide characters (汉字) take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Lines of a plain table, columns two spaces apart; the last column is not padded (no trailing blanks)."""
    body = [[cell(v) for v in row] for row in rows]
    widths = [max([width(h), *(width(r[i]) for r in body)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        padded = [v + " " * (widths[i] - width(v)) for i, v in enumerate(values[:-1])]
        return "  ".join([*padded, values[-1]]).rstrip()

    return [line(list(headers)), *(line(r) for r in body)]


def job_rows(deliveries: Iterable[Delivery], *, reveal: bool = False, tz: dt.tzinfo | None = None) -> list[str]:
    """The table of one job's recipients: phone, state, vendor code, message id, time, vendor text."""
    return table(JOB_COLUMNS, ([shown_phone(d.phone, reveal=reveal), d.state, d.code, d.message_id,
                                local_time(d.at_ms, tz), d.detail] for d in deliveries))


def lookup_rows(deliveries: Iterable[Delivery], *, reveal: bool = False, tz: dt.tzinfo | None = None) -> list[str]:
    """The table of records found by message id or phone, each with its job, account and the caller's tag."""
    return table(LOOKUP_COLUMNS, ([local_time(d.at_ms, tz), d.job_id, f"{d.provider}:{d.account}",
                                   shown_phone(d.phone, reveal=reveal), d.state, d.code, d.message_id, d.tag,
                                   d.detail] for d in deliveries))


def as_json(deliveries: Iterable[Delivery], *, reveal: bool = False) -> list[dict[str, Any]]:
    """The records as JSON-ready dicts (every field of :class:`Delivery`), phones masked unless ``reveal``."""
    return [d.to_dict(masked=not reveal) for d in deliveries]


def status_deliveries(job_id: str, provider: str, account: str, phones: Iterable[Any]) -> list[Delivery]:
    """A job status's per-phone entries as :class:`Delivery` values.

    ``Dispatcher.status(phones=True)`` gives ``Delivery`` values; an older
    dispatcher gave ``(phone, state)`` pairs, which become records with only
    those two fields.
    """
    out = []
    for entry in phones:
        if isinstance(entry, Delivery):
            out.append(entry)
        else:
            phone, state = entry
            out.append(Delivery(job_id, provider, account, phone, state))
    return out
