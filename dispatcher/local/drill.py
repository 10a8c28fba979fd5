"""Fault drills on real processes, counted by the sandbox's ledger.

One piece of code for ``python -m bench.drills`` (full size, prints JSON) and
``tests/integration/test_drills.py`` (CI size, asserts): each ``run_*`` function
takes a running :class:`Rig`, sends one opass job, does harm while it runs, and
returns what an operator would check::

    recipients   how many the job had
    lost         accepted 0 times by the sandbox and not refused by the gateway
    duplicated   accepted more than once
    reconciled   chunks that went ambiguous and were settled from receipts, not resent
    finish_s     from the send call until every recipient was final

plus evidence that the harm really happened (the chunks each killed worker had
claimed and not finished, a restart mid-job, faults injected). :func:`start_rig` builds a whole rig (its
own redis-server with AOF, which a drill can restart); the tests also pass the
pipeline fixture of ``tests/integration/pipeline.py``, which has the same shape.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import redis
import requests

from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.errors import ConfigurationError
from dispatcher.ledger import PHONE_WIDTH, as_text
from dispatcher.local.demo import accounts_doc, phones, sandbox_settings
from dispatcher.local.sandbox.control import SandboxControl
from dispatcher.local.stack import Stack, wait_for
from dispatcher.producer import Dispatcher, JobStatus
from dispatcher.redis_connection import connect

#: Timings shrunk so the sweeps and reconciliation act within a drill's patience
#: (the idea of tests/integration/pipeline.py's FAST): a chunk left ``sending`` by
#: a killed worker is ambiguous after 6 s and resent 4 s later if no receipt came.
DRILL_ENV = {
    "SMSD_RECONCILE_WINDOW_S": "4",
    "SMSD_RECONCILE_RETRY_S": "1",
    "SMSD_STUCK_AFTER_S": "6",
    "SMSD_ORPHAN_AFTER_S": "8",
    "SMSD_SWEEP_EVERY_S": "0.5",
    "SMSD_RECEIPT_TICK_S": "0.5",
    "SMSD_RETRY_BASE_S": "0.2",
    "SMSD_RETRY_CAP_S": "2",
    # A killed worker's receipt-stream entries are claimed by another applier after 2 s, not 15.
    "SMSD_RECEIPT_CLAIM_IDLE_MS": "2000",
}
#: Receipt pulls and balance checks as fast as a drill needs. Polls take at most
#: a fifth of the query budget they share with the bid queries of ambiguous
#: chunks (as 1/min of 3/min leaves room in production): beat reserves every
#: poll slot its limit allows, so a poll limit equal to the budget would starve them.
DRILL_LIMITS = {
    "receipts": [{"kind": "receipts", "count": 4, "window_s": 1}, {"kind": "query", "count": 20, "window_s": 1}],
    "reconcile": [{"kind": "query", "count": 20, "window_s": 1}],
    "replies": [{"kind": "replies", "count": 20, "window_s": 1}],
    "balance": [{"kind": "balance", "count": 20, "window_s": 1}],
}
#: Receipts 0.3 s after acceptance; a push the webhook could not take (Redis
#: down) is retried within seconds, not the vendors' minutes.
DRILL_SANDBOX = {
    "receipt_delay_s": 0.3,
    "time_scale": 0.01,
    "limits": {"opass_query": {"max": 1000, "window_s": 1.0}, "opass_residue": {"max": 1000, "window_s": 1.0},
               "aiofish_balance": {"max": 1000, "window_s": 1.0}},
}
ONE_PARAM_TEMPLATE = "1000000000000000002"
SEND_PATH = "/message/send"
RECEIPT_PATH = "/sms/arriveRes/qry"
#: The fault mix of the drill: refused connections, "system busy", throttling,
#: and sends that are taken but whose answer is lost (ambiguous).
FAULT_MIX = (
    {"kind": "refuse", "rate": 0.10, "path": "/message/"},
    {"kind": "code", "code": "-1", "rate": 0.05, "path": "/message/"},
    {"kind": "code", "code": "6000", "rate": 0.05, "path": "/message/"},
    {"kind": "drop", "rate": 0.02, "path": "/message/"},
)
_FINAL_BYTES = "XDFU"

Say = Callable[[str], None]


class Rig(Protocol):
    """A running pipeline: its processes, the sandbox's control API, a producer, Redis."""

    stack: Stack
    sandbox: SandboxControl
    dispatcher: Dispatcher
    redis: redis.Redis


@dataclass
class DrillRig:
    """A :class:`Rig` built by :func:`start_rig`; ``stop()`` ends every process it started."""

    stack: Stack
    sandbox: SandboxControl
    dispatcher: Dispatcher
    redis: redis.Redis

    def stop(self) -> None:
        """Stop workers, beat, webhook, sandbox (if started here) and Redis."""
        self.redis.close()
        self.stack.stop_all()


def start_rig(base_dir: str | Path, *, workers: int = 2, concurrency: int = 2, batch_max: int = 1000,
              sandbox_url: str | None = None, webhook: bool = True, sentinel_replicas: int = 0,
              route: bool = False) -> DrillRig:
    """Start redis-server (AOF on), the sandbox (unless ``sandbox_url``), webhook, workers and beat.

    ``batch_max`` is the opass chunk size; ``route`` adds the route drill's route (:func:`with_route`).
    With ``sentinel_replicas`` Redis is a
    Sentinel group instead (a master, that many replicas, three sentinels:
    ``stack.sentinels``) and every process finds its master through the sentinels.
    The producer's Redis client retries through a restart or a failover
    (:func:`dispatcher.redis_connection.connect`). Raises ``ConfigurationError`` or
    ``TimeoutError`` if a process does not come up; whatever was started is stopped again then.
    """
    base = Path(base_dir)
    stack = Stack(base / "stack", env={**DRILL_ENV, "SMSD_DATA_DIR": str(base / "data")})
    try:
        if sentinel_replicas:
            stack.start_sentinel_redis(replicas=sentinel_replicas)
        else:
            stack.start_redis()
        sandbox_url = sandbox_url or stack.start_sandbox()
        doc = accounts_doc(sandbox_url)
        for provider in ("opass", "aiofish"):
            doc[provider][0]["limits"] = DRILL_LIMITS
        doc["opass"][0]["batch_max"] = batch_max
        if route:
            with_route(doc)
        path = base / "accounts.json"
        path.write_text(json.dumps(doc, ensure_ascii=False))
        stack.env["SMSD_ACCOUNTS_FILE"] = str(path)
        control = SandboxControl(sandbox_url)
        sandbox: dict[str, Any] = dict(DRILL_SANDBOX)
        if webhook:
            sandbox = {**sandbox_settings(stack.start_webhook()), **sandbox}
        control.configure(**sandbox)
        for i in range(workers):
            stack.start_worker(f"w{i}", concurrency=concurrency)
        stack.start_beat()
        settings = Settings.from_env(stack.env)
        client = connect(settings)
        dispatcher = Dispatcher(settings, accounts=parse_accounts(doc), client=client)
    except BaseException:
        stack.stop_all()
        raise
    return DrillRig(stack, control, dispatcher, client)


# -- counting ------------------------------------------------------------------------


def tally(rig: Rig, job_id: str, gateway: str = "opass", *, only: Collection[int] | None = None) -> dict[str, int]:
    """Count a job against the sandbox's ledger: recipients, lost, duplicated, reconciled….

    ``lost``: accepted 0 times and not refused by the gateway (a chunk we gave
    up on counts as lost: the gateway never refused it). ``reconciled``: chunks
    that receipts proved accepted after they went ambiguous (or were released
    for a resend), so they were not sent again; ``settled_in_flight``: the same
    for chunks still ``sending`` (their worker was killed after the gateway
    took them). Both read the chunk's ``settled_from``, set by APPLY_RECEIPTS.
    ``only``: count just these chunks of the job.
    """
    seen: dict[str, int] = rig.sandbox.ledger()["accepted"][gateway]
    ledger, keys = rig.dispatcher.ledger, rig.dispatcher.keys
    chunks = int(ledger.job(job_id).get("chunks", 0))
    out = {"recipients": 0, "lost": 0, "duplicated": 0, "rejected_by_gateway": 0, "not_final": 0,
           "reconciled": 0, "settled_in_flight": 0}
    for n in range(chunks) if only is None else sorted(only):
        chunk = ledger.chunk(job_id, n)
        raw = rig.redis.get(keys.chunk_states(job_id, n))
        states = raw.decode() if isinstance(raw, bytes) else ""
        gave_up = chunk.get("state") == "rejected" and chunk.get("code", "").startswith("gave-up")
        text = chunk.get("phones", "")
        for i in range(len(text) // PHONE_WIDTH):
            phone, byte = text[i * PHONE_WIDTH:(i + 1) * PHONE_WIDTH], states[i:i + 1]
            times = seen.get(phone, 0)
            out["recipients"] += 1
            out["duplicated"] += times > 1
            out["not_final"] += byte not in _FINAL_BYTES or byte == ""
            if times == 0 and byte == "X" and not gave_up:
                out["rejected_by_gateway"] += 1
            elif times == 0:
                out["lost"] += 1
        settled_from = chunk.get("settled_from")  # set when receipts proved an attempt arrived
        if settled_from == "sending":
            out["settled_in_flight"] += 1
        elif settled_from:  # ambiguous, or released for a resend that receipts then made needless
            out["reconciled"] += 1
    return out


def _submitted(status: JobStatus) -> int:
    """Recipients past the gateway call (accepted, final or refused)."""
    c = status.counts
    return status.total - c["pending"] - c["sending"]


def _requests(rig: Rig, path: str) -> int:
    return int(rig.sandbox.ledger()["requests"].get(path, 0))


def _finish(rig: Rig, job_id: str, started: float, timeout_s: float, say: Say, name: str) -> dict[str, Any]:
    """Wait until the job is final (or ``timeout_s``); return its tally with ``finish_s``."""
    try:
        wait_for(lambda: rig.dispatcher.status(job_id).finished, timeout_s=timeout_s, what=f"{name} job",
                 interval_s=0.2)
        final = True
    except TimeoutError:
        final = False
    finish_s = time.monotonic() - started
    counts = tally(rig, job_id)
    say(f"{name}: {'final' if final else 'NOT final'} after {finish_s:.1f} s: "
        f"lost {counts['lost']}, duplicated {counts['duplicated']}, reconciled {counts['reconciled']}")
    return {**counts, "final": final, "finish_s": round(finish_s, 1)}


def _send(rig: Rig, recipients: int, seed: int, say: Say, name: str) -> tuple[str, int, float]:
    numbers = phones(recipients, seed=seed)
    started = time.monotonic()
    job = rig.dispatcher.send_template("demo", template_code=ONE_PARAM_TEMPLATE, phones=numbers,
                                       params=["246810"])
    say(f"{name}: job of {job.total} recipients queued in {job.chunks} chunks")
    return job.job_id, job.chunks, started


def held_by(rig: Rig, job_id: str, chunks: int, worker: str, *, since_ms: float = 0.0) -> list[int]:
    """The job's chunks ``sending`` under a claim of ``worker``'s processes (claimer ``worker@host:pid``).

    Only claims made at or after ``since_ms`` (wall clock; the claim's ``since``)
    count: a worker restarted under the same name is not blamed for its
    predecessor's chunks.
    """
    keys = rig.dispatcher.keys
    pipe = rig.redis.pipeline(transaction=False)
    for n in range(chunks):
        pipe.hmget(keys.chunk(job_id, n), "state", "by", "since")
    return [n for n, (state, by, since) in enumerate(pipe.execute())
            if as_text(state or b"") == "sending" and as_text(by or b"").startswith(f"{worker}@")
            and float(as_text(since or b"0")) >= since_ms]


def _at_progress(rig: Rig, job_id: str, fraction: float, timeout_s: float,
                 also: Callable[[], bool] | None = None, also_what: str = "") -> JobStatus:
    """Wait until ``fraction`` of the job is submitted while chunks are in flight (and ``also``); return that status.

    Raises ``TimeoutError`` after ``timeout_s``, or as soon as the whole job is
    submitted without ``also`` having held (the moment can no longer come).
    """
    seen: list[JobStatus] = []

    def reached() -> bool:
        status = rig.dispatcher.status(job_id)
        seen[:] = [status]
        if (_submitted(status) >= fraction * status.total and status.counts["sending"] > 0
                and (also is None or also())):
            return True
        if also is not None and status.submitted:
            raise TimeoutError(f"the job was submitted before {fraction:.0%} of it with {also_what}")
        return False

    wait_for(reached, timeout_s=timeout_s, what=f"{fraction:.0%} of the job", interval_s=0.05)
    return seen[0]


# -- the drills ----------------------------------------------------------------------


def run_kill9(rig: Rig, *, recipients: int, kills: int = 5, worker: str = "w0", concurrency: int = 2,
              slow_ms: int = 400, seed: int = 101, timeout_s: float = 300.0, say: Say = print) -> dict[str, Any]:
    """kill -9 ``worker`` (its whole process group) ``kills`` times during one job, restarting it each time.

    Every send answers after ``slow_ms`` so each kill finds requests in flight;
    the kills are spread over the job by its progress, not by the clock, and
    each waits until ``worker`` itself holds a chunk. ``held_at_kills``: per
    kill, the chunks still ``sending`` under the killed processes' claims, read
    after the kill; ``held``: the tally of those chunks once the job is final.
    """
    rig.sandbox.set_faults({"kind": "slow", "rate": 1.0, "delay_ms": slow_ms, "path": "/message/"})
    job_id, chunks, started = _send(rig, recipients, seed, say, "kill9")
    in_flight: list[int] = []
    held_at_kills: list[list[int]] = []
    alive_since_ms = 0.0  # the first worker has been up since before the job
    for k in range(kills):
        def holds(alive_ms: float = alive_since_ms) -> bool:
            # A chunk claimed in the last slow_ms / 2 has at least that long until its answer (and its
            # receipts, 0.3 s after the gateway took it), so the kill lands with it in flight.
            recent_ms = time.time() * 1000 - slow_ms / 2
            return bool(held_by(rig, job_id, chunks, worker, since_ms=max(alive_ms, recent_ms)))

        status = _at_progress(rig, job_id, (k + 1) / (kills + 2), timeout_s, also=holds,
                              also_what=f"{worker} holding a freshly claimed chunk")
        rig.stack.kill(worker)
        # Read after the kill: what the dead processes had claimed and not finished.
        held_at_kills.append(held_by(rig, job_id, chunks, worker, since_ms=alive_since_ms))
        in_flight.append(status.counts["sending"])
        say(f"kill9: kill {k + 1}/{kills} at {_submitted(status)}/{status.total} submitted, "
            f"{status.counts['sending']} recipients in flight, chunks {held_at_kills[-1]} held by {worker}")
        alive_since_ms = time.time() * 1000
        rig.stack.start_worker(worker, concurrency=concurrency)
    rig.sandbox.clear_faults()
    result = _finish(rig, job_id, started, timeout_s, say, "kill9")
    held = tally(rig, job_id, only={n for kill in held_at_kills for n in kill})
    return {**result, "chunks": chunks, "sends": _requests(rig, SEND_PATH), "kills": kills,
            "in_flight_at_kills": in_flight, "held_at_kills": held_at_kills, "held": held}


def run_redis_restart(rig: Rig, *, recipients: int, down_s: float = 2.0, at_fraction: float = 0.3,
                      slow_ms: int = 300, seed: int = 102, timeout_s: float = 300.0,
                      say: Say = print) -> dict[str, Any]:
    """Stop redis-server and start it again (same port, data, AOF) once ``at_fraction`` of a job is out.

    Nothing else is restarted: workers, beat, webhook and this producer's status
    polling must reconnect by themselves. Raises ``ConfigurationError`` if the
    rig's stack did not start its own Redis.
    """
    rig.sandbox.set_faults({"kind": "slow", "rate": 1.0, "delay_ms": slow_ms, "path": "/message/"})
    job_id, chunks, started = _send(rig, recipients, seed, say, "redis_restart")
    before = _at_progress(rig, job_id, at_fraction, timeout_s)
    polls_before = _requests(rig, RECEIPT_PATH)
    probe: dict[str, Any] = {}

    def probe_webhook() -> None:
        # A vendor waits 1 s at most: the webhook must say 503 (so it retries
        # the push) well within that, not hang on a patient Redis client.
        t = time.perf_counter()
        try:
            probe["status"] = requests.get(rig.stack.webhook_url + "/healthz", timeout=5).status_code
        except requests.RequestException as exc:
            probe["status"] = type(exc).__name__
        probe["answer_ms"] = round((time.perf_counter() - t) * 1000, 1)

    down = rig.stack.restart_redis(down_s=down_s, while_down=probe_webhook if rig.stack.webhook_url else None)
    after = rig.dispatcher.status(job_id)  # the producer's client reconnects by itself
    say(f"redis_restart: redis-server restarted at {_submitted(before)}/{before.total} submitted, "
        f"unreachable {down:.1f} s; counters after: {after.counts}")
    wait_for(lambda: _submitted(rig.dispatcher.status(job_id)) > _submitted(after), timeout_s=timeout_s,
             what="progress after the restart", interval_s=0.1)
    rig.sandbox.clear_faults()
    result = _finish(rig, job_id, started, timeout_s, say, "redis_restart")
    alive = [name for name in list(rig.stack.procs) if name != "sandbox"]
    return {**result, "chunks": chunks, "sends": _requests(rig, SEND_PATH), "down_s": round(down, 2),
            "mid_job": not before.submitted, "counters_kept": sum(after.counts.values()) == after.total,
            "receipt_polls_after_restart": _requests(rig, RECEIPT_PATH) - polls_before,
            "processes_exited": [name for name in alive if not rig.stack.running(name)],
            "webhook_while_down": probe}


def run_fault_mix(rig: Rig, *, recipients: int, faults: tuple[Mapping[str, Any], ...] = FAULT_MIX,
                  seed: int = 103, timeout_s: float = 300.0, say: Say = print) -> dict[str, Any]:
    """Send one job while the sandbox injects ``faults`` on its send paths; clear them once it is submitted."""
    rig.sandbox.set_faults(*[dict(f) for f in faults])
    job_id, chunks, started = _send(rig, recipients, seed, say, "fault_mix")
    wait_for(lambda: rig.dispatcher.status(job_id).submitted, timeout_s=timeout_s, what="fault_mix submission",
             interval_s=0.2)
    injected = {f"{r['kind']}:{r.get('code') or ''}".rstrip(":"): int(r.get("injected", 0))
                for r in rig.sandbox.faults()}
    rig.sandbox.clear_faults()
    say(f"fault_mix: submitted after {time.monotonic() - started:.1f} s; faults injected {injected}")
    result = _finish(rig, job_id, started, timeout_s, say, "fault_mix")
    return {**result, "chunks": chunks, "sends": _requests(rig, SEND_PATH), "injected": injected}


def run_sentinel_failover(rig: Rig, *, recipients: int, at_fraction: float = 0.3, slow_ms: int = 300,
                          restart_old: bool = True, seed: int = 104, timeout_s: float = 300.0,
                          say: Say = print) -> dict[str, Any]:
    """kill -9 the Sentinel group's master once ``at_fraction`` of a job is out, with requests in flight.

    The sentinels promote a replica; nothing of ours is restarted: workers,
    beat, webhook and this producer must find the new master by themselves.
    With ``restart_old`` the killed server is started again once the replica is
    promoted, as the new master's replica, as an operator would (with one
    replica, claims wait for it: nothing is sent on a claim no replica holds,
    so without the restart nothing is sent again until one is back).

    Besides the tally: ``promoted_s`` (kill until the sentinels name a new
    master that answers as one), ``recovered_s`` (kill until the gateway gets a
    request claimed on the new master), ``replica_in_sync_s`` (kill until the new
    master has a replica in sync), ``claims_held_back`` (claims undone because no replica
    confirmed them), ``receipt_polls_after`` (beat's polls went on),
    ``pushes_taken_after`` (pushes the webhook answered 200 after the kill),
    ``processes_exited`` and ``funnel`` (the job's counters at the end; ``funnel_complete``:
    they add up to every recipient). Raises ``ConfigurationError`` if the rig's stack has no Sentinel group.
    """
    group = rig.stack.sentinels
    if group is None:
        raise ConfigurationError("this rig's Redis is not a Sentinel group (start_rig(sentinel_replicas=1))")
    rig.sandbox.set_faults({"kind": "slow", "rate": 1.0, "delay_ms": slow_ms, "path": "/message/"})
    job_id, chunks, started = _send(rig, recipients, seed, say, "sentinel_failover")
    before = _at_progress(rig, job_id, at_fraction, timeout_s)
    polls_before = _requests(rig, RECEIPT_PATH)
    workers = [name for name in rig.stack.procs if name not in ("sandbox", "beat", "webhook")]
    offsets = {name: _log_size(rig, name) for name in [*workers, "webhook"]}
    killed_port = group.kill_master()
    killed_at = time.monotonic()
    new_port, promoted_s = group.wait_promoted(killed_port, timeout_s=timeout_s)
    after = rig.dispatcher.status(job_id)  # the producer's client found the new master by itself
    say(f"sentinel_failover: master :{killed_port} killed at {_submitted(before)}/{before.total} submitted "
        f"({before.counts['sending']} recipients in flight); :{new_port} promoted after {promoted_s:.1f} s; "
        f"its counters: {after.counts}")
    # Requests already claimed when the master died went out before the promotion (a claim
    # waits at most SMSD_LIMITER_MAX_WAIT_S for its slot, less than a failover takes): a
    # request after it was claimed on the new master.
    sends_at_promotion = _requests(rig, SEND_PATH)
    if restart_old:
        group.restart_node(killed_port, replica_of=new_port)  # as an operator would: never as a stale master
    wait_for(lambda: _requests(rig, SEND_PATH) > sends_at_promotion, timeout_s=timeout_s,
             what="a request sent after the promotion", interval_s=0.05)
    recovered_s = time.monotonic() - killed_at
    # Today's master (the sentinels may have failed over again meanwhile) with a replica in sync:
    # the killed one restarted, or with two replicas the other one.
    wait_for(lambda: group.synced_replicas(group.master_port() or new_port) > 0, timeout_s=timeout_s,
             what="a replica in sync with the new master")
    replica_s = time.monotonic() - killed_at
    say(f"sentinel_failover: sending again {recovered_s:.1f} s after the kill; "
        f"a replica in sync with the new master after {replica_s:.1f} s")
    rig.sandbox.clear_faults()
    result = _finish(rig, job_id, started, timeout_s, say, "sentinel_failover")
    funnel = rig.dispatcher.status(job_id)  # as the new master has it, after the rollback of the failover
    alive = [name for name in list(rig.stack.procs) if name != "sandbox"]
    held_back = sum(len(rig.stack.log_events(name, "chunk.claim_unreplicated", since=offsets[name]))
                    for name in workers)
    pushes = [e for e in rig.stack.log_events("webhook", "webhook.answer", since=offsets["webhook"])
              if e.get("status") == "200" and e.get("receipts")]
    return {**result, "chunks": chunks, "sends": _requests(rig, SEND_PATH), "mid_job": not before.submitted,
            "in_flight_at_kill": before.counts["sending"], "master_before": killed_port, "master_after": new_port,
            "promoted_s": round(promoted_s, 2), "recovered_s": round(recovered_s, 2),
            "replica_in_sync_s": round(replica_s, 2),
            "master_at_end": group.master_port(),
            "claims_held_back": held_back, "receipt_polls_after": _requests(rig, RECEIPT_PATH) - polls_before,
            "pushes_taken_after": len(pushes), "processes_exited": [n for n in alive if not rig.stack.running(n)],
            "funnel": funnel.counts, "funnel_complete": sum(funnel.counts.values()) == funnel.total == recipients}


def _log_size(rig: Rig, name: str) -> int:
    """How many bytes process ``name`` has logged so far (to read only what comes after)."""
    return len(rig.stack.log_text(name).encode())
# -- routes ---------------------------------------------------------------------------

#: The route drill's template: the text the sandbox's opass template ``…002`` has, declared
#: under that code on the opass account and as the route template ``otp``.
ROUTE_TEMPLATE_TEXT = "您的验证码是{验证码,6}，5分钟内有效。"
ROUTE_SIGNATURE = "飞鱼"
#: opass's account-fatal "余额不足" (dispatcher/providers/opass/codes.py): the sandbox answers it on
#: every send once the drill starts the fault, and the worker pauses the account.
ACCOUNT_FATAL = {"kind": "code", "code": "40002", "path": "/message/"}
#: opass's -1 (系统繁忙): a transient answer, retried; enough of them mark the account failing.
TRANSIENT = {"kind": "code", "code": "-1", "path": "/message/"}


def with_route(doc: dict[str, Any], *, name: str = "drill", cooldown_s: float = 1.0) -> dict[str, Any]:
    """``doc`` (the demo's accounts) with route ``name``: opass:demo weight 3, then aiofish:demo weight 1,
    sending the route template ``otp``, and a paused account's recipients moving on after ``cooldown_s``."""
    doc["opass"][0]["templates"] = {ONE_PARAM_TEMPLATE: ROUTE_TEMPLATE_TEXT}
    doc["templates"] = {"otp": ROUTE_TEMPLATE_TEXT}
    doc["routes"] = {name: {"cooldown_s": cooldown_s, "accounts": [
        {"account": "opass:demo", "weight": 3},
        {"account": "aiofish:demo", "weight": 1, "signature": ROUTE_SIGNATURE}]}}
    return doc


def run_route_failover(rig: Rig, *, recipients: int, at_fraction: float = 0.2, route: str = "drill",
                       seed: int = 107, slow_ms: int = 50, timeout_s: float = 300.0, transient: bool = False,
                       say: Say = print) -> dict[str, Any]:
    """Send one route job (3:1 opass:aiofish); once ``at_fraction`` of opass's share is accepted the
    sandbox answers every opass send ``40002`` (``transient``: ``-1``, busy, so opass is not paused
    but marked failing by its error rate); the rest must go out once each, through aiofish.

    The sandbox holds each opass send ``slow_ms`` so the fault lands mid-campaign. Returns
    ``recipients``, ``lost`` (accepted by neither gateway), ``duplicated`` (more than once in
    all), ``through_both``, per-gateway acceptances, ``moved`` (records on opass saying
    ``rerouted``), ``moved_sent_elsewhere`` (of those, accepted once by aiofish and never by
    opass), ``fault_answers``, ``paused`` and ``final``.
    """
    rig.sandbox.set_faults({"kind": "slow", "delay_ms": slow_ms, "path": "/message/"})
    numbers = phones(recipients, seed=seed)
    started = time.monotonic()
    handle = rig.dispatcher.send(route, template="otp", params=["246810"], phones=numbers, force=True)
    opass_job = handle.jobs[0]
    say(f"route_failover: {handle.total} recipients in jobs of {[j.total for j in handle.jobs]} "
        f"({', '.join(f'{j.provider}:{j.account}' for j in handle.jobs)})")

    def opass_accepted() -> int:
        seen = rig.sandbox.ledger()["accepted"]["opass"]
        return sum(1 for p in numbers if seen.get(p))

    wait_for(opass_accepted, ok=lambda n: n >= at_fraction * opass_job.total, timeout_s=timeout_s,
             interval_s=0.05, what=f"{at_fraction:.0%} of the opass share accepted")
    fault = TRANSIENT if transient else ACCOUNT_FATAL
    rig.sandbox.set_faults(dict(fault), {"kind": "slow", "delay_ms": slow_ms, "path": "/message/"})
    say(f"route_failover: the sandbox now answers every opass send {fault['code']}")
    try:
        wait_for(lambda: rig.dispatcher.status(handle.job_id).submitted, timeout_s=timeout_s, interval_s=0.2,
                 what="the route job submitted")
        final = True
    except TimeoutError:
        final = False
    finish_s = time.monotonic() - started
    fault_answers = int(next(r for r in rig.sandbox.faults() if r["kind"] == "code").get("injected", 0))
    rig.sandbox.clear_faults()
    accepted = rig.sandbox.ledger()["accepted"]
    counts = [(accepted["opass"].get(p, 0), accepted["aiofish"].get(p, 0)) for p in numbers]
    moved = [d for d in rig.dispatcher.status(opass_job.job_id, phones=True).phones or [] if d.code == "rerouted"]
    result = {
        "recipients": len(numbers), "final": final, "finish_s": round(finish_s, 1),
        "lost": sum(1 for o, a in counts if o + a == 0),
        "duplicated": sum(1 for o, a in counts if o + a > 1),
        "through_both": sum(1 for o, a in counts if o and a),
        "opass_accepted": sum(1 for o, _ in counts if o), "aiofish_accepted": sum(1 for _, a in counts if a),
        "moved": len(moved), "moved_detail": sorted({d.detail for d in moved}),
        "moved_sent_elsewhere": sum(1 for d in moved
                                    if (accepted["opass"].get(d.phone, 0), accepted["aiofish"].get(d.phone, 0))
                                    == (0, 1)),
        "fault_answers": fault_answers,
        "paused": rig.dispatcher.status(opass_job.job_id).paused,
        "failing": rig.dispatcher.failing(opass_job.provider, opass_job.account),
        "jobs": rig.dispatcher.route_jobs(handle.job_id),
        "route_counts": rig.dispatcher.status(handle.job_id).counts,
    }
    say(f"route_failover: {'submitted' if final else 'NOT submitted'} after {finish_s:.1f} s: lost {result['lost']}, "
        f"duplicated {result['duplicated']}, moved {result['moved']} to aiofish")
    return result
