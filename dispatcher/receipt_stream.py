"""Receipts recorded first, applied behind the answer: one Redis stream, one consumer group.

The webhook and the receipt polls :func:`record` what they received (one
``XADD``) and answer or move on; appliers (a thread in every Celery worker,
:class:`StreamApplier`) read entries in batches through the consumer group
``apply`` and apply them with the ledger's script, which acknowledges and
deletes those entries in the same atomic step. So:

* the webhook's answer time does not depend on how many receipts a push
  carries or how busy the ledger is;
* a pulled answer (each receipt is returned by the gateway only once) is on
  the stream before anything can fail applying it;
* an entry read by an applier that died stays pending in the group, and any
  applier claims it after ``claim_idle_ms`` (``XAUTOCLAIM``); an entry is applied
  and deleted in one step, so a receipt recorded is applied once, whatever
  crashes in between.

Entries hold ids, phones and outcomes, never message text. Raises ``redis.RedisError``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import structlog

from dispatcher import metrics
from dispatcher.ledger import Ledger, Packed, as_text, pack_receipts
from dispatcher.providers.results import Receipt
from dispatcher.receipts import MAX_RECEIPTS_PER_CALL, Applied, Group, apply_packed, group_receipts, owner_of
from dispatcher.redact import build_repr, size_repr

log = structlog.get_logger("dispatcher.receipt_stream")

GROUP = "apply"
#: Entries read per batch: 100 pushes of 100 receipts, or a few pull answers.
BATCH_ENTRIES = 100
#: An entry pending this long with a consumer is taken to have lost it
#: (``SMSD_RECEIPT_CLAIM_IDLE_MS``; the drills shorten it).
CLAIM_IDLE_MS = 15_000


def encode_entry(owner: str, source: str, groups: Sequence[Group], unmatched: int, now_ms: int) -> dict[str, str]:
    """The stream fields of one push or pull answer. Pure.

    ``g`` is ``[[job, chunk, attempt, "phone,phone", "DF", codes, times, message_id], …]``
    (:data:`~dispatcher.ledger.Packed`): the shape the ledger's script takes, so the applier only joins.
    """
    packed = [[job, n, attempt, *pack_receipts(receipts)] for job, n, attempt, receipts in groups]
    return {"o": owner, "s": source, "t": str(now_ms), "u": str(unmatched),
            "g": json.dumps(packed, separators=(",", ":"))}


def decode_packed(fields: dict[Any, Any]) -> tuple[str, list[Packed], int]:
    """``(owner, packed groups, unmatched)`` of one entry, phones left joined; raises ``ValueError``
    if it is not one we wrote. Pure."""
    text = {as_text(k): as_text(v) for k, v in fields.items()}
    try:
        packed: list[Packed] = []
        for group in json.loads(text["g"]):
            # Entries of a release before codes and times were kept have five fields.
            job, n, attempt, phones, outcomes, codes, times, mid = (*group, *_NO_CODES)[:8]
            if not all(isinstance(v, str) for v in (phones, outcomes, codes, times, mid)) or (
                    phones.count(",") + 1 if phones else 0) != len(outcomes):
                raise ValueError("phones and outcomes differ in length")
            if len(group) == 5:
                codes, times = "\n".join("\t" for _ in outcomes), ",".join("" for _ in outcomes)
            packed.append((str(job), int(n), int(attempt), phones, outcomes, codes, times, mid))
        return text["o"], packed, int(text.get("u") or 0)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a receipt entry: {type(exc).__name__}") from None


_NO_CODES = ("", "", "")


def _source_of(fields: dict[Any, Any]) -> str:
    """The ``s`` field of an entry (where its receipts came from), ``""`` if it has none. Pure."""
    return as_text(fields.get(b"s", fields.get("s", b"")))


def merge_packed(packed: Iterable[Packed]) -> list[Packed]:
    """The groups of several entries with one group per chunk attempt, receipts in arrival order. Pure.

    Entries of interleaved pushes name the same chunks again and again; the
    ledger's script pays ~20 µs per chunk visit (it reads the chunk's phones,
    index and states), so one visit per chunk a call instead of one per entry.
    """
    merged: dict[tuple[str, int, int], tuple[list[str], list[str], list[str], list[str], list[str]]] = {}
    for job, n, attempt, phones, outcomes, codes, times, mid in packed:
        if not outcomes:
            continue
        parts = merged.get((job, n, attempt))
        if parts is None:
            merged[(job, n, attempt)] = ([phones], [outcomes], [codes], [times], [mid])
        else:
            for part, value in zip(parts, (phones, outcomes, codes, times, mid), strict=True):
                part.append(value)
    return [(job, n, attempt, ",".join(phones), "".join(outcomes), "\n".join(codes), ",".join(times),
             next((m for m in mids if m), ""))
            for (job, n, attempt), (phones, outcomes, codes, times, mids) in merged.items()]


def record(client: redis.Redis, stream: str, provider: str, account: str, receipts: Iterable[Receipt], *,
           source: str, now_ms: int) -> int:
    """Append the receipts that came through ``provider:account`` to the stream; return how many.

    One ``XADD``. Nothing is applied here. Raises ``redis.RedisError`` (the
    caller answers the vendor 503 so it pushes again; a poll keeps nothing).
    """
    groups, unmatched = group_receipts(receipts)
    count = unmatched + sum(len(g[3]) for g in groups)
    if count:
        client.xadd(stream, encode_entry(owner_of(provider, account), source, groups, unmatched, now_ms))  # type: ignore[arg-type]
        metrics.receipts_recorded(provider, account, source, count)
    return count


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry, decoded."""

    entry_id: str
    owner: str
    groups: list[Packed]  # phones: the repr shows ids and counts only
    unmatched: int
    #: Where its receipts came from (``push``, ``pull``, ``query``): the metrics' label.
    source: str = ""

    def __repr__(self) -> str:
        return build_repr(self, entry_id=repr(self.entry_id), owner=repr(self.owner), groups=size_repr(self.groups),
                          receipts=str(self.size))

    @property
    def size(self) -> int:
        """Receipts in the entry."""
        return self.unmatched + sum(len(g[4]) for g in self.groups)


def plan_calls(entries: Sequence[Entry], most: int = MAX_RECEIPTS_PER_CALL) -> list[list[Entry]]:
    """Whole entries of one owner and source per script call, about ``most`` receipts a call (one big
    entry alone). Pure. (An account's receipts come one way, pushed or pulled, so keeping the
    sources apart, for the metrics, rarely makes a second call.)"""
    calls: list[list[Entry]] = []
    open_calls: dict[tuple[str, str], tuple[list[Entry], list[int]]] = {}
    for entry in entries:
        current = open_calls.get((entry.owner, entry.source))
        if current is None or (current[0] and current[1][0] + entry.size > most):
            current = ([], [0])
            open_calls[(entry.owner, entry.source)] = current
            calls.append(current[0])
        current[0].append(entry)
        current[1][0] += entry.size
    return calls


class StreamApplier:
    """Applies recorded receipts from the stream as one consumer of the group ``apply``."""

    def __init__(self, ledger: Ledger, consumer: str, *, batch_entries: int = BATCH_ENTRIES,
                 claim_idle_ms: int = CLAIM_IDLE_MS, clock_ms: Callable[[], int] | None = None) -> None:
        self.ledger = ledger
        self.r = ledger.r
        self.stream = ledger.keys.receipt_stream()
        self.consumer = consumer
        self.batch_entries = batch_entries
        self.claim_idle_ms = claim_idle_ms
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._last_claim_s = 0.0
        self._own_pending_checked = False
        #: Entries the last :meth:`step` read.
        self.last_read = 0
        #: Called after every step of :meth:`run` (at least once per ``block_ms``): the worker
        #: hands out job events here, so an app hears of them within about a second.
        self.after_step: Callable[[], None] | None = None

    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) if missing; harmless if they exist."""
        try:
            self.r.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _read(self, block_ms: int | None) -> list[tuple[Any, dict[Any, Any]]]:
        """The next entries: our own unacknowledged ones first, then stale ones of dead consumers, then new."""
        if not self._own_pending_checked:
            mine = self._xread("0", None)
            if mine:
                return mine
            self._own_pending_checked = True
        if time.monotonic() - self._last_claim_s > self.claim_idle_ms / 3000:
            self._last_claim_s = time.monotonic()
            reply: Any = self.r.xautoclaim(self.stream, GROUP, self.consumer, self.claim_idle_ms, "0-0",
                                           count=self.batch_entries)
            stale = [e for e in reply[1] if e and e[1]]
            if stale:
                log.warning("receipts.claimed_stale", entries=len(stale))
                return stale
        return self._xread(">", block_ms)

    def _xread(self, start: str, block_ms: int | None) -> list[tuple[Any, dict[Any, Any]]]:
        reply: Any = self.r.xreadgroup(GROUP, self.consumer, {self.stream: start}, count=self.batch_entries,
                                       block=block_ms)
        return list(reply[0][1]) if reply else []

    def step(self, *, block_ms: int | None = 1000) -> Applied:
        """Read one batch (waiting up to ``block_ms`` for one) and apply it; return what it did.

        Raises ``redis.RedisError``; entries read but not applied stay pending
        and are read again (by this consumer first, or claimed by another).
        """
        raw = self._read(block_ms)
        self.last_read = len(raw)
        entries: list[Entry] = []
        corrupt: list[str] = []
        for entry_id, fields in raw:
            try:
                owner, groups, unmatched = decode_packed(fields)
            except ValueError:
                corrupt.append(as_text(entry_id))
                continue
            entries.append(Entry(as_text(entry_id), owner, groups, unmatched, _source_of(fields)))
        if corrupt:
            # Not written by record(): nothing to apply; drop it rather than retry it forever.
            log.error("receipts.corrupt_entry", entries=len(corrupt))
            self.r.xack(self.stream, GROUP, *corrupt)
            self.r.xdel(self.stream, *corrupt)
        total = Applied()
        now_ms = self._clock_ms()
        for call in plan_calls(entries):
            groups = merge_packed(g for e in call for g in e.groups)
            total += apply_packed(self.ledger, groups, owner=call[0].owner, now_ms=now_ms,
                                  unmatched=sum(e.unmatched for e in call),
                                  ack=(self.stream, GROUP, [e.entry_id for e in call]), source=call[0].source)
        return total

    def drain(self) -> Applied:
        """Apply everything recorded so far, without waiting; return what it did (tests, CLI)."""
        self.ensure_group()
        total = Applied()
        while True:
            total += self.step(block_ms=None)
            if not self.last_read:
                return total

    def run(self, stop: threading.Event, *, block_ms: int = 1000) -> None:
        """Apply until ``stop`` is set, riding out Redis outages (logged, retried with backoff)."""
        delay_s = 0.1
        while not stop.is_set():
            try:
                self.ensure_group()
                while not stop.is_set():
                    done = self.step(block_ms=block_ms)
                    if done.applied or done.ignored or done.unmatched:
                        log.debug("receipts.applied", applied=done.applied, ignored=done.ignored,
                                  unmatched=done.unmatched, reconciled=done.reconciled)
                    if self.after_step is not None:
                        self.after_step()
                    delay_s = 0.1
            except redis.RedisError as exc:
                log.warning("receipts.applier_waiting", error=type(exc).__name__, retry_in_s=delay_s)
                self._own_pending_checked = False
                stop.wait(delay_s)
                delay_s = min(delay_s * 2, 5.0)


def applier_thread(ledger: Ledger, consumer: str, *, claim_idle_ms: int = CLAIM_IDLE_MS,
                   after_step: Callable[[], None] | None = None) -> tuple[threading.Thread, threading.Event]:
    """A started daemon thread running a :class:`StreamApplier` (calling ``after_step`` after each
    step), and the event that stops it."""
    stop = threading.Event()
    applier = StreamApplier(ledger, consumer, claim_idle_ms=claim_idle_ms)
    applier.after_step = after_step
    thread = threading.Thread(target=applier.run, args=(stop,), name="receipt-applier", daemon=True)
    thread.start()
    return thread, stop
