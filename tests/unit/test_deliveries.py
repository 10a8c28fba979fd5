"""The recipient record's pure pieces: Delivery's face, the code table, the 5-byte record, feed cursors."""

from __future__ import annotations

import pytest

from dispatcher.deliveries import (
    MAX_CODE_CHARS,
    MAX_DETAIL_CHARS,
    TIME_BIAS_MS,
    CodeEntry,
    Delivery,
    clean_id,
    code_table,
    read_record,
)
from dispatcher.job_events import parse_member
from dispatcher.records import ChunkRead, _indexes, deliveries_of, format_cursor, parse_cursor

PHONE = "13812345678"


def _delivery(**changes: object) -> Delivery:
    fields: dict = dict(job_id="j1", provider="opass", account="demo", phone=PHONE, state="delivered",
                        code="DELIVRD", detail="", message_id="m1", at_ms=1_700_000_000_000, tag="order-7")
    fields.update(changes)
    return Delivery(**fields)


def test_a_deliverys_repr_masks_the_phone_and_to_dict_keeps_it_unless_masked() -> None:
    d = _delivery()
    assert PHONE not in repr(d) and "138****5678" in repr(d)
    assert d.to_dict()["phone"] == PHONE
    assert d.to_dict(masked=True)["phone"] == "138****5678"
    assert d.final and not _delivery(state="accepted").final


def test_a_hostile_code_is_cleaned_of_the_tables_separators_and_clipped() -> None:
    entry = CodeEntry.clean("E\t1\n2" + "x" * 100, "text\nwith\ttabs" + "y" * 200)
    assert "\t" not in entry.code + entry.detail and "\n" not in entry.code + entry.detail
    assert len(entry.code) == MAX_CODE_CHARS and len(entry.detail) == MAX_DETAIL_CHARS
    assert CodeEntry.unpack(entry.packed()) == entry


def test_a_receipts_entry_keeps_the_code_with_its_status_text_beside_it() -> None:
    assert CodeEntry.of_receipt("2", "UNDELIV") == CodeEntry("2", "UNDELIV")  # aiofish: stat + statDes
    assert CodeEntry.of_receipt(None, "UNDELIV") == CodeEntry("UNDELIV", "")  # opass: the status is the code
    assert CodeEntry.of_receipt("0", "0") == CodeEntry("0", "")
    assert CodeEntry.of_receipt(None, None) == CodeEntry("", "")


def test_a_message_id_from_a_push_is_clipped_and_has_no_spaces_or_control_characters() -> None:
    assert clean_id(" ab c\n" + "9" * 100) == "abc" + "9" * 61
    assert clean_id(None) == ""


def test_a_record_gives_its_code_and_time_and_no_record_means_the_chunks_time() -> None:
    t0 = 1_700_000_000_000
    offset = (t0 + 1234 - t0 + TIME_BIAS_MS).to_bytes(4, "big")
    earlier = (-500 + TIME_BIAS_MS).to_bytes(4, "big")
    rec = bytes([0]) + b"\0\0\0\0" + bytes([3]) + offset + bytes([1]) + earlier
    assert read_record(rec, 0, t0) == (0, t0)
    assert read_record(rec, 1, t0) == (3, t0 + 1234)
    assert read_record(rec, 2, t0) == (1, t0 - 500)  # a vendor's clock may be behind ours
    assert read_record(rec, 3, t0) == (0, t0)  # past the end: none of its own


def test_the_code_table_is_read_in_index_order_from_one() -> None:
    assert code_table("DELIVRD\t\nr:004\tno route") == [CodeEntry("DELIVRD", ""), CodeEntry("r:004", "no route")]
    assert code_table("") == []


def test_a_chunks_records_come_from_its_state_bytes_records_and_code_table() -> None:
    t0 = 1_700_000_000_000
    phones = "1380000000113800000002138000000031380000000413800000005"
    rec = (bytes([1]) + (10 + TIME_BIAS_MS).to_bytes(4, "big") + bytes([2]) + (20 + TIME_BIAS_MS).to_bytes(4, "big")
           + b"\0" * 15)
    read = ChunkRead("j1", 0, [b"accepted", b"5", str(t0).encode(), b"m9", b"DELIVRD\t\n60003\tblack list",
                               phones.encode(), b"11"], b"DXACU", rec)
    got = deliveries_of({"provider": "opass", "account": "demo", "tag": "t"}, read)
    assert [(d.phone, d.state, d.code, d.detail, d.at_ms) for d in got] == [
        ("13800000001", "delivered", "DELIVRD", "", t0 + 10),
        ("13800000002", "rejected", "60003", "black list", t0 + 20),
        ("13800000003", "accepted", "", "", t0),
        ("13800000004", "cancelled", "", "", t0),
        ("13800000005", "unknown", "", "", t0),
    ]
    assert {d.message_id for d in got} == {"m9"} and {d.tag for d in got} == {"t"}
    assert [d.phone for d in deliveries_of({}, read, [4, 0, 99])] == ["13800000005", "13800000001"]


def test_a_chunk_not_yet_accepted_reads_as_its_state_at_its_time() -> None:
    read = ChunkRead("j1", 0, [b"ambiguous", b"77", None, None, None, b"13800000001", b"11"], b"", b"")
    (d,) = deliveries_of({}, read)
    assert (d.state, d.at_ms, d.message_id, d.code) == ("sending", 77, "", "")


def test_feed_indexes_are_two_bytes_each_and_star_means_every_phone() -> None:
    assert _indexes(b"*") is None
    assert _indexes(bytes([0, 1, 1, 0, 7, 208])) == [1, 256, 2000]


@pytest.mark.parametrize("cursor", ["0", "$", "1700000000000-0", "1700000000000-3/41"])
def test_a_cursor_reads_back_as_it_was_written(cursor: str) -> None:
    entry, consumed = parse_cursor(cursor)
    if cursor not in ("0", "$"):
        assert format_cursor(entry, consumed) == cursor


@pytest.mark.parametrize("cursor", ["", "abc", "1-", "-1", "1-2/x", "1-2/-3", "１-2"])
def test_a_cursor_outcomes_never_returned_is_refused_naming_it(cursor: str) -> None:
    with pytest.raises(ValueError, match="not an outcome cursor"):
        parse_cursor(cursor)


def test_a_job_event_member_names_its_job_and_a_known_event() -> None:
    assert parse_member("ab12|finished") == ("ab12", "finished")
    assert parse_member("ab12|nope") is None and parse_member("|submitted") is None
