"""Reading recipient records back as :class:`~dispatcher.deliveries.Delivery` values.

Three ways in, each a few round trips whatever the history holds:

* a job's records, chunk by chunk (``Dispatcher.status(job, phones=True)``);
* a lookup by the vendor's message id (``P:mid:…`` names the chunk) or by phone
  (the day indexes ``P:ph:…`` name the chunks holding it, one Lua call);
* the outcome feed ``P:out`` (entries name a chunk and the phones that became final).

The ledger writes records (:mod:`dispatcher.ledger_scripts`); this module only reads.
Raises ``redis.RedisError``.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dispatcher import ledger_scripts as lua
from dispatcher.deliveries import (
    RECORD_WIDTH,
    STATE_BYTES,
    TIME_BIAS_MS,
    Delivery,
    clean_id,
    code_table,
    read_record,
)
from dispatcher.keys import parse_chunk_member, phone_bucket_of
from dispatcher.ledger import PHONE_WIDTH, Ledger, as_text, stored_forms
from dispatcher.phones import describe_bad, normalise_international, normalise_mainland
from dispatcher.providers import registry
from dispatcher.validation import Checker

#: Chunks read per pipeline when walking a whole job.
CHUNKS_PER_READ = 50
_CHUNK_FIELDS = ("state", "since", "t0", "mid", "codes", "phones", "w")


@dataclass(frozen=True, slots=True)
class ChunkRead:
    """What one chunk holds for building its records (raw, from one pipeline)."""

    job_id: str
    n: int
    fields: list[Any]
    st: bytes
    rec: bytes


def deliveries_of(meta: dict[str, str], read: ChunkRead, indexes: Iterable[int] | None = None) -> list[Delivery]:
    """The records of a chunk's phones at ``indexes`` (all if ``None``), from what was read. Pure."""
    state, since, t0, mid, codes, phones, width = (as_text(v) if v is not None else "" for v in read.fields)
    if not phones:
        return []
    w = int(width or PHONE_WIDTH)
    size = len(phones) // w
    table = code_table(codes)
    since_ms, t0_ms = int(since or 0), int(t0 or since or 0)
    out = []
    for i in range(size) if indexes is None else indexes:
        if not 0 <= i < size:
            continue
        byte = chr(read.st[i]) if i < len(read.st) else ""
        phone_state = STATE_BYTES.get(byte, state if state in ("pending", "sending") else "sending")
        ci, at_ms = read_record(read.rec, i, t0_ms) if read.rec else (0, since_ms)
        entry = table[ci - 1] if 0 < ci <= len(table) else None
        out.append(Delivery(
            job_id=read.job_id, provider=meta.get("provider", ""), account=meta.get("account", ""),
            phone=_number(phones[i * w : (i + 1) * w], w), state=phone_state, code=entry.code if entry else "",
            detail=entry.detail if entry else "", message_id=mid, at_ms=at_ms, tag=meta.get("tag", "")))
    return out


def _number(stored: str, width: int) -> str:
    """A stored number without the zeros a wide chunk pads it with (see :data:`~dispatcher.ledger.WIDE_PHONE_WIDTH`)."""
    return stored if width == PHONE_WIDTH else stored.lstrip("0")


def newest_indexes(read: ChunkRead, limit: int) -> list[int] | None:
    """The indexes of the chunk's ``limit`` newest records in chunk order (``None``: every one, there
    being no more than ``limit``). Newest as :func:`_newest_first` orders them (a stable sort, so
    among equal times the earlier index first): the same ``limit`` it would keep of the whole chunk. Pure.
    """
    width = int(as_text(read.fields[6] or b"") or PHONE_WIDTH)
    size = len(read.fields[5] or b"") // width
    if size <= limit:
        return None
    # A record's time is t0 + offset - bias, or t0 when the offset is 0 (or the record is missing);
    # t0 is the chunk's, so the offsets alone order them. No record string: every time is `since`.
    whole = min(len(read.rec) // RECORD_WIDTH, size)
    keys = [o - TIME_BIAS_MS if o else 0 for _, o in struct.iter_unpack(">BI", read.rec[: whole * RECORD_WIDTH])]
    keys += [0] * (size - whole)
    return sorted(sorted(range(size), key=keys.__getitem__, reverse=True)[: max(0, limit)])


class RecordReader:
    """Reads records of the ledger it is given (its Redis, its key prefix)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.r = ledger.r
        self.keys = ledger.keys
        self._lookup_phone = ledger.r.register_script(lua.LOOKUP_PHONE)
        self._lookup_message = ledger.r.register_script(lua.LOOKUP_MESSAGE)

    def read_chunks(self, refs: Sequence[tuple[str, int]]) -> list[ChunkRead]:
        """Read chunks ``(job_id, n)`` in one pipeline."""
        pipe = self.r.pipeline(transaction=False)
        for job_id, n in refs:
            pipe.hmget(self.keys.chunk(job_id, n), list(_CHUNK_FIELDS))
            pipe.get(self.keys.chunk_states(job_id, n))
            pipe.get(self.keys.chunk_record(job_id, n))
        replies = pipe.execute()
        return [ChunkRead(job_id, n, replies[3 * i], replies[3 * i + 1] or b"", replies[3 * i + 2] or b"")
                for i, (job_id, n) in enumerate(refs)]

    def job_records(self, job_id: str) -> Iterator[Delivery]:
        """Every recipient's record of a job, in the order they were given (the suppressed ones last)."""
        meta = self.ledger.job_meta(job_id)
        chunks = int(meta.get("chunks") or 0) + int(meta.get("chunks_suppressed") or 0)
        for start in range(0, chunks, CHUNKS_PER_READ):
            for read in self.read_chunks([(job_id, n) for n in range(start, min(chunks, start + CHUNKS_PER_READ))]):
                yield from deliveries_of(meta, read)

    def by_message_id(self, message_id: str, *, provider: str | None = None, limit: int = 100) -> list[Delivery]:
        """Records of the submission a vendor message id names (one chunk per provider), newest first
        (one round trip, and one per job whose meta this process has not read yet)."""
        providers = [provider] if provider else list(registry.names())
        flat = self._lookup_message(keys=[self.keys.message(p, message_id) for p in providers],
                                    args=list(self.keys.chunk_parts()))
        found: list[Delivery] = []
        for i in range(0, len(flat), 10):
            job_id, n = parse_chunk_member(as_text(flat[i]))
            read = ChunkRead(job_id, n, flat[i + 1 : i + 8], flat[i + 8] or b"", flat[i + 9] or b"")
            meta = self.ledger.job_meta(read.job_id)
            if meta and (provider is None or meta.get("provider") == provider):
                # Only the records that can be among the newest `limit`: building all 1000 of a chunk
                # cost ~4 ms of Python a lookup, most of it for records the caller never gets.
                found += deliveries_of(meta, read, newest_indexes(read, limit))
        return _newest_first(found, limit)

    def by_phone(self, phone: str, *, provider: str | None = None, limit: int = 100,
                 now_ms: int | None = None) -> list[Delivery]:
        """Records of a phone in every job still kept, newest first (one round trip, and one per job
        whose meta this process has not read yet)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        found: list[Delivery] = []
        seen: set[tuple[str, int]] = set()
        # A number is stored as itself in a chunk of 11-digit numbers and zero-padded in a wide
        # one (international SMS): one search per form (same bucket: the same number).
        forms = stored_forms(phone)
        if not forms:
            return []
        flat = self._lookup_phone(keys=[self.keys.phone_days()],
                                  args=[now_ms, self.keys.phone_index_head(), phone_bucket_of(forms[0]),
                                        *self.keys.chunk_parts(), *forms])
        found += self._phone_records(flat, provider, seen)
        return _newest_first(found, limit)

    def chunks_holding(self, phone: str, *, provider: str, account: str) -> list[tuple[str, int, str, int]]:
        """``(job id, chunk, chunk state, since ms)`` of every chunk still kept that ``provider:account``
        sent or is sending to ``phone`` (one round trip, and one per job whose meta is not cached)."""
        forms = stored_forms(phone)
        if not forms:
            return []
        flat = self._lookup_phone(keys=[self.keys.phone_days()],
                                  args=[int(time.time() * 1000), self.keys.phone_index_head(),
                                        phone_bucket_of(forms[0]), *self.keys.chunk_parts(), *forms])
        found = []
        for i in range(0, len(flat), 12):
            job_id, n = as_text(flat[i]), int(flat[i + 1])
            meta = self.ledger.job_meta(job_id)
            if meta.get("provider") == provider and meta.get("account") == account and flat[i + 2] is not None:
                found.append((job_id, n, as_text(flat[i + 2]), int(flat[i + 3] or 0)))
        return sorted(set(found))

    def _phone_records(self, flat: list[Any], provider: str | None, seen: set[tuple[str, int]]) -> list[Delivery]:
        """The records LOOKUP_PHONE returned (chunks in ``seen`` skipped)."""
        found: list[Delivery] = []
        for i in range(0, len(flat), 12):
            form = as_text(flat[i + 11])
            job_id, n = as_text(flat[i]), int(flat[i + 1])
            meta = self.ledger.job_meta(job_id)
            if (job_id, n) in seen or not meta or (provider is not None and meta.get("provider") != provider):
                continue
            seen.add((job_id, n))
            state, since, t0, mid, codes, width = flat[i + 2 : i + 8]
            # The chunk as far as this phone goes: its own state byte and record, at index 0.
            read = ChunkRead(job_id, n, [state, since, t0, mid, codes, form.encode(), width],
                             flat[i + 8] or b"", flat[i + 9] or b"")
            found += deliveries_of(meta, read, [0])
        return found

    def feed(self, cursor: str, *, limit: int, block_ms: int | None) -> tuple[list[Delivery], str]:
        """Final outcomes after ``cursor`` (see :func:`parse_cursor`), oldest first, and the next cursor."""
        entry_id, skip = parse_cursor(cursor)
        stream = self.keys.outcome_feed()
        if entry_id == "$":
            last = self.r.xrevrange(stream, count=1)
            entry_id = as_text(last[0][0]) if last else "0-0"
            skip = -1
        found: list[Delivery] = []
        next_cursor = format_cursor(entry_id, skip)
        start, block = entry_id, block_ms
        while len(found) < limit:
            if skip >= 0:  # the cursor's own entry still has outcomes past `skip`
                entries = self.r.xrange(stream, start, start, count=1)
                if not entries:
                    skip = -1
                    continue
            else:
                reply: Any = self.r.xread({stream: start}, count=max(1, min(limit, 100)), block=block)
                entries = reply[0][1] if reply else []
                block = None  # wait only for the first batch
            if not entries:
                break
            reads = self.read_chunks([parse_chunk_member(as_text(_field(e, "m"))) for e in entries])
            for (raw_id, _), read in zip(entries, reads, strict=True):
                if len(found) >= limit:  # the page filled up on the entry before: this one is the next page's
                    return found, next_cursor
                eid = as_text(raw_id)
                meta = self.ledger.job_meta(read.job_id)
                indexes = _indexes(_field((raw_id, _), "i"))
                records = deliveries_of(meta, read, indexes) if meta else []
                records = records[skip + 1 :] if skip >= 0 else records
                offset = 0 if skip < 0 else skip + 1
                room = limit - len(found)
                if len(records) > room:
                    found += records[:room]
                    return found, format_cursor(eid, offset + room - 1)
                found += records
                next_cursor, skip, start = format_cursor(eid, -1), -1, eid
        return found, next_cursor


def check_lookup(*, message_id: object, phone: object, provider: object) -> tuple[str | None, str | None]:
    """``(message id, phone)`` of a lookup, cleaned (one of them ``None``). Pure.

    Raises ``ValidationError`` naming what is wrong: neither or both keys, a
    phone that is not a mainland mobile, an empty id, an unknown provider.
    """
    check = Checker()
    if (message_id is None) == (phone is None):
        check.add("lookup", "give message_id or phone (exactly one)")
    if provider is not None and provider not in registry.names():
        check.add("provider", f"unknown provider {provider!r}; one of {', '.join(registry.names())}")
    normal = None
    if phone is not None:
        # A mainland mobile (its +86 forms too), else a number with its country code (isms).
        normal = normalise_mainland(phone) or normalise_international(phone)
        if normal is None:
            check.add("phone", f"{describe_bad(phone)} (expected a mainland mobile or a number with its country code)")
    mid = clean_id(message_id) if message_id is not None else None
    if message_id is not None and not mid:
        check.add("message_id", "is empty")
    check.done()
    return mid, normal


def lookup_records(reader: RecordReader, *, message_id: str | None, phone: object, provider: str | None,
                   limit: int, now_ms: int) -> list[Delivery]:
    """:meth:`Dispatcher.lookup`: :func:`check_lookup`, then the lookup (Redis is asked only for a valid one)."""
    mid, normal = check_lookup(message_id=message_id, phone=phone, provider=provider)
    if normal is not None:
        return reader.by_phone(normal, provider=provider, limit=limit, now_ms=now_ms)
    return reader.by_message_id(mid or "", provider=provider, limit=limit)


def _field(entry: Any, name: str) -> bytes:
    fields = entry[1]
    value = fields.get(name.encode(), fields.get(name))
    return value if isinstance(value, bytes) else str(value or "").encode()


def _indexes(packed: bytes) -> list[int] | None:
    """An entry's phone indexes (two bytes each), or ``None`` for ``*`` (every phone)."""
    if packed == b"*":
        return None
    return [packed[i] * 256 + packed[i + 1] for i in range(0, len(packed) - 1, 2)]


def _newest_first(found: list[Delivery], limit: int) -> list[Delivery]:
    return sorted(found, key=lambda d: d.at_ms, reverse=True)[: max(0, limit)]


def format_cursor(entry_id: str, consumed: int) -> str:
    """The cursor after the outcome at index ``consumed`` of entry ``entry_id`` (-1: the whole entry). Pure."""
    return entry_id if consumed < 0 else f"{entry_id}/{consumed}"


def parse_cursor(cursor: str) -> tuple[str, int]:
    """``(entry id, outcomes of it already returned - 1)`` of a cursor; raises ``ValueError`` if not one. Pure."""
    text = str(cursor).strip()
    if text in ("0", "$"):
        return ("0-0" if text == "0" else "$"), -1
    entry_id, _, consumed = text.partition("/")
    ms, dash, seq = entry_id.partition("-")
    if not (ms.isascii() and ms.isdigit() and dash and seq.isascii() and seq.isdigit()) or (
            consumed and not (consumed.isascii() and consumed.isdigit())):
        raise ValueError(f"not an outcome cursor: {cursor!r} (pass \"0\", \"$\" or a cursor outcomes() returned)")
    return entry_id, int(consumed) if consumed else -1
