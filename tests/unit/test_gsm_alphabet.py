"""The GSM 03.38 alphabet behind international segment counts (dispatcher.segments).

The tables here are copied from the standard (3GPP TS 23.038 §6.2.1, as mapped to Unicode
in unicode.org's GSM0338.TXT), not from the code: the basic table in code-point order
0x00-0x7F (0x1B is the escape to the extension table), and the extension characters,
each of which costs two septets (escape + character).
"""

from __future__ import annotations

import pytest

from dispatcher.segments import Segments, international_segments, is_gsm7

ESC = None  # 0x1B: escape to the extension table, not a character
BASIC_ROWS: list[list[str | None]] = [
    ["@", "£", "$", "¥", "è", "é", "ù", "ì", "ò", "Ç", "\n", "Ø", "ø", "\r", "Å", "å"],  # 0x00
    ["Δ", "_", "Φ", "Γ", "Λ", "Ω", "Π", "Ψ", "Σ", "Θ", "Ξ", ESC, "Æ", "æ", "ß", "É"],  # 0x10
    [" ", "!", '"', "#", "¤", "%", "&", "'", "(", ")", "*", "+", ",", "-", ".", "/"],  # 0x20
    ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ":", ";", "<", "=", ">", "?"],  # 0x30
    ["¡", "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O"],  # 0x40
    ["P", "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z", "Ä", "Ö", "Ñ", "Ü", "§"],  # 0x50
    ["¿", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o"],  # 0x60
    ["p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z", "ä", "ö", "ñ", "ü", "à"],  # 0x70
]
BASIC = [c for row in BASIC_ROWS for c in row if c is not None]
# Extension table, by septet after the escape: 0x0A form feed, 0x14 ^, 0x28 {, 0x29 }, 0x2F \,
# 0x3C [, 0x3D ~, 0x3E ], 0x40 |, 0x65 €.
EXTENSION = ["\f", "^", "{", "}", "\\", "[", "~", "]", "|", "€"]


def test_the_standards_tables_are_complete() -> None:
    """Guard on the copy above: 127 basic characters (128 septets less the escape), 10 extensions, no overlap."""
    assert len(BASIC) == len(set(BASIC)) == 127
    assert len(EXTENSION) == len(set(EXTENSION)) == 10
    assert not set(BASIC) & set(EXTENSION)


@pytest.mark.parametrize("char", BASIC, ids=[f"U+{ord(c):04X}" for c in BASIC])
def test_each_basic_character_is_one_septet(char: str) -> None:
    """A basic-table character is GSM-7 and bills one septet."""
    assert international_segments(char) == Segments("gsm7", 1, (1,))


@pytest.mark.parametrize("char", EXTENSION, ids=[f"U+{ord(c):04X}" for c in EXTENSION])
def test_each_extension_character_is_two_septets(char: str) -> None:
    """An extension character is GSM-7 and bills two septets (escape + character)."""
    assert international_segments(char) == Segments("gsm7", 2, (2,))


def test_no_other_character_of_the_bmp_is_gsm7() -> None:
    """Exactly the standard's characters are GSM-7: adding one would bill Unicode text at 160/153."""
    gsm = {chr(cp) for cp in range(0x10000) if is_gsm7(chr(cp))}
    assert sorted(gsm - set(BASIC) - set(EXTENSION)) == []
    assert sorted((set(BASIC) | set(EXTENSION)) - gsm) == []


def test_lookalikes_outside_the_alphabet_switch_the_text_to_ucs2() -> None:
    """` (backtick), ç (small c-cedilla), full-width ～ and ￥ are not GSM: the whole text bills 70/67."""
    for char in ["`", "ç", "～", "￥", "\t"]:
        assert international_segments("a" * 100 + char) == Segments("ucs2", 101, (67, 34)), char


def test_a_text_of_every_gsm_character_counts_extensions_twice() -> None:
    """All 127 basic + 10 extension characters: 127 + 2·10 = 147 septets, one part (≤ 160)."""
    assert international_segments("".join(BASIC + EXTENSION)) == Segments("gsm7", 147, (147,))
