"""The receipt stream's entry format and how the applier folds entries into one script call (pure)."""

from __future__ import annotations

import pytest

from dispatcher.receipt_stream import decode_packed, encode_entry, merge_packed


def test_an_entry_decodes_to_what_was_encoded() -> None:
    groups = [("j1", 0, 1, [("13800000001", True), ("13800000002", False)]), ("j1", 3, 2, [("13800000009", True)])]
    fields = encode_entry("opass:demo", "push", groups, 2, 1_700_000_000_000)
    assert decode_packed(fields) == ("opass:demo", [("j1", 0, 1, "13800000001,13800000002", "DF"),
                                                    ("j1", 3, 2, "13800000009", "D")], 2)


def test_an_entry_whose_phones_and_outcomes_differ_in_length_is_refused() -> None:
    fields = {"o": "opass:demo", "s": "push", "t": "1", "u": "0", "g": '[["j1",0,1,"13800000001,13800000002","D"]]'}
    with pytest.raises(ValueError):
        decode_packed(fields)


def test_merging_keeps_one_group_per_chunk_attempt_with_receipts_in_arrival_order() -> None:
    merged = merge_packed([("j", 0, 1, "a", "D"), ("j", 1, 1, "b", "F"), ("j", 0, 1, "c,d", "FD"),
                           ("j", 0, 2, "e", "D"), ("j", 1, 1, "", "")])
    assert merged == [("j", 0, 1, "a,c,d", "DFD"), ("j", 1, 1, "b", "F"), ("j", 0, 2, "e", "D")]
