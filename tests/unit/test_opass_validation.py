"""opass input validation: one test per rule, each naming the field and item that is wrong."""

from __future__ import annotations

import pytest

from dispatcher.errors import ValidationError
from dispatcher.providers.opass.account import OpassAccount
from dispatcher.providers.opass.requests import plan_receipt_query, plan_send, plan_send_batch, plan_statistics
from dispatcher.validation import MAX_BID_CHARS

TEMPLATES = {
    "1": "您有一个事务需要处理。",
    "2": "您的验证码是{验证码,6}，5分钟内有效。",
    "3": "{姓名,10}您好，您本次收入{金额,10}元。",
    "4": "您本月排名第{名次,3}。",
}
OK = "13800000001"


def _account(batch_max: int = 1000) -> OpassAccount:
    return OpassAccount(name="unit", api_key="KEY", access_key="ACCESS", batch_max=batch_max)


def _fields(call, *args, **kw) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as err:
        call(*args, **kw)
    return err.value.fields


def test_a_phone_that_is_not_a_mainland_mobile_is_named_by_index() -> None:
    fields = _fields(plan_send, _account(), [OK, "12345", "2380000000x"], "T")
    assert fields == ("phones[1]", "phones[2]")


def test_a_bad_phone_is_masked_in_the_message() -> None:
    with pytest.raises(ValidationError) as err:
        plan_send(_account(), ["23800001234"], "T")
    assert "23800001234" not in str(err.value)
    assert "238****1234" in str(err.value)


def test_more_distinct_phones_than_batch_max_is_refused() -> None:
    phones = [f"138{i:08d}" for i in range(1001)]
    assert _fields(plan_send, _account(), phones, "T") == ("phones",)
    assert _fields(plan_send, _account(batch_max=2), phones[:3], "T") == ("phones",)


def test_duplicates_do_not_count_against_batch_max() -> None:
    plan = plan_send(_account(batch_max=2), [OK, OK, "13800000002"], "T")
    assert plan.phones == (OK, "13800000002")


@pytest.mark.parametrize("phones", [[], "13800000001", None])
def test_phones_must_be_a_non_empty_list(phones: object) -> None:
    assert _fields(plan_send, _account(), phones, "T") == ("phones",)


@pytest.mark.parametrize("code", ["", "  ", None, 123, " 1"])
def test_template_code_must_be_a_non_empty_string(code: object) -> None:
    assert _fields(plan_send, _account(), [OK], code) == ("template_code",)


def test_a_param_that_is_not_text_is_named_by_index() -> None:
    assert _fields(plan_send, _account(), [OK], "T", ["a", 1.5, None]) == ("params[1]", "params[2]")


def test_integer_params_are_accepted_as_text() -> None:
    assert plan_send(_account(), [OK], "T", [7, "x"]).fields["templateParam"] == '["7","x"]'


def test_a_param_with_a_nul_character_is_refused() -> None:
    assert _fields(plan_send, _account(), [OK], "T", ["ok", "a\x00b"]) == ("params[1]",)


def test_a_param_with_an_unpaired_surrogate_is_refused() -> None:
    assert _fields(plan_send, _account(), [OK], "T", ["\ud800x"]) == ("params[0]",)


def test_params_must_be_a_list_not_one_string() -> None:
    assert _fields(plan_send, _account(), [OK], "T", "v1") == ("params",)


def test_a_param_longer_than_any_template_is_refused_without_templates() -> None:
    assert _fields(plan_send, _account(), [OK], "T", ["x" * 501]) == ("params[0]",)


def test_a_bid_longer_than_64_characters_is_refused() -> None:
    plan_send(_account(), [OK], "T", bid="b" * MAX_BID_CHARS)
    assert _fields(plan_send, _account(), [OK], "T", bid="b" * (MAX_BID_CHARS + 1)) == ("bid",)


def test_a_bid_with_characters_unsafe_for_keys_is_refused() -> None:
    assert _fields(plan_send, _account(), [OK], "T", bid="a b") == ("bid",)


@pytest.mark.parametrize("code", ["12a", "-1", "１２", 1.0, ""])
def test_the_extend_code_must_be_digits(code: object) -> None:
    assert _fields(plan_send, _account(), [OK], "T", extend_code=code) == ("extend_code",)


def test_every_problem_is_reported_at_once() -> None:
    fields = _fields(plan_send, _account(), ["1", OK], "", [None], bid="x" * 65, extend_code="a")
    assert set(fields) == {"template_code", "bid", "extend_code", "phones[0]", "params[0]"}


# -- against known templates -------------------------------------------------------------------------


def test_an_unknown_template_is_refused_when_templates_are_configured() -> None:
    assert _fields(plan_send, _account(), [OK], "9", templates=TEMPLATES) == ("template_code",)


def test_the_param_count_must_match_the_templates_variables() -> None:
    assert _fields(plan_send, _account(), [OK], "3", ["张三"], templates=TEMPLATES) == ("params",)
    assert _fields(plan_send, _account(), [OK], "1", ["x"], templates=TEMPLATES) == ("params",)
    plan_send(_account(), [OK], "1", None, templates=TEMPLATES)


def test_a_value_longer_than_its_variables_max_len_is_named() -> None:
    assert _fields(plan_send, _account(), [OK], "3", ["张三", "12345678901"], templates=TEMPLATES) == ("params[1]",)
    plan_send(_account(), [OK], "3", ["张三", "1234567890"], templates=TEMPLATES)


def test_max_len_counts_characters_not_bytes() -> None:
    plan_send(_account(), [OK], "2", ["验证码六个字"], templates=TEMPLATES)


# -- sendBatch ---------------------------------------------------------------------------------------


def test_recipients_must_be_phone_params_pairs() -> None:
    fields = _fields(plan_send_batch, _account(), [(OK, ["a"]), OK, (OK,)], "T")
    assert fields == ("recipients[1]", "recipients[2]")
    assert _fields(plan_send_batch, _account(), "13800000001", "T") == ("recipients",)


def test_a_bad_phone_in_a_batch_is_named_by_recipient() -> None:
    assert _fields(plan_send_batch, _account(), [(OK, ["a"]), ("1380000000", ["b"])], "T") == ("recipients[1]",)


def test_batch_params_must_all_have_the_same_length_naming_the_first_odd_one() -> None:
    recipients = [(OK, ["a"]), ("13800000002", ["b"]), ("13800000003", ["c", "d"]), ("13800000004", [])]
    assert _fields(plan_send_batch, _account(), recipients, "T") == ("params[2]",)


def test_a_bad_value_in_a_batch_is_named_by_recipient_and_position() -> None:
    recipients = [(OK, ["a", "b"]), ("13800000002", ["c", "\x00"])]
    assert _fields(plan_send_batch, _account(), recipients, "T") == ("params[1][1]",)


def test_batch_params_are_checked_against_the_template() -> None:
    recipients = [(OK, ["张三", "10"]), ("13800000002", ["李四"]), ("13800000003", ["王五", "x" * 11])]
    assert _fields(plan_send_batch, _account(), recipients, "3", templates=TEMPLATES) == ("params[1]", "params[2][1]")


def test_more_distinct_phones_than_batch_max_is_refused_in_a_batch() -> None:
    recipients = [(f"138{i:08d}", []) for i in range(3)]
    assert _fields(plan_send_batch, _account(batch_max=2), recipients, "T") == ("recipients",)


# -- queries -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", [0, -1, True, "1", 1.0])
def test_statistics_page_must_be_a_positive_integer(page: object) -> None:
    assert _fields(plan_statistics, "2024-01-01", "2024-01-02", page, 10) == ("page",)


@pytest.mark.parametrize("size", [0, 51, "10", None])
def test_statistics_page_size_must_be_1_to_50(size: object) -> None:
    assert _fields(plan_statistics, "2024-01-01", "2024-01-02", 1, size) == ("page_size",)


@pytest.mark.parametrize("value", ["2024/01/01", "2024-02-30", "20240101", None, 20240101])
def test_statistics_dates_must_be_dates(value: object) -> None:
    assert _fields(plan_statistics, value, "2024-03-01") == ("start_date",)
    assert _fields(plan_statistics, "2024-01-01", value) == ("end_date",)


def test_statistics_end_date_must_not_precede_start_date() -> None:
    assert _fields(plan_statistics, "2024-02-01", "2024-01-31") == ("end_date",)


def test_receipt_message_ids_must_be_a_list_of_ids_without_commas() -> None:
    assert _fields(plan_receipt_query, "1,2") == ("message_ids",)
    assert _fields(plan_receipt_query, ["1", "2,3", "", 4]) == ("message_ids[1]", "message_ids[2]", "message_ids[3]")


def test_receipt_bid_is_checked_like_a_send_bid() -> None:
    assert _fields(plan_receipt_query, None, "b" * 65) == ("bid",)


# -- what the messages say ---------------------------------------------------------------------------
# A caller reads these to fix the input: each names the field (and item) and says what is expected.


def _problems(call, *args, **kw) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as err:
        call(*args, **kw)
    return [str(p) for p in err.value.problems]


def test_template_code_messages_say_what_is_wrong() -> None:
    assert _problems(plan_send, _account(), [OK], None) == ["template_code: must be a non-empty string"]
    assert _problems(plan_send, _account(), [OK], " 1") == ["template_code: must not start or end with spaces"]
    assert _problems(plan_send, _account(), [OK], "9", templates=TEMPLATES) == [
        "template_code: '9' is not one of the configured templates"
    ]


def test_batch_checks_its_template_code_like_a_send() -> None:
    """sendBatch refuses an empty or unknown template code with the same message as /message/send."""
    assert _problems(plan_send_batch, _account(), [(OK, [])], "") == ["template_code: must be a non-empty string"]
    assert _problems(plan_send_batch, _account(), [(OK, [])], "9", templates=TEMPLATES) == [
        "template_code: '9' is not one of the configured templates"
    ]


def test_a_batch_reports_its_template_code_and_phone_problems_at_once() -> None:
    """A bad code does not hide a bad phone: the caller fixes both in one go."""
    assert _problems(plan_send_batch, _account(), [(OK, []), ("1380000000", [])], "") == [
        "template_code: must be a non-empty string",
        "recipients[1]: '138****0000' is not a valid number (expected 11-digit mainland mobile)",
    ]


def test_recipient_pair_messages_say_a_pair_is_expected() -> None:
    assert _problems(plan_send_batch, _account(), OK, "T") == ["recipients: must be a list of (phone, params) pairs"]
    # A two-character string has two items but is not a pair; a number has none.
    assert _problems(plan_send_batch, _account(), [(OK, ["a"]), "13", 13800000002], "T") == [
        "recipients[1]: must be a (phone, params) pair",
        "recipients[2]: must be a (phone, params) pair",
    ]


def test_template_checked_param_messages_give_the_counts_and_the_variable() -> None:
    assert _problems(plan_send, _account(), [OK], "3", ["张三"], templates=TEMPLATES) == [
        "params: has 1 values; template 3 has 2 variables"
    ]
    assert _problems(plan_send, _account(), [OK], "3", ["张三", "12345678901"], templates=TEMPLATES) == [
        "params[1]: is 11 characters; {金额} allows 10"
    ]
    # A value that is not text is named by its position, also when the template is known.
    assert _problems(plan_send, _account(), [OK], "2", [None], templates=TEMPLATES) == [
        "params[0]: must be a string, got NoneType"
    ]


def test_statistics_messages_say_what_is_expected() -> None:
    assert _problems(plan_statistics, "2024/01/01", "2024-01-31", 0, 51) == [
        "start_date: must be a date or text like 2025-01-31",
        "page: must be an integer ≥ 1",
        "page_size: must be an integer from 1 to 50",
    ]
    assert _problems(plan_statistics, "2024-02-01", "2024-01-31") == [
        "end_date: 2024-01-31 is before start_date 2024-02-01"
    ]


def test_statistics_page_size_bounds_are_the_manuals_1_and_50() -> None:
    """The manual: pageSize 取值1~50; both ends are accepted."""
    assert plan_statistics("2024-01-01", "2024-01-01", 1, 1)["pageSize"] == 1
    assert plan_statistics("2024-01-01", "2024-01-01", 1, 50)["pageSize"] == 50


def test_receipt_query_messages_say_what_a_msg_id_must_be() -> None:
    assert _problems(plan_receipt_query, "1,2") == ["message_ids: must be a list of msgId strings"]
    assert _problems(plan_receipt_query, ["1", "2,3"]) == ["message_ids[1]: must be a non-empty msgId without commas"]


def test_a_value_that_is_not_text_does_not_shift_the_others_onto_the_wrong_variable() -> None:
    """Template 3 is {姓名,10}…{金额,10}: the second value is measured against {金额}, the count is the caller's."""
    assert _problems(plan_send, _account(), [OK], "3", [None, "12345678901"], templates=TEMPLATES) == [
        "params[0]: must be a string, got NoneType",
        "params[1]: is 11 characters; {金额} allows 10",
    ]
    assert _problems(plan_send, _account(), [OK], "3", [None], templates=TEMPLATES) == [
        "params[0]: must be a string, got NoneType",
        "params: has 1 values; template 3 has 2 variables",
    ]
    # An integer value is text to the gateway: its digits count against the variable's length.
    assert _problems(plan_send, _account(), [OK], "3", ["张三", 12345678901], templates=TEMPLATES) == [
        "params[1]: is 11 characters; {金额} allows 10"
    ]
    # Params that are not a list are named once, not also counted as zero values.
    assert _problems(plan_send, _account(), [OK], "3", "张三", templates=TEMPLATES) == [
        "params: must be a list of strings"
    ]


def test_a_batch_value_that_is_not_text_is_not_also_reported_as_a_count_mismatch() -> None:
    """Both recipients gave two values; only the bad one is named."""
    recipients = [(OK, ["a", "b"]), ("13800000002", ["c", None])]
    assert _problems(plan_send_batch, _account(), recipients, "T") == ["params[1][1]: must be a string, got NoneType"]
    recipients = [(OK, ["a", "b"]), ("13800000002", ["c"]), ("13800000003", None)]
    assert _problems(plan_send_batch, _account(), recipients, "T") == [
        "params[1]: every recipient needs the same number of values; "
        "found 0 (first at params[2]), 1 (first at params[1]), 2 (first at params[0])"
    ]


def test_params_that_are_not_a_list_are_named_once_also_against_a_template() -> None:
    assert _problems(plan_send, _account(), [OK], "2", 7, templates=TEMPLATES) == ["params: must be a list of strings"]
    assert _problems(plan_send, _account(), [OK], "4", "ab", templates=TEMPLATES) == [
        "params: must be a list of strings"
    ]


def test_a_value_that_is_not_text_is_not_measured_as_its_printed_form() -> None:
    """{名次,3}: None is named as not text, never as "None" being 4 characters long."""
    assert _problems(plan_send, _account(), [OK], "4", [None], templates=TEMPLATES) == [
        "params[0]: must be a string, got NoneType"
    ]
    assert _problems(plan_send, _account(), [OK], "4", [True], templates=TEMPLATES) == [
        "params[0]: must be a string, got bool"
    ]


def test_a_batch_row_that_is_not_a_list_is_named_once() -> None:
    """The count check skips a row already named as not a list (a number, or text)."""
    recipients = [(OK, ["a", "b"]), ("13800000002", 5), ("13800000003", "abc")]
    assert _problems(plan_send_batch, _account(), recipients, "T") == [
        "params[1]: must be a list of strings",
        "params[2]: must be a list of strings",
    ]
