"""The ``/_sandbox/`` control routes (loopback peers only; see the middleware).

Bad input answers HTTP 400 ``{"error": "…"}``; everything else answers JSON.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from aiohttp import web

from dispatcher.local.sandbox import push_payloads as pp
from dispatcher.local.sandbox.faults import parse_rule
from dispatcher.local.sandbox.runtime import RUNTIME, Runtime
from dispatcher.local.sandbox.web_util import json_response, read_json

PREFIX = "/_sandbox/"


def _bad(message: str) -> web.Response:
    return json_response({"error": message}, status=400)


async def _object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


async def ledger(request: web.Request) -> web.StreamResponse:
    """GET: accepted phones per gateway and request counts per path."""
    return json_response(request.app[RUNTIME].state.ledger())


async def reset(request: web.Request) -> web.StreamResponse:
    """POST: forget everything and restore the start-up config."""
    await request.app[RUNTIME].reset()
    return json_response({"ok": True})


def _rules(rt: Runtime) -> web.Response:
    return json_response({"rules": [r.to_json() for r in rt.state.faults.rules]})


async def get_faults(request: web.Request) -> web.StreamResponse:
    """GET: the active rules and how often each fired."""
    return _rules(request.app[RUNTIME])


async def set_faults(request: web.Request) -> web.StreamResponse:
    """POST ``{"rules": [...]}``: replace every rule."""
    rt = request.app[RUNTIME]
    try:
        body = await _object(request)
        raw_rules = body.get("rules", [])
        if not isinstance(raw_rules, list):
            raise ValueError("rules must be a list")
        rules = [parse_rule(r) for r in raw_rules]
    except (ValueError, TypeError) as exc:
        return _bad(str(exc))
    rt.state.faults.replace(rules)
    await rt.apply_faults()
    return _rules(rt)


async def clear_faults(request: web.Request) -> web.StreamResponse:
    """DELETE: remove every rule (and stop refusing connections)."""
    rt = request.app[RUNTIME]
    rt.state.faults.replace([])
    await rt.apply_faults()
    return _rules(rt)


async def get_config(request: web.Request) -> web.StreamResponse:
    """GET: the effective config."""
    return json_response(request.app[RUNTIME].state.config.raw)


async def set_config(request: web.Request) -> web.StreamResponse:
    """POST: deep-merge a partial config; answers the effective config."""
    state = request.app[RUNTIME].state
    try:
        new = state.update_config(await _object(request))
    except (ValueError, KeyError, TypeError) as exc:
        return _bad(f"config rejected: {exc}")
    return json_response(new.raw)


async def stats(request: web.Request) -> web.StreamResponse:
    """GET: push counters and timings, stopped accounts, limiter maxima, pending receipts, requests in flight."""
    rt = request.app[RUNTIME]
    state = rt.state
    return json_response({
        "pushes": state.push_stats.summary(),
        "push_stopped": state.push_stats.stopped,
        "push_queue": rt.push.status(),
        "limits": state.limiter.stats(),
        "pending_receipts": state.receipts.pending(),
        "requests_total": sum(state.requests.values()),
        "in_flight": state.in_flight.summary(),
        "balances": {"opass": state.opass_balance, "aiofish": state.aiofish_balance},
        "faults": [r.to_json() for r in state.faults.rules],
    })


async def messages(request: web.Request) -> web.StreamResponse:
    """GET ``?phone=…``: what was accepted for that phone, oldest first."""
    phone = request.query.get("phone")
    if not phone:
        return _bad("phone is required")
    return json_response({"messages": request.app[RUNTIME].state.messages.for_phone(phone)})


def inject_uplink(rt: Runtime, gateway: str, account: str, phone: str, content: str, ext: str | None) -> None:
    """Make ``phone`` reply ``content``: queued for getReply (aiofish) and pushed if configured.

    Raises ``ValueError`` for an unknown gateway or account.
    """
    state, cfg = rt.state, rt.state.config
    now = state.clock()
    pushing = cfg.receipt_mode != "pull"
    if gateway == "opass":
        acct = cfg.opass_accounts.get(account)
        if acct is None:
            raise ValueError(f"unknown opass apiKey {account!r}")
        if pushing and acct.uplink_url:
            src_id = str(cfg.raw["opass"]["src_id"]) + (ext or "")
            rt.push.submit(pp.opass_uplink(account, src_id, phone, content, now, acct.uplink_url))
        return
    if gateway != "aiofish":
        raise ValueError("gateway must be 'opass' or 'aiofish'")
    fish = cfg.aiofish_accounts.get(account)
    if fish is None:
        raise ValueError(f"unknown aiofish account {account!r}")
    if cfg.receipt_mode != "push":
        state.uplinks.setdefault(account, deque()).append(
            {"phoneNumber": phone, "content": content, "subCode": ext or "", "revTime": int(now * 1000), "demo": None}
        )
    if pushing and fish.reply_url:
        deliver = pp.aiofish_deliver(phone, content, ext, state.last_sms_id.get((account, phone)))
        rt.push.submit(pp.aiofish_push(fish, "reply", deliver, fish.reply_url, int(now * 1000)))


async def uplink(request: web.Request) -> web.StreamResponse:
    """POST ``{gateway, account, phone, content, ext?}``: inject a reply (MO)."""
    try:
        body = await _object(request)
        gateway, account, phone, content = (body.get(k) for k in ("gateway", "account", "phone", "content"))
        if not all(isinstance(f, str) and f for f in (gateway, account, phone, content)):
            raise ValueError("gateway, account, phone and content are required strings")
        ext = body.get("ext")
        inject_uplink(request.app[RUNTIME], str(gateway), str(account), str(phone), str(content),
                      None if ext is None else str(ext))
    except ValueError as exc:
        return _bad(str(exc))
    return json_response({"ok": True})


def add_routes(app: web.Application) -> None:
    """Register the control routes under ``/_sandbox/``."""
    r = app.router
    r.add_get(PREFIX + "ledger", ledger, allow_head=False)
    r.add_post(PREFIX + "reset", reset)
    r.add_get(PREFIX + "faults", get_faults, allow_head=False)
    r.add_post(PREFIX + "faults", set_faults)
    r.add_delete(PREFIX + "faults", clear_faults)
    r.add_get(PREFIX + "config", get_config, allow_head=False)
    r.add_post(PREFIX + "config", set_config)
    r.add_get(PREFIX + "stats", stats, allow_head=False)
    r.add_get(PREFIX + "messages", messages, allow_head=False)
    r.add_post(PREFIX + "uplink", uplink)
