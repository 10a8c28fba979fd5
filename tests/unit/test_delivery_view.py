"""What `sms-dispatch status --phones` and `lookup` print for recipient records, built from constructed values."""

from __future__ import annotations

import datetime as dt
import json

import click
import pytest

from dispatcher.cli import account_argument
from dispatcher.deliveries import Delivery
from dispatcher.delivery_view import (
    as_json,
    job_rows,
    local_time,
    lookup_rows,
    status_deliveries,
    table,
    width,
)

PHONE, OTHER = "13812341234", "15900001111"
#: 2026-12-02 05:00:43.007 UTC: the ms part has a leading zero, so "7" shown as ".7" would be caught.
AT_MS = 1_796_187_643_007
BEIJING = dt.timezone(dt.timedelta(hours=8))
DELIVERED = Delivery("job1", "opass", "demo", PHONE, "delivered", "DELIVRD", "", "msg-77", AT_MS, "bid-9")
FAILED = Delivery("job1", "opass", "demo", OTHER, "failed", "UNDELIV", "空号", "msg-77", AT_MS + 1500, "bid-9")
PENDING = Delivery("job2", "aiofish", "demo", PHONE, "pending")


def test_local_time_is_iso_with_milliseconds_in_the_given_zone() -> None:
    """Epoch ms show as ISO 8601 with exactly three ms digits and the zone's offset; 0 (no time yet) as blank."""
    assert local_time(AT_MS, dt.UTC) == "2026-12-02T05:00:43.007+00:00"
    assert local_time(AT_MS, BEIJING) == "2026-12-02T13:00:43.007+08:00"
    assert local_time(0, BEIJING) == ""


def test_local_time_defaults_to_this_machines_zone() -> None:
    """Without a zone the machine's own offset is used (what an operator's clock shows)."""
    expected = dt.datetime.fromtimestamp(AT_MS / 1000).astimezone().isoformat(timespec="milliseconds")
    assert local_time(AT_MS) == expected


def test_job_table_shows_every_field_of_each_phone_masked() -> None:
    """One row per recipient with state, vendor code, message id, local time and vendor text; phones masked."""
    lines = job_rows([DELIVERED, FAILED], tz=BEIJING)
    assert lines[0].split() == ["PHONE", "STATE", "CODE", "MESSAGE", "ID", "TIME", "DETAIL"]
    assert lines[1].split() == ["138****1234", "delivered", "DELIVRD", "msg-77", "2026-12-02T13:00:43.007+08:00",
                                "-"]
    assert lines[2].split() == ["159****1111", "failed", "UNDELIV", "msg-77", "2026-12-02T13:00:44.507+08:00",
                                "空号"]
    assert PHONE not in "\n".join(lines) and OTHER not in "\n".join(lines)


def test_job_table_reveals_phones_only_when_asked() -> None:
    """``reveal=True`` prints the full numbers."""
    lines = job_rows([DELIVERED, FAILED], reveal=True, tz=BEIJING)
    assert lines[1].startswith(PHONE) and lines[2].startswith(OTHER)


def test_a_record_with_no_vendor_word_yet_shows_dashes_not_blanks() -> None:
    """A pending recipient has no code, message id or time: each cell shows '-' so the columns stay readable."""
    (_, row) = job_rows([PENDING], tz=BEIJING)
    assert row.split() == ["138****1234", "pending", "-", "-", "-", "-"]


def test_lookup_table_names_job_account_and_tag() -> None:
    """A lookup row also carries the job, provider:account and the caller's tag, time first."""
    lines = lookup_rows([FAILED, PENDING], tz=BEIJING)
    assert lines[0].split() == ["TIME", "JOB", "ACCOUNT", "PHONE", "STATE", "CODE", "MESSAGE", "ID", "TAG", "DETAIL"]
    assert lines[1].split() == ["2026-12-02T13:00:44.507+08:00", "job1", "opass:demo", "159****1111", "failed",
                                "UNDELIV", "msg-77", "bid-9", "空号"]
    assert lines[2].split() == ["-", "job2", "aiofish:demo", "138****1234", "pending", "-", "-", "-", "-"]


def test_columns_line_up_when_a_cell_holds_wide_characters() -> None:
    """A 汉字 takes two terminal columns, so the next column starts at the same screen column on every line."""
    lines = table(("A", "B"), [("空号", "x"), ("abcd", "y"), ("ab", "z")])
    assert lines == ["A     B", "空号  x", "abcd  y", "ab    z"]
    assert width("空号abc") == 7


def test_a_vendor_text_cannot_break_the_table_or_drive_the_terminal() -> None:
    """Newlines and escape characters in a vendor's text become spaces: one record stays one line."""
    hostile = Delivery("job1", "opass", "demo", PHONE, "failed", "X", "bad\nline\x1b[2J", "m", AT_MS)
    lines = job_rows([hostile], tz=BEIJING)
    assert len(lines) == 2
    assert "\x1b" not in lines[1] and lines[1].endswith("bad line [2J")


def test_json_has_every_field_and_masks_phones_unless_revealed() -> None:
    """JSON rows are the Delivery's fields; the phone is masked unless ``reveal``, everything else unchanged."""
    masked = as_json([FAILED])
    assert masked == [{"job_id": "job1", "provider": "opass", "account": "demo", "phone": "159****1111",
                       "state": "failed", "code": "UNDELIV", "detail": "空号", "message_id": "msg-77",
                       "at_ms": AT_MS + 1500, "tag": "bid-9"}]
    assert as_json([FAILED], reveal=True)[0]["phone"] == OTHER
    assert OTHER not in json.dumps(masked)


def test_status_entries_of_either_form_become_deliveries() -> None:
    """``(phone, state)`` pairs (today's status) and Delivery values (the record) both render."""
    pairs = status_deliveries("job1", "opass", "demo", [(PHONE, "accepted")])
    assert pairs == [Delivery("job1", "opass", "demo", PHONE, "accepted")]
    assert status_deliveries("job1", "opass", "demo", [DELIVERED]) == [DELIVERED]


@pytest.mark.parametrize(("args", "expected"), [
    pytest.param(("opass", "acct1"), ("opass", "acct1"), id="two-arguments"),
    pytest.param(("opass:acct1", None), ("opass", "acct1"), id="provider-colon-account"),
])
def test_an_account_is_named_either_way(args: tuple[str, str | None], expected: tuple[str, str]) -> None:
    """`pause opass acct1` and `pause opass:acct1` name the same account."""
    assert account_argument(*args) == expected


@pytest.mark.parametrize("args", [
    pytest.param(("opass", None), id="no-account"),
    pytest.param(("opass:", None), id="empty-account"),
    pytest.param((":acct1", None), id="empty-provider"),
    pytest.param(("opass:acct1", "acct1"), id="both-forms"),
])
def test_a_half_named_account_is_a_usage_error(args: tuple[str, str | None]) -> None:
    """A missing part, or both forms at once, is refused with the accepted forms named."""
    with pytest.raises(click.UsageError, match="PROVIDER ACCOUNT or PROVIDER:ACCOUNT"):
        account_argument(*args)
