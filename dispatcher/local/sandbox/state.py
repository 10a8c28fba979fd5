"""The one mutable object of the sandbox: ledger, counters, nonces, balances, queues.

Everything a test can observe or reset lives in :class:`SandboxState`; the aiohttp
layer only reads requests, calls into it, and writes answers.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dispatcher.local.sandbox.config import SandboxConfig, deep_merge, parse_config
from dispatcher.local.sandbox.faults import FaultEngine
from dispatcher.local.sandbox.limits import Limiter
from dispatcher.local.sandbox.messages import MessageLog, MessageRecord
from dispatcher.local.sandbox.receipts import ReceiptBatch, ReceiptStore
from dispatcher.local.sandbox.timefmt import send_date

GATEWAYS = ("opass", "aiofish", "aiofish-vsms", "aiofish-isms")
OPASS_MSG_ID_BASE = 640_000_000_000_000_000  # 18 digits, like the manual's samples
PULL_GATEWAYS = frozenset({"opass", "aiofish"})  # vsms/isms have no pull API


class NonceStore:
    """Nonces seen per apiKey, forgotten after their time to live."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], float] = {}
        self.order: deque[tuple[float, tuple[str, str]]] = deque()

    def fresh(self, api_key: str, nonce: str, now_s: float, ttl_s: float) -> bool:
        """Remember ``nonce``; ``False`` if it was already seen within ``ttl_s``."""
        order, seen = self.order, self.seen
        while order and order[0][0] <= now_s:
            expiry, key = order.popleft()
            if seen.get(key) == expiry:
                del seen[key]
        key = (api_key, nonce)
        if key in seen:
            return False
        expiry = now_s + ttl_s
        seen[key] = expiry
        order.append((expiry, key))
        return True


class LazyCounter:
    """Times each phone was accepted; batches are counted when read or past ``fold_at``.

    Counting 1000 fresh strings costs about as much as the rest of a send, so the
    batches (shared with the receipt queues, not copied) wait until the ledger is
    read. Past ``fold_at`` pending recipients the oldest tenth is counted, so the
    event loop never stalls for more than one slice (a stall would, for instance,
    make a push answer look slow).
    """

    def __init__(self, fold_at: int) -> None:
        self.counts: Counter[str] = Counter()
        self.pending: deque[tuple[list[str] | str, int]] = deque()
        self.pending_count = 0
        self.fold_at = fold_at

    def add(self, phones: list[str] | str, count: int) -> None:
        """Add a batch (a list, or comma-joined text) of ``count`` phones."""
        self.pending.append((phones, count))
        self.pending_count += count
        if self.pending_count >= self.fold_at:
            self._fold_down_to(self.fold_at - max(1, self.fold_at // 10))

    def _fold_down_to(self, target: int) -> None:
        while self.pending and self.pending_count > target:
            phones, count = self.pending.popleft()
            self.counts.update(phones.split(",") if isinstance(phones, str) else phones)
            self.pending_count -= count

    def snapshot(self) -> dict[str, int]:
        """``{phone: times accepted}`` (counts every pending batch first)."""
        self._fold_down_to(0)
        return dict(self.counts)


@dataclass(slots=True)
class VsmsTemplate:
    """A submitted video-SMS template; its audit result is decided at creation."""

    tpl_id: str
    app_key: str
    title: str
    frames: list[dict[str, Any]]
    placeholders: int
    created_s: float
    audit_due_s: float
    approve: bool
    audit_pushed: bool = False

    def status(self, now_s: float) -> tuple[int, str]:
        """``(auditStatus, auditReason)``: 100 pending, then 200 approved or 400 rejected."""
        if now_s < self.audit_due_s:
            return 100, "待审核"
        return (200, "ok") if self.approve else (400, "标题含REJECT，沙箱按规则驳回")


@dataclass(slots=True)
class InFlight:
    """Gateway requests being handled right now, per gateway family, and the most ever at once.

    A request counts from its arrival to its answer (a ``slow`` fault's wait
    included): what a client keeping several requests in flight shows.
    """

    now: Counter[str] = field(default_factory=Counter)
    most: Counter[str] = field(default_factory=Counter)

    def enter(self, family: str) -> None:
        """A request of ``family`` arrived."""
        self.now[family] += 1
        self.most[family] = max(self.most[family], self.now[family])

    def leave(self, family: str) -> None:
        """A request of ``family`` was answered (or its connection dropped)."""
        self.now[family] -= 1

    def summary(self) -> dict[str, dict[str, int]]:
        """``{family: {"now", "max"}}`` for every family seen."""
        return {family: {"now": self.now[family], "max": self.most[family]} for family in sorted(self.most)}


@dataclass(slots=True)
class PushStats:
    """Push counters per gateway, answer times, and accounts the vendor stopped pushing to."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    answer_ms: dict[str, deque[float]] = field(default_factory=dict)
    slow_streak: dict[str, int] = field(default_factory=dict)
    stopped: dict[str, dict[str, bool]] = field(default_factory=dict)

    def count(self, gateway: str, what: str) -> None:
        """Increment ``what`` (attempted/succeeded/failed/retried/dropped) for ``gateway``."""
        self.counts.setdefault(gateway, Counter())[what] += 1

    def answered(self, gateway: str, elapsed_ms: float) -> None:
        """Record one push answer time (the last 10,000 per gateway are kept)."""
        self.answer_ms.setdefault(gateway, deque(maxlen=10_000)).append(elapsed_ms)

    def summary(self) -> dict[str, Any]:
        """Counters and p50/p99/max answer times per gateway."""
        out: dict[str, Any] = {}
        for gateway in sorted(set(self.counts) | set(self.answer_ms)):
            times = sorted(self.answer_ms.get(gateway, ()))
            entry: dict[str, Any] = {k: 0 for k in ("attempted", "succeeded", "failed", "retried", "dropped")}
            entry.update(self.counts.get(gateway, {}))
            entry["answer_ms"] = {
                "count": len(times),
                "p50": times[len(times) // 2] if times else None,
                "p99": times[min(len(times) - 1, int(len(times) * 0.99))] if times else None,
                "max": times[-1] if times else None,
            }
            out[gateway] = entry
        return out


class SandboxState:
    """All mutable sandbox state; :meth:`reset` restores the start-up condition."""

    def __init__(self, raw_config: Mapping[str, Any], clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.initial_raw = copy.deepcopy(dict(raw_config))
        self.config: SandboxConfig = parse_config(self.initial_raw)
        self.reset()

    def reset(self) -> None:
        """Clear every ledger, queue, rule and counter; restore the start-up config."""
        self.config = parse_config(copy.deepcopy(self.initial_raw))
        cfg = self.config
        fold_at = cfg.int("ledger_fold_recipients")
        self.accepted: dict[str, LazyCounter] = {g: LazyCounter(fold_at) for g in GATEWAYS}
        self._day_second, self._day_text = -1, ""
        self.requests: Counter[str] = Counter()
        self.in_flight = InFlight()
        self.nonces = NonceStore()
        self.limiter = Limiter()
        self.receipts = ReceiptStore()
        self.messages = MessageLog(cfg.int("messages_max"))
        self.uplinks: dict[str, deque[dict[str, Any]]] = {}
        self.opass_balance = {k: dict(a.balance) for k, a in cfg.opass_accounts.items()}
        self.aiofish_balance = {k: a.balance for k, a in cfg.aiofish_accounts.items()}
        self.vsms_templates: dict[str, VsmsTemplate] = {}
        self.faults = FaultEngine(cfg.seed)
        self.push_stats = PushStats()
        self.last_sms_id: dict[tuple[str, str], str] = {}  # (account, phone) -> smsId, for replies
        self._seq = 0

    def update_config(self, update: Mapping[str, Any]) -> SandboxConfig:
        """Deep-merge ``update`` into the config; balances that changed are reset to it.

        Changing an opass account's push URLs resumes pushes the slow-answer rule stopped.

        Raises ``ValueError`` (nothing changes) if the merged config does not validate.
        """
        old = self.config
        new = parse_config(deep_merge(old.raw, update))
        for key, acct in new.opass_accounts.items():
            before = old.opass_accounts.get(key)
            if before is None or before.balance != acct.balance:
                self.opass_balance[key] = dict(acct.balance)
            if before is None or (before.status_url, before.uplink_url) != (acct.status_url, acct.uplink_url):
                # Registering callback URLs again is how the vendor's console resumes pushes.
                self.push_stats.stopped.get("opass", {}).pop(key, None)
                self.push_stats.slow_streak.pop(key, None)
        for key, fish in new.aiofish_accounts.items():
            if key not in old.aiofish_accounts or old.aiofish_accounts[key].balance != fish.balance:
                self.aiofish_balance[key] = fish.balance
        self.messages.max_messages = new.int("messages_max")
        for counter in self.accepted.values():
            counter.fold_at = new.int("ledger_fold_recipients")
        self.config = new
        return new

    def next_seq(self) -> int:
        """A sequence number that restarts on reset (ids are reproducible per seed)."""
        self._seq += 1
        return self._seq

    def opass_msg_id(self) -> str:
        """An 18-digit opass msgId."""
        return str(OPASS_MSG_ID_BASE + self.config.seed % 10**9 * 10**6 + self.next_seq())

    def hex_id(self, kind: str, length: int) -> str:
        """A reproducible lower-hex id (aiofish smsId 32, vsms msgId 20, tplId 27)."""
        text = f"{kind}:{self.config.seed}:{self.next_seq()}"
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()[:length]

    def accept(
        self,
        *,
        gateway: str,
        account: str,
        msg_id: str,
        client_id: str | None,
        phones: list[str] | str,
        count: int,
        texts: str | list[str],
        push_url: str | None,
        start_s: float | None = None,
        forced: dict[int, str] | None = None,
    ) -> None:
        """Record an accepted request: ledger, message log, receipts (pull and/or push).

        ``phones`` are the ``count`` numbers of the batch, as a list or as the
        comma-joined text (kept as is and split only when needed). Indexes in
        ``forced`` were refused at submit: they get that receipt state and are not
        counted as accepted. ``texts`` is one text or one per phone; ``start_s``
        delays the receipts of a scheduled send.
        """
        cfg = self.config
        now = self.clock()
        accepted, held = phones, count
        if forced:
            listed = phones.split(",") if isinstance(phones, str) else phones
            accepted = [p for i, p in enumerate(listed) if i not in forced]
            held = len(accepted)
            if isinstance(texts, list):
                texts = [t for i, t in enumerate(texts) if i not in forced]
        self.accepted[gateway].add(accepted, held)
        self.messages.add(MessageRecord(gateway, account, msg_id, client_id, accepted, held, texts, now))
        mode = cfg.receipt_mode
        to_pull = mode != "push" and gateway in PULL_GATEWAYS
        to_push = mode != "pull" and push_url is not None
        day = self._day(now) if gateway == "opass" else None
        if not (to_pull or to_push or day):
            return
        due = max(now, start_s or now) + cfg.receipt_delay_s
        batch = ReceiptBatch(gateway, account, msg_id, client_id, phones, count, due, cfg.outcomes, cfg.seed, forced)
        self.receipts.add(batch, to_pull=to_pull, to_push=to_push, day=day)

    def _day(self, now_s: float) -> str:
        """``send_date(now_s)``, recomputed at most once per second (strftime is not cheap)."""
        second = int(now_s)
        if second != self._day_second:
            self._day_second, self._day_text = second, send_date(now_s)
        return self._day_text

    def ledger(self) -> dict[str, Any]:
        """The ledger document of ``GET /_sandbox/ledger``."""
        return {
            "accepted": {g: self.accepted[g].snapshot() for g in GATEWAYS},
            "requests": dict(self.requests),
        }
