"""The chunk ledger: jobs, chunks and per-phone states in Redis, moved atomically.

A thin shell over the Lua scripts in :mod:`dispatcher.ledger_scripts`; every
method is one round trip. Times are epoch milliseconds passed in by the caller
(the limiter alone reads the Redis clock).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import structlog

from dispatcher import ledger_scripts as lua
from dispatcher.caps import CAPPED, CapRule
from dispatcher.deliveries import STATE_BYTES, STATES, CodeEntry, clean_id
from dispatcher.errors import StorageFullError
from dispatcher.keys import DAY_MS, JOB_TTL_S, PHONE_BUCKETS, Keys, chunk_member, phone_bucket_of
from dispatcher.phones import StoredNumbers
from dispatcher.providers.results import Receipt
from dispatcher.redact import build_repr, phones_repr, size_repr

log = structlog.get_logger("dispatcher.ledger")

COUNTERS = STATES
PHONE_STATES = STATE_BYTES
#: The state of a chunk of suppressed recipients, and their state byte (see :meth:`Ledger.create_job`).
SUPPRESSED_STATE = "suppressed"
SUPPRESSED_BYTE = next(b for b, state in STATE_BYTES.items() if state == SUPPRESSED_STATE)
#: The code a suppressed recipient's record carries unless the producer names another.
SUPPRESSED_ENTRY = CodeEntry(SUPPRESSED_STATE, "on the account's suppression list (unsubscribed)")
PHONE_WIDTH = 11
#: Width of a chunk holding a number that is not 11 digits long (international SMS): E.164's
#: longest, each number left-padded with zeros. No valid number starts with 0, so every
#: reader strips them (:func:`split_phones`) and a receipt's number is padded to the chunk's
#: width before it is compared. A chunk of 11-digit numbers is stored as before, unpadded.
WIDE_PHONE_WIDTH = 15
#: Default of ``SMSD_OUTCOME_FEED_MAX``: outcome feed entries kept (one per chunk and change).
OUTCOME_FEED_MAX = 100_000
#: Chunks cancelled per script call (each call holds Redis for ~0.1 ms a chunk).
CANCEL_CHUNKS_PER_CALL = 100
#: The job hash outlives its chunks by this much: a script that finds a chunk (or
#: its state string, whose TTL is copied from the chunk in whole seconds) then
#: always finds the job, and its HINCRBY cannot recreate an expired job hash as
#: a key with no TTL.
JOB_HASH_GRACE_S = 60
#: Jobs whose meta a process keeps (a few hundred bytes each).
META_CACHE_JOBS = 1024
#: The code a chunk is left with when its claim was undone for want of a replica's confirmation.
UNREPLICATED = "unreplicated"


@dataclass(frozen=True, slots=True)
class Claim:
    """Outcome of trying to move a chunk ``pending → sending``.

    ``status`` is ``ok`` (``attempt`` is the new attempt number; ``phones`` and
    ``payloads`` are the chunk's, read in the same step), ``wait`` (the rate
    limit's next slot is ``wait_s`` away, too far to reserve), ``paused``
    (``detail`` is the account's pause reason), ``skip`` (``detail`` is the
    chunk's current state: someone else owns it) or ``unreplicated`` (claimed,
    but no replica confirmed the claim in time, so it was undone: ``detail``
    says how many did; the chunk is pending again and must not be sent now), or ``capped`` (every phone is
    over a frequency cap: the chunk was recorded rejected, nothing is to be sent).
    ``capped`` of an ``ok`` claim are the indexes of its phones a cap holds back:
    :meth:`sendable` leaves them out, and the outcome records them ``rejected``.
    """

    status: str
    attempt: int = 0
    detail: str = ""
    phones: tuple[str, ...] = ()
    payloads: list[Any] | None = None
    #: ``ok``: how long until the rate-limit slot taken with the claim; ``wait``:
    #: how far away the next slot is (nothing was taken or claimed).
    wait_s: float = 0.0
    capped: tuple[int, ...] = ()

    def __repr__(self) -> str:
        return build_repr(self, status=repr(self.status), attempt=str(self.attempt), detail=repr(self.detail),
                          phones=phones_repr(self.phones), payloads=size_repr(self.payloads), wait_s=str(self.wait_s),
                          capped=str(len(self.capped)))

    def sendable(self) -> tuple[tuple[str, ...], list[Any] | None]:
        """The phones to send and their payloads: the chunk's, less those a frequency cap holds back."""
        if not self.capped:
            return self.phones, self.payloads
        held = set(self.capped)
        phones = tuple(p for i, p in enumerate(self.phones) if i not in held)
        payloads = None if self.payloads is None else [x for i, x in enumerate(self.payloads) if i not in held]
        return phones, payloads


def chunk_width(phones: Sequence[str]) -> int:
    """The width a chunk of these (valid, normalised) numbers is stored at. Pure."""
    return PHONE_WIDTH if all(len(p) == PHONE_WIDTH for p in phones) else WIDE_PHONE_WIDTH


def join_phones(phones: Sequence[str], width: int) -> str:
    """A chunk's numbers as stored: fixed ``width``, left-padded with zeros when wider than a number. Pure."""
    return "".join(phones) if width == PHONE_WIDTH else "".join(p.zfill(width) for p in phones)


_NUMBERS = re.compile(f".{{1,{PHONE_WIDTH}}}", re.S)


def split_phones(text: str, width: int) -> StoredNumbers:
    """A chunk's stored numbers back as numbers (padding stripped), marked as checked when stored. Pure."""
    if width == PHONE_WIDTH:
        return StoredNumbers(_NUMBERS.findall(text))  # the same slices as below, cut in C: a send's hot path
    return StoredNumbers(text[i : i + width].lstrip("0") for i in range(0, len(text), width))


def stored_forms(phone: str) -> list[str]:
    """The forms a normalised number may be stored under (unpadded in an 11-wide chunk, padded in a
    wide one): what a lookup by phone searches. Pure."""
    forms = [phone] if len(phone) == PHONE_WIDTH else []
    if len(phone) <= WIDE_PHONE_WIDTH:
        forms.append(phone.zfill(WIDE_PHONE_WIDTH))
    return forms


@dataclass(frozen=True, slots=True)
class ChunkData:
    """What the producer stores for one chunk: its phones and optional per-phone payloads.

    ``width`` is the stored width of its numbers (``None``: :data:`PHONE_WIDTH`, the
    mainland numbers every SMS job holds; an international job passes :func:`chunk_width`).
    """

    phones: Sequence[str]
    payloads: Sequence[Any] | None = None
    width: int | None = None

    def __repr__(self) -> str:
        return build_repr(self, phones=phones_repr(self.phones), payloads=size_repr(self.payloads))


class Ledger:
    """Jobs, chunks and per-phone states of sms-dispatch in one Redis."""

    def __init__(self, client: redis.Redis, keys: Keys | None = None, *, job_ttl_s: float = JOB_TTL_S,
                 outcome_feed_max: int = OUTCOME_FEED_MAX, wait_replicas: int = 0, wait_timeout_ms: int = 500) -> None:
        self.r = client
        #: Replicas that must hold a claim before :meth:`claim` returns it (Sentinel: ``WAIT``); 0 = none.
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self.keys = keys or Keys()
        self.outcome_feed_max = max(1, outcome_feed_max)
        #: Whole seconds (EXPIRE's unit), at least one.
        self.job_ttl_s = max(1, math.ceil(job_ttl_s))
        #: How much longer the job hash lives than its chunks (never more than doubling a short TTL).
        self.job_hash_grace_s = min(JOB_HASH_GRACE_S, self.job_ttl_s)
        self._claim = client.register_script(lua.CLAIM)
        self._release = client.register_script(lua.RELEASE)
        self._unclaim = client.register_script(lua.UNCLAIM)
        self._ambiguous = client.register_script(lua.AMBIGUOUS)
        self._accept = client.register_script(lua.ACCEPT)
        self._reject = client.register_script(lua.REJECT)
        self._apply = client.register_script(lua.APPLY_RECEIPTS)
        self._expire = client.register_script(lua.EXPIRE_AWAITING)
        self._cancel = client.register_script(lua.CANCEL)
        self._reroute = client.register_script(lua.REROUTE)
        self._route_status = client.register_script(lua.ROUTE_STATUS)
        self._index_phones = client.register_script(lua.INDEX_PHONES)
        self._unindex_phones = client.register_script(lua.UNINDEX_PHONES)
        self._meta: dict[str, dict[str, str]] = {}

    # -- producer side ------------------------------------------------------------

    def create_job(
        self,
        job_id: str,
        meta: Mapping[str, str],
        chunks: Iterable[ChunkData],
        *,
        now_ms: int,
        flush_every: int = 50,
        progress: Callable[[int], None] | None = None,
        due_ms: int | None = None,
        suppressed: Iterable[ChunkData] = (),
        suppressed_entry: CodeEntry = SUPPRESSED_ENTRY,
    ) -> int:
        """Store a job and its chunks (state ``pending``); return the chunk count (of chunks to send).

        Writes in pipelined batches of ``flush_every`` chunks, so a 1M-recipient
        job costs ~20 round trips, never one per recipient. The job hash is
        written last: a job is only visible (``P:jobs``) once all chunks exist.
        A ``due_ms`` in the future schedules the job (``P:z:scheduled``).
        Everything expires ``job_ttl_s`` after ``due_ms`` or ``now_ms``, the
        job hash ``job_hash_grace_s`` later; ``P:jobs`` drops expired jobs on the way.

        ``suppressed`` recipients are stored after them in chunks of their own, already final
        (state ``suppressed``, each with ``suppressed_entry`` as its code, in the phone index),
        counted in ``c:suppressed`` and the job's ``total``; they are never claimed (not in
        ``P:z:pending``; the job hash's ``chunks`` counts only the others, its ``chunks_suppressed``
        them). Once the job is stored they go on the outcome feed. A job with nothing left to
        send has its events queued here.

        Raises ``StorageFullError`` when Redis is at its ``maxmemory``: what was
        already written of the job is deleted first, so nothing of it remains.
        Other ``redis.RedisError`` pass through.
        """
        keys = self.keys
        # A scheduled job must outlive its send time by the full TTL.
        ttl_s = self.job_ttl_s + max(0, ((due_ms or now_ms) - now_ms) // 1000)
        job_no = int(self.r.incr(keys.job_sequence()))
        expires_ms = now_ms + (ttl_s + self.job_hash_grace_s) * 1000
        day = expires_ms // DAY_MS
        # The day's index outlives its last job by a minute: a lookup finds no ref to a job already gone.
        index_until_ms = (day + 1) * DAY_MS + 60_000
        pipe = self.r.pipeline(transaction=False)
        bucket_prefix = keys.phone_bucket(day, 0)[:-1]  # the day's bucket keys differ only in the number at the end
        total = suppressed_total = 0
        written = 0  # chunks written so far (both kinds): what a failed store deletes
        settled: list[str] = []  # the suppressed chunks' members, for the outcome feed

        def index(n: int, text: str, width: int) -> None:
            self._index_phones(
                keys=[keys.phone_jobs(day), keys.phone_days()],
                args=[index_until_ms // 1000, index_until_ms, day, job_no, job_id,
                      job_no.to_bytes(4, "big") + n.to_bytes(3, "big"), text, width, bucket_prefix, PHONE_BUCKETS],
                client=pipe)

        try:
            for n, chunk in enumerate(chunks):
                width = chunk.width or PHONE_WIDTH
                fields: dict[Any, Any] = {
                    "state": "pending",
                    "size": len(chunk.phones),
                    "attempt": 0,
                    "phones": join_phones(chunk.phones, width),
                    "w": width,
                    "since": now_ms,
                }
                if chunk.payloads is not None:
                    fields["payloads"] = json.dumps(list(chunk.payloads), ensure_ascii=False, separators=(",", ":"))
                key = keys.chunk(job_id, n)
                pipe.hset(key, mapping=fields)
                pipe.expire(key, ttl_s)
                pipe.zadd(keys.pending(), {chunk_member(job_id, n): due_ms or now_ms})
                index(n, fields["phones"], width)
                total += len(chunk.phones)
                written = n + 1
                if written % flush_every == 0:
                    pipe.execute()
                    if progress:
                        progress(total)
            count = written if total else 0
            for n, chunk in enumerate(suppressed, start=count):
                self._store_suppressed(pipe, job_id, n, chunk, suppressed_entry, now_ms=now_ms, ttl_s=ttl_s)
                index(n, join_phones(chunk.phones, chunk.width or PHONE_WIDTH), chunk.width or PHONE_WIDTH)
                suppressed_total += len(chunk.phones)
                settled.append(chunk_member(job_id, n))
                written = n + 1
                if (n + 1 - count) % flush_every == 0:
                    pipe.execute()
            job_fields: dict[Any, Any] = {**meta, "total": total + suppressed_total, "chunks": count,
                                          "created_ms": now_ms, "no": job_no}
            job_fields.update({f"c:{c}": 0 for c in COUNTERS})
            job_fields["c:pending"] = total
            if suppressed_total:
                job_fields["c:suppressed"] = suppressed_total
                job_fields["chunks_suppressed"] = written - count
            if not total and suppressed_total:
                # Nothing to send, so no script will ever see it submitted or finished: it is both now.
                job_fields.update({"ev:s": now_ms, "ev:f": now_ms})
                pipe.zadd(keys.job_events(), {f"{job_id}|submitted": now_ms, f"{job_id}|finished": now_ms})
            pipe.hset(keys.job(job_id), mapping=job_fields)
            pipe.expire(keys.job(job_id), ttl_s + self.job_hash_grace_s)
            pipe.zadd(keys.jobs(), {job_id: expires_ms})
            pipe.zremrangebyscore(keys.jobs(), "-inf", now_ms)
            if due_ms is not None and due_ms > now_ms:
                pipe.zadd(keys.scheduled(), {job_id: due_ms})
            pipe.execute()
        except redis.ResponseError as exc:
            if not refused_at_maxmemory(exc):
                raise
            pipe.reset()
            self.delete_job(job_id, chunks=written, indexed=(day, job_no))
            raise StorageFullError(
                "Redis is at its maxmemory and refuses new data: the job was not stored (nothing of it "
                "was kept or queued). Free memory or raise maxmemory (SMSD_REDIS_MAXMEMORY_MB), then send "
                "again.") from None
        self._feed_settled(job_id, settled)
        if progress:
            progress(total)
        return count

    def _feed_settled(self, job_id: str, members: Sequence[str]) -> None:
        """Put chunks stored final (suppressed) on the outcome feed, one entry each.

        After the job is stored, so a store refused at maxmemory leaves no entry behind (a
        stream entry cannot be taken back by its content); a feed refused now loses only these
        entries (the records are kept): logged, not raised, as the job is stored and queued.
        """
        if not members:
            return
        pipe = self.r.pipeline(transaction=False)
        for member in members:
            pipe.xadd(self.keys.outcome_feed(), {"m": member, "i": "*"}, maxlen=self.outcome_feed_max,
                      approximate=True)
        try:
            pipe.execute()
        except redis.OutOfMemoryError:
            log.warning("job.feed_refused", job_id=job_id, chunks=len(members))

    def _store_suppressed(self, pipe: Any, job_id: str, n: int, chunk: ChunkData, entry: CodeEntry, *,
                          now_ms: int, ttl_s: int) -> None:
        """Queue on ``pipe`` the writes of chunk ``n`` holding suppressed recipients: final from the start
        (every state byte ``S``, every record code ``entry`` at ``now_ms``)."""
        width = chunk.width or PHONE_WIDTH
        size = len(chunk.phones)
        key = self.keys.chunk(job_id, n)
        pipe.hset(key, mapping={"state": SUPPRESSED_STATE, "size": size, "attempt": 0,
                                "phones": join_phones(chunk.phones, width), "w": width, "since": now_ms,
                                "t0": now_ms, "codes": entry.packed()})
        pipe.expire(key, ttl_s)
        pipe.set(self.keys.chunk_states(job_id, n), SUPPRESSED_BYTE * size, ex=ttl_s)
        # Code index 1 (the table's one entry), time offset 0: "at the chunk's t0".
        pipe.set(self.keys.chunk_record(job_id, n), b"\x01\x00\x00\x00\x00" * size, ex=ttl_s)

    def delete_job(self, job_id: str, *, chunks: int, indexed: tuple[int, int] | None = None) -> None:
        """Remove a job, its first ``chunks`` chunks and every index entry naming them; ``indexed``
        = ``(day, job number)`` also takes its refs out of that day's phone index.

        Deletions first, which Redis accepts even at ``maxmemory`` (a phone
        index value shared with another job is rewritten shorter); raises ``redis.RedisError``.
        """
        keys = self.keys
        pipe = self.r.pipeline(transaction=False)
        for start in range(0, chunks, 500):
            ns = range(start, min(chunks, start + 500))
            if indexed is not None:
                self._unindex(job_id, ns, *indexed)
            pipe.delete(*(keys.chunk(job_id, n) for n in ns), *(keys.chunk_states(job_id, n) for n in ns),
                        *(keys.chunk_record(job_id, n) for n in ns))
            members = [chunk_member(job_id, n) for n in ns]
            for index in (keys.pending(), keys.sending(), keys.ambiguous(), keys.awaiting()):
                pipe.zrem(index, *members)
            pipe.execute()
        pipe.delete(keys.job(job_id))
        pipe.zrem(keys.jobs(), job_id)
        pipe.zrem(keys.scheduled(), job_id)
        pipe.zrem(keys.job_events(), f"{job_id}|submitted", f"{job_id}|finished")  # a job stored final
        pipe.execute()
        self._meta.pop(job_id, None)

    def _unindex(self, job_id: str, ns: Iterable[int], day: int, job_no: int) -> None:
        """Take chunks ``ns`` of a job out of the day's phone index (their phones read from the chunks)."""
        pipe = self.r.pipeline(transaction=False)
        for n in ns:
            pipe.hmget(self.keys.chunk(job_id, n), ["phones", "w"])
        for raw, raw_width in pipe.execute():
            text = as_text(raw or b"")
            if not text:
                continue
            width = int(as_text(raw_width or b"") or PHONE_WIDTH)
            buckets = [self.keys.phone_bucket(day, phone_bucket_of(text[i : i + width]))
                       for i in range(0, len(text), width)]
            self._unindex_phones(keys=[self.keys.phone_jobs(day), *buckets],
                                 args=[job_no, job_no.to_bytes(4, "big"), text, width])

    # -- state changes --------------------------------------------------------------

    def _chunk_keys(self, job_id: str, n: int) -> tuple[str, str, str]:
        return self.keys.chunk(job_id, n), self.keys.job(job_id), self.keys.chunk_states(job_id, n)

    def _outcome_keys(self) -> list[str]:
        return [self.keys.outcome_feed(), self.keys.job_events()]

    def claim(self, job_id: str, n: int, *, provider: str, account: str, now_ms: int,
              slot: tuple[Sequence[str], Sequence[float]] | None = None, claimer: str = "",
              caps: CapRule | None = None) -> Claim:
        """Move a chunk ``pending → sending`` unless its account is paused.

        With ``slot`` (:meth:`~dispatcher.limiter.RateLimiter.slot_script_args`)
        the rate-limit slot is taken in the same step: the chunk is claimed only
        if its slot could be reserved, and ``wait_s`` says when it is due.
        ``claimer`` (who sends it: worker node name and process id) is kept in
        the chunk's ``by`` field. A chunk of a cancelled job is cancelled here
        (status ``cancelled``), whoever reaches it first, the cancel or a sender.
        With ``caps`` (:func:`dispatcher.caps.rule_for`) each phone is counted
        against them in the same step; a phone over one is held back (``capped``),
        and a chunk of only such phones is recorded rejected here (status ``capped``).
        """
        chunk, job, _ = self._chunk_keys(job_id, n)
        slot_keys, slot_args = slot or ((), ())
        cap_args = caps.script_args(self.keys.cap_head(caps.scope, caps.priority, caps.epoch_s)) if caps else []
        keys = [chunk, job, self.keys.sending(), self.keys.paused(provider, account), self.keys.pending(), *slot_keys]
        args: list[Any] = [now_ms, chunk_member(job_id, n), *slot_args, *cap_args, claimer]
        if self.wait_replicas:
            reply, replicas = self._claim_replicated(keys, args)
        else:
            reply, replicas = self._claim(keys=keys, args=args), 0
        status, detail = as_text(reply[0]), as_text(reply[1])
        if status == "ok" and replicas < self.wait_replicas:
            # A failover now could promote a replica that never saw this claim, and the chunk
            # would be claimed and sent again: it must not leave on this claim. Undone (the
            # rate-limit slot stays spent); if the undo itself is lost with a failover, the
            # claim stays 'sending' unsent and goes the stuck sweep's way, never resent blindly.
            self._unclaim(keys=[chunk, job, self.keys.sending(), self.keys.pending()],
                          args=[now_ms, chunk_member(job_id, n), detail, UNREPLICATED])
            return Claim(UNREPLICATED, detail=f"{replicas} of {self.wait_replicas} replicas confirmed the claim "
                                              f"within {self.wait_timeout_ms} ms")
        if status == "cancelled":
            self.cancel_chunks(job_id, [n], now_ms=now_ms)
            return Claim("cancelled", detail="job cancelled")
        if status == CAPPED:
            # Claimed with nothing to send: recorded as the gateway's whole-chunk refusals are (each
            # phone keeps its own cap's entry), so it is counted, fed and final like any other.
            self.reject(job_id, n, attempt=int(detail), code=CAPPED, now_ms=now_ms,
                        detail="every recipient of the chunk over a frequency cap")
            return Claim(CAPPED, attempt=int(detail), detail="every recipient over a frequency cap")
        if status == "wait":
            return Claim("wait", wait_s=float(detail) / 1000.0)
        if status != "ok":
            return Claim(status, detail=detail)
        text, payloads = as_text(reply[2]), reply[3]
        width = int(as_text(reply[5])) if len(reply) > 5 and reply[5] else PHONE_WIDTH
        held = reply[6] if len(reply) > 6 else b""
        return Claim("ok", attempt=int(detail), phones=split_phones(text, width),
                     payloads=json.loads(payloads) if payloads else None, wait_s=float(reply[4]) / 1000.0,
                     capped=tuple(int.from_bytes(held[i : i + 2], "big") for i in range(0, len(held), 2)))

    def _claim_replicated(self, keys: Sequence[Any], args: Sequence[Any]) -> tuple[Any, int]:
        """Run the claim script and ``WAIT`` on one connection, in one round trip; return its reply and
        how many replicas hold it.

        ``WAIT`` counts the writes of its own connection, hence one pipeline. A
        retry after a dropped connection runs both again, on the new master after
        a failover; the claim script checks the chunk's state first, so a claim
        that did reach the replica answers ``skip`` there and is not sent twice.
        """
        for _ in range(2):
            pipe = self.r.pipeline(transaction=False)
            pipe.evalsha(self._claim.sha, len(keys), *keys, *args)
            pipe.wait(self.wait_replicas, self.wait_timeout_ms)
            reply, replicas = pipe.execute(raise_on_error=False)
            if isinstance(reply, redis.exceptions.NoScriptError):
                # A new master (a promoted replica) or a restarted one has no script cache.
                self.r.script_load(lua.CLAIM)
                continue
            for answer in (reply, replicas):
                if isinstance(answer, Exception):
                    raise answer
            return reply, int(replicas)
        raise redis.exceptions.NoScriptError("the claim script vanished twice after being loaded")

    def release(self, job_id: str, n: int, *, attempt: int, expected: str, code: str, now_ms: int) -> bool:
        """Move a chunk ``expected (sending|ambiguous) → pending`` to be sent again (``cancelled``
        instead if its job was cancelled); False if it was not in that state at that attempt."""
        chunk, job, st = self._chunk_keys(job_id, n)
        done = self._release(
            keys=[chunk, job, self.keys.sending(), self.keys.ambiguous(), self.keys.pending(), st,
                  self.keys.chunk_record(job_id, n), *self._outcome_keys()],
            args=[now_ms, chunk_member(job_id, n), expected, attempt, CodeEntry.clean(code).code,
                  self.outcome_feed_max, job_id],
        )
        return bool(done)

    def nudged(self, job_id: str, ns: Iterable[int], *, due_ms: int) -> None:
        """Record that tasks for pending chunks ``ns`` are queued, due at ``due_ms`` (one call)."""
        members = {chunk_member(job_id, n): due_ms for n in ns}
        if members:
            self.r.zadd(self.keys.pending(), members, xx=True)

    def mark_ambiguous(self, job_id: str, n: int, *, attempt: int, deadline_ms: int, code: str, now_ms: int) -> bool:
        """Move ``sending → ambiguous``; it is reconciled when ``deadline_ms`` passes."""
        chunk, _, _ = self._chunk_keys(job_id, n)
        done = self._ambiguous(
            keys=[chunk, self.keys.sending(), self.keys.ambiguous()],
            args=[now_ms, chunk_member(job_id, n), attempt, deadline_ms, code],
        )
        return bool(done)

    def accept(
        self, job_id: str, n: int, *, attempt: int, message_id: str, failed_indexes: Sequence[int], now_ms: int,
        failed_codes: Sequence[CodeEntry] | None = None, provider: str = "",
    ) -> str:
        """Record the gateway's acceptance; phones at ``failed_indexes`` become rejected, each with
        its code from ``failed_codes`` (same order). ``message_id`` is indexed under ``provider``
        (default: the job's) for :meth:`message_chunk`.

        Returns ``ok``, ``late`` (receipts had already proven acceptance), ``stale``
        (a newer attempt exists) or ``skip:<state>``.
        """
        chunk, job, st = self._chunk_keys(job_id, n)
        provider = provider or as_text(self.r.hget(job, "provider") or b"")
        codes = "\n".join(c.packed() for c in failed_codes or ())
        if failed_codes is None or len(failed_codes) != len(failed_indexes):
            codes = "\n".join("\t" for _ in failed_indexes)
        result = self._accept(
            keys=[chunk, job, st, self.keys.sending(), self.keys.ambiguous(), self.keys.awaiting(),
                  self.keys.chunk_record(job_id, n), self.keys.message(provider, message_id), *self._outcome_keys()],
            args=[now_ms, chunk_member(job_id, n), attempt, message_id, self.outcome_feed_max, job_id, codes,
                  *failed_indexes],
        )
        return as_text(result)

    def reject(self, job_id: str, n: int, *, attempt: int, code: str, now_ms: int, detail: str = "") -> bool:
        """Record that the gateway refused the whole chunk (every phone rejected with ``code``/``detail``)."""
        chunk, job, st = self._chunk_keys(job_id, n)
        done = self._reject(
            keys=[chunk, job, st, self.keys.sending(), self.keys.ambiguous(), self.keys.chunk_record(job_id, n),
                  *self._outcome_keys()],
            args=[now_ms, chunk_member(job_id, n), attempt, code, self.outcome_feed_max, job_id,
                  CodeEntry.clean(code, detail).packed()],
        )
        return bool(done)

    def cancel(self, job_id: str, *, now_ms: int) -> int:
        """Cancel a job: its pending recipients become ``cancelled`` (a scheduled job is taken off
        the schedule); chunks in flight are cancelled if they come back unsent. Returns how many
        recipients this call cancelled (0 the second time). Raises ``KeyError`` for an unknown job."""
        chunks = int(self.r.hget(self.keys.job(job_id), "chunks") or -1)
        if chunks < 0:
            raise KeyError(f"no job {job_id}")
        return self.cancel_chunks(job_id, range(chunks), now_ms=now_ms)

    def cancel_chunks(self, job_id: str, ns: Iterable[int], *, now_ms: int) -> int:
        """Mark the job cancelled and cancel those of chunks ``ns`` still pending, in calls of
        ``CANCEL_CHUNKS_PER_CALL``; return how many recipients. Raises ``KeyError`` for an unknown job."""
        keys, total = self.keys, 0
        ns = list(ns) or [-1]  # a job of no chunks still gets marked
        for start in range(0, len(ns), CANCEL_CHUNKS_PER_CALL):
            part = [n for n in ns[start : start + CANCEL_CHUNKS_PER_CALL] if n >= 0]
            chunk_keys = [k for n in part for k in (keys.chunk(job_id, n), keys.chunk_states(job_id, n),
                                                     keys.chunk_record(job_id, n))]
            done = int(self._cancel(
                keys=[keys.job(job_id), keys.pending(), keys.scheduled(), *self._outcome_keys(), *chunk_keys],
                args=[now_ms, job_id, self.outcome_feed_max, *(chunk_member(job_id, n) for n in part)]))
            if done < 0:
                raise KeyError(f"no job {job_id}")
            total += done
        return total

    def reroute_chunks(self, job_id: str, ns: Iterable[int], *, route_id: str, entry: CodeEntry,
                       now_ms: int) -> list[int]:
        """Take those of chunks ``ns`` still pending away from the job's account (a route's failover):
        each becomes ``cancelled`` with ``entry`` as its recipients' code, counted in the job's
        ``c:rerouted`` and in route send ``route_id``'s ``moving`` (until :meth:`routed_moved`),
        checked and moved in one step (``REROUTE``), so a chunk a worker claims is never also
        moved. Returns the chunks moved, in calls of ``CANCEL_CHUNKS_PER_CALL``."""
        keys, moved = self.keys, []
        ns = list(ns)
        for start in range(0, len(ns), CANCEL_CHUNKS_PER_CALL):
            part = ns[start : start + CANCEL_CHUNKS_PER_CALL]
            chunk_keys = [k for n in part for k in (keys.chunk(job_id, n), keys.chunk_states(job_id, n),
                                                     keys.chunk_record(job_id, n))]
            done: Any = self._reroute(
                keys=[keys.job(job_id), keys.pending(), *self._outcome_keys(), keys.route_job(route_id), *chunk_keys],
                args=[now_ms, job_id, self.outcome_feed_max, entry.packed(), *(chunk_member(job_id, n) for n in part)])
            moved += [int(as_text(n)) for n in done]
        return moved

    def routed_moved(self, route_id: str, job_id: str, owner: str, recipients: int) -> None:
        """Note job ``job_id`` (of ``owner``, ``provider:account``) in a route send and take the
        ``recipients`` it now holds out of ``moving``, in one step (MULTI)."""
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.keys.route_job(route_id), f"j:{job_id}", owner)
        if recipients:
            pipe.hincrby(self.keys.route_job(route_id), "moving", -recipients)
        pipe.execute()

    def route_counters(self, route_id: str, fields: Sequence[str]) -> tuple[dict[str, str], dict[str, list[int]]]:
        """A route send's hash and each of its jobs' ``fields`` (0 if unset), read in one step
        (``ROUTE_STATUS``). A job gone (expired) is left out."""
        reply: Any = self._route_status(keys=[self.keys.route_job(route_id)],
                                        args=[self.keys.job(""), *fields])
        flat = [as_text(v) for v in reply[0]]
        route = dict(zip(flat[::2], flat[1::2], strict=True))
        found = {}
        for at in range(1, len(reply), 2):
            values = reply[at + 1]
            if values[0] is not None:  # the first field is the job's total: gone with the job
                found[as_text(reply[at])] = [int(v or 0) for v in values]
        return route, found

    def apply_receipts(
        self, job_id: str, n: int, *, attempt: int, receipts: Sequence[ReceiptLike], owner: str, now_ms: int
    ) -> tuple[int, int, str]:
        """Apply ``(phone, delivered)`` receipts of one chunk attempt, idempotently.

        ``owner`` is ``provider:account`` of the hook or poll they came through.
        Returns ``(applied, ignored, transition)``; ``transition`` is e.g.
        ``ambiguous->accepted`` when the receipts proved an unknown submission.
        """
        return self.apply_receipt_groups([(job_id, n, attempt, receipts)], owner=owner, now_ms=now_ms)[0]

    def apply_receipt_groups(
        self,
        groups: Sequence[tuple[str, int, int, Sequence[ReceiptLike]]],
        *,
        owner: str,
        now_ms: int,
        unmatched: int = 0,
        ack: tuple[str, str, Sequence[str]] | None = None,
    ) -> list[tuple[int, int, str]]:
        """Apply ``(job_id, n, attempt, [receipt, …])`` groups in one atomic call, idempotently
        (a receipt is a :class:`~dispatcher.providers.results.Receipt` or a ``(phone, delivered)`` pair).

        Receipts are evidence, not commands: a group moves phones only if its
        chunk's job belongs to ``owner`` (``provider:account`` of the hook or poll
        the receipts came through) and it names an attempt that was claimed and
        may have reached the gateway (see ``APPLY_RECEIPTS``); anything else is
        counted in the stats and changes nothing. ``unmatched`` adds receipts
        whose id was not ours to the stats. ``ack`` = ``(stream, group, ids)``
        acknowledges and deletes those stream entries in the same atomic step.
        One round trip however many chunks the groups name. Returns
        ``(applied, ignored, transition)`` per group, in order. Raises ``redis.RedisError``.
        """
        packed = [(job_id, n, attempt, *pack_receipts(receipts)) for job_id, n, attempt, receipts in groups]
        return self.apply_packed_groups(packed, owner=owner, now_ms=now_ms, unmatched=unmatched, ack=ack)

    def apply_packed_groups(
        self,
        packed: Sequence[Packed],
        *,
        owner: str,
        now_ms: int,
        unmatched: int = 0,
        ack: tuple[str, str, Sequence[str]] | None = None,
    ) -> list[tuple[int, int, str]]:
        """:meth:`apply_receipt_groups` of groups already in the script's form (:data:`Packed`:
        phones comma-joined, one ``D``/``F`` per phone, codes and times; as the receipt stream
        stores them, so the applier neither splits nor joins them). Raises ``redis.RedisError``.
        """
        if not packed and not ack and not unmatched:
            return []
        keys = self.keys
        stream, group, ids = ack or (keys.receipt_stream(), "", ())
        provider = owner.partition(":")[0]
        script_keys = [keys.stats(), keys.sending(), keys.ambiguous(), keys.awaiting(), keys.pending(), stream,
                       *self._outcome_keys()]
        args: list[Any] = [now_ms, group, len(ids), *ids, unmatched, self.outcome_feed_max]
        for job_id, n, attempt, joined, outcomes, codes, times, mid in packed:
            script_keys += [keys.chunk(job_id, n), keys.job(job_id), keys.chunk_states(job_id, n),
                            keys.chunk_record(job_id, n), keys.message(provider, mid)]
            args += (chunk_member(job_id, n), attempt, joined, outcomes, owner, codes, times, mid, job_id)
        reply = as_text(self._apply(keys=script_keys, args=args))
        if not reply:
            return []
        return [(int(a), int(i), t) for a, i, t in (line.split(" ", 2) for line in reply.split(";"))]

    def expire_awaiting(self, job_id: str, n: int, *, now_ms: int) -> int:
        """Mark a chunk's phones still awaiting a receipt as ``unknown`` at ``now_ms``; return how many."""
        chunk, job, st = self._chunk_keys(job_id, n)
        return int(self._expire(keys=[chunk, job, st, self.keys.awaiting(), self.keys.chunk_record(job_id, n),
                                      *self._outcome_keys()],
                                args=[chunk_member(job_id, n), now_ms, self.outcome_feed_max, job_id]))

    # -- reads --------------------------------------------------------------------------

    def job(self, job_id: str) -> dict[str, str]:
        """The job's hash (meta and ``c:*`` counters) as text; empty if unknown."""
        return {as_text(k): as_text(v) for k, v in self.r.hgetall(self.keys.job(job_id)).items()}

    def job_meta(self, job_id: str) -> dict[str, str]:
        """The job's meta (kind, account, template, params…) without counters; empty if unknown.

        Meta never changes once a job is stored, so it is read from Redis once
        per process and job: a worker sending a 1000-chunk job asks once, not
        1000 times. Unknown jobs are not cached (they may be stored later).
        """
        meta = self._meta.get(job_id)
        if meta is None:
            meta = {k: v for k, v in self.job(job_id).items() if not k.startswith("c:")}
            if meta:
                if len(self._meta) >= META_CACHE_JOBS:
                    self._meta.pop(next(iter(self._meta)), None)  # oldest first: dicts keep insertion order
                self._meta[job_id] = meta
        return meta

    def counts(self, job_id: str) -> dict[str, int]:
        """Recipients per state, read in one call."""
        values = self.r.hmget(self.keys.job(job_id), [f"c:{c}" for c in COUNTERS])
        return {c: int(v or 0) for c, v in zip(COUNTERS, values, strict=True)}

    def chunk(self, job_id: str, n: int) -> dict[str, str]:
        """A chunk's hash as text (phones included); empty if unknown."""
        return {as_text(k): as_text(v) for k, v in self.r.hgetall(self.keys.chunk(job_id, n)).items()}

    def state_and_attempt(self, job_id: str, n: int) -> tuple[str, int]:
        """A chunk's state (``""`` if unknown) and attempt, without reading its phones (one HMGET)."""
        state, attempt = self.r.hmget(self.keys.chunk(job_id, n), ["state", "attempt"])
        return as_text(state or b""), int(attempt or 0)

    def phone_states(self, job_id: str) -> Iterator[tuple[str, str]]:
        """Every ``(phone, state)`` of a job, chunk by chunk (:class:`~dispatcher.records.RecordReader`'s view)."""
        from dispatcher.records import RecordReader  # it reads through this ledger

        return ((d.phone, d.state) for d in RecordReader(self).job_records(job_id))


#: A receipt as the ledger takes it: a parsed :class:`Receipt`, or ``(phone, delivered)`` (no code, no time).
ReceiptLike = Receipt | tuple[str, bool]
#: One chunk attempt's receipts in the form APPLY_RECEIPTS and the receipt stream take:
#: ``(job_id, chunk_no, attempt, "phone,phone,…", "DF…", "code<TAB>text\n…", "ms,ms,…", message_id)``.
Packed = tuple[str, int, int, str, str, str, str, str]


def pack_receipts(receipts: Sequence[ReceiptLike]) -> tuple[str, str, str, str, str]:
    """``(phones comma-joined, one "D"/"F" per phone, codes newline-joined, times comma-joined,
    the first message id)``: one chunk attempt's receipts as APPLY_RECEIPTS and the receipt
    stream take them. Pure.

    A phone holding a comma (a hostile push) goes as "" so the strings stay
    aligned: it matches nothing, and the receipts beside it still apply. Codes
    and texts are cleaned and clipped (:class:`CodeEntry`); a time that is not a
    sane epoch ms goes as "" (the ledger then uses its own clock).
    """
    phones, outcomes, codes, times = [], [], [], []
    mid = ""
    for item in receipts:
        if isinstance(item, Receipt):
            phones.append(item.phone)
            outcomes.append("D" if item.delivered else "F")
            codes.append(CodeEntry.of_receipt(item.code, item.status).packed())
            times.append(str(item.at_ms) if isinstance(item.at_ms, int) and 0 < item.at_ms < 10**14 else "")
            mid = mid or clean_id(item.message_id)
        else:
            phone, delivered = item
            phones.append(phone)
            outcomes.append("D" if delivered else "F")
            codes.append("\t")
            times.append("")
    joined = ",".join(phones)
    if joined.count(",") != len(phones) - 1:
        joined = ",".join("" if "," in phone else phone for phone in phones)
    return joined, "".join(outcomes), "\n".join(codes), ",".join(times), mid


def refused_at_maxmemory(exc: redis.ResponseError) -> bool:
    """Whether Redis refused a write for being at its ``maxmemory``: a plain command's ``OOM`` answer
    (``OutOfMemoryError``), or the same refusal of a script's first write, which comes back as a
    script error (the phone index script, when the command before it filled Redis). Pure."""
    return isinstance(exc, redis.OutOfMemoryError) or "OOM command not allowed" in str(exc)


def as_text(value: Any) -> str:
    """A Redis reply (bytes) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
