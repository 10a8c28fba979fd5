"""Phone rules a caller sees directly (dispatcher.phones): masking, the mainland check, refusals.

Mainland numbers are 11 ASCII digits ``1[3-9]…``: other Unicode digits (full-width, Arabic-Indic)
look like digits to ``str.isdigit`` and to regex ``\\d`` but no gateway takes them.
"""

from __future__ import annotations

import pytest

from dispatcher import phones
from dispatcher.errors import Problem, ValidationError
from dispatcher.validation import Checker

FULL_WIDTH = "１３８００１３８０００"  # 13800138000 in full-width digits (U+FF10…)
ARABIC_INDIC = "١٣٨٠٠١٣٨٠٠٠"  # 13800138000 in Arabic-Indic digits (U+0660…)
DEVANAGARI = "१३८००१३८०००"  # 13800138000 in Devanagari digits (U+0966…)
MIXED = "1380013800０"  # ten ASCII digits and one full-width zero
# An ASCII "13" (the prefix the pattern spells out) then nine other digits: only the digit class refuses these.
ASCII_PREFIX_FULL_WIDTH = "13８００１３８０００"
ASCII_PREFIX_ARABIC_INDIC = "13٨٠٠١٣٨٠٠٠"


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812341234", "138****1234"),  # 11: the middle four hidden
        ("8613812341234", "861****1234"),  # 13: everything between the first 3 and last 4
        ("12345678", "123****5678"),  # 8: the shortest shown in part
        ("1234567", "*******"),  # 7: too short to show any of it
        ("123", "***"),
        ("1", "*"),
        ("", ""),
    ],
)
def test_a_masked_phone_shows_at_most_its_first_three_and_last_four(phone: str, masked: str) -> None:
    """The form logs, errors and reprs show: exactly this, for every length."""
    assert phones.mask(phone) == masked


@pytest.mark.parametrize("phone", ["13812345678", "19912345678", "15000000000"])
def test_a_normalised_mainland_number_is_mainland(phone: str) -> None:
    """is_mainland accepts the 11-digit form normalise_mainland returns."""
    assert phones.is_mainland(phone) is True
    assert phones.normalise_mainland(phone) == phone


@pytest.mark.parametrize(
    "phone",
    ["+8613812345678", "8613812345678", " 13812345678", "12812345678", "1381234567", "138123456789", ""],
)
def test_anything_but_the_normalised_form_is_not_mainland(phone: str) -> None:
    """is_mainland checks the stored form: a prefix, a space or a wrong length is not it."""
    assert phones.is_mainland(phone) is False


@pytest.mark.parametrize(
    "phone",
    [FULL_WIDTH, ARABIC_INDIC, DEVANAGARI, MIXED, ASCII_PREFIX_FULL_WIDTH, ASCII_PREFIX_ARABIC_INDIC,
     "+86" + FULL_WIDTH, "+86" + ASCII_PREFIX_FULL_WIDTH, "+86" + ASCII_PREFIX_ARABIC_INDIC],
)
def test_unicode_digits_that_are_not_ascii_are_refused(phone: str) -> None:
    """Full-width, Arabic-Indic and other Unicode digits are no mainland number, with or without +86."""
    assert phones.is_mainland(phone.removeprefix("+86")) is False
    assert phones.normalise_mainland(phone) is None


@pytest.mark.parametrize(
    ("phone", "message"),
    [
        (FULL_WIDTH, "'１３８****８０００' is not a valid number (expected 11-digit mainland mobile)"),
        (ARABIC_INDIC, "'١٣٨****٨٠٠٠' is not a valid number (expected 11-digit mainland mobile)"),
        (ASCII_PREFIX_FULL_WIDTH, "'13８****８０００' is not a valid number (expected 11-digit mainland mobile)"),
        (ASCII_PREFIX_ARABIC_INDIC, "'13٨****٨٠٠٠' is not a valid number (expected 11-digit mainland mobile)"),
        ("+86" + ASCII_PREFIX_FULL_WIDTH,
         "'+86****８０００' is not a valid number (expected 11-digit mainland mobile)"),
    ],
)
def test_validation_names_a_number_in_unicode_digits_as_invalid(phone: str, message: str) -> None:
    """The caller is told which recipient is wrong and why, masked, and it is not kept."""
    check = Checker()
    kept = check.phones(["13800000001", phone], limit=10)
    assert kept.phones == ("13800000001",)
    with pytest.raises(ValidationError) as err:
        check.done()
    assert err.value.problems == (Problem("phones[1]", message),)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (13812345678, "expected a string, got int"),
        (None, "expected a string, got NoneType"),
        (b"13812345678", "expected a string, got bytes"),
        ("", "is empty"),
        ("   ", "is empty"),
        (" 1381234 ", "'*******' is not a valid number"),
        ("13812345678x", "'138****678x' is not a valid number"),
    ],
)
def test_a_bad_value_is_described_masked(raw: object, text: str) -> None:
    """describe_bad says what is wrong without showing the number in clear."""
    assert phones.describe_bad(raw) == text


@pytest.mark.parametrize(
    "values",
    [["13800000001"], ["13800000001", "13900000002", "15000000003"], [f"138{i:08d}" for i in range(50)]],
    ids=["one", "three", "fifty"],
)
def test_the_fast_path_takes_any_count_of_clean_numbers(values: list[str]) -> None:
    """One, three or fifty distinct normalised numbers are recognised as needing no per-item loop."""
    assert phones.all_unique_mainland(values) is True


@pytest.mark.parametrize(
    "values",
    [
        ["138000000011", "1390000002"],  # right total length and newline count, split in the wrong place
        ["13800000001", "1390000000", "135000000003"],  # the same among three
    ],
)
def test_the_fast_path_refuses_items_of_the_wrong_length_even_when_the_total_fits(values: list[str]) -> None:
    """A 12- and a 10-character item together look like two 11-digit numbers by length alone."""
    assert phones.all_unique_mainland(values) is False
