"""Input validation shared by every client: collect every problem, then raise once.

Each check names the field and item it found wrong (``phones[3]``, ``params[2][0]``)
so a caller can point at the exact input. Nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from dispatcher import phones as phone_rules
from dispatcher.errors import Problem, ValidationError
from dispatcher.redact import build_repr, phones_repr

MAX_CONTENT_CHARS = 500
#: Longest opass template value. The manual documents no cap for templateParam
#: values (each template's console definition ``{name,maxLen}`` sets its own);
#: a value longer than a whole message fits no template, so the producer refuses
#: it before queueing, as the worker's request builder would refuse it later.
MAX_PARAM_CHARS = MAX_CONTENT_CHARS
MAX_BID_CHARS = 64
MAX_SMS_ID_CHARS = 32
MAX_EXTEND_DIGITS = 12
SEND_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
#: Both gateways read schedule times as China Standard Time (UTC+8, no DST).
GATEWAY_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")

# Ids are echoed in receipts and used as Redis key parts: keep them plain.
_ID_CHARS = re.compile(r"[A-Za-z0-9_.:\-]+")
_SIGNATURE = re.compile(r"【[^【】]{1,20}】")


@dataclass(frozen=True, slots=True)
class PhoneList:
    """Recipients after validation: unique normalised phones, and the duplicates dropped."""

    phones: tuple[str, ...]
    duplicates: tuple[str, ...]
    #: index in the caller's list of each kept phone (to pair per-phone params)
    source_index: tuple[int, ...]

    def __repr__(self) -> str:
        return build_repr(self, phones=phones_repr(self.phones), duplicates=phones_repr(self.duplicates))


class Checker:
    """Collects problems across many checks; :meth:`done` raises them all at once."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, field: str, message: str) -> None:
        """Record one problem with ``field``."""
        self.problems.append(Problem(field, message))

    def done(self) -> None:
        """Raise ``ValidationError`` listing every problem, if there were any."""
        if self.problems:
            raise ValidationError(self.problems)

    # -- recipients -------------------------------------------------------------

    def phones(
        self,
        values: object,
        *,
        field: str = "phones",
        limit: int,
        international: bool = False,
    ) -> PhoneList:
        """Check a list of phones: type, each number's format, count ≤ ``limit``.

        Duplicates (after normalisation) are kept once and reported in the result.
        """
        if isinstance(values, phone_rules.StoredNumbers) and len(values) <= limit:
            return PhoneList(values, (), tuple(range(len(values))))  # checked when their job was stored
        if isinstance(values, str) or not isinstance(values, Sequence):
            self.add(field, "must be a list of phone numbers")
            return PhoneList((), (), ())
        norm: Callable[[object], str | None] = (
            phone_rules.normalise_international if international else phone_rules.normalise_mainland
        )
        if not international and len(values) <= limit and phone_rules.all_unique_mainland(values):
            return PhoneList(tuple(values), (), tuple(range(len(values))))
        kind = "international number with country code" if international else "11-digit mainland mobile"
        seen: set[str] = set()
        kept: list[str] = []
        index: list[int] = []
        dups: list[str] = []
        for i, raw in enumerate(values):
            phone = norm(raw)
            if phone is None:
                self.add(f"{field}[{i}]", f"{phone_rules.describe_bad(raw)} (expected {kind})")
            elif phone in seen:
                dups.append(phone)
            else:
                seen.add(phone)
                kept.append(phone)
                index.append(i)
        if not values:
            self.add(field, "must not be empty")
        elif len(kept) > limit:
            self.add(field, f"has {len(kept)} distinct numbers; at most {limit} per call")
        return PhoneList(tuple(kept), tuple(dups), tuple(index))

    def phone(self, value: object, *, field: str = "phone") -> str | None:
        """Check one mainland mobile number; its 11-digit form, or ``None`` (a problem recorded)."""
        phone = phone_rules.normalise_mainland(value)
        if phone is None:
            self.add(field, f"{phone_rules.describe_bad(value)} (expected 11-digit mainland mobile)")
        return phone

    # -- scalar fields ----------------------------------------------------------

    def text(self, value: object, *, field: str, max_chars: int = MAX_CONTENT_CHARS) -> str:
        """Check a message text: a non-empty string of valid Unicode, ≤ ``max_chars``."""
        if not isinstance(value, str):
            self.add(field, f"must be a string, got {type(value).__name__}")
            return ""
        if not value.strip():
            self.add(field, "must not be empty")
        elif len(value) > max_chars:
            self.add(field, f"is {len(value)} characters; at most {max_chars}")
        self._unicode(value, field)
        return value

    def signature(self, value: str, *, field: str) -> None:
        """Check that domestic content carries a 【signature】 (aiofish requires one)."""
        if value and not _SIGNATURE.search(value):
            self.add(field, "must carry a 【signature】 (1-20 characters in 【】)")

    def client_id(self, value: object, *, field: str, max_chars: int) -> str | None:
        """Check an optional bid/smsId/uuid: ≤ ``max_chars`` of ``A-Z a-z 0-9 _ . : -``."""
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self.add(field, "must be a non-empty string")
            return None
        if len(value) > max_chars:
            self.add(field, f"is {len(value)} characters; at most {max_chars}")
        if not _ID_CHARS.fullmatch(value):
            self.add(field, "may only contain letters, digits and _ . : -")
        return value

    def digits(self, value: object, *, field: str, max_digits: int = MAX_EXTEND_DIGITS) -> str | None:
        """Check an optional extend/sub code: digits only, at most ``max_digits``."""
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            value = str(value)
        if not isinstance(value, str) or not value.isascii() or not value.isdigit():
            self.add(field, "must contain digits only")
            return None
        if len(value) > max_digits:
            self.add(field, f"is {len(value)} digits; at most {max_digits}")
        return value

    def send_time(self, value: object, *, field: str) -> str | None:
        """Check an optional schedule time; accept a ``datetime`` or ``yyyy-MM-dd HH:mm:ss``.

        An aware ``datetime`` is converted to the gateways' China time; naive ones
        and text are taken as China time already.
        """
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(GATEWAY_TZ)
            return value.strftime(SEND_TIME_FORMAT)
        if isinstance(value, str):
            try:
                dt.datetime.strptime(value, SEND_TIME_FORMAT)
                return value
            except ValueError:
                pass
        self.add(field, "must be a datetime or text like 2025-01-31 08:00:00")
        return None

    # -- template parameters ----------------------------------------------------

    def params(
        self,
        values: object,
        *,
        field: str,
        max_count: int | None = None,
        max_chars: int | None = None,
    ) -> list[str]:
        """Check one phone's template values: a list of strings (ints accepted).

        Quotes, backslashes, newlines and emoji are allowed: they are serialised as
        JSON by the client, so the gateway reads exactly what was given.
        """
        if isinstance(values, str) or not isinstance(values, Sequence):
            self.add(field, "must be a list of strings")
            return []
        out: list[str] = []
        for i, value in enumerate(values):
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str):
                self.add(f"{field}[{i}]", f"must be a string, got {type(value).__name__}")
                continue
            if max_chars is not None and len(value) > max_chars:
                self.add(f"{field}[{i}]", f"is {len(value)} characters; at most {max_chars}")
            self._unicode(value, f"{field}[{i}]")
            out.append(value)
        if max_count is not None and len(values) > max_count:
            self.add(field, f"has {len(values)} values; at most {max_count}")
        return out

    def same_length_seen(self, lengths: Mapping[int, int], *, field: str) -> None:
        """Report differing counts from ``{count: index where first seen}`` (collected by the caller)."""
        if len(lengths) > 1:
            first_odd = min(i for i in lengths.values() if i > 0)
            counts = ", ".join(f"{n} (first at {field}[{i}])" for n, i in sorted(lengths.items()))
            self.add(f"{field}[{first_odd}]", f"every recipient needs the same number of values; found {counts}")

    def _unicode(self, value: str, field: str) -> None:
        if "\x00" in value:
            self.add(field, "contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.add(field, "contains an unpaired surrogate (not valid Unicode)")
