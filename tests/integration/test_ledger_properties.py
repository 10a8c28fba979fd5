"""The ledger under random interleavings: a Hypothesis state machine against the session's real redis-server.

The machine creates jobs of three accounts, claims chunks, records every send
outcome (accept with fail phones, reject, transient release, ambiguous,
account-fatal with its pause, a stale or repeated actor), crashes workers
between claim and outcome, delivers receipts straight to the ledger and through
the receipt stream (appliers that apply, appliers that read and die, a second
consumer that claims what a dead one left), runs the sweeps on a clock it moves
itself, and resumes paused accounts. Receipts are real (naming an attempt that
was claimed and may have reached the gateway), late, duplicated, reordered or
forged (attempt never claimed, attempt 0, an attempt provably never sent or
refused, another account's job, an unknown job or chunk, a phone not in the chunk).

A model predicts every answer and every state; after each step the machine
checks Redis against the model and against itself: counters add up and match
the per-phone and chunk states, terminal phone states never move, every state's
sorted set holds exactly its chunks, forged receipts and stale actors change
nothing, and no chunk is claimed again after the gateway was shown to have
taken an attempt of it, or while an attempt may be at the gateway unreconciled.

Physical assumptions of the model: a worker's answer comes before the reconcile
sweep releases its chunk (after that it is a stale actor's, which changes
nothing); a receipt of an attempt means its worker cannot learn that the attempt
never left or was refused.

``SMSD_PROPERTY_PROFILE=long`` runs many more and longer interleavings (minutes);
the default ``ci`` profile takes well under a minute.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from dispatcher import sweeps
from dispatcher.config.accounts import Accounts
from dispatcher.config.settings import Settings
from dispatcher.keys import chunk_member, client_id, parse_chunk_member
from dispatcher.ledger import COUNTERS, PHONE_STATES, ChunkData, Ledger, as_text
from dispatcher.providers.results import Receipt
from dispatcher.receipt_stream import GROUP, StreamApplier, record
from dispatcher.receipts import apply_receipts
from dispatcher.runtime import Runtime

PROFILES = {
    "ci": settings(max_examples=120, stateful_step_count=60, deadline=None, print_blob=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]),
    "long": settings(max_examples=1000, stateful_step_count=100, deadline=None, print_blob=True,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]),
}
PROFILE = os.environ.get("SMSD_PROPERTY_PROFILE", "ci")

ACCOUNTS = (("opass", "demo"), ("opass", "other"), ("aiofish", "demo"))
SETTINGS = Settings(stuck_after_s=60.0, reconcile_window_s=300.0, receipt_horizon_s=3600.0)
STUCK_MS, WINDOW_MS, HORIZON_MS = 60_000, 300_000, 3_600_000
#: Clock steps: within a window, past the stuck limit, past the reconcile window, past the receipt horizon.
TICKS_MS = (1_000, 61_000, 301_000, 3_601_000)
START_MS = 1_700_000_000_000
STRANGER = "13999999999"  # in no chunk
MAX_JOBS = 3
BATCH = 100  # entries an applier reads per step (StreamApplier's default)
TERMINAL = {"rejected", "delivered", "failed", "unknown"}
OUTCOMES = ("accept", "accept", "reject", "transient", "transient", "fatal", "ambiguous", "dies")
FORGED_KINDS = ("never_claimed", "attempt0", "unsent", "refused", "foreign", "unknown_job", "unknown_chunk",
                "not_ours", "stranger_phone", "other_chunk_phone")

Owner = tuple[str, str]
#: One receipt as the model sees it: job, chunk, attempt, phone, delivered, and whether it is real.
Rx = tuple[str, int, int, str, bool, bool]


@dataclass
class AttemptModel:
    """What happened to one claimed attempt, at the gateway and in the ledger."""

    #: inflight (its worker may still answer), gone (no answer will come), accepted, rejected,
    #: unsent (release recorded: provably never left), ambiguous (its worker marked it)
    fate: str = "inflight"
    #: The gateway may have taken it: real receipts can name it.
    maybe_sent: bool = True
    #: Released for resend by the reconcile sweep after its window passed with no receipt.
    released: bool = False
    #: A real receipt exists for it: its worker cannot learn that it was never sent or refused.
    proven: bool = False
    #: The ledger was told the gateway took it (its acceptance, or a real receipt of it applied).
    evidence: bool = False
    failed: frozenset[int] = frozenset()
    receipted: set[int] = field(default_factory=set)


@dataclass
class ChunkModel:
    """The expected ledger state of one chunk."""

    job: str
    n: int
    owner: Owner
    phones: tuple[str, ...]
    state: str = "pending"
    attempt: int = 0
    attempts: dict[int, AttemptModel] = field(default_factory=dict)
    st: list[str] | None = None  # per-phone bytes once accepted or rejected
    pending_ms: int | None = None
    sending_ms: int | None = None
    deadline_ms: int | None = None
    awaiting_ms: int | None = None  # set while the chunk is in z:awaiting

    @property
    def member(self) -> str:
        return chunk_member(self.job, self.n)

    def phone_states(self) -> list[str]:
        if self.st is None:  # an ambiguous chunk's phones count (and read) as sending: their fate is unknown
            return ["sending" if self.state == "ambiguous" else self.state] * len(self.phones)
        return [PHONE_STATES[b] for b in self.st]


class LedgerMachine(RuleBasedStateMachine):
    """Random interleavings of sends, receipts, stream appliers, sweeps and crashes, checked after each step."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__()
        client.flushdb()
        self.r = client
        self.rt = Runtime(SETTINGS, accounts=Accounts({}), client=client)
        self.ledger: Ledger = self.rt.ledger
        self.keys = self.ledger.keys
        self.now = START_MS
        self.chunks: dict[tuple[str, int], ChunkModel] = {}
        self.jobs: dict[str, tuple[Owner, int]] = {}
        self.paused: dict[Owner, str] = {}
        self.history: dict[Owner, list[Rx]] = {a: [] for a in ACCOUNTS}
        # the receipt stream: entries not yet read, and entries read by a consumer that died
        self.seq = 0
        self.fresh: list[tuple[int, Owner, list[Rx]]] = []
        self.read_by: dict[str, list[tuple[int, Owner, list[Rx]]]] = {"c1": [], "dead": []}
        self.c1 = self._applier("c1")
        self.c1.ensure_group()
        self.c1_checked = False
        self.terminal_seen: dict[tuple[str, int], str] = {}

    # -- helpers ----------------------------------------------------------------------------

    def _applier(self, name: str, claim_idle_ms: int = 10**9) -> StreamApplier:
        return StreamApplier(self.ledger, name, claim_idle_ms=claim_idle_ms, clock_ms=lambda: self.now)

    def _pick(self, items: list[Any], i: int) -> Any:
        return items[i % len(items)]

    def _snapshot(self) -> dict[str, Any]:
        """Every ledger key but the stats and the stream (what a forged receipt or a stale actor must not touch)."""
        snap: dict[str, Any] = {}
        for raw in self.r.keys("*"):
            key = as_text(raw)
            kind = as_text(self.r.type(key))
            if key in (self.keys.stats(), self.keys.receipt_stream()):
                continue
            if kind == "hash":
                snap[key] = {as_text(k): v for k, v in self.r.hgetall(key).items() if as_text(k) != "ix"}
            elif kind == "zset":
                snap[key] = self.r.zrange(key, 0, -1, withscores=True)
            elif kind == "stream":  # the outcome feed
                snap[key] = self.r.xrange(key)
            else:
                snap[key] = self.r.get(key)
        # a chunk with no phone awaiting a receipt may leave z:awaiting whenever receipts name it: housekeeping
        awaiting = self.keys.awaiting()
        snap[awaiting] = [(m, s) for m, s in snap.get(awaiting, [])
                          if b"A" in (snap.get(self.keys.chunk_states(*parse_chunk_member(as_text(m)))) or b"")]
        return snap

    # -- the model's ledger ------------------------------------------------------------------

    def _accept_all(self, c: ChunkModel) -> None:
        c.st = ["A"] * len(c.phones)
        c.state = "accepted"
        c.pending_ms = c.sending_ms = c.deadline_ms = None
        c.awaiting_ms = self.now

    def _m_accept(self, c: ChunkModel, attempt: int, failed: frozenset[int]) -> str:
        if attempt != c.attempt:
            return "stale"
        if c.state in ("sending", "ambiguous"):
            self._accept_all(c)
            result = "ok"
        elif c.state == "accepted":
            result = "late"
        else:
            return f"skip:{c.state}"
        assert c.st is not None
        for i in failed:
            if c.st[i] == "A":
                c.st[i] = "X"
        return result

    def _m_reject(self, c: ChunkModel, attempt: int) -> bool:
        if attempt != c.attempt or c.state not in ("sending", "ambiguous"):
            return False
        c.st = ["X"] * len(c.phones)
        c.state = "rejected"
        c.sending_ms = c.deadline_ms = None
        return True

    def _m_release(self, c: ChunkModel, attempt: int, expected: str) -> bool:
        if c.state != expected or attempt != c.attempt:
            return False
        c.state = "pending"
        c.pending_ms = self.now
        c.sending_ms = c.deadline_ms = None
        return True

    def _m_ambiguous(self, c: ChunkModel, attempt: int, deadline_ms: int) -> bool:
        if c.state != "sending" or attempt != c.attempt:
            return False
        c.state = "ambiguous"
        c.sending_ms = None
        c.deadline_ms = deadline_ms
        return True

    def _m_group(self, job: str, n: int, attempt: int, owner: Owner, pairs: list[tuple[str, bool]]) -> None:
        """One receipt group, as the trust rules say it must be applied."""
        c = self.chunks.get((job, n))
        if c is None or c.owner != owner:
            return
        if attempt < 1 or attempt > c.attempt or c.attempts[attempt].fate == "unsent" or c.state == "rejected":
            return
        found = [(c.phones.index(p), d) for p, d in pairs if p in c.phones]
        if c.state in ("pending", "sending", "ambiguous"):
            if not found:
                return  # names no phone of the chunk: proves nothing
            self._accept_all(c)
        assert c.st is not None
        for i, delivered in found:
            if c.st[i] == "A":
                c.st[i] = "D" if delivered else "F"
        if "A" not in c.st:
            c.awaiting_ms = None

    def _m_receipts(self, owner: Owner, batch: list[Rx]) -> None:
        """A batch through one hook or poll: grouped by the id it echoes, in order of first appearance."""
        groups: dict[tuple[str, int, int], list[tuple[str, bool]]] = {}
        for job, n, attempt, phone, delivered, _ in batch:
            if job == "not-ours":
                continue  # no chunk id: unmatched
            groups.setdefault((job, n, attempt), []).append((phone, delivered))
        for (job, n, attempt), pairs in groups.items():
            self._m_group(job, n, attempt, owner, pairs)
        for job, n, attempt, _, _, real in batch:
            if real:
                self.chunks[(job, n)].attempts[attempt].evidence = True

    def _apply_entries(self, entries: list[tuple[int, Owner, list[Rx]]]) -> None:
        for _, owner, batch in entries:
            self._m_receipts(owner, batch)

    # -- receipts --------------------------------------------------------------------------

    def _receipt(self, rx: Rx) -> Receipt:
        job, n, attempt, phone, delivered, _ = rx
        cid = "not-ours" if job == "not-ours" else client_id(job, n, attempt)
        return Receipt(provider="x", message_id="m", phone=phone, status="DELIVRD" if delivered else "UNDELIV",
                       delivered=delivered, client_id=cid)

    def _sendable(self, owner: Owner | None) -> list[tuple[ChunkModel, int]]:
        return [(c, a) for c in self.chunks.values() if owner is None or c.owner == owner
                for a, att in c.attempts.items() if att.maybe_sent]

    def _draw_real(self, data: st.DataObject, owner: Owner) -> Rx | None:
        found = self._sendable(owner)
        if not found:
            return None
        c, a = data.draw(st.sampled_from(found), label="real attempt")
        att = c.attempts[a]
        allowed = [i for i in range(len(c.phones)) if i not in att.failed]
        if not allowed:
            return None
        i = data.draw(st.sampled_from(allowed), label="phone")
        att.proven = True
        att.receipted.add(i)
        rx = (c.job, c.n, a, c.phones[i], data.draw(st.booleans(), label="delivered"), True)
        self.history[owner].append(rx)
        return rx

    def _draw_forged(self, data: st.DataObject, owner: Owner) -> Rx:
        kind = data.draw(st.sampled_from(FORGED_KINDS), label="forged")
        delivered = data.draw(st.booleans(), label="delivered")
        mine = [c for c in self.chunks.values() if c.owner == owner]
        if kind in ("never_claimed", "attempt0", "unknown_chunk") and mine:
            c = data.draw(st.sampled_from(mine), label="chunk")
            phone = data.draw(st.sampled_from(c.phones), label="phone")
            if kind == "never_claimed":
                return (c.job, c.n, c.attempt + data.draw(st.integers(1, 2)), phone, delivered, False)
            if kind == "attempt0":
                return (c.job, c.n, 0, phone, delivered, False)
            return (c.job, 7, 1, phone, delivered, False)
        if kind in ("unsent", "refused"):
            fate = "unsent" if kind == "unsent" else "rejected"
            found = [(c, a) for c in mine for a, att in c.attempts.items() if att.fate == fate]
            if found:
                c, a = data.draw(st.sampled_from(found), label="attempt")
                return (c.job, c.n, a, data.draw(st.sampled_from(c.phones)), delivered, False)
        if kind == "foreign":
            found = [(c, a) for c, a in self._sendable(None) if c.owner != owner]
            if found:
                c, a = data.draw(st.sampled_from(found), label="foreign attempt")
                return (c.job, c.n, a, data.draw(st.sampled_from(c.phones)), delivered, False)
        if kind in ("stranger_phone", "other_chunk_phone"):
            found = self._sendable(owner)
            if found:
                c, a = data.draw(st.sampled_from(found), label="attempt")
                others = [p for o in self.chunks.values() if o is not c for p in o.phones if p not in c.phones]
                phone = data.draw(st.sampled_from(others)) if kind == "other_chunk_phone" and others else STRANGER
                return (c.job, c.n, a, phone, delivered, False)
        if kind == "not_ours":
            return ("not-ours", 0, 0, STRANGER, delivered, False)
        return ("ghost", 0, 1, STRANGER, delivered, False)

    def _draw_batch(self, data: st.DataObject, *, forged_only: bool) -> tuple[Owner, list[Rx]]:
        # mostly the hook or poll of an account that has jobs
        owner = data.draw(st.sampled_from([c.owner for c in self.chunks.values()] + list(ACCOUNTS)), label="through")
        batch: list[Rx] = []
        for _ in range(data.draw(st.integers(1, 4), label="receipts")):
            kind = "forged" if forged_only else data.draw(st.sampled_from(("real", "real", "duplicate", "forged")))
            rx: Rx | None = None
            if kind == "real":
                rx = self._draw_real(data, owner)
            elif kind == "duplicate" and self.history[owner]:
                rx = data.draw(st.sampled_from(self.history[owner]), label="duplicate of")
            batch.append(rx or self._draw_forged(data, owner))
        return owner, batch

    # -- rules: producer and senders ---------------------------------------------------------

    @initialize(account=st.sampled_from(ACCOUNTS), sizes=st.lists(st.integers(1, 3), min_size=1, max_size=2))
    def first_job(self, account: Owner, sizes: list[int]) -> None:
        self.create_job(account, sizes)

    @precondition(lambda self: len(self.jobs) < MAX_JOBS)
    @rule(account=st.sampled_from(ACCOUNTS), sizes=st.lists(st.integers(1, 3), min_size=1, max_size=2))
    def create_job(self, account: Owner, sizes: list[int]) -> None:
        j = len(self.jobs)
        job = f"j{j}"
        phones = [tuple(f"138{j:04d}{n}{i:03d}" for i in range(size)) for n, size in enumerate(sizes)]
        count = self.ledger.create_job(job, {"provider": account[0], "account": account[1]},
                                       [ChunkData(p) for p in phones], now_ms=self.now)
        assert count == len(sizes)
        self.jobs[job] = (account, sum(sizes))
        for n, p in enumerate(phones):
            self.chunks[(job, n)] = ChunkModel(job, n, account, p, pending_ms=self.now)

    @precondition(lambda self: self.chunks)
    @rule(i=st.integers(0, 1000), any_chunk=st.booleans())
    def claim(self, i: int, any_chunk: bool) -> None:
        """A send task claims a pending chunk (or, with ``any_chunk``, any chunk: it must skip or wait)."""
        pending = [c for c in self.chunks.values() if c.state == "pending"]
        c: ChunkModel = self._pick(pending if pending and not any_chunk else list(self.chunks.values()), i)
        got = self.ledger.claim(c.job, c.n, provider=c.owner[0], account=c.owner[1], now_ms=self.now)
        if c.owner in self.paused:
            assert (got.status, got.detail) == ("paused", self.paused[c.owner])
            return
        if c.state != "pending":
            assert (got.status, got.detail) == ("skip", c.state)
            return
        assert got.status == "ok" and got.phones == c.phones
        # no second submission while an earlier attempt may be at the gateway, or after one was shown taken
        for a, att in c.attempts.items():
            assert not att.evidence, f"{c.member} claimed again after attempt {a} was shown taken"
            assert att.fate == "unsent" or att.released, f"{c.member} claimed again while attempt {a} unreconciled"
        c.attempt += 1
        assert got.attempt == c.attempt
        c.attempts[c.attempt] = AttemptModel()
        c.state, c.pending_ms, c.sending_ms = "sending", None, self.now

    @precondition(lambda self: any(c.state == "pending" for c in self.chunks.values()))
    @rule(i=st.integers(0, 1000), kind=st.sampled_from(OUTCOMES), failed_bits=st.integers(0, 7))
    def send(self, i: int, kind: str, failed_bits: int) -> None:
        """A whole send task: claim a pending chunk and record the gateway's answer right away."""
        pending = [c for c in self.chunks.values() if c.state == "pending"]
        c: ChunkModel = self._pick(pending, i)
        self.claim(i=pending.index(c), any_chunk=False)
        if c.state == "sending":
            self.outcome(i=self._inflight().index(c), kind=kind, failed_bits=failed_bits)

    def _inflight(self) -> list[ChunkModel]:
        return [c for c in self.chunks.values() if c.attempt and c.attempts[c.attempt].fate == "inflight"]

    @precondition(lambda self: self._inflight())
    @rule(i=st.integers(0, 1000),
          kind=st.sampled_from(OUTCOMES),
          failed_bits=st.integers(0, 7))
    def outcome(self, i: int, kind: str, failed_bits: int) -> None:
        """The worker holding the chunk's current attempt records what the gateway answered, or dies first.

        A worker that dies between claim and outcome records nothing: the stuck sweep must notice.
        """
        c: ChunkModel = self._pick(self._inflight(), i)
        a, att = c.attempt, c.attempts[c.attempt]
        if kind == "dies":
            att.fate = "gone"
            return
        if att.proven and kind != "ambiguous":
            kind = "accept"  # a receipt exists: the gateway took it
        if kind == "accept":
            failed = frozenset(x for x in range(len(c.phones)) if failed_bits >> x & 1 and x not in att.receipted)
            want = self._m_accept(c, a, failed)
            got = self.ledger.accept(c.job, c.n, attempt=a, message_id=f"m{a}", failed_indexes=sorted(failed),
                                     now_ms=self.now)
            assert got == want
            att.fate, att.failed, att.evidence = "accepted", failed, att.evidence or got in ("ok", "late")
        elif kind == "reject":
            assert self.ledger.reject(c.job, c.n, attempt=a, code="60001", now_ms=self.now) == self._m_reject(c, a)
            att.fate, att.maybe_sent = "rejected", False
        elif kind in ("transient", "fatal"):
            if kind == "fatal":
                self.r.set(self.keys.paused(*c.owner), "40002 balance")
                self.paused[c.owner] = "40002 balance"
            want = self._m_release(c, a, "sending")
            got = self.ledger.release(c.job, c.n, attempt=a, expected="sending", code="-1", now_ms=self.now)
            assert got == want
            # not recorded when the stuck sweep made it ambiguous first: the ledger reconciles it as one
            att.fate, att.maybe_sent = ("unsent" if got else "gone"), False
        else:
            deadline = self.now + WINDOW_MS
            want = self._m_ambiguous(c, a, deadline)
            got = self.ledger.mark_ambiguous(c.job, c.n, attempt=a, deadline_ms=deadline, code="reset",
                                             now_ms=self.now)
            assert got == want
            att.fate = "ambiguous" if got else "gone"

    def _decided(self) -> list[tuple[ChunkModel, int]]:
        return [(c, a) for c in self.chunks.values() for a, att in c.attempts.items()
                if a < c.attempt or att.fate in ("accepted", "rejected", "unsent", "ambiguous")]

    @precondition(lambda self: self._decided())
    @rule(i=st.integers(0, 1000), kind=st.sampled_from(("accept", "reject", "transient", "ambiguous")))
    def stale_actor(self, i: int, kind: str) -> None:
        """An answer for an older attempt, or a repeat of the current one's answer: nothing moves."""
        c, a = self._pick(self._decided(), i)
        att = c.attempts[a]
        if a == c.attempt:  # a repeat of the recorded answer
            kind = {"accepted": "accept", "rejected": "reject", "unsent": "transient"}.get(att.fate, "ambiguous")
        before = self._snapshot()
        if kind == "accept":
            got: Any = self.ledger.accept(c.job, c.n, attempt=a, message_id=f"m{a}", failed_indexes=sorted(att.failed),
                                          now_ms=self.now)
            assert got == ("stale" if a < c.attempt else "late" if c.state == "accepted" else f"skip:{c.state}")
        elif kind == "reject":
            got = self.ledger.reject(c.job, c.n, attempt=a, code="60001", now_ms=self.now)
        elif kind == "transient":
            got = self.ledger.release(c.job, c.n, attempt=a, expected="sending", code="-1", now_ms=self.now)
        else:
            got = self.ledger.mark_ambiguous(c.job, c.n, attempt=a, deadline_ms=self.now + WINDOW_MS, code="reset",
                                             now_ms=self.now)
        assert got in ("stale", "late", f"skip:{c.state}", False)
        assert self._snapshot() == before, f"a stale {kind} of attempt {a} changed {c.member}"

    @precondition(lambda self: self.paused)
    @rule(i=st.integers(0, 1000))
    def resume(self, i: int) -> None:
        owner = self._pick(sorted(self.paused), i)
        self.r.delete(self.keys.paused(*owner))
        del self.paused[owner]

    # -- rules: receipts -------------------------------------------------------------------

    @rule(data=st.data(), path=st.sampled_from(("direct", "push", "pull")))
    def receipts(self, data: st.DataObject, path: str) -> None:
        """Real, duplicated and forged receipts, applied straight or recorded on the stream for an applier."""
        owner, batch = self._draw_batch(data, forged_only=False)
        if path == "direct":
            apply_receipts(self.ledger, [self._receipt(x) for x in batch], provider=owner[0], account=owner[1],
                           now_ms=self.now)
            self._m_receipts(owner, batch)
            return
        assert record(self.r, self.keys.receipt_stream(), owner[0], owner[1], [self._receipt(x) for x in batch],
                      source=path, now_ms=self.now) == len(batch)
        self.seq += 1
        self.fresh.append((self.seq, owner, batch))

    @rule(data=st.data())
    def forged_receipts(self, data: st.DataObject) -> None:
        """Nothing but forged receipts: not one key of the ledger may change."""
        owner, batch = self._draw_batch(data, forged_only=True)
        before = self._snapshot()
        apply_receipts(self.ledger, [self._receipt(x) for x in batch], provider=owner[0], account=owner[1],
                       now_ms=self.now)
        assert self._snapshot() == before, f"forged receipts changed the ledger: {batch}"
        self._m_receipts(owner, batch)  # the model's housekeeping (z:awaiting) follows the ledger's

    @rule()
    def applier_step(self) -> None:
        """Consumer c1 applies a batch: its own unacknowledged entries first after a restart, else new ones."""
        self.c1.step(block_ms=None)
        if not self.c1_checked and self.read_by["c1"]:
            taken, self.read_by["c1"] = self.read_by["c1"][:BATCH], self.read_by["c1"][BATCH:]
            self._apply_entries(taken)
            return
        self.c1_checked = True
        taken, self.fresh = self.fresh[:BATCH], self.fresh[BATCH:]
        self._apply_entries(taken)

    @precondition(lambda self: self.fresh)
    @rule(consumer=st.sampled_from(("c1", "dead")), count=st.integers(1, 3))
    def applier_dies_after_reading(self, consumer: str, count: int) -> None:
        """A consumer reads entries (XREADGROUP) and dies before applying them; c1 restarts."""
        self.r.xreadgroup(GROUP, consumer, {self.keys.receipt_stream(): ">"}, count=count)
        taken, self.fresh = self.fresh[:count], self.fresh[count:]
        self.read_by[consumer] += taken
        if consumer == "c1":
            self.c1, self.c1_checked = self._applier("c1"), False

    @rule()
    def second_consumer_claims(self) -> None:
        """A fresh consumer claims every entry another one read and left (XAUTOCLAIM), else reads new ones."""
        self._applier("c2", claim_idle_ms=0).step(block_ms=None)
        stale = sorted(self.read_by["c1"] + self.read_by["dead"], key=lambda e: e[0])
        if stale:
            taken = stale[:BATCH]
            for name in self.read_by:
                self.read_by[name] = [e for e in self.read_by[name] if e not in taken]
        else:
            taken, self.fresh = self.fresh[:BATCH], self.fresh[BATCH:]
        self._apply_entries(taken)

    # -- rules: clock and sweeps -------------------------------------------------------------

    @rule(tick=st.sampled_from(TICKS_MS), sweep=st.booleans())
    def clock_moves(self, tick: int, sweep: bool) -> None:
        """Time passes; with ``sweep``, beat runs the sweeps at the new time (each also runs on its own)."""
        self.now += tick
        if sweep:
            self.stuck_sweep()
            self.reconcile_sweep()
            self.silence_sweep()

    @rule(which=st.sampled_from(("stuck", "reconcile", "silence")))
    def sweep(self, which: str) -> None:
        """Beat runs one sweep at the current time."""
        {"stuck": self.stuck_sweep, "reconcile": self.reconcile_sweep, "silence": self.silence_sweep}[which]()

    def stuck_sweep(self) -> None:
        cutoff = self.now - STUCK_MS
        want = 0
        for c in self.chunks.values():
            if c.state == "sending" and c.sending_ms is not None and c.sending_ms <= cutoff:
                self._m_ambiguous(c, c.attempt, self.now + WINDOW_MS)
                want += 1
        assert sweeps.stuck_to_ambiguous(self.rt, now_ms=self.now) == want

    def reconcile_sweep(self) -> None:
        want = set()
        for c in self.chunks.values():
            if c.state == "ambiguous" and c.deadline_ms is not None and c.deadline_ms <= self.now:
                self._m_release(c, c.attempt, "ambiguous")
                att = c.attempts[c.attempt]
                att.released = True
                if att.fate == "inflight":
                    att.fate = "gone"  # its worker is taken as dead: an answer now is a stale actor's
                want.add((c.job, c.n))
        due = sweeps.due_ambiguous(self.rt, now_ms=self.now)
        asked = {(c.job, c.n): c.attempt for c in self.chunks.values() if (c.job, c.n) in due.to_query}
        for (job, n), attempt in asked.items():
            # opass chunks are asked about by bid first; here the gateway knows nothing of
            # them, so they are released exactly as dispatcher.reconcile does on an empty answer.
            assert sweeps.release_unsent(self.rt, job, n, attempt=attempt, now_ms=self.now)
        assert set(due.released) | set(asked) == want

    def silence_sweep(self) -> None:
        cutoff = self.now - HORIZON_MS
        want = 0
        for c in self.chunks.values():
            if c.awaiting_ms is not None and c.awaiting_ms <= cutoff:
                assert c.st is not None
                want += c.st.count("A")
                c.st = ["U" if b == "A" else b for b in c.st]
                c.awaiting_ms = None
        assert sweeps.expire_silent(self.rt, now_ms=self.now) == want

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def counters_add_up_and_match_the_states(self) -> None:
        for job, (_, total) in self.jobs.items():
            counts = self.ledger.counts(job)
            assert sum(counts.values()) == total, (job, counts)
            chunks = [c for c in self.chunks.values() if c.job == job]
            per_phone = [s for c in chunks for s in c.phone_states()]
            want = {name: 0 for name in COUNTERS}
            for s in per_phone:
                want["sending" if s == "ambiguous" else s] += 1
            assert counts == want, (job, counts, want)
            got_phones = list(self.ledger.phone_states(job))
            assert got_phones == [(p, s) for c in chunks for p, s in zip(c.phones, c.phone_states(), strict=True)]
            # the counters against Redis' own per-phone and chunk states, without the model
            tally = {name: 0 for name in COUNTERS}
            for _, s in got_phones:
                tally["sending" if s == "ambiguous" else s] += 1
            assert tally == counts
            for c in chunks:
                got = self.ledger.chunk(c.job, c.n)
                assert (got["state"], int(got["attempt"])) == (c.state, c.attempt), (c.member, got["state"])
                st_raw = self.r.get(self.keys.chunk_states(c.job, c.n))
                assert (as_text(st_raw) if st_raw else None) == ("".join(c.st) if c.st else None), c.member
                if c.state in ("accepted", "rejected"):
                    assert st_raw is not None and len(st_raw) == len(c.phones)
                    assert c.state == "accepted" or set(as_text(st_raw)) == {"X"}

    @invariant()
    def terminal_phone_states_never_change(self) -> None:
        for job in self.jobs:
            for n_phone, (_, state) in enumerate(self.ledger.phone_states(job)):
                seen = self.terminal_seen.get((job, n_phone))
                assert seen is None or seen == state, (job, n_phone, seen, state)
                if state in TERMINAL:
                    self.terminal_seen[(job, n_phone)] = state

    @invariant()
    def every_state_keeps_its_sorted_set(self) -> None:
        def zset(key: str) -> dict[str, float]:
            return {as_text(m): s for m, s in self.r.zrange(key, 0, -1, withscores=True)}

        chunks = list(self.chunks.values())
        assert zset(self.keys.pending()) == {c.member: c.pending_ms for c in chunks if c.state == "pending"}
        assert zset(self.keys.sending()) == {c.member: c.sending_ms for c in chunks if c.state == "sending"}
        assert zset(self.keys.ambiguous()) == {c.member: c.deadline_ms for c in chunks if c.state == "ambiguous"}
        awaiting = zset(self.keys.awaiting())
        for c in chunks:
            if c.awaiting_ms is not None:
                assert awaiting.get(c.member) == c.awaiting_ms, c.member
            if c.st and "A" in c.st:
                assert c.member in awaiting, f"{c.member} awaits receipts but is not in z:awaiting"
        assert set(awaiting) <= {c.member for c in chunks if c.state == "accepted"}
        paused = {(p, a) for p, a in ACCOUNTS if self.r.exists(self.keys.paused(p, a))}
        assert paused == set(self.paused)

    @invariant()
    def no_recorded_receipt_is_lost(self) -> None:
        entries = len(self.fresh) + sum(len(v) for v in self.read_by.values())
        assert self.r.xlen(self.keys.receipt_stream()) == entries
        pending: Any = self.r.xpending(self.keys.receipt_stream(), GROUP)
        assert pending["pending"] == sum(len(v) for v in self.read_by.values())


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(redis_url)
    yield conn
    conn.flushdb()
    conn.close()


@pytest.mark.timeout(0 if PROFILE == "long" else 300)  # the long profile runs for minutes
def test_the_ledger_keeps_its_invariants_under_random_interleavings(client: redis.Redis) -> None:
    run_state_machine_as_test(lambda: LedgerMachine(client), settings=PROFILES[PROFILE])
