"""Which records a lookup by message id builds: the chunk's newest ``limit``, the same the full sort keeps."""

from __future__ import annotations

import random

from dispatcher.deliveries import TIME_BIAS_MS
from dispatcher.records import ChunkRead, _newest_first, deliveries_of, newest_indexes

META = {"provider": "opass", "account": "demo", "tag": "bid-1"}
T0_MS = 1_796_187_600_000


def _chunk(offsets: list[int], *, size: int | None = None) -> ChunkRead:
    """A chunk of ``size`` phones (default: one per offset) whose records carry these time offsets
    (0 = no time of its own: t0; fewer offsets than phones: a short record string)."""
    size = len(offsets) if size is None else size
    phones = "".join(f"138{i:08d}" for i in range(size))
    rec = b"".join(bytes([1]) + (o + TIME_BIAS_MS if o else 0).to_bytes(4, "big") for o in offsets)
    fields = [b"accepted", str(T0_MS).encode(), str(T0_MS).encode(), b"577951956854276096", b"DELIVRD\t",
              phones.encode(), b"11"]
    return ChunkRead("job1", 0, fields, b"D" * size, rec)


def _both_ways(read: ChunkRead, limit: int) -> tuple[list[str], list[str]]:
    whole = _newest_first(deliveries_of(META, read), limit)
    chosen = _newest_first(deliveries_of(META, read, newest_indexes(read, limit)), limit)
    return [d.phone for d in whole], [d.phone for d in chosen]


def test_the_newest_records_of_a_chunk_are_the_ones_the_full_sort_keeps_ties_included() -> None:
    """With times drawn from a few minutes (opass times have minute resolution, so most are equal),
    some records without a time of their own (t0) and some before t0, the records built for a lookup
    are exactly those sorting every record would keep, in the same order, for several limits."""
    rng = random.Random(3)
    offsets = [rng.choice([0, -60_000, 0, 60_000, 120_000, 120_000, 180_000]) for _ in range(1000)]
    read = _chunk(offsets)
    for limit in (1, 7, 100, 999):
        whole, chosen = _both_ways(read, limit)
        assert chosen == whole, f"limit {limit}"


def test_a_short_record_string_counts_its_missing_records_at_t0() -> None:
    """Phones past the end of the record string read as t0 (as the full read does): they rank with the
    records whose offset is 0, not as the oldest or the newest."""
    read = _chunk([-5_000, 5_000, 0, -1_000], size=10)
    for limit in (2, 3, 6):
        whole, chosen = _both_ways(read, limit)
        assert chosen == whole, f"limit {limit}"


def test_a_chunk_no_bigger_than_the_limit_is_read_whole() -> None:
    """No selection when every record fits: ``None`` means all of them."""
    assert newest_indexes(_chunk([1, 2, 3]), 3) is None
    assert newest_indexes(_chunk([1, 2, 3]), 2) == [1, 2]
