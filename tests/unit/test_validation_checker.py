"""Every check of dispatcher.validation.Checker, one input each: the exact problems a caller is given.

Callers (the opass and aiofish clients, the job builders) pass these problems on unchanged in
ValidationError, so each field name and message below is what a user reads.
"""

from __future__ import annotations

import datetime as dt

import pytest

from dispatcher.errors import Problem, ValidationError
from dispatcher.validation import Checker, PhoneList

P1, P2, P3 = "13800000001", "13900000002", "15000000003"


def found(check: Checker) -> list[tuple[str, str]]:
    """The problems recorded so far, as (field, message)."""
    return [(p.field, p.message) for p in check.problems]


# -- done -------------------------------------------------------------------------------------


def test_done_without_problems_raises_nothing() -> None:
    """Valid input passes through: no exception."""
    Checker().done()


def test_done_raises_every_problem_in_the_order_found() -> None:
    """One ValidationError carries all problems, so a caller fixes everything in one go."""
    check = Checker()
    check.text(None, field="content")
    check.digits("x", field="extend")
    with pytest.raises(ValidationError) as err:
        check.done()
    assert err.value.problems == (
        Problem("content", "must be a string, got NoneType"),
        Problem("extend", "must contain digits only"),
    )


# -- phones -----------------------------------------------------------------------------------


@pytest.mark.parametrize("values", ["13800000001", None, 13800000001, {"13800000001": 1}])
def test_phones_must_be_a_list(values: object) -> None:
    """One string (or anything not a sequence) is refused as a whole, and nothing is kept."""
    check = Checker()
    assert check.phones(values, field="phones", limit=10) == PhoneList((), (), ())
    assert found(check) == [("phones", "must be a list of phone numbers")]


def test_phones_must_not_be_empty() -> None:
    """An empty list is refused under the caller's field name."""
    check = Checker()
    assert check.phones([], field="to", limit=10) == PhoneList((), (), ())
    assert found(check) == [("to", "must not be empty")]


@pytest.mark.parametrize("international", [False, True])
def test_valid_phones_are_kept_with_their_positions(international: bool) -> None:
    """Clean numbers are kept in order, each with its index in the caller's list."""
    check = Checker()
    assert check.phones([P1, P2, P3], limit=3, international=international) == PhoneList((P1, P2, P3), (), (0, 1, 2))
    assert found(check) == []


def test_mainland_phones_are_normalised_and_duplicates_reported() -> None:
    """+86 and spaces are removed; a number given twice is sent once and reported."""
    check = Checker()
    kept = check.phones(["+86" + P1, P2, P1, " " + P2 + " "], limit=2)
    assert kept == PhoneList((P1, P2), (P1, P2), (0, 1))
    assert found(check) == []  # duplicates do not count against the limit


def test_more_distinct_phones_than_the_limit_is_refused() -> None:
    """More distinct numbers than one call takes: the count and the limit are named."""
    check = Checker()
    check.phones([P1, P2, P3], field="phones", limit=2)
    assert found(check) == [("phones", "has 3 distinct numbers; at most 2 per call")]


@pytest.mark.parametrize(
    ("international", "value", "message"),
    [
        (False, "12812345678", "'128****5678' is not a valid number (expected 11-digit mainland mobile)"),
        (False, 13800000001, "expected a string, got int (expected 11-digit mainland mobile)"),
        (False, " ", "is empty (expected 11-digit mainland mobile)"),
        (True, "0123456789", "'012****6789' is not a valid number (expected international number with country code)"),
        (True, "+44 7911", "'+44****7911' is not a valid number (expected international number with country code)"),
    ],
)
def test_a_bad_phone_is_named_by_position_masked_with_what_was_expected(
    international: bool, value: object, message: str
) -> None:
    """The bad item is named phones[i], shown masked, with the kind of number expected."""
    check = Checker()
    check.phones([P1, value], field="phones", limit=10, international=international)
    assert found(check) == [("phones[1]", message)]


def test_a_phone_list_repr_shows_its_phones_masked() -> None:
    """The repr logs and tracebacks show: phones and duplicates masked and counted."""
    kept = PhoneList((P1, P2), (P1,), (0, 1))
    assert repr(kept) == "PhoneList(phones=(138****0001, 139****0002; 2 in all), duplicates=(138****0001; 1 in all))"


# -- text and signature -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problems"),
    [
        (5, [("content", "must be a string, got int")]),
        (None, [("content", "must be a string, got NoneType")]),
        ("", [("content", "must not be empty")]),
        (" \n\t", [("content", "must not be empty")]),
        ("a" * 501, [("content", "is 501 characters; at most 500")]),
        ("a\x00b", [("content", "contains a NUL character")]),
        ("a\ud800b", [("content", "contains an unpaired surrogate (not valid Unicode)")]),
        ("\x00" * 501, [("content", "is 501 characters; at most 500"), ("content", "contains a NUL character")]),
    ],
    ids=["int", "None", "empty", "blank", "501", "NUL", "surrogate", "long-and-NUL"],
)
def test_text_problems(value: object, problems: list[tuple[str, str]]) -> None:
    """Each text problem is named with its field; a long text with a NUL gets both."""
    check = Checker()
    check.text(value, field="content")
    assert found(check) == problems


def test_text_at_its_limit_is_kept_unchanged() -> None:
    """Exactly max_chars characters pass (characters, not bytes), one more does not."""
    check = Checker()
    assert check.text("字" * 500, field="content") == "字" * 500
    assert check.text(" hi ", field="content", max_chars=4) == " hi "
    check.text("hello", field="content", max_chars=4)
    assert found(check) == [("content", "is 5 characters; at most 4")]


@pytest.mark.parametrize(
    ("value", "ok"),
    [("【沙箱】您好", True), ("您好【a】", True), ("【" + "签" * 20 + "】hi", True), ("", True),
     ("您好", False), ("【】您好", False), ("【" + "签" * 21 + "】hi", False), ("[沙箱]您好", False)],
)
def test_domestic_content_must_carry_a_signature(value: str, ok: bool) -> None:
    """1-20 characters inside 【】 anywhere in the text; empty text is left to the text check."""
    check = Checker()
    check.signature(value, field="content")
    assert found(check) == ([] if ok else [("content", "must carry a 【signature】 (1-20 characters in 【】)")])


# -- ids, digits, send time -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problems"),
    [
        (None, []),
        ("a-Z_0.9:x", []),
        ("x" * 64, []),
        ("", [("bid", "must be a non-empty string")]),
        (123, [("bid", "must be a non-empty string")]),
        ("x" * 65, [("bid", "is 65 characters; at most 64")]),
        ("a b", [("bid", "may only contain letters, digits and _ . : -")]),
        ("订单1", [("bid", "may only contain letters, digits and _ . : -")]),
        ("/" * 65, [("bid", "is 65 characters; at most 64"), ("bid", "may only contain letters, digits and _ . : -")]),
    ],
)
def test_client_id_problems(value: object, problems: list[tuple[str, str]]) -> None:
    """A bid/smsId is optional, non-empty text of at most max_chars plain characters."""
    check = Checker()
    kept = check.client_id(value, field="bid", max_chars=64)
    assert found(check) == problems
    assert kept == (value if isinstance(value, str) and value else None)


@pytest.mark.parametrize(
    ("value", "kept", "problems"),
    [
        (None, None, []),
        ("0", "0", []),
        (0, "0", []),  # an int is taken as its digits, zero included
        (123, "123", []),
        ("1" * 12, "1" * 12, []),
        ("1" * 13, "1" * 13, [("extend", "is 13 digits; at most 12")]),
        (-1, None, [("extend", "must contain digits only")]),
        (True, None, [("extend", "must contain digits only")]),
        ("", None, [("extend", "must contain digits only")]),
        ("12a", None, [("extend", "must contain digits only")]),
        ("１２", None, [("extend", "must contain digits only")]),  # full-width digits
        (1.0, None, [("extend", "must contain digits only")]),
    ],
)
def test_digits_problems(value: object, kept: str | None, problems: list[tuple[str, str]]) -> None:
    """An extend code is ASCII digits (an int ≥ 0 is taken as its digits), at most 12."""
    check = Checker()
    assert check.digits(value, field="extend") == kept
    assert found(check) == problems


def test_digits_take_their_own_limit() -> None:
    """A caller's max_digits replaces the default 12."""
    check = Checker()
    assert check.digits("1234", field="sub_code", max_digits=4) == "1234"
    check.digits("12345", field="sub_code", max_digits=4)
    assert found(check) == [("sub_code", "is 5 digits; at most 4")]


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (None, None),
        ("2025-01-31 08:00:00", "2025-01-31 08:00:00"),
        (dt.datetime(2025, 1, 31, 8, 0, 0), "2025-01-31 08:00:00"),  # naive: China time already
        (dt.datetime(2025, 1, 31, 0, 30, 5, tzinfo=dt.UTC), "2025-01-31 08:30:05"),  # UTC+8
        (dt.datetime(2025, 1, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))), "2025-02-01 12:00:00"),
    ],
)
def test_a_send_time_is_given_to_the_gateway_in_china_time(value: object, kept: str | None) -> None:
    """Text and naive times are China time already; aware times are converted to UTC+8."""
    check = Checker()
    assert check.send_time(value, field="send_time") == kept
    assert found(check) == []


@pytest.mark.parametrize("value", ["2025-01-31T08:00:00", "2025-02-30 08:00:00", "tomorrow", "", 1738281600])
def test_a_send_time_that_is_no_time_is_refused(value: object) -> None:
    """Anything but a datetime or a real yyyy-MM-dd HH:mm:ss is refused with the format shown."""
    check = Checker()
    assert check.send_time(value, field="send_time") is None
    assert found(check) == [("send_time", "must be a datetime or text like 2025-01-31 08:00:00")]


# -- template parameters ----------------------------------------------------------------------


@pytest.mark.parametrize("values", ["abc", None, 7])
def test_params_must_be_a_list(values: object) -> None:
    """One string (or anything not a sequence) is refused as the whole value list."""
    check = Checker()
    assert check.params(values, field="params[0]") == []
    assert found(check) == [("params[0]", "must be a list of strings")]


def test_each_param_that_is_not_text_is_named_by_position_and_type() -> None:
    """ints are taken as text; bools, None and floats are refused, each by its index."""
    check = Checker()
    assert check.params([1, "a", None, 2.5, True], field="params[3]") == ["1", "a"]
    assert found(check) == [
        ("params[3][2]", "must be a string, got NoneType"),
        ("params[3][3]", "must be a string, got float"),
        ("params[3][4]", "must be a string, got bool"),
    ]


def test_param_length_count_and_characters_are_checked() -> None:
    """Too long, NUL, unpaired surrogate: each value named; too many values: the list named."""
    check = Checker()
    out = check.params(["abc", "abcd", "a\x00", "\udc00"], field="params", max_count=3, max_chars=3)
    assert out == ["abc", "abcd", "a\x00", "\udc00"]
    assert found(check) == [
        ("params[1]", "is 4 characters; at most 3"),
        ("params[2]", "contains a NUL character"),
        ("params[3]", "contains an unpaired surrogate (not valid Unicode)"),
        ("params", "has 4 values; at most 3"),
    ]


def test_params_at_their_limits_pass() -> None:
    """Exactly max_count values of exactly max_chars characters pass; quotes and newlines are kept."""
    check = Checker()
    assert check.params(["abc", 'say "hi"\n'], field="params", max_count=2, max_chars=9) == ["abc", 'say "hi"\n']
    assert found(check) == []


@pytest.mark.parametrize(
    ("first_seen", "problems"),
    [
        ({1: 0}, []),
        ({}, []),
        ({1: 0, 2: 1}, [("params[1]", "every recipient needs the same number of values; "
                                      "found 1 (first at params[0]), 2 (first at params[1])")]),
        ({1: 0, 2: 2, 0: 3}, [("params[2]", "every recipient needs the same number of values; "
                                            "found 0 (first at params[3]), 1 (first at params[0]), "
                                            "2 (first at params[2])")]),
    ],
)
def test_every_recipient_needs_the_same_number_of_values(
    first_seen: dict[int, int], problems: list[tuple[str, str]]
) -> None:
    """Given {count: row where first seen}, the problem names the first row that differs from
    row 0 and lists every count found."""
    check = Checker()
    check.same_length_seen(first_seen, field="params")
    assert found(check) == problems
