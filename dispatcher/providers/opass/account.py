"""An opass (经分助手) account's settings: where to send, with which keys, how to sign.

Secrets are excluded from ``repr`` so an account printed into a log or an
exception shows its name only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dispatcher.errors import ConfigurationError
from dispatcher.providers.opass.sign import SIGN_METHODS

OPASS_DEFAULT_URL = "https://opassapi.infocloud.cc"
#: The manual's receipt path; the vendor's Java sample uses ``/sms/arrive/qry``.
OPASS_RECEIPT_PATH = "/sms/arriveRes/qry"
OPASS_RECEIPT_PATH_JAVA = "/sms/arrive/qry"


@dataclass(frozen=True, slots=True)
class OpassAccount:
    """An opass (经分助手) account.

    ``batch_max`` is the most phones per send call: 1000 per the API page (the
    vendor's Java helper says 500 for sendBatch; set 500 here to follow it).
    """

    name: str
    api_key: str = field(repr=False)
    access_key: str = field(repr=False)
    base_url: str = OPASS_DEFAULT_URL
    sign_method: str = "HmacSHA256"
    receipt_path: str = OPASS_RECEIPT_PATH
    batch_max: int = 1000
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 15.0

    def __post_init__(self) -> None:
        if self.sign_method not in SIGN_METHODS:
            raise ConfigurationError(
                f"opass:{self.name} sign_method {self.sign_method!r} is not one of {sorted(SIGN_METHODS)}"
            )
        if not self.api_key or not self.access_key:
            raise ConfigurationError(f"opass:{self.name} needs api_key and access_key")
        if not 1 <= self.batch_max <= 1000:
            raise ConfigurationError(f"opass:{self.name} batch_max must be 1..1000")
