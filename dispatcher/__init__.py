"""sms-dispatch: send SMS through the opass and aiofish gateways from Celery workers.

The names below are the public API; everything else may change.
"""

from dispatcher.errors import (
    AccountFatalError,
    AmbiguousError,
    ConfigurationError,
    DispatchError,
    ProviderError,
    PushVerificationError,
    RecipientRejectedError,
    RequestRejectedError,
    ThrottledError,
    TransientError,
    ValidationError,
)
from dispatcher.providers.accounts import AiofishAccount, OpassAccount
from dispatcher.segments import domestic_segments, international_segments

__all__ = [
    "AccountFatalError",
    "AiofishAccount",
    "AmbiguousError",
    "ConfigurationError",
    "DispatchError",
    "OpassAccount",
    "ProviderError",
    "PushVerificationError",
    "RecipientRejectedError",
    "RequestRejectedError",
    "ThrottledError",
    "TransientError",
    "ValidationError",
    "domestic_segments",
    "international_segments",
]
