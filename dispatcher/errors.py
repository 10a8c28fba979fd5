"""The one error tree of sms-dispatch.

Every error a caller can act on has its own class; each gateway code and each
`requests` exception maps to exactly one of them (see ``providers/*_codes.py`` and
``providers/http.py``)::

    DispatchError                     root: catch this to catch everything of ours
    ├── ConfigurationError            an account or URL is unusable as configured
    ├── ValidationError               bad input, raised before anything is queued or sent
    ├── PushVerificationError         a pushed receipt failed its checks (forged, malformed)
    ├── StorageFullError              Redis is at its maxmemory: the job was not stored
    ├── InsufficientBalanceError      the job needs more messages than the account's balance: not stored
    └── ProviderError                 a gateway call did not succeed
        ├── TransientError            provably not taken effect: retry with backoff
        ├── ThrottledError            the gateway said "too fast": retry after a delay
        ├── AmbiguousError            may have been taken: reconcile, never blind-retry
        ├── RequestRejectedError      the request itself is wrong: resending it fails again
        ├── RecipientRejectedError    every recipient of the request was refused
        └── AccountFatalError         the account cannot send until a human acts

Messages never carry secrets or whole phone numbers (phones are masked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class DispatchError(Exception):
    """Raised for every failure that sms-dispatch itself reports."""


class ConfigurationError(DispatchError):
    """Raised when an account, URL or setting cannot be used as configured."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input: which field (and item), and why."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ValidationError(DispatchError, ValueError):
    """Raised when input is invalid; nothing has been queued or sent.

    ``problems`` lists every problem found, each naming its field and item
    (``phones[3]``, ``params[2][0]``, ``bid``).
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("ValidationError needs at least one problem")
        self.problems: tuple[Problem, ...] = tuple(problems)
        shown = "; ".join(str(p) for p in self.problems[:10])
        more = len(self.problems) - 10
        if more > 0:
            shown += f"; and {more} more"
        super().__init__(shown)

    @property
    def fields(self) -> tuple[str, ...]:
        """The field names that have problems, in the order found."""
        return tuple(p.field for p in self.problems)


class PushVerificationError(DispatchError):
    """Raised when a pushed receipt or uplink is malformed, forged or replayed."""


class StorageFullError(DispatchError):
    """Raised when Redis refuses a write because it is at its ``maxmemory``; nothing of the job was kept."""


class InsufficientBalanceError(DispatchError):
    """Raised by a ``send_*`` whose billable messages exceed the account's last known balance; nothing was stored.

    ``needed`` (segments of the job), ``available`` (the balance as last read) and
    ``account`` (``provider:name``). Top the account up, or pass ``force=True`` to send anyway
    (the gateway then refuses what the balance cannot cover, and the account is paused).
    """

    def __init__(self, *, account: str, needed: int, available: int, age_s: float) -> None:
        self.account = account
        self.needed = needed
        self.available = available
        self.age_s = age_s
        super().__init__(f"{account}: the job needs {needed} messages but the balance is {available} "
                         f"(read {age_s:.0f} s ago); top the account up or send with force=True")


class ProviderError(DispatchError):
    """Raised when a gateway call did not succeed.

    Carries ``provider`` (``opass``/``aiofish``), ``account`` (its name, never its
    secret), the vendor ``code`` and description, the gateway's ``request_id`` when
    it gave one, and the HTTP status when the failure was at the HTTP level.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        account: str = "",
        code: str | None = None,
        request_id: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.provider = provider
        self.account = account
        self.code = code
        self.request_id = request_id
        self.http_status = http_status
        where = f"{provider}:{account}" if account else provider
        tag = f" [code {code}]" if code is not None else ""
        super().__init__(f"{where}{tag} {message}")


class TransientError(ProviderError):
    """Raised when the request provably did not take effect (refused, busy): retry."""


class ThrottledError(ProviderError):
    """Raised when the gateway answered a throttle code; retry after ``retry_after_s``."""

    def __init__(self, message: str, *, retry_after_s: float = 1.0, **kw: object) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, **kw)  # type: ignore[arg-type]


class AmbiguousError(ProviderError):
    """Raised when the request may have been accepted (read timeout, reset after send).

    Never resend blindly: reconcile from receipts carrying the request's bid/smsId.
    """


class RequestRejectedError(ProviderError):
    """Raised when the gateway refused the request as written (template, params, size)."""


class RecipientRejectedError(ProviderError):
    """Raised when the gateway refused every recipient of the request (bad numbers)."""


class AccountFatalError(ProviderError):
    """Raised for balance, credential, clock or IP-whitelist failures: pause the account."""


#: The classes a vendor code can map to (``None`` in a code table means success).
OUTCOME_CLASSES: tuple[type[ProviderError], ...] = (
    TransientError,
    ThrottledError,
    AmbiguousError,
    RequestRejectedError,
    RecipientRejectedError,
    AccountFatalError,
)
