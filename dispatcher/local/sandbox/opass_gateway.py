"""opass (经分助手) at its real paths: JSON POST, always HTTP 200 with a vendor code.

Every answer is ``{"code", "message", "data", "requestId"}``. Authentication is
in :mod:`opass_auth`; template checks in :mod:`templates`. Limits are sliding
windows per account (``opass_send``, ``opass_query`` shared by the three query
APIs, ``opass_residue``, ``opass_statistics``) answering 6000.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from dispatcher.local.sandbox.config import OpassAccountConfig
from dispatcher.local.sandbox.opass_auth import OpassReject, authenticate
from dispatcher.local.sandbox.phone_check import check_items, check_text
from dispatcher.local.sandbox.runtime import RUNTIME
from dispatcher.local.sandbox.state import SandboxState
from dispatcher.local.sandbox.templates import ParamError, parse_batch_params, parse_param_text
from dispatcher.local.sandbox.timefmt import arrive_time, parse_date
from dispatcher.local.sandbox.web_util import json_response, read_json
from dispatcher.providers.opass.codes import OPASS_CODES
from dispatcher.segments import domestic_segments

SEND_MAX_PHONES = 1000
INDUSTRY = "行业短信"
SEND_LIMITS = ("opass_send",)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answer(code: str, message: str | None = None, data: Any = None, **extra: Any) -> web.Response:
    """The opass envelope; ``message`` defaults to the code table's text (``OK`` for 200)."""
    if message is None:
        message = "OK" if code == "200" else OPASS_CODES[code].text
    return json_response({"code": int(code), "message": message, "data": data, **extra,
                          "requestId": str(uuid.uuid4())})


def _guarded(handler: Handler) -> Handler:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except OpassReject as exc:
            return answer(exc.code, exc.message)
        except ParamError as exc:
            return answer(exc.code, str(exc))

    return wrapper


async def _authorised(request: web.Request, limits: tuple[str, ...]) -> tuple[SandboxState, OpassAccountConfig, dict]:
    """Decode, authenticate, check the nonce and the limits; return state, account, body."""
    state = request.app[RUNTIME].state
    cfg = state.config
    try:
        body = await read_json(request)
    except ValueError as exc:
        raise OpassReject("40004", "参数错误：请求体不是合法的JSON") from exc
    if not isinstance(body, dict):
        raise OpassReject("40004", "参数错误：请求体必须是JSON对象")
    now = state.clock()
    account, nonce = authenticate(request.headers, body, cfg.opass_accounts, request.remote,
                                  int(now * 1000), cfg.num("opass_ts_window_s"))
    if not state.nonces.fresh(account.api_key, nonce, now, cfg.num("opass_nonce_ttl_s")):
        raise OpassReject("2001", "API授权错误（重复的nonce）")
    specs = [(name, account.limits[name]) for name in limits]
    if state.limiter.admit("opass", account.api_key, specs, now) is not None:
        raise OpassReject("6000", OPASS_CODES["6000"].text)
    return state, account, body


def _optional_fields(body: dict) -> str | None:
    """Check ``upExtendCode`` (digits) and ``bid`` (≤ 64 chars); return the bid."""
    ext = body.get("upExtendCode")
    if ext not in (None, "") and not (isinstance(ext, str) and ext.isascii() and ext.isdigit()):
        raise OpassReject("40004", "参数错误：upExtendCode 只能为数字")
    bid = body.get("bid")
    if bid in (None, ""):
        return None
    if not isinstance(bid, str) or len(bid) > 64:
        raise OpassReject("40004", "参数错误：bid 长度不能超过64")
    return bid


def _charge(state: SandboxState, api_key: str, units: int) -> None:
    balance = state.opass_balance[api_key]
    if balance[INDUSTRY] < units:
        raise OpassReject("40002", OPASS_CODES["40002"].text)
    balance[INDUSTRY] -= units


@_guarded
async def send(request: web.Request) -> web.StreamResponse:
    """POST /message/send: one text to up to 1000 phones."""
    state, account, body = await _authorised(request, SEND_LIMITS)
    cfg = state.config
    phones_text, code = body.get("phones"), body.get("templateCode")
    if not isinstance(phones_text, str) or not phones_text.strip() or not isinstance(code, str) or not code:
        raise OpassReject("40004", "参数错误：phones 和 templateCode 必填")
    bid = _optional_fields(body)
    if phones_text.count(",") >= SEND_MAX_PHONES:
        raise OpassReject("60008", OPASS_CODES["60008"].text)
    template = cfg.opass_templates.get(code)
    if template is None:
        raise OpassReject("60001", OPASS_CODES["60001"].text)
    values = parse_param_text(body.get("templateParam"))
    template.check(values)
    text = account.signature + template.render(values)
    if not text.strip():
        raise OpassReject("60005", OPASS_CODES["60005"].text)
    accepted, count, failed = check_text(phones_text, cfg.blacklist)
    if not count:
        raise OpassReject("60007", OPASS_CODES["60007"].text)
    _charge(state, account.api_key, count * domestic_segments(text).count)
    msg_id = state.opass_msg_id()
    state.accept(gateway="opass", account=account.api_key, msg_id=msg_id, client_id=bid, phones=accepted,
                 count=count, texts=text, push_url=account.status_url)
    data = {"msgId": msg_id, "desc": "提交成功"}
    if failed:
        data["failPhones"] = ",".join(failed)
    return answer("200", data=data)


@_guarded
async def send_batch(request: web.Request) -> web.StreamResponse:
    """POST /message/sendBatch: one parameter list per phone."""
    state, account, body = await _authorised(request, SEND_LIMITS)
    cfg = state.config
    phones_json, code = body.get("phonesJson"), body.get("templateCode")
    if not isinstance(phones_json, str) or not phones_json or not isinstance(code, str) or not code:
        raise OpassReject("40004", "参数错误：phonesJson 和 templateCode 必填")
    bid = _optional_fields(body)
    try:
        items = json.loads(phones_json)
    except ValueError:
        items = None
    if not isinstance(items, list) or not items:
        raise OpassReject("60007", OPASS_CODES["60007"].text)
    if len(items) > cfg.int("batch_max"):
        raise OpassReject("60008", OPASS_CODES["60008"].text)
    template = cfg.opass_templates.get(code)
    if template is None:
        raise OpassReject("60001", OPASS_CODES["60001"].text)
    params = parse_batch_params(body.get("templateParamJson"), len(items), template)
    good, bad = check_items(items, cfg.blacklist)
    if not good:
        raise OpassReject("60007", OPASS_CODES["60007"].text)
    refused = set(bad)
    texts = [account.signature + template.render(p) for i, p in enumerate(params) if i not in refused]
    parts: dict[str, int] = {}
    units = sum(parts.setdefault(t, domestic_segments(t).count) for t in texts)
    _charge(state, account.api_key, units)
    msg_id = state.opass_msg_id()
    state.accept(gateway="opass", account=account.api_key, msg_id=msg_id, client_id=bid, phones=good,
                 count=len(good), texts=texts, push_url=account.status_url)
    data = {"msgId": msg_id, "desc": "提交成功"}
    if bad:
        data["failPhones"] = ",".join(str(items[i]) for i in bad)
    return answer("200", data=data)


@_guarded
async def arrive_query(request: web.Request) -> web.StreamResponse:
    """POST /sms/arriveRes/qry (and the Java sample's /sms/arrive/qry): pull receipts once each."""
    state, account, body = await _authorised(request, ("opass_query",))
    cfg = state.config
    msg_id, bid = body.get("msgId"), body.get("bid")
    if any(v not in (None, "") and not isinstance(v, str) for v in (msg_id, bid)):
        raise OpassReject("40004", "参数错误：msgId/bid 必须是字符串")
    msg_ids = frozenset(m.strip() for m in msg_id.split(",") if m.strip()) if msg_id else None
    receipts = state.receipts.take_pull(("opass", account.api_key), state.clock(), cfg.int("opass_pull_max"),
                                        cfg.num("pull_window_s"), msg_ids, bid or None)
    data = [{"msgId": r.msg_id, "tel": r.phone, "arrive": r.state, "arriveTime": arrive_time(r.arrive_s),
             "bid": r.client_id} for r in receipts]
    return answer("200", "查询成功", data)


def _int_field(body: dict, key: str, default: int) -> int:
    value = body.get(key, default)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if value in (None, ""):
        return default
    raise OpassReject("40004", f"参数错误：{key} 必须是整数")


@_guarded
async def statistics(request: web.Request) -> web.StreamResponse:
    """POST /sms/send/statistics: per-day totals of what this account really sent."""
    state, account, body = await _authorised(request, ("opass_query", "opass_statistics"))
    start, end = parse_date(body.get("startDate")), parse_date(body.get("endDate"))
    page, size = _int_field(body, "page", 1), _int_field(body, "pageSize", 10)
    if start is None or end is None or end < start or page < 1 or not 1 <= size <= 50:
        raise OpassReject("40004", "参数错误：startDate/endDate(yyyy-MM-dd)、page>=1、pageSize 1~50")
    rows = state.receipts.statistics(account.api_key, body["startDate"], body["endDate"], state.clock())
    return answer("200", data=rows[(page - 1) * size : page * size], totalSize=len(rows))


@_guarded
async def residue(request: web.Request) -> web.StreamResponse:
    """POST /sms/residueValue/qry: the three balances."""
    state, account, _ = await _authorised(request, ("opass_query", "opass_residue"))
    balance = state.opass_balance[account.api_key]
    return answer("200", data=[{"itemName": k, "residueValue": v} for k, v in balance.items()])


async def health(request: web.Request) -> web.StreamResponse:
    """/health/info: unsigned liveness check."""
    return json_response({"code": 200, "message": "OK", "data": {"status": "UP"}})


def add_routes(app: web.Application) -> None:
    """Register every opass path."""
    app.router.add_post("/message/send", send)
    app.router.add_post("/message/sendBatch", send_batch)
    app.router.add_post("/sms/arriveRes/qry", arrive_query)
    app.router.add_post("/sms/arrive/qry", arrive_query)
    app.router.add_post("/sms/send/statistics", statistics)
    app.router.add_post("/sms/residueValue/qry", residue)
    for path in ("/health/info", "/health/info/"):
        app.router.add_route("*", path, health)
