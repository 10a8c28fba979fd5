"""Typed results of gateway calls and pushes. Plain frozen values, no behaviour.

Phones inside results are whole (the caller needs them); ``__repr__`` masks them
so a result printed into a log never leaks a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dispatcher.phones import mask


def _masked(phones: tuple[str, ...]) -> str:
    shown = ", ".join(mask(p) for p in phones[:3])
    return f"({shown}{', …' if len(phones) > 3 else ''}; {len(phones)} in all)"


@dataclass(frozen=True, slots=True)
class PhoneFailure:
    """One recipient the gateway refused at submit, with the vendor's code and text."""

    phone: str = field(repr=False)
    code: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class SendResult:
    """A send the gateway accepted (possibly refusing some recipients).

    ``message_id`` is opass ``msgId`` / aiofish ``smsId`` / vsms ``msgId``;
    ``client_id`` is the bid/smsId/uuid we sent (echoed in receipts);
    ``accepted`` are the phones the gateway took; ``failed`` those it refused at
    submit; ``duplicates`` those we dropped because they repeated in the call.
    """

    provider: str
    account: str
    message_id: str
    client_id: str | None
    accepted: tuple[str, ...] = field(repr=False)
    failed: tuple[PhoneFailure, ...] = ()
    duplicates: tuple[str, ...] = field(default=(), repr=False)
    request_id: str | None = None

    def __repr__(self) -> str:
        return (
            f"SendResult(provider={self.provider!r}, account={self.account!r}, "
            f"message_id={self.message_id!r}, client_id={self.client_id!r}, "
            f"accepted={_masked(self.accepted)}, failed={len(self.failed)}, "
            f"duplicates={len(self.duplicates)}, request_id={self.request_id!r})"
        )


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery report for one phone.

    ``status`` is the carrier state (``DELIVRD``, ``UNDELIV``, …); ``delivered`` is
    true only for delivery. ``at_ms`` is epoch milliseconds when the gateway gave a
    time we could read, else ``None``. ``client_id`` is the echoed bid/smsId.
    """

    provider: str
    message_id: str
    phone: str = field(repr=False)
    status: str
    delivered: bool
    at_ms: int | None = None
    client_id: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Uplink:
    """A reply (MO message) from a phone; ``ext`` is opass srcId / aiofish subCode."""

    provider: str
    phone: str = field(repr=False)
    content: str = field(repr=False)
    ext: str | None = None
    at_ms: int | None = None
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class BalanceItem:
    """One balance line: the product name and how many messages remain."""

    name: str
    remaining: int


@dataclass(frozen=True, slots=True)
class Balance:
    """Remaining balance of an account, one line per product."""

    provider: str
    account: str
    items: tuple[BalanceItem, ...]

    @property
    def total(self) -> int:
        """Sum of all remaining counts."""
        return sum(i.remaining for i in self.items)


@dataclass(frozen=True, slots=True)
class DailyStatistics:
    """One day of opass send statistics."""

    send_date: str
    total: int
    success: int
    failed: int
    no_receipt: int


@dataclass(frozen=True, slots=True)
class StatisticsPage:
    """One page of opass statistics and the total number of rows across pages."""

    rows: tuple[DailyStatistics, ...]
    total_size: int
    page: int
    page_size: int


@dataclass(frozen=True, slots=True)
class TemplateStatus:
    """A vsms template's audit state: 100 pending, 200 approved, 400 rejected."""

    tpl_id: str
    audit_status: int
    reason: str | None = None

    @property
    def approved(self) -> bool:
        """Whether the template may be used to send."""
        return self.audit_status == 200


@dataclass(frozen=True, slots=True)
class Health:
    """Whether a gateway answered its health check, and how fast."""

    ok: bool
    latency_ms: float
    detail: str = ""
