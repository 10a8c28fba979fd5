"""``repr`` pieces for objects holding phones, message text or secrets. Pure.

Such objects end up in logs, tracebacks and debugger output by way of their
``repr``; each of them builds it from these pieces, so a phone shows as
``138****1234``, message text and bodies only by their size, secrets not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dispatcher.phones import mask

SHOWN_PHONES = 3


def phones_repr(phones: Sequence[str]) -> str:
    """The first few phones masked, and how many in all: ``(138****1234, …; 5 in all)``."""
    shown = ", ".join(mask(str(p)) for p in phones[:SHOWN_PHONES])
    return f"({shown}{', …' if len(phones) > SHOWN_PHONES else ''}; {len(phones)} in all)"


def keys_repr(mapping: Mapping[str, Any] | None) -> str:
    """A mapping's keys only (its values may be phones, text or signatures): ``<keys: a, b>``."""
    return "None" if mapping is None else f"<keys: {', '.join(map(str, mapping))}>"


def size_repr(value: Sequence[Any] | bytes | str | None) -> str:
    """Only how long a text, body or list is: ``<12 items>``."""
    return "None" if value is None else f"<{len(value)} items>"


def url_repr(url: str) -> str:
    """A URL with any password replaced by ``***`` (``redis://:secret@host`` → ``redis://:***@host``)."""
    if not url:
        return repr(url)
    parts = urlsplit(url)
    if parts.password is None:
        return repr(url)
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return repr(urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}")))


def build_repr(obj: object, **fields: str) -> str:
    """``Name(a=…, b=…)`` from already-safe field texts."""
    return f"{type(obj).__name__}({', '.join(f'{k}={v}' for k, v in fields.items())})"
