"""Segment counts from the manuals' worked examples, and phone rules."""

from __future__ import annotations

import pytest

from dispatcher import phones
from dispatcher.segments import Segments, domestic_segments, international_segments, is_gsm7


def test_manual_example_150_chinese_characters_bill_67_67_16() -> None:
    assert domestic_segments("短" * 150).parts == (67, 67, 16)


def test_manual_example_320_gsm_characters_bill_153_153_14() -> None:
    seg = international_segments("a" * 320)
    assert seg.encoding == "gsm7"
    assert seg.parts == (153, 153, 14)


@pytest.mark.parametrize(("length", "parts"), [(0, ()), (1, (1,)), (70, (70,)), (71, (67, 4)), (134, (67, 67))])
def test_domestic_boundaries(length: int, parts: tuple[int, ...]) -> None:
    assert domestic_segments("字" * length).parts == parts


@pytest.mark.parametrize(("length", "parts"), [(160, (160,)), (161, (153, 8)), (306, (153, 153))])
def test_gsm_boundaries(length: int, parts: tuple[int, ...]) -> None:
    assert international_segments("x" * length).parts == parts


def test_gsm_extension_characters_count_two() -> None:
    text = "€" * 80  # 160 septets: still one part
    assert international_segments(text).parts == (160,)
    assert international_segments(text + "a").units == 161


def test_an_extension_character_is_never_split_across_parts() -> None:
    text = "a" * 152 + "{" + "a" * 10
    assert international_segments(text).parts == (152, 12)


def test_non_gsm_international_text_uses_70_67() -> None:
    seg = international_segments("Привет" * 12)  # 72 Cyrillic characters
    assert seg.encoding == "ucs2"
    assert seg.parts == (67, 5)


def test_emoji_count_two_units_as_carriers_bill_ucs2() -> None:
    assert domestic_segments("😀" * 35).parts == (70,)
    assert domestic_segments("😀" * 36).count == 2


def test_gsm_detection() -> None:
    assert is_gsm7("Hello @ £5 {ok}")
    assert not is_gsm7("Hello 你好")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("13812345678", "13812345678"), (" +8613812345678 ", "13812345678"),
     ("008619912345678", "19912345678"), ("8615012345678", "15012345678")],
)
def test_mainland_numbers_are_normalised(raw: str, expected: str) -> None:
    assert phones.normalise_mainland(raw) == expected


@pytest.mark.parametrize(
    "raw", ["1381234567", "138123456789", "12812345678", "23812345678", "1381234567a", "", None, 13812345678]
)
def test_invalid_mainland_numbers_are_refused(raw: object) -> None:
    assert phones.normalise_mainland(raw) is None


@pytest.mark.parametrize(("raw", "expected"), [("+85212341234", "85212341234"), ("0085212341234", "85212341234"),
                                               ("447911123456", "447911123456")])
def test_international_numbers_keep_their_country_code(raw: str, expected: str) -> None:
    assert phones.normalise_international(raw) == expected


@pytest.mark.parametrize("raw", ["0123456789", "1234567", "1234567890123456", "+44 7911", "44٧911123456"])
def test_invalid_international_numbers_are_refused(raw: str) -> None:
    assert phones.normalise_international(raw) is None


def test_masking_hides_the_middle_digits() -> None:
    assert phones.mask("13812341234") == "138****1234"
    assert "2341" not in phones.mask("13812341234")


@pytest.mark.parametrize(
    ("values", "fast"),
    [
        (["13800000001", "13900000002"], True),
        (["13800000001", "13800000001"], False),  # a duplicate: the loop drops and counts it
        (["13800000001\n13900000002"], False),  # one item with a newline is not two numbers
        (["13800000001", 13900000002], False),  # not a string
        (["+8613800000001"], False),  # needs normalising
        (["１3800000001"], False),  # full-width digit
        (["12800000001"], False),
        ([], False),
    ],
)
def test_the_fast_path_takes_only_lists_the_loop_would_keep_unchanged(values: list[object], fast: bool) -> None:
    assert phones.all_unique_mainland(values) is fast
    if fast:
        assert [phones.normalise_mainland(v) for v in values] == values


@pytest.mark.parametrize(
    ("char", "units"),
    [
        ("\uffff", 1),  # the last BMP code point: one UCS-2 code unit
        ("\U00010000", 2),  # the first one past the BMP: a surrogate pair
        ("😀", 2),
    ],
    ids=["U+FFFF", "U+10000", "U+1F600"],
)
def test_ucs2_units_are_code_units_at_the_bmp_edge(char: str, units: int) -> None:
    """A character costs the UCS-2 code units a carrier sends: 1 up to U+FFFF, 2 from U+10000."""
    assert domestic_segments(char) == Segments("ucs2", units, (units,))
    assert domestic_segments("字" + char).units == 1 + units


def test_domestic_units_are_the_billed_total() -> None:
    """units is the sum of the parts: 150 characters and one emoji bill 152 units in 67 + 67 + 18."""
    seg = domestic_segments("字" * 150 + "😀")
    assert (seg.encoding, seg.units, seg.parts, seg.count) == ("ucs2", 152, (67, 67, 18), 3)


def test_an_international_gsm7_text_past_160_is_billed_in_parts_of_153() -> None:
    """International GSM-7: 160 characters is one part, 161 two (153 a part), an extension character
    (€) counts 2; a text with one non-GSM character falls to UCS-2 (70, then 67 a part)."""
    from dispatcher.segments import international_segments

    assert international_segments("a" * 160).count == 1
    assert international_segments("a" * 161).count == 2
    assert international_segments("a" * 306).count == 2
    assert international_segments("a" * 307).count == 3
    assert international_segments("€" * 80).count == 1
    assert international_segments("€" * 81).count == 2
    assert international_segments("你" * 70).count == 1
    assert international_segments("a" * 100 + "你").count == 2
    assert international_segments("a" * 134 + "你").count == 3


def test_an_isms_estimate_counts_gsm7_segments_per_number() -> None:
    """``estimate("international", …)`` bills each number the GSM-7 parts of the text, on the
    aiofish account's isms channel, with the numbers given in any written form."""
    from dispatcher.config.accounts import parse_accounts
    from dispatcher.local.demo import accounts_doc
    from dispatcher.testing import FakeDispatcher

    fake = FakeDispatcher(accounts=parse_accounts(accounts_doc("http://127.0.0.1:1")))
    est = fake.estimate("international", "demo", content="a" * 161, phones=["+85291234567", "004477123456789"])
    assert (est.provider, est.recipients, est.segments, est.segments_exact) == ("aiofish-isms", 2, 4, True)
