"""aiofish (飞鱼) SMS at its real paths: plain, phone-encrypted, fully encrypted, batch, pulls.

POSTs need ``Content-Type: application/json`` (charset optional) or get HTTP 415;
a wrong method gets HTTP 405 from the router. Errors answer
``{"code": <numeric>, "smsId": null, "subStat": "p:0xx", "subStatDes": …}``; the
GET pulls use their own keys (``revStat`` for getBalance/getReply).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from dispatcher.local.sandbox import aiofish_checks as ck
from dispatcher.local.sandbox.aiofish_checks import AiofishReject
from dispatcher.local.sandbox.config import AiofishAccountConfig
from dispatcher.local.sandbox.phone_check import check_items
from dispatcher.local.sandbox.receipts import AIOFISH_PULL_STAT
from dispatcher.local.sandbox.runtime import RUNTIME
from dispatcher.local.sandbox.state import SandboxState
from dispatcher.local.sandbox.web_util import json_response, read_json
from dispatcher.providers.aiofish.codes import AIOFISH_CODES, AIOFISH_SUBSTAT_HTTP_CODE
from dispatcher.segments import domestic_segments

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OK_DETAIL = {"stat": "r:000", "statDes": "提交成功"}
BAD_DETAIL = {"stat": "p:002", "statDes": "号码错误"}


def sms_answer(sub_stat: str, sms_id: str | None = None, **extra: Any) -> web.Response:
    """The submit envelope for ``sub_stat`` (``r:000`` or ``p:0xx``)."""
    return json_response({"code": AIOFISH_SUBSTAT_HTTP_CODE[sub_stat], "smsId": sms_id, "subStat": sub_stat,
                          "subStatDes": AIOFISH_CODES[sub_stat].text, **extra})


def rev_answer(sub_stat: str, text: str | None = None, **extra: Any) -> web.Response:
    """The getBalance/getReply envelope (``revStat``/``revStatDes``)."""
    return json_response({"revStat": sub_stat, "revStatDes": text or AIOFISH_CODES[sub_stat].text,
                          "code": AIOFISH_SUBSTAT_HTTP_CODE[sub_stat], **extra})


def unsupported_media(path: str) -> web.Response:
    """HTTP 415 as a Spring service answers it."""
    return json_response({"status": 415, "error": "Unsupported Media Type", "path": path}, status=415)


def _json_post(handler: Handler) -> Handler:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/json":
            return unsupported_media(request.path)
        try:
            return await handler(request)
        except AiofishReject as exc:
            return sms_answer(exc.sub_stat)

    return wrapper


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await read_json(request)
    except ValueError as exc:
        raise AiofishReject("p:999") from exc
    if not isinstance(body, dict):
        raise AiofishReject("p:999")
    return body


def _login(state: SandboxState, account: object, password: object) -> AiofishAccountConfig:
    fish = state.config.aiofish_accounts.get(account) if isinstance(account, str) else None
    if fish is None or password != fish.password_md5:
        raise AiofishReject("p:003")
    return fish


def _admit(state: SandboxState, fish: AiofishAccountConfig, limit: str) -> None:
    if state.limiter.admit("aiofish", fish.account, [(limit, fish.limits[limit])], state.clock()) is not None:
        raise AiofishReject("p:010")


def _submit(
    state: SandboxState,
    fish: AiofishAccountConfig,
    common: ck.Common,
    numbers: list[Any],
    texts: str | list[str],
    reject_bad: bool,
) -> tuple[str, list[int]]:
    """Check numbers, charge, accept; return the smsId and the indexes of bad numbers.

    With ``reject_bad`` the bad numbers are accepted into the batch with a REJECTD
    receipt (encrypted and batch variants); otherwise they are simply not sent.
    Raises p:002 if no number is good, p:004 if the balance is short.
    """
    good, bad = check_items(numbers, state.config.blacklist)
    if not good:
        raise AiofishReject("p:002")
    refused = set(bad)
    per_phone = texts if isinstance(texts, list) else None
    if per_phone is None:
        units = len(good) * domestic_segments(str(texts)).count
    else:
        units = sum(domestic_segments(t).count for i, t in enumerate(per_phone) if i not in refused)
    if state.aiofish_balance[fish.account] < units:
        raise AiofishReject("p:004")
    state.aiofish_balance[fish.account] -= units
    sms_id = common.client_sms_id or state.hex_id("smsId", 32)
    if reject_bad and bad:
        normal = iter(good)
        phone_list = [str(numbers[i]) if i in refused else next(normal) for i in range(len(numbers))]
        forced: dict[int, str] | None = dict.fromkeys(bad, "REJECTD")
    else:
        phone_list, forced = good, None
        if per_phone is not None:
            texts = [t for i, t in enumerate(per_phone) if i not in refused]
    state.accept(gateway="aiofish", account=fish.account, msg_id=sms_id, client_id=common.client_sms_id,
                 phones=phone_list, count=len(phone_list), texts=texts, push_url=fish.report_url,
                 start_s=common.start_s, forced=forced)
    for phone in good:
        state.last_sms_id[(fish.account, phone)] = sms_id
    return sms_id, bad


def _details(echo: list[str], bad: list[int]) -> list[dict[str, str]]:
    refused = set(bad)
    return [{"phoneNumber": p, **(BAD_DETAIL if i in refused else OK_DETAIL)} for i, p in enumerate(echo)]


@_json_post
async def send_sms(request: web.Request) -> web.StreamResponse:
    """POST /rest/sms/sendSms: one content to up to 2000 numbers."""
    state = request.app[RUNTIME].state
    body = await _body(request)
    fish = _login(state, body.get("account"), body.get("password"))
    _admit(state, fish, "aiofish_send")
    items = ck.split_mobiles(body.get("mobile"))
    content = ck.check_content(body.get("content"), bool(state.config.raw["aiofish_require_signature"]))
    sms_id, bad = _submit(state, fish, ck.check_common(body), list(items), content, reject_bad=False)
    return sms_answer("r:000", sms_id, resDetail=_details(items, bad))


@_json_post
async def send_sms_by_encrypt(request: web.Request) -> web.StreamResponse:
    """POST /rest/sms/sendSmsByEncrypt: like sendSms with AES-encrypted ``mobile``."""
    state = request.app[RUNTIME].state
    body = await _body(request)
    fish = _login(state, body.get("account"), body.get("password"))
    _admit(state, fish, "aiofish_send")
    echo, plain = ck.decrypt_mobiles(fish.aes_key, body.get("mobile"))
    content = ck.check_content(body.get("content"), bool(state.config.raw["aiofish_require_signature"]))
    sms_id, bad = _submit(state, fish, ck.check_common(body), list(plain), content, reject_bad=False)
    return sms_answer("r:000", sms_id, resDetail=_details(echo, bad))


async def _encrypted_body(request: web.Request) -> tuple[SandboxState, AiofishAccountConfig, dict[str, Any]]:
    state = request.app[RUNTIME].state
    body = await _body(request)
    account = body.get("account")
    known = state.config.aiofish_accounts.get(account) if isinstance(account, str) else None
    fish, biz = ck.open_encrypted(known, body, int(state.clock() * 1000), state.config.num("aiofish_ts_window_s"))
    _admit(state, fish, "aiofish_send")
    return state, fish, biz


@_json_post
async def send_sms_encryption(request: web.Request) -> web.StreamResponse:
    """POST /rest/sms/sendSms/encryption: the whole request AES-encrypted and signed."""
    state, fish, biz = await _encrypted_body(request)
    items = ck.split_mobiles(biz.get("mobile"))
    content = ck.check_content(biz.get("content"), bool(state.config.raw["aiofish_require_signature"]))
    sms_id, _ = _submit(state, fish, ck.check_common(biz), list(items), content, reject_bad=True)
    return sms_answer("r:000", sms_id)


async def _batch(state: SandboxState, fish: AiofishAccountConfig, body: dict[str, Any]) -> web.Response:
    numbers, contents = ck.batch_items(body.get("mobiles"), bool(state.config.raw["aiofish_require_signature"]))
    sms_id, _ = _submit(state, fish, ck.check_common(body), numbers, contents, reject_bad=True)
    return sms_answer("r:000", sms_id)


@_json_post
async def batch_send_sms(request: web.Request) -> web.StreamResponse:
    """POST /rest/sms/batchSendSms: up to 200 (number, content) pairs."""
    state = request.app[RUNTIME].state
    body = await _body(request)
    fish = _login(state, body.get("account"), body.get("password"))
    _admit(state, fish, "aiofish_send")
    return await _batch(state, fish, body)


@_json_post
async def batch_send_sms_encryption(request: web.Request) -> web.StreamResponse:
    """POST /rest/sms/batchSendSms/encryption: the batch, encrypted and signed."""
    state, fish, biz = await _encrypted_body(request)
    return await _batch(state, fish, biz)


def _query_login(request: web.Request, limit: str) -> tuple[SandboxState, AiofishAccountConfig]:
    state = request.app[RUNTIME].state
    fish = _login(state, request.query.get("account"), request.query.get("password"))
    _admit(state, fish, limit)
    return state, fish


async def get_balance(request: web.Request) -> web.StreamResponse:
    """GET /rest/sms/getBalance (at most once per 5 s by default)."""
    try:
        state, fish = _query_login(request, "aiofish_balance")
    except AiofishReject as exc:
        return rev_answer(exc.sub_stat, demo=None)
    left = state.aiofish_balance[fish.account]
    return rev_answer("r:000", f"您的短信余额为:{left} 条", demo=None)


async def get_report(request: web.Request) -> web.StreamResponse:
    """GET /rest/sms/getReport: due receipts, each returned once."""
    try:
        state, fish = _query_login(request, "aiofish_query")
    except AiofishReject as exc:
        return sms_answer(exc.sub_stat)
    cfg = state.config
    got = state.receipts.take_pull(("aiofish", fish.account), state.clock(), cfg.int("aiofish_report_max"),
                                   cfg.num("aiofish_pull_window_s"))
    detail = [{"smsId": r.msg_id, "phoneNumber": r.phone, "stat": AIOFISH_PULL_STAT[r.state], "statDes": r.state,
               "revTime": int(r.arrive_s * 1000)} for r in got]
    return json_response({"subStat": "r:000", "subStatDes": f"获取状态报告记录数:{len(detail)}", "code": 200,
                          "resDetail": detail})


async def get_reply(request: web.Request) -> web.StreamResponse:
    """GET /rest/sms/getReply: injected uplinks, each returned once."""
    try:
        state, fish = _query_login(request, "aiofish_query")
    except AiofishReject as exc:
        return rev_answer(exc.sub_stat)
    queue = state.uplinks.get(fish.account)
    limit = state.config.int("aiofish_report_max")
    detail = [queue.popleft() for _ in range(min(limit, len(queue)))] if queue else []
    return rev_answer("r:000", f"获取上行短信条数:{len(detail)}", resDetail=detail)


def add_routes(app: web.Application) -> None:
    """Register every aiofish SMS path."""
    app.router.add_post("/rest/sms/sendSms", send_sms)
    app.router.add_post("/rest/sms/sendSmsByEncrypt", send_sms_by_encrypt)
    app.router.add_post("/rest/sms/sendSms/encryption", send_sms_encryption)
    app.router.add_post("/rest/sms/batchSendSms", batch_send_sms)
    app.router.add_post("/rest/sms/batchSendSms/encryption", batch_send_sms_encryption)
    app.router.add_get("/rest/sms/getBalance", get_balance, allow_head=False)
    app.router.add_get("/rest/sms/getReport", get_report, allow_head=False)
    app.router.add_get("/rest/sms/getReply", get_reply, allow_head=False)
