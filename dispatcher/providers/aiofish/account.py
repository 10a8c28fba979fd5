"""An aiofish (飞鱼) account's settings: where to send, with which credentials, how to encrypt.

Secrets are excluded from ``repr`` so an account printed into a log or an
exception shows its name only. The same account serves SMS, video SMS and
international SMS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dispatcher.errors import ConfigurationError

AIOFISH_DEFAULT_URL = "https://api.aiofish.com"
AIOFISH_ENCRYPTION_MODES = ("plain", "phone", "full")


@dataclass(frozen=True, slots=True)
class AiofishAccount:
    """An aiofish (飞鱼) account.

    ``account``/``password`` serve plain SMS; ``app_secret`` signs the encrypted
    variants and, with ``app_key``, vsms and isms; ``aes_key`` (16/24/32 bytes)
    encrypts phones and bodies. ``encryption`` picks the SMS send variant:
    ``plain`` (sendSms), ``phone`` (sendSmsByEncrypt) or ``full`` (…/encryption).
    """

    name: str
    account: str
    password: str = field(repr=False)
    app_key: str | None = field(default=None, repr=False)
    app_secret: str | None = field(default=None, repr=False)
    aes_key: str | None = field(default=None, repr=False)
    base_url: str = AIOFISH_DEFAULT_URL
    encryption: str = "plain"
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 15.0

    def __post_init__(self) -> None:
        if self.encryption not in AIOFISH_ENCRYPTION_MODES:
            raise ConfigurationError(
                f"aiofish:{self.name} encryption {self.encryption!r} is not one of {AIOFISH_ENCRYPTION_MODES}"
            )
        if self.encryption != "plain" and not self.aes_key:
            raise ConfigurationError(f"aiofish:{self.name} encryption={self.encryption} needs aes_key")
        if self.encryption == "full" and not self.app_secret:
            raise ConfigurationError(f"aiofish:{self.name} encryption=full needs app_secret")
        if self.aes_key is not None and len(self.aes_key.encode()) not in (16, 24, 32):
            raise ConfigurationError(f"aiofish:{self.name} aes_key must be 16, 24 or 32 bytes")
