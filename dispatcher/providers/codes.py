"""What a vendor code means, whichever gateway's table it is in. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from dispatcher.errors import ProviderError


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """What a vendor code means: the error class (``None`` = success) and its text."""

    error: type[ProviderError] | None
    text: str
