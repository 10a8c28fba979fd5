"""What every gateway client shares: the clock, code-table lookups, JSON bodies.

Each client (``opass.py``, ``aiofish.py``, ``aiofish_vsms.py``) builds requests
with pure functions and sends them through :class:`~dispatcher.providers.http.HttpTransport`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, Protocol

from dispatcher.errors import AmbiguousError, RequestRejectedError, ThrottledError, TransientError
from dispatcher.providers.codes import CodeInfo


class AccountSettings(Protocol):
    """What every gateway's account settings class has (``OpassAccount``, ``AiofishAccount`` …):
    the account's name, unique within its gateway. The rest is the plug's to read."""

    @property
    def name(self) -> str:
        """The account's name in the accounts file."""
        ...

    @property
    def base_url(self) -> str:
        """Where its gateway answers (``sms-dispatch doctor`` checks it is reachable)."""
        ...


Clock = Callable[[], int]
"""Returns the current time in epoch milliseconds."""


def system_clock_ms() -> int:
    """The system clock in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def json_body(doc: Mapping[str, Any]) -> bytes:
    """Serialise a request body as compact UTF-8 JSON (non-ASCII kept as is)."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def raise_for_code(
    table: Mapping[str, CodeInfo],
    code: object,
    *,
    provider: str,
    account: str,
    message: str | None = None,
    request_id: str | None = None,
    retry_after_s: float = 1.0,
    side_effect: bool = True,
) -> None:
    """Raise the error class ``table`` maps ``code`` to; return if it means success.

    A code missing from the table is treated as a refusal of the request
    (:class:`RequestRejectedError`): never retried blindly, always surfaced. A
    code that leaves a send ambiguous is only transient for a call without
    side effects (``side_effect`` false): repeating a query costs nothing.
    """
    key = str(code).strip()
    info = table.get(key)
    if info is not None and info.error is None:
        return
    if info is not None and info.error is AmbiguousError and not side_effect:
        info = CodeInfo(TransientError, info.text)
    _raise(info, key, provider=provider, account=account, message=message,
           request_id=request_id, retry_after_s=retry_after_s)


def _raise(
    info: CodeInfo | None,
    key: str,
    *,
    provider: str,
    account: str,
    message: str | None,
    request_id: str | None,
    retry_after_s: float,
) -> NoReturn:
    text = message or (info.text if info else "unknown code")
    kw: dict[str, Any] = {"provider": provider, "account": account, "code": key, "request_id": request_id}
    if info is None:
        raise RequestRejectedError(f"unknown gateway code: {text}", **kw)
    if info.error is ThrottledError:
        raise ThrottledError(text, retry_after_s=retry_after_s, **kw)
    raise (info.error or RequestRejectedError)(text, **kw)
