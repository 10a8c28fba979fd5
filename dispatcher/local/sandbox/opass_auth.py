"""opass request authentication as the gateway checks it. Pure (clock passed in).

Checked in this order: the five ``x-*`` headers are present, the apiKey is
known, the peer is on the account's IP whitelist (if it has one), the 13-digit
timestamp is within the window, the sign method is one of the six, and the sign
matches under one of the vendor samples' readings (``opass_sign.verify_sign``).
The nonce is checked by the caller *after* this, so a forged request cannot burn
a nonce.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dispatcher.local.sandbox.config import OpassAccountConfig
from dispatcher.providers.opass.sign import SIGN_METHODS, verify_sign


class OpassReject(Exception):
    """Raised to answer an opass error: ``code`` from OPASS_CODES, a human ``message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def authenticate(
    headers: Mapping[str, str],
    body: Mapping[str, Any],
    accounts: Mapping[str, OpassAccountConfig],
    peer: str | None,
    now_ms: int,
    window_s: float,
) -> tuple[OpassAccountConfig, str]:
    """Return the account and nonce of a correctly signed request.

    Raises ``OpassReject`` 2001 (missing headers, unknown key, bad timestamp or
    sign) or 2000 (IP not whitelisted).
    """
    api_key = headers.get("x-api-key")
    method = headers.get("x-sign-method")
    nonce = headers.get("x-nonce")
    timestamp = headers.get("x-timestamp")
    sign = headers.get("x-sign")
    if not (api_key and method and nonce and timestamp and sign):
        raise OpassReject("2001", "API授权失败或授权参数不完整")
    account = accounts.get(api_key)
    if account is None:
        raise OpassReject("2001", "API授权错误")
    if account.ip_whitelist is not None and peer not in account.ip_whitelist:
        raise OpassReject("2000", "IP白名单限制")
    well_formed = len(timestamp) == 13 and timestamp.isascii() and timestamp.isdigit()
    if not well_formed or abs(int(timestamp) - now_ms) > window_s * 1000:
        raise OpassReject("2001", "无效的参数（时间戳）")
    if method not in SIGN_METHODS:
        raise OpassReject("2001", "API授权错误（不支持的签名方法）")
    fields = {**body, "x-api-key": api_key, "x-nonce": nonce, "x-sign-method": method, "x-timestamp": timestamp}
    if not verify_sign(account.access_key, method, fields, sign):
        raise OpassReject("2001", "API授权错误")
    return account, nonce
