"""What a job will cost before it is sent: recipients, billable segments, the account's balance. Pure.

:func:`count_segments` counts a validated job's billable messages; :class:`Estimate`
carries them with the account's last known balance (:class:`BalanceReading`), and
:func:`shortfall` says whether the guard of ``send_*`` refuses it. Reading the balance
(Redis cache, rate limit, gateway) is the producer's business (:mod:`dispatcher.balances`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dispatcher.config.accounts import Accounts
from dispatcher.jobs import JobSpec
from dispatcher.segments import domestic_segments, international_segments


@dataclass(frozen=True, slots=True)
class BalanceReading:
    """An account's balance as far as the producer knows it.

    ``remaining`` is ``None`` when it could not be known (``note`` says why: the
    query budget was used up, the gateway failed, an OTP does not ask the gateway);
    ``age_s`` is how long ago the gateway said it; ``cached`` whether it came from the
    cache rather than a call just made.
    """

    remaining: int | None
    age_s: float | None = None
    cached: bool = False
    note: str = ""


UNKNOWN = BalanceReading(None, note="not read")


@dataclass(frozen=True, slots=True)
class Estimate:
    """A job's cost on one account: ``recipients`` (distinct, valid), ``segments`` (billable messages).

    ``segments_exact`` is False where a text is not known to the producer (an opass
    template not declared: one message a recipient is assumed). ``balance`` is the
    account's last known balance in messages (``None`` if unknown, ``balance_note`` says
    why) and ``balance_age_s`` how old it is.
    """

    provider: str
    account: str
    kind: str
    recipients: int
    segments: int
    segments_exact: bool
    balance: int | None = None
    balance_age_s: float | None = None
    balance_note: str = ""

    @property
    def covered(self) -> bool | None:
        """Whether the balance covers the segments; ``None`` when the balance is unknown."""
        return None if self.balance is None else self.segments <= self.balance

    def lines(self) -> list[str]:
        """The estimate as an operator reads it (``sms-dispatch send`` prints these)."""
        exact = "" if self.segments_exact else " (assumed: 1 per recipient, template text not declared)"
        if self.balance is None:
            balance = f"unknown ({self.balance_note}); the job will be sent unchecked"
        else:
            age = f"{self.balance_age_s:.0f} s ago" if self.balance_age_s is not None else "just now"
            verdict = "covers it" if self.covered else f"SHORT by {self.segments - self.balance}"
            balance = f"{self.balance} (read {age}): {verdict}"
        return [f"account:    {self.provider}:{self.account} ({self.kind})",
                f"recipients: {self.recipients}",
                f"segments:   {self.segments}{exact}",
                f"balance:    {balance}"]


def _template_segments(accounts: Accounts, spec: JobSpec) -> tuple[int, bool]:
    """Segments of an opass job: its declared template rendered per recipient (each distinct row
    counted once), else 1 a recipient. Never exact: opass adds the signature set in its console,
    which the accounts file does not hold, so a text near a segment's edge may take one more."""
    template = accounts.get(spec.provider, spec.account).templates.get(spec.meta.get("template_code", "").strip())
    if template is None:
        return len(spec.phones), False
    shared = json.loads(spec.meta.get("params") or "[]")
    rows = spec.payloads if spec.payloads is not None else [shared] * len(spec.phones)
    counts: dict[tuple[str, ...], int] = {}
    total = 0
    for row in rows:
        key = tuple(str(v) for v in row)
        if key not in counts:
            counts[key] = domestic_segments(template.render(key)).count
        total += counts[key]
    return total, False


def _content_segments(spec: JobSpec) -> tuple[int, bool]:
    """Segments of a content job: each recipient's text (signature included) by the domestic rules,
    or an international job's text by the GSM-7 rules (160/153, else 70/67)."""
    if spec.meta.get("segments") == "international":
        return international_segments(spec.meta["content"]).count * len(spec.phones), True
    if spec.payloads is None:
        return domestic_segments(spec.meta["content"]).count * len(spec.phones), True
    # Per-phone texts often repeat (a few templates filled in): count each distinct text once.
    counts: dict[str, int] = {}
    total = 0
    for text in spec.payloads:
        if text not in counts:
            counts[text] = domestic_segments(text).count
        total += counts[text]
    return total, True


def count_segments(accounts: Accounts, spec: JobSpec) -> tuple[int, bool]:
    """``(segments, exact)`` of a validated job: the messages its recipients will be billed."""
    if spec.meta.get("template_code"):  # a job sending a console template the gateway fills in
        return _template_segments(accounts, spec)
    if spec.meta.get("template_id"):  # a video SMS: one message to each recipient, whatever its frames hold
        return len(spec.phones), True
    return _content_segments(spec)


def estimate_of(accounts: Accounts, spec: JobSpec, balance: BalanceReading = UNKNOWN) -> Estimate:
    """The :class:`Estimate` of a validated job with the balance given."""
    segments, exact = count_segments(accounts, spec)
    return Estimate(spec.provider, spec.account, spec.kind, len(spec.phones), segments, exact,
                    balance.remaining, balance.age_s, balance.note)


def shortfall(estimate: Estimate) -> int:
    """How many segments the known balance lacks (0 when it covers them or is unknown)."""
    return 0 if estimate.balance is None else max(0, estimate.segments - estimate.balance)


__all__ = ["BalanceReading", "Estimate", "count_segments", "estimate_of", "shortfall"]
