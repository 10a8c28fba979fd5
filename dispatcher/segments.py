"""Segment (billing part) calculator for the length rules in both manuals. Pure.

Domestic SMS (signature + body): up to 70 characters is one part; longer text is
billed in parts of 67. International text that is pure GSM-7: up to 160 is one
part, else parts of 153, GSM extension characters (``| ^ € { } [ ] ~ \\`` and
form feed) counting 2 and never split across parts. Any other international text:
70 / 67 like domestic.

Characters outside the Basic Multilingual Plane (most emoji) count 2: carriers
send UCS-2, where they take two code units. The manuals' "每个字按1个字计算"
covers 汉字, letters, digits, punctuation and spaces, which all count 1 here too.
"""

from __future__ import annotations

from dataclasses import dataclass

SINGLE_UCS2 = 70
MULTI_UCS2 = 67
SINGLE_GSM = 160
MULTI_GSM = 153

# GSM 03.38 default alphabet (basic table), one septet each.
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: escape + char, two septets each.
GSM_EXTENDED = frozenset("|^€{}[]~\\\f")


@dataclass(frozen=True, slots=True)
class Segments:
    """How a text is billed: ``encoding`` (``gsm7``/``ucs2``), total units, part sizes."""

    encoding: str
    units: int
    parts: tuple[int, ...]

    @property
    def count(self) -> int:
        """Number of billed parts."""
        return len(self.parts)


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in the GSM-7 basic or extension table."""
    return all(c in GSM_BASIC or c in GSM_EXTENDED for c in text)


def _split(costs: list[int], single: int, multi: int) -> tuple[int, ...]:
    total = sum(costs)
    if total <= single:
        return (total,) if total else ()
    parts: list[int] = []
    current = 0
    for cost in costs:
        if current + cost > multi:  # a 2-unit character never straddles parts
            parts.append(current)
            current = 0
        current += cost
    if current:
        parts.append(current)
    return tuple(parts)


def _ucs2_costs(text: str) -> list[int]:
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def domestic_segments(text: str) -> Segments:
    """Parts for a mainland SMS (signature included in ``text``): 70 single, 67 per part.

    >>> domestic_segments("字" * 150).parts
    (67, 67, 16)
    """
    costs = _ucs2_costs(text)
    return Segments("ucs2", sum(costs), _split(costs, SINGLE_UCS2, MULTI_UCS2))


def international_segments(text: str) -> Segments:
    """Parts for an international SMS: GSM-7 160/153 (extensions count 2), else 70/67.

    >>> international_segments("a" * 320).parts
    (153, 153, 14)
    """
    if is_gsm7(text):
        costs = [2 if c in GSM_EXTENDED else 1 for c in text]
        return Segments("gsm7", sum(costs), _split(costs, SINGLE_GSM, MULTI_GSM))
    return domestic_segments(text)
