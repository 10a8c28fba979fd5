"""Reading fields out of a gateway's JSON, whoever sent it: one rule for answers and pushes, any gateway."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: No count, code or epoch-millisecond time a gateway sends has more digits. Longer text
#: is no number the gateway can mean, and int() would spend quadratic time on it (or, past
#: 4300 digits, raise a bare ValueError that no caller expects).
MAX_DIGITS = 20


def whole_number(value: object) -> int | None:
    """An integer field that may arrive as a JSON number or as ASCII digit text; ``None`` otherwise.

    Refused: booleans (``true`` is not 1), fractions, ``inf``/``nan`` (JSON's ``1e999``
    parses as ``inf``), non-ASCII digits (``int()`` would read ``"١٢"``) and anything
    longer than :data:`MAX_DIGITS` digits. Never raises.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 10**MAX_DIGITS else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 10**MAX_DIGITS else None
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text.startswith("-") else text
        if digits.isascii() and digits.isdigit() and len(digits) <= MAX_DIGITS:
            return int(text)
    return None


def text_field(item: Mapping[str, Any], key: str) -> str | None:
    """A field as stripped text (numbers accepted, as JSON writers differ); ``None`` when absent or empty."""
    value = item.get(key)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        text = str(value).strip()
        return text or None
    return None
