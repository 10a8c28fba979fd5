"""sms-dispatch: send SMS through the opass and aiofish gateways from Celery workers.

The names below are the public API; everything else may change.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from dispatcher.errors import (
    AccountFatalError,
    AmbiguousError,
    ConfigurationError,
    DispatchError,
    InsufficientBalanceError,
    ProviderError,
    PushVerificationError,
    RecipientRejectedError,
    RequestRejectedError,
    StorageFullError,
    ThrottledError,
    TransientError,
    ValidationError,
)
from dispatcher.providers.aiofish.account import AiofishAccount
from dispatcher.providers.opass.account import OpassAccount
from dispatcher.segments import domestic_segments, international_segments

if TYPE_CHECKING:
    from dispatcher.estimates import Estimate
    from dispatcher.producer import Dispatcher, JobHandle, JobStatus

# The producer pulls in config, Redis and Celery: load it on first use, so that
# `import dispatcher` stays light (the sandbox) and config may import our errors.
_LAZY = {"Estimate": "dispatcher.estimates", "Dispatcher": "dispatcher.producer", "JobHandle": "dispatcher.producer",
         "JobStatus": "dispatcher.producer"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dispatcher' has no attribute {name!r}")

__all__ = [
    "AccountFatalError",
    "AiofishAccount",
    "AmbiguousError",
    "ConfigurationError",
    "DispatchError",
    "Dispatcher",
    "Estimate",
    "InsufficientBalanceError",
    "JobHandle",
    "JobStatus",
    "OpassAccount",
    "ProviderError",
    "PushVerificationError",
    "RecipientRejectedError",
    "RequestRejectedError",
    "StorageFullError",
    "ThrottledError",
    "TransientError",
    "ValidationError",
    "domestic_segments",
    "international_segments",
]
