"""Receipt drills: pushes arrive without pause while an applier's worker or Redis is killed.

Shared by ``python -m bench.drills`` (full size) and ``tests/integration/test_drills.py``
(CI size). Each drill takes a running :class:`~dispatcher.local.drill.Rig` with two
workers (each with its applier thread) and the webhook, stores accepted jobs
(:mod:`dispatcher.local.sandbox.push_load`) and pushes their receipts at a steady rate
from threads that retry a push until it is answered 200, as the vendors retry a
failed push. Then it does harm and counts, once the stream is drained::

    receipts        receipts pushed (every push ends answered 200)
    lost            receipts of a push answered 200 whose phone does not show them
    applied_twice   the jobs' counters against their per-phone states (a receipt
                    applied twice would count twice but set one byte)
    retried_pushes  pushes answered something else first (503 while Redis was down)

plus evidence that the harm landed (entries stranded with the killed consumer,
how long until another applier claimed them; how long Redis was down).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

import redis

from dispatcher.ledger import Ledger
from dispatcher.local.drill import Rig, Say
from dispatcher.local.sandbox.push_load import Push, Pushes, applied_once, build_pushes
from dispatcher.local.stack import wait_for
from dispatcher.receipt_stream import GROUP

RETRY_S = 0.2
KILL_TRIES = 5
PUSH_TIMEOUT_S = 5.0


class PushSender:
    """Sends pushes open-loop at ``rate_per_s`` from ``threads`` threads; retries each until 200."""

    def __init__(self, base_url: str, pushes: list[Push], rate_per_s: float, *, threads: int = 16,
                 give_up_s: float = 120.0) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.pushes = pushes
        self.rate_per_s = rate_per_s
        self.give_up_s = give_up_s
        self.ok = [False] * len(pushes)
        self.answers: defaultdict[str, int] = defaultdict(int)
        self.retried = 0
        self._next = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]
        self.start_s = 0.0

    def start(self) -> PushSender:
        """Start sending (push ``i`` is due ``i / rate_per_s`` seconds from now)."""
        self.start_s = time.monotonic()
        for t in self._threads:
            t.start()
        return self

    def answered(self) -> int:
        """Pushes answered 200 so far."""
        return sum(self.ok)

    def join(self) -> None:
        """Wait until every push was answered 200 or given up."""
        for t in self._threads:
            t.join()

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= len(self.pushes):
                return None
            self._next += 1
            return self._next - 1

    def _loop(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while (i := self._take()) is not None:
            wait = self.start_s + i / self.rate_per_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            push, first, deadline = self.pushes[i], True, time.monotonic() + self.give_up_s
            while time.monotonic() < deadline:
                status = "error"
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(self.host, self.port, timeout=PUSH_TIMEOUT_S)
                    conn.request("POST", push.path, body=push.body, headers={"Content-Type": push.content_type})
                    answer = conn.getresponse()
                    body = answer.read()
                    status = str(answer.status)
                    ok = 200 <= answer.status < 300 and (push.ok_body is None or body.strip() == push.ok_body)
                    if answer.will_close:
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException):
                    ok = False
                    if conn is not None:
                        conn.close()
                    conn = None
                with self._lock:
                    self.answers[status] += 1
                    if not ok and first:
                        self.retried += 1
                if ok:
                    self.ok[i] = True
                    break
                first = False
                time.sleep(RETRY_S)  # the vendors retry a failed push (minutes; compressed here)
        if conn is not None:
            conn.close()


def drained(client: redis.Redis, stream: str) -> bool:
    """Whether the receipt stream holds no entry and the group has none pending."""
    if client.xlen(stream):
        return False
    try:
        return all(int(g["pending"]) == 0 for g in client.xinfo_groups(stream))
    except redis.ResponseError:
        return True


def count(ledger: Ledger, built: Pushes, ok: list[bool]) -> dict[str, int]:
    """``lost``: receipts of pushes answered 200 that their phone does not show; ``applied_twice``:
    counters against per-phone states (see :func:`~dispatcher.local.sandbox.push_load.applied_once`)."""
    wanted: defaultdict[str, list[tuple[int, str]]] = defaultdict(list)
    for push, answered in zip(built.pushes, ok, strict=True):
        if answered:
            for key, idx, byte in push.expect:
                wanted[key].append((idx, byte))
    keys = list(wanted)
    pipe = ledger.r.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
    lost = 0
    for key, raw in zip(keys, pipe.execute(), strict=True):
        states = (raw or b"").decode()
        lost += sum(1 for idx, byte in wanted[key] if states[idx : idx + 1] != byte)
    once = applied_once(ledger, built)
    return {"receipts": built.receipts, "receipts_answered_200": sum(len(p.expect) for p, a in
                                                                     zip(built.pushes, ok, strict=True) if a),
            "lost": lost, "applied_twice": once["counter_drift"], "delivered": once["delivered"],
            "failed": once["failed"], "still_accepted": once["accepted"]}


def _consumers(client: redis.Redis, stream: str) -> dict[str, int]:
    try:
        return {str(c["name"].decode() if isinstance(c["name"], bytes) else c["name"]): int(c["pending"])
                for c in client.xinfo_consumers(stream, GROUP)}
    except redis.ResponseError:
        return {}


def _start(rig: Rig, pushes: int, rate_per_s: float, tag: str, say: Say) -> tuple[Pushes, PushSender]:
    built = build_pushes(rig.dispatcher.ledger, pushes, int(time.time() * 1000), tag=tag, expect=True)
    say(f"{tag}: {pushes} pushes of {built.receipts} receipts at {rate_per_s:g}/s")
    return built, PushSender(rig.stack.webhook_url, built.pushes, rate_per_s).start()


def _finish(rig: Rig, built: Pushes, sender: PushSender, timeout_s: float, say: Say, tag: str) -> dict[str, Any]:
    sender.join()
    stream = rig.dispatcher.keys.receipt_stream()
    t = time.monotonic()
    try:
        wait_for(lambda: drained(rig.redis, stream), timeout_s=timeout_s, what="the receipt stream drained",
                 interval_s=0.05)
        final = True
    except TimeoutError:
        final = False
    result = {**count(rig.dispatcher.ledger, built, sender.ok), "pushes": len(built.pushes),
              "pushes_answered_200": sender.answered(), "retried_pushes": sender.retried,
              "answers": dict(sender.answers), "drained": final,
              "drained_after_last_push_s": round(time.monotonic() - t, 1),
              "push_s": round(time.monotonic() - sender.start_s, 1)}
    say(f"{tag}: {'drained' if final else 'NOT drained'}: lost {result['lost']}, applied twice "
        f"{result['applied_twice']}, {sender.retried} pushes retried")
    return result


def run_applier_kill9(rig: Rig, *, pushes: int = 1200, rate_per_s: float = 150.0, at_fraction: float = 0.3,
                      timeout_s: float = 120.0, say: Say = print) -> dict[str, Any]:
    """kill -9 the worker whose applier holds unapplied entries, while pushes keep arriving.

    Its entries stay pending with its dead consumer until another worker's
    applier claims them (``SMSD_RECEIPT_CLAIM_IDLE_MS``; the drills' is 2 s).
    The killed worker is not restarted (unless its kill stranded nothing, see
    ``KILL_TRIES``): the survivor alone must finish.
    """
    built, sender = _start(rig, pushes, rate_per_s, "applier_kill9", say)
    stream = rig.dispatcher.keys.receipt_stream()
    wait_for(lambda: sender.answered() >= at_fraction * pushes, timeout_s=timeout_s, what="pushes", interval_s=0.02)
    victim, consumer, stranded, killed, tries = "", "", 0, 0.0, 0

    def busy() -> bool:
        nonlocal victim, consumer
        workers = [n for n in rig.stack.procs if n.startswith("w") and rig.stack.running(n)]
        for name, pending in _consumers(rig.redis, stream).items():
            owner = next((w for w in workers if name.startswith(f"{w}@")), None)
            if pending and owner:
                victim, consumer = owner, name
                return True
        return False

    # An applier that keeps up holds entries for a millisecond or two per batch, so a kill
    # aimed at one may land just after it acknowledged them: then the worker is started
    # again and the next batch is aimed at, up to KILL_TRIES times.
    while not stranded and tries < KILL_TRIES:
        tries += 1
        wait_for(busy, timeout_s=timeout_s, what="an applier holding entries", interval_s=0.001)
        rig.stack.kill(victim)
        killed = time.monotonic()
        stranded = _consumers(rig.redis, stream).get(consumer, 0)
        say(f"applier_kill9: kill -9 {victim} at {sender.answered()}/{pushes} pushes answered, "
            f"{stranded} entries stranded with its consumer")
        if not stranded:
            rig.stack.start_worker(victim, concurrency=1)
    claimed_s = None
    if stranded:
        wait_for(lambda: _consumers(rig.redis, stream).get(consumer, 0) == 0, timeout_s=timeout_s,
                 what="the dead consumer's entries claimed", interval_s=0.05)
        claimed_s = round(time.monotonic() - killed, 2)
    result = _finish(rig, built, sender, timeout_s, say, "applier_kill9")
    return {**result, "killed": victim, "kills": tries, "stranded_entries": stranded, "claimed_after_s": claimed_s}


def run_receipts_redis_restart(rig: Rig, *, pushes: int = 1200, rate_per_s: float = 150.0, at_fraction: float = 0.3,
                               down_s: float = 2.0, kill: bool = False, timeout_s: float = 120.0,
                               say: Say = print) -> dict[str, Any]:
    """Stop redis-server (SIGTERM, or SIGKILL with ``kill``) and start it again while pushes arrive.

    The webhook answers 503 while Redis is down and the senders retry, as the
    vendors do; nothing else is restarted. Raises ``ConfigurationError`` if the
    rig's stack did not start its own Redis.
    """
    tag = "receipts_redis_kill9" if kill else "receipts_redis_restart"
    built, sender = _start(rig, pushes, rate_per_s, tag, say)
    wait_for(lambda: sender.answered() >= at_fraction * pushes, timeout_s=timeout_s, what="pushes", interval_s=0.02)
    at = sender.answered()
    # Writes redis-server postponed for a slow fsync (acknowledged, not yet in the AOF) so far.
    delayed = int(rig.redis.info("persistence").get("aof_delayed_fsync", 0))
    down = rig.stack.restart_redis(down_s=down_s, kill=kill)
    say(f"{tag}: redis-server {'killed' if kill else 'stopped'} at {at}/{pushes} pushes answered, "
        f"unreachable {down:.1f} s")
    result = _finish(rig, built, sender, timeout_s, say, tag)
    return {**result, "down_s": round(down, 2), "pushes_answered_before": at, "aof_delayed_fsync": delayed}
