"""A route's failover: the recipients of a paused or failing account not yet submitted move to the next account.

Beat runs :func:`failover` (``workers.tasks.route_failover``, every ``SMSD_SWEEP_EVERY_S``).
An account of a route that has been paused (an account-fatal answer such as opass's
``40002`` 余额不足, or an operator), or marked failing by a worker that saw too many of its
calls fail (:mod:`dispatcher.account_health`), for the route's ``cooldown_s`` — counted from the
first failover pass that saw it paused, ``P:route:down:…`` — loses its route jobs'
pending chunks to the next account of the route that is not paused:

1. the target must be able to send the route's template (its plug's ``route`` form,
   checked on a probe) — else nothing moves;
2. ``Ledger.reroute_chunks`` takes the chunks that are still ``pending`` in one Lua step
   per 100 chunks (``REROUTE``): each becomes ``cancelled`` with the code ``rerouted`` /
   ``to provider:account``. The claim script moves a chunk ``pending → sending`` in one
   step too, so a chunk is either with a worker (and stays with this account: if it comes
   back unsent it is ``pending`` again and the next pass moves it) or moved, never both;
3. the moved phones become a new job of the target account in its own form, noted in the
   route send (``P:route:{id}``), and queued.

A recipient is therefore submitted through one account at most; ``status`` of the route
send counts it once, where it went. What is not covered: a process that dies between
steps 2 and 3 leaves those recipients ``cancelled``/``rerouted`` on the account they left
and stored nowhere else (logged ``route.failover_lost`` when the store itself fails).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import structlog

from dispatcher.deliveries import CodeEntry
from dispatcher.errors import ConfigurationError, ValidationError
from dispatcher.ledger import as_text, split_phones
from dispatcher.routes import REROUTED_CODE, Route, RouteEntry

if TYPE_CHECKING:
    from dispatcher.producer import Dispatcher

log = structlog.get_logger("dispatcher.route_failover")

#: A number the target's checks are tried on before anything moves (never stored).
PROBE_PHONE = "13800000000"


def down_since(d: Dispatcher, now_ms: int) -> dict[str, int]:
    """Accounts of any route that are paused or failing (:mod:`dispatcher.account_health`) now → since
    when the failover has seen them so (ms).

    Two round trips: the pauses and failing marks, then the sightings (set on the first, deleted once
    neither holds).
    """
    keys = sorted({(e.provider, e.account) for r in d.accounts.routes.values() for e in r.entries})
    if not keys:
        return {}
    marks = d.redis.mget([k for p, a in keys for k in (d.keys.paused(p, a), d.keys.failing(p, a))])
    paused = [marks[2 * i] or marks[2 * i + 1] for i in range(len(keys))]
    pipe = d.redis.pipeline(transaction=False)
    for (provider, account), reason in zip(keys, paused, strict=True):
        mark = d.keys.route_down(provider, account)
        if reason is None:
            pipe.delete(mark)
        else:
            pipe.set(mark, now_ms, nx=True)
            pipe.get(mark)
    replies: list[Any] = pipe.execute()
    out, at = {}, 0
    for (provider, account), reason in zip(keys, paused, strict=True):
        if reason is None:
            at += 1
            continue
        out[f"{provider}:{account}"] = int(replies[at + 1] or now_ms)
        at += 2
    return out


def failover(d: Dispatcher, *, now_ms: int) -> int:
    """Move the pending recipients of route accounts paused past their route's cooldown; return how many moved."""
    routes = d.accounts.routes
    down = down_since(d, now_ms)
    ripe = {name: {e.key for e in r.entries if e.key in down and now_ms - down[e.key] >= r.cooldown_s * 1000}
            for name, r in routes.items()}
    if not any(ripe.values()):
        return 0
    d.redis.zremrangebyscore(d.keys.route_jobs(), "-inf", now_ms)
    moved = 0
    for raw in d.redis.zrange(d.keys.route_jobs(), 0, -1):
        route_id = as_text(raw)
        fields = {as_text(k): as_text(v) for k, v in d.redis.hgetall(d.keys.route_job(route_id)).items()}
        route = routes.get(fields.get("route", ""))
        if route is None or not ripe.get(route.name):
            continue
        for field, owner in fields.items():
            if field.startswith("j:") and owner in ripe[route.name]:
                target = route.next_after(owner, set(down))
                if target is None:
                    log.warning("route.no_account_left", route=route.name, route_job=route_id, account=owner)
                    continue
                moved += move(d, route_id, fields, route, field[2:], target, now_ms=now_ms)
    return moved


def move(d: Dispatcher, route_id: str, fields: dict[str, str], route: Route, job_id: str, target: RouteEntry, *,
         now_ms: int) -> int:
    """Move one job's pending chunks to ``target`` as a new job of the route send; return the recipients moved."""
    job = d.ledger.job(job_id)
    if not job or int(job.get("c:pending", 0)) == 0:
        return 0
    tpl = d.accounts.templates.get(fields.get("template", ""))
    if tpl is None:
        log.error("route.template_gone", route=route.name, route_job=route_id, template=fields.get("template"))
        return 0
    per_phone = fields.get("params", "") == ""
    same = None if per_phone else json.loads(fields["params"])
    send_at = int(fields.get("send_at_ms") or 0)
    shape: dict[str, Any] = {"route_id": route_id, "priority": fields.get("priority", "bulk"),
                             "send_at": send_at if send_at > now_ms else None}
    try:  # before anything moves: can the target send this template at all?
        probe = [["0"] * len(tpl.variables)] if per_phone else None
        d.route_spec(target, tpl, [PROBE_PHONE], same, probe, **shape)
    except (ConfigurationError, ValidationError) as exc:
        log.error("route.target_cannot_send", route=route.name, route_job=route_id, target=target.key,
                  error=str(exc))
        return 0
    entry = CodeEntry.clean(REROUTED_CODE, f"to {target.key}")
    ns = d.ledger.reroute_chunks(job_id, range(int(job["chunks"])), route_id=route_id, entry=entry, now_ms=now_ms)
    if not ns:
        return 0
    phones = _phones(d, job_id, ns)
    values = _values(d, route_id, phones) if per_phone else None
    try:
        spec, size = d.route_spec(target, tpl, phones, same, values, **shape)
        handle = d.take_routed(route_id, spec, size)
    except Exception as exc:
        # Cancelled on the account they left and stored nowhere else: an operator must resend them.
        log.error("route.failover_lost", route=route.name, route_job=route_id, job_id=job_id, chunks=ns,
                  recipients=len(phones), error=type(exc).__name__, detail=str(exc))
        raise
    log.warning("route.failover", route=route.name, route_job=route_id, source_job=job_id,
                source=f"{job['provider']}:{job['account']}", target=target.key, target_job=handle.job_id,
                recipients=len(phones), chunks=len(ns))
    return len(phones)


def _phones(d: Dispatcher, job_id: str, ns: list[int]) -> list[str]:
    """The phones of chunks ``ns`` of a job, in chunk order (one pipelined read)."""
    pipe = d.redis.pipeline(transaction=False)
    for n in ns:
        pipe.hmget(d.keys.chunk(job_id, n), ["phones", "w"])
    out: list[str] = []
    for text, width in pipe.execute():
        out += split_phones(as_text(text or b""), int(width or 11))
    return out


def _values(d: Dispatcher, route_id: str, phones: list[str]) -> list[list[str]]:
    """Each phone's values of a per-phone route send, as stored with it."""
    found: list[Any] = []
    for start in range(0, len(phones), 10_000):
        found += d.redis.hmget(d.keys.route_values(route_id), phones[start : start + 10_000])
    return [json.loads(v) if v else [] for v in found]
