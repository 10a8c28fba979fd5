"""The sandbox's fixed demo credentials and templates (documented in the README).

They exist only for the local sandbox; nothing here is a real credential.
"""

from __future__ import annotations

from collections.abc import Mapping

OPASS_API_KEY = "sandbox-api-key"
OPASS_ACCESS_KEY = "sandbox-access-key"

AIOFISH_ACCOUNT = "sandbox"
AIOFISH_PASSWORD = "sandbox-password"
AIOFISH_APP_KEY = "sandbox-app-key"
AIOFISH_APP_SECRET = "sandbox-app-secret"
AIOFISH_AES_KEY = "sandbox-aes-k128"  # 16 bytes: AES-128

#: opass demo templates; any other code answers 60001 as the real gateway does.
OPASS_TEMPLATES: Mapping[str, str] = {
    "1000000000000000001": "您有一个事务需要处理。",
    "1000000000000000002": "您的验证码是{验证码,6}，5分钟内有效。",
    "1000000000000000003": "{姓名,10}您好，您本次收入{金额,10}元。",
}
