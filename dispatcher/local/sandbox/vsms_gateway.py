"""aiofish video SMS (vsms) and international SMS (isms): string codes, ``x-sign`` header.

Every request carries ``x-sign`` = MD5 hex of ``appKey,ts,appSecret``; checked in
the order appKey (invalid_appkey), sign (invalid_sign), ts within
±``vsms_ts_window_s`` (invalid_ts), then the per-appKey limit (request_limit).
Answers are ``{"code": "success", …}`` or ``{"code": "<error>"}``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from dispatcher.local.sandbox.aiofish_gateway import unsupported_media
from dispatcher.local.sandbox.config import AiofishAccountConfig
from dispatcher.local.sandbox.phone_check import check_international, check_items
from dispatcher.local.sandbox.runtime import RUNTIME
from dispatcher.local.sandbox.state import SandboxState, VsmsTemplate
from dispatcher.local.sandbox.timefmt import parse_send_time
from dispatcher.local.sandbox.vsms_templates import VsmsReject, check_frames, file_size, render
from dispatcher.local.sandbox.web_util import json_response, read_json
from dispatcher.providers.aiofish.crypto import x_sign

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_VARS, MAX_VAR_LEN = 5, 15


def _guarded(json_body: bool) -> Callable[[Handler], Handler]:
    def decorate(handler: Handler) -> Handler:
        async def wrapper(request: web.Request) -> web.StreamResponse:
            if json_body and request.content_type != "application/json":
                return unsupported_media(request.path)
            try:
                return await handler(request)
            except VsmsReject as exc:
                return json_response({"code": exc.code})

        return wrapper

    return decorate


def _verify(request: web.Request, app_key: object, ts: object, limit: str) -> tuple[SandboxState, AiofishAccountConfig]:
    """Check appKey, x-sign, ts and the rate limit; return the state and account."""
    state = request.app[RUNTIME].state
    fish = state.config.aiofish_by_app_key.get(app_key) if isinstance(app_key, str) else None
    if fish is None or not fish.app_secret or not isinstance(app_key, str):
        raise VsmsReject("invalid_appkey")
    ts_text = str(ts) if isinstance(ts, int) and not isinstance(ts, bool) else ts
    if not isinstance(ts_text, str):
        raise VsmsReject("invalid_ts")
    expected = x_sign(app_key=app_key, ts=ts_text, app_secret=fish.app_secret)
    if not hmac.compare_digest(expected, request.headers.get("x-sign", "").strip().lower()):
        raise VsmsReject("invalid_sign")
    now = state.clock()
    window_ms = state.config.num("vsms_ts_window_s") * 1000
    if not (ts_text.isascii() and ts_text.isdigit()) or abs(int(ts_text) - now * 1000) > window_ms:
        raise VsmsReject("invalid_ts")
    if state.limiter.admit("aiofish", app_key, [(limit, fish.limits[limit])], now) is not None:
        raise VsmsReject("request_limit")
    return state, fish


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await read_json(request)
    except ValueError as exc:
        raise VsmsReject("invalid_data") from exc
    if not isinstance(body, dict):
        raise VsmsReject("invalid_data")
    return body


def _schedule(state: SandboxState, body: dict[str, Any]) -> float | None:
    try:
        start_s = parse_send_time(body.get("scheduleTime"))
    except ValueError as exc:
        raise VsmsReject("invalid_data") from exc
    if start_s is not None and start_s <= state.clock():
        raise VsmsReject("invalid_data")  # "必须大于当前时间"
    return start_s


def _client_id(body: dict[str, Any]) -> str | None:
    uuid = body.get("uuid")
    if uuid in (None, ""):
        return None
    if not isinstance(uuid, str):
        raise VsmsReject("invalid_data")
    return uuid


def _mobile_list(state: SandboxState, mobiles: object) -> list[Any]:
    if not isinstance(mobiles, list):
        raise VsmsReject("invalid_data")
    if not mobiles:
        raise VsmsReject("invalid_mobile")
    if len(mobiles) > state.config.int("vsms_mobile_max"):
        raise VsmsReject("mobile_limit")
    return mobiles


@_guarded(json_body=False)
async def create_template(request: web.Request) -> web.StreamResponse:
    """POST /rest/vsms/v1/tpl (multipart: ``data`` JSON + ``file`` attachments)."""
    if not request.content_type.startswith("multipart/"):
        return unsupported_media(request.path)
    form = await request.post()
    try:
        data = json.loads(str(form.get("data", "")))
    except ValueError as exc:
        raise VsmsReject("invalid_data") from exc
    if not isinstance(data, dict):
        raise VsmsReject("invalid_data")
    state, _ = _verify(request, data.get("appKey"), data.get("ts"), "vsms_request")
    files = [f for f in form.getall("file", []) if isinstance(f, web.FileField)]
    if sum(file_size(f) for f in files) > state.config.int("vsms_resource_max_bytes"):
        raise VsmsReject("resource_limit")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise VsmsReject("invalid_title")
    frames, placeholders = check_frames(data.get("content"), {f.filename for f in files})
    now = state.clock()
    tpl = VsmsTemplate(
        tpl_id=state.hex_id("tpl", 27), app_key=str(data["appKey"]), title=title, frames=frames,
        placeholders=placeholders, created_s=now,
        audit_due_s=now + state.config.scaled_s(state.config.num("vsms_audit_delay_s")),
        approve="REJECT" not in title,
    )
    state.vsms_templates[tpl.tpl_id] = tpl
    request.app[RUNTIME].push.schedule_audit(tpl)
    return json_response({"code": "success", "tplId": tpl.tpl_id})


@_guarded(json_body=False)
async def template_status(request: web.Request) -> web.StreamResponse:
    """GET /rest/vsms/v1/tpl/status?appKey&ts&tplId."""
    query = request.query
    state, _ = _verify(request, query.get("appKey"), query.get("ts"), "vsms_request")
    tpl = state.vsms_templates.get(query.get("tplId", ""))
    if tpl is None or tpl.app_key != query.get("appKey"):
        raise VsmsReject("invalid_tpl")
    status, reason = tpl.status(state.clock())
    return json_response({"code": "success", "tplId": tpl.tpl_id, "auditStatus": status, "auditReason": reason})


def _approved(state: SandboxState, body: dict[str, Any]) -> VsmsTemplate:
    tpl_id = body.get("tplId")
    tpl = state.vsms_templates.get(tpl_id) if isinstance(tpl_id, str) else None
    if tpl is None or tpl.app_key != body.get("appKey") or tpl.status(state.clock())[0] != 200:
        raise VsmsReject("invalid_tpl")
    return tpl


@_guarded(json_body=True)
async def send_message(request: web.Request) -> web.StreamResponse:
    """POST /rest/vsms/v1/message: one approved template to a list of numbers."""
    body = await _json(request)
    state, fish = _verify(request, body.get("appKey"), body.get("ts"), "vsms_request")
    tpl = _approved(state, body)
    mobiles = _mobile_list(state, body.get("mobiles"))
    good, bad = check_items(mobiles, state.config.blacklist)
    if bad:
        raise VsmsReject("invalid_mobile")
    start_s, uuid = _schedule(state, body), _client_id(body)
    msg_id = state.hex_id("vsms", 20)
    state.accept(gateway="aiofish-vsms", account=fish.app_key or "", msg_id=msg_id, client_id=uuid,
                 phones=good, count=len(good), texts=render(tpl.frames, []), push_url=fish.vsms_status_url,
                 start_s=start_s)
    return json_response({"code": "success", "msgId": msg_id})


@_guarded(json_body=True)
async def send_message_vars(request: web.Request) -> web.StreamResponse:
    """POST /rest/vsms/v1/message/vars: per-number variables (≤ 5, each ≤ 15 chars)."""
    body = await _json(request)
    state, fish = _verify(request, body.get("appKey"), body.get("ts"), "vsms_request")
    tpl = _approved(state, body)
    items = _mobile_list(state, body.get("mobiles"))
    phones: list[object] = []
    texts: list[str] = []
    for item in items:
        values = item.get("vars") if isinstance(item, dict) else None
        if (not isinstance(values, list) or len(values) > MAX_VARS or len(values) != tpl.placeholders
                or not all(isinstance(v, str) and len(v) <= MAX_VAR_LEN for v in values)):
            raise VsmsReject("invalid_data")
        phones.append(item.get("phone"))
        texts.append(render(tpl.frames, values))
    good, bad = check_items(phones, state.config.blacklist)
    if bad:
        raise VsmsReject("invalid_mobile")
    start_s, uuid = _schedule(state, body), _client_id(body)
    msg_id = state.hex_id("vsms", 20)
    state.accept(gateway="aiofish-vsms", account=fish.app_key or "", msg_id=msg_id, client_id=uuid,
                 phones=good, count=len(good), texts=texts, push_url=fish.vsms_status_url, start_s=start_s)
    return json_response({"code": "success", "msgId": msg_id})


@_guarded(json_body=True)
async def send_isms(request: web.Request) -> web.StreamResponse:
    """POST /rest/isms/sendIsms: content (or a configured tplId) to international numbers."""
    body = await _json(request)
    state, fish = _verify(request, body.get("appKey"), body.get("ts"), "isms_request")
    content, tpl_id = body.get("content"), body.get("tplId")
    if isinstance(content, str) and content.strip():
        text = content
    elif tpl_id not in (None, ""):
        known = state.config.raw["aiofish"]["isms_templates"]
        if not isinstance(tpl_id, str) or tpl_id not in known:
            raise VsmsReject("invalid_tpl")
        text = str(known[tpl_id])
    else:
        raise VsmsReject("invalid_data")
    good, bad = check_international(_mobile_list(state, body.get("mobiles")), state.config.blacklist)
    if bad:
        raise VsmsReject("invalid_mobile")
    start_s, uuid = _schedule(state, body), _client_id(body)
    msg_id = state.hex_id("isms", 20)
    state.accept(gateway="aiofish-isms", account=fish.app_key or "", msg_id=msg_id, client_id=uuid,
                 phones=good, count=len(good), texts=text, push_url=fish.isms_status_url, start_s=start_s)
    return json_response({"code": "success", "msgId": msg_id})


def add_routes(app: web.Application) -> None:
    """Register the vsms and isms paths."""
    app.router.add_post("/rest/vsms/v1/tpl", create_template)
    app.router.add_get("/rest/vsms/v1/tpl/status", template_status, allow_head=False)
    app.router.add_post("/rest/vsms/v1/message", send_message)
    app.router.add_post("/rest/vsms/v1/message/vars", send_message_vars)
    app.router.add_post("/rest/isms/sendIsms", send_isms)
