"""Numbers in gateway answers and pushes that no gateway would send: read as "no number", never a crash.

JSON gives Python ``inf`` for ``1e999`` and ``nan`` for ``NaN``, and ``int()`` reads other
scripts' digits and refuses text past 4300 digits with a bare ValueError: each of those
once escaped a parser as an exception no caller handles (an OverflowError from a balance
answer, a ValueError from a report's time).
"""

from __future__ import annotations

import json

import pytest

from dispatcher.errors import TransientError
from dispatcher.providers.aiofish import client as fish
from dispatcher.providers.aiofish import vsms as vsms
from dispatcher.providers.fields import MAX_DIGITS, whole_number
from dispatcher.providers.opass import client as opass

HUGE = "9" * 5000  # past int()'s 4300-digit limit for text


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (0, 0), (42, 42), (-7, -7), ("42", 42), (" 42 ", 42), ("-7", -7), (12.0, 12), (1638788400000.0, 1638788400000),
        (1638788400000, 1638788400000), ("1638788400000", 1638788400000),
        ("9" * 20, 10**20 - 1), (10**20 - 1, 10**20 - 1),
        # not a whole number a gateway can mean
        ("9" * 21, None), (10**20, None), (HUGE, None), (1e20, None),
        (True, None), (False, None), (12.5, None), (float("inf"), None), (float("-inf"), None), (float("nan"), None),
        ("", None), ("-", None), ("4 2", None), ("0x10", None), ("1e3", None), ("+5", None),
        ("١٢", None), ("１２", None), ("12\u0660", None),  # Arabic-Indic, full-width, mixed digits
        (None, None), ([], None), ({}, None),
    ],
)
def test_whole_number_reads_integers_and_refuses_everything_else(value: object, number: int | None) -> None:
    assert whole_number(value) == number


def test_twenty_digits_hold_every_epoch_millisecond_and_count_a_gateway_sends() -> None:
    assert MAX_DIGITS == 20 and len(str(2**63)) <= MAX_DIGITS


def test_an_opass_balance_of_1e999_reads_as_nothing_left_not_an_overflow() -> None:
    doc = json.loads('{"code": 200, "data": [{"itemName": "行业短信", "residueValue": 1e999},'
                     ' {"itemName": "会员短信", "residueValue": NaN}, {"itemName": "推广短信", "residueValue": 5}]}')
    balance = opass.parse_balance_answer(doc, account="t")
    assert [(i.name, i.remaining) for i in balance.items] == [("行业短信", 0), ("会员短信", 0), ("推广短信", 5)]


def test_opass_statistics_with_absurd_counts_read_as_zero() -> None:
    doc = json.loads('{"code": 200, "totalSize": "' + HUGE + '", "data": [{"sendDate": "2021-04-09",'
                     ' "totalCount": 1e999, "successCount": "١٢", "failCount": true, "noReceiptCount": "3"}]}')
    page = opass.parse_statistics_answer(doc, account="t", page=1, page_size=10)
    row = page.rows[0]
    assert (row.total, row.success, row.failed, row.no_receipt, page.total_size) == (0, 0, 0, 3, 0)


def test_an_aiofish_balance_past_the_digit_limit_is_an_unreadable_answer() -> None:
    with pytest.raises(TransientError, match="balance answer has no number"):
        fish.parse_balance({"revStat": "r:000", "revStatDes": f"您的短信余额为:{HUGE} 条", "code": 200}, account="t")
    with pytest.raises(TransientError, match="balance answer has no number"):
        fish.parse_balance({"revStat": "r:000", "revStatDes": "您的短信余额为:２６７０ 条", "code": 200}, account="t")


def test_an_aiofish_report_with_an_absurd_time_keeps_the_receipt_without_a_time() -> None:
    items = [{"smsId": "j1.0.1", "phoneNumber": "13800000001", "stat": "r:000", "statDes": "DELIVRD", "revTime": t}
             for t in (HUGE, "-1638788400000", 1e999, "1638788400000")]
    receipts = fish.parse_reports(json.loads(json.dumps({"code": 200, "revStat": "r:000", "resDetail": items},
                                                        allow_nan=True)), account="t")
    assert [r.at_ms for r in receipts] == [None, None, None, 1638788400000]


def test_a_vsms_template_status_reads_any_whole_number_from_zero() -> None:
    assert vsms.parse_template_status({"code": "success", "auditStatus": "0"}, "tpl", account="t").audit_status == 0
    assert vsms.parse_template_status({"code": "success", "auditStatus": 200}, "tpl", account="t").audit_status == 200


@pytest.mark.parametrize("status", [HUGE, "١", "-1", 1e999])
def test_a_vsms_template_status_that_is_no_number_is_an_unreadable_answer(status: object) -> None:
    with pytest.raises(TransientError, match="answer has no auditStatus"):
        vsms.parse_template_status({"code": "success", "auditStatus": status}, "tpl", account="t")
