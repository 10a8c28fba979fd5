"""Receipts: deterministic outcomes, compact per-request batches, pull/push queues. Pure.

One :class:`ReceiptBatch` per accepted request holds its phones (often the very
comma-joined string the client sent) and is expanded lazily, so a million
accepted recipients cost about as much memory as the request bodies did. The
outcome of each phone is a hash of (seed, message id, phone) mapped onto the
configured mix, so a rerun of the same test sees the same receipts.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

RECEIPT_STATES = ("DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD")
NO_RECEIPT = "none"
_HASH_SCALE = float(2**64)


@dataclass(frozen=True, slots=True)
class OutcomeMix:
    """Cumulative weights of receipt states (``None`` = no receipt ever)."""

    bounds: tuple[tuple[float, str | None], ...]
    weights: Mapping[str, float]

    @classmethod
    def from_mapping(cls, mix: Mapping[str, float]) -> OutcomeMix:
        """Build from ``{"DELIVRD": 0.95, …, "none": 0.0}``; weights are normalised.

        Raises ``ValueError`` for an unknown state, a negative weight or an all-zero mix.
        """
        unknown = set(mix) - {*RECEIPT_STATES, NO_RECEIPT}
        if unknown:
            raise ValueError(f"unknown receipt states in outcomes: {sorted(unknown)}")
        if any(float(w) < 0 for w in mix.values()):
            raise ValueError("outcome weights must be >= 0")
        total = sum(float(w) for w in mix.values())
        if total <= 0:
            raise ValueError("outcome weights must not all be zero")
        bounds: list[tuple[float, str | None]] = []
        acc = 0.0
        for state, weight in mix.items():
            acc += float(weight) / total
            bounds.append((acc, None if state == NO_RECEIPT else state))
        return cls(tuple(bounds), {k: float(v) / total for k, v in mix.items()})

    def pick(self, seed: int, msg_id: str, phone: str) -> str | None:
        """The deterministic outcome for one phone of one message."""
        digest = hashlib.blake2b(f"{seed}\x1f{msg_id}\x1f{phone}".encode(), digest_size=8).digest()
        u = int.from_bytes(digest, "big") / _HASH_SCALE
        for bound, state in self.bounds:
            if u < bound:
                return state
        return self.bounds[-1][1]


class Receipt(NamedTuple):
    """One receipt as every gateway reports it (formatting happens at the edge)."""

    msg_id: str
    phone: str
    state: str
    arrive_s: float
    client_id: str | None


@dataclass(slots=True, eq=False)
class ReceiptBatch:
    """The receipts of one accepted request, expanded lazily."""

    gateway: str
    account: str
    msg_id: str
    client_id: str | None
    phones: list[str] | str
    count: int  # number of recipients, known without splitting ``phones``
    due_s: float
    mix: OutcomeMix
    seed: int
    forced: dict[int, str] | None = None  # index -> state (numbers refused at submit)
    pull_pos: int = 0
    push_pos: int = 0
    _list: list[str] | None = field(default=None, repr=False)

    def phone_list(self) -> list[str]:
        """The phones, splitting a comma-joined string once on first use."""
        if self._list is None:
            self._list = self.phones.split(",") if isinstance(self.phones, str) else self.phones
        return self._list

    def size(self) -> int:
        """Number of recipients (receipt slots) in the batch."""
        return self.count

    def state_at(self, index: int) -> str | None:
        """Outcome of recipient ``index``."""
        if self.forced and index in self.forced:
            return self.forced[index]
        return self.mix.pick(self.seed, self.msg_id, self.phone_list()[index])

    def take(self, start: int, limit: int) -> tuple[list[Receipt], int]:
        """Up to ``limit`` receipts from slot ``start``; returns them and the next slot."""
        phones = self.phone_list()
        out: list[Receipt] = []
        i = start
        while i < len(phones) and len(out) < limit:
            state = self.state_at(i)
            if state is not None:
                out.append(Receipt(self.msg_id, phones[i], state, self.due_s, self.client_id))
            i += 1
        return out, i


@dataclass(slots=True)
class DayStats:
    """Per account and day: recipients sent, receipts tallied so far, batches not yet tallied."""

    total: int = 0
    success: int = 0
    fail: int = 0
    untallied: list[ReceiptBatch] = field(default_factory=list)

    def tally(self, now_s: float) -> None:
        """Count the outcomes of every batch whose receipts have arrived by ``now_s``."""
        waiting: list[ReceiptBatch] = []
        for batch in self.untallied:
            if batch.due_s > now_s:
                waiting.append(batch)
                continue
            for i in range(batch.size()):
                state = batch.state_at(i)
                if state == "DELIVRD":
                    self.success += 1
                elif state is not None:
                    self.fail += 1
        self.untallied = waiting


Key = tuple[str, str]  # (gateway, account)


class ReceiptStore:
    """Pull queues and push queues of receipt batches, per (gateway, account)."""

    def __init__(self) -> None:
        self.pull: dict[Key, deque[ReceiptBatch]] = {}
        self.push: dict[Key, deque[ReceiptBatch]] = {}
        self.days: dict[tuple[str, str], DayStats] = {}

    def add(self, batch: ReceiptBatch, *, to_pull: bool, to_push: bool, day: str | None = None) -> None:
        """Queue ``batch`` for pull and/or push; ``day`` (yyyy-MM-dd) feeds statistics."""
        key = (batch.gateway, batch.account)
        if to_pull:
            self.pull.setdefault(key, deque()).append(batch)
        if to_push:
            self.push.setdefault(key, deque()).append(batch)
        if day is not None:
            stats = self.days.setdefault((batch.account, day), DayStats())
            stats.total += batch.size()
            stats.untallied.append(batch)

    def take_pull(
        self,
        key: Key,
        now_s: float,
        limit: int,
        window_s: float,
        msg_ids: frozenset[str] | None = None,
        client_id: str | None = None,
    ) -> list[Receipt]:
        """Remove and return up to ``limit`` due receipts (each is returned once only).

        Batches whose receipts arrived more than ``window_s`` ago are dropped unread,
        like the vendor's "last 6 hours" window.
        """
        queue = self.pull.get(key)
        if not queue:
            return []
        out: list[Receipt] = []
        keep: deque[ReceiptBatch] = deque()
        for batch in queue:
            if batch.due_s < now_s - window_s:
                continue
            if len(out) < limit and batch.due_s <= now_s and _matches(batch, msg_ids, client_id):
                got, batch.pull_pos = batch.take(batch.pull_pos, limit - len(out))
                out.extend(got)
            if batch.pull_pos < batch.size():
                keep.append(batch)
        self.pull[key] = keep
        return out

    def take_push(self, key: Key, now_s: float, limit: int) -> list[Receipt]:
        """Remove and return up to ``limit`` due receipts of ``key`` for pushing."""
        queue = self.push.get(key)
        out: list[Receipt] = []
        while queue and len(out) < limit:
            batch = queue[0]
            if batch.due_s > now_s:
                break
            got, batch.push_pos = batch.take(batch.push_pos, limit - len(out))
            out.extend(got)
            if batch.push_pos >= batch.size():
                queue.popleft()
        return out

    def push_keys(self, now_s: float) -> Iterator[Key]:
        """Keys with at least one batch due for pushing."""
        for key, queue in self.push.items():
            if queue and queue[0].due_s <= now_s:
                yield key

    def pending(self) -> dict[str, int]:
        """Recipients whose receipts are still waiting in the pull and push queues."""
        return {
            "pull": sum(b.size() - b.pull_pos for q in self.pull.values() for b in q),
            "push": sum(b.size() - b.push_pos for q in self.push.values() for b in q),
        }

    def statistics(self, account: str, first_day: str, last_day: str, now_s: float) -> list[dict[str, object]]:
        """opass statistics rows for ``account``, one per day with sends, oldest first."""
        rows: list[dict[str, object]] = []
        for (acct, day), stats in sorted(self.days.items(), key=lambda kv: kv[0][1]):
            if acct != account or not first_day <= day <= last_day:
                continue
            stats.tally(now_s)
            rows.append(
                {
                    "totalCount": stats.total,
                    "successCount": stats.success,
                    "failCount": stats.fail,
                    "noReceiptCount": stats.total - stats.success - stats.fail,
                    "sendDate": day,
                }
            )
        return rows


def _matches(batch: ReceiptBatch, msg_ids: frozenset[str] | None, client_id: str | None) -> bool:
    if msg_ids is not None and batch.msg_id not in msg_ids:
        return False
    return client_id is None or batch.client_id == client_id


#: aiofish getReport ``stat`` per state. The manual shows only ``r:004`` REJECTD;
#: DELIVRD is ``r:000`` (its success code); the others are the sandbox's choice.
AIOFISH_PULL_STAT: Mapping[str, str] = {
    "DELIVRD": "r:000",
    "UNDELIV": "r:001",
    "EXPIRED": "r:002",
    "UNKNOWN": "r:003",
    "REJECTD": "r:004",
    "DELETED": "r:005",
    "ACCEPTD": "r:006",
}

#: aiofish/vsms/isms push ``stat``/``state`` (0 = delivered). The manual's sample
#: pushes 6 for REJECTD; the other non-zero values are the sandbox's choice.
AIOFISH_PUSH_STAT: Mapping[str, int] = {
    "DELIVRD": 0,
    "UNDELIV": 1,
    "EXPIRED": 2,
    "UNKNOWN": 3,
    "DELETED": 5,
    "REJECTD": 6,
    "ACCEPTD": 7,
}
