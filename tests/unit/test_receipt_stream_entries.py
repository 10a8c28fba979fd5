"""The receipt stream's entry format and how the applier folds entries into one script call (pure)."""

from __future__ import annotations

import pytest

from dispatcher.providers.results import Receipt
from dispatcher.receipt_stream import decode_packed, encode_entry, merge_packed


def _rx(phone: str, status: str, *, code: str | None = None, at_ms: int | None = None) -> Receipt:
    return Receipt("aiofish", "m-1", phone, status, status == "DELIVRD", at_ms, "j1.0.1", code)


def test_an_entry_decodes_to_what_was_encoded() -> None:
    groups = [("j1", 0, 1, [_rx("13800000001", "DELIVRD", at_ms=1_700_000_000_123),
                            _rx("13800000002", "UNDELIV", code="r:004")]),
              ("j1", 3, 2, [_rx("13800000009", "DELIVRD")])]
    fields = encode_entry("aiofish:demo", "push", groups, 2, 1_700_000_000_000)
    assert decode_packed(fields) == ("aiofish:demo", [
        ("j1", 0, 1, "13800000001,13800000002", "DF", "DELIVRD\t\nr:004\tUNDELIV", "1700000000123,", "m-1"),
        ("j1", 3, 2, "13800000009", "D", "DELIVRD\t", "", "m-1")], 2)


def test_an_entry_written_before_codes_were_kept_still_decodes() -> None:
    """A stream entry left by the previous release (five fields a group) is applied, with no codes or times."""
    fields = {"o": "opass:demo", "s": "push", "t": "1", "u": "0", "g": '[["j1",0,1,"13800000001,13800000002","DF"]]'}
    assert decode_packed(fields) == ("opass:demo", [("j1", 0, 1, "13800000001,13800000002", "DF", "\t\n\t", ",",
                                                     "")], 0)


def test_a_hostile_code_cannot_break_the_entry_apart() -> None:
    """Tabs and newlines are the code table's separators: a push carrying them is cleaned, not trusted."""
    groups = [("j1", 0, 1, [_rx("13800000001", "X\nY\tZ", code="1\n2")])]
    (_, _, _, _, _, codes, _, _), = decode_packed(encode_entry("aiofish:demo", "push", groups, 0, 1))[1]
    assert codes == "1 2\tX Y Z"


def test_an_entry_whose_phones_and_outcomes_differ_in_length_is_refused() -> None:
    fields = {"o": "opass:demo", "s": "push", "t": "1", "u": "0", "g": '[["j1",0,1,"13800000001,13800000002","D"]]'}
    with pytest.raises(ValueError):
        decode_packed(fields)


def test_merging_keeps_one_group_per_chunk_attempt_with_receipts_in_arrival_order() -> None:
    merged = merge_packed([("j", 0, 1, "a", "D", "A\t", "5", ""), ("j", 1, 1, "b", "F", "B\t", "", "m1"),
                           ("j", 0, 1, "c,d", "FD", "C\t\nD\t", "6,7", "m0"), ("j", 0, 2, "e", "D", "E\t", "", ""),
                           ("j", 1, 1, "", "", "", "", "")])
    assert merged == [("j", 0, 1, "a,c,d", "DFD", "A\t\nC\t\nD\t", "5,6,7", "m0"),
                      ("j", 1, 1, "b", "F", "B\t", "", "m1"), ("j", 0, 2, "e", "D", "E\t", "", "")]
