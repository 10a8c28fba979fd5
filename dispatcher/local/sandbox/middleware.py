"""The one middleware: loopback guard for ``/_sandbox/``, request counts and faults for the rest."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from dispatcher.local.sandbox.aiofish_gateway import rev_answer, sms_answer
from dispatcher.local.sandbox.control_api import PREFIX
from dispatcher.local.sandbox.faults import AIOFISH, OPASS, aiofish_substat, code_families, path_family
from dispatcher.local.sandbox.opass_gateway import answer as opass_answer
from dispatcher.local.sandbox.runtime import RUNTIME, Runtime
from dispatcher.local.sandbox.web_util import is_loopback, json_response, send_rst

log = structlog.get_logger("dispatcher.local.sandbox.faults")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_REV_PATHS = ("/rest/sms/getBalance", "/rest/sms/getReply")


def code_answer(path: str, code: str) -> web.Response:
    """The answer a ``code`` fault gives on ``path`` (its family owns the code)."""
    family = path_family(path)
    if family == OPASS and OPASS in code_families(code):
        return opass_answer(code)
    if family == AIOFISH:
        sub_stat = aiofish_substat(code)
        return rev_answer(sub_stat) if path.startswith(_REV_PATHS) else sms_answer(sub_stat)
    return json_response({"code": code})


def _closing(rt: Runtime, response: web.StreamResponse) -> web.StreamResponse:
    # While connections are being refused, make clients open new ones so they see it.
    if rt.state.faults.rules and rt.state.faults.refuse_rule() is not None:
        response.force_close()
    return response


@web.middleware
async def sandbox_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Guard the control API; count, and maybe fault, every gateway request."""
    rt = request.app[RUNTIME]
    path = request.path
    if path.startswith(PREFIX):
        if not is_loopback(request.remote):
            raise web.HTTPNotFound()
        return _closing(rt, await handler(request))
    state = rt.state
    state.requests[path] += 1
    # This request's own counter: a reset meanwhile starts a new one and must not go negative.
    in_flight, family = state.in_flight, path_family(path) or "other"
    in_flight.enter(family)
    try:
        return await _gateway(rt, request, handler, path)
    finally:
        in_flight.leave(family)


async def _gateway(rt: Runtime, request: web.Request, handler: Handler, path: str) -> web.StreamResponse:
    """A gateway request, with the fault that fires for it, if any."""
    state = rt.state
    rule = state.faults.decide(path) if state.faults.rules else None
    if rule is None:
        return _closing(rt, await handler(request))
    log.info("fault injected", kind=rule.kind, path=path, code=rule.code)
    if rule.kind == "reset":
        send_rst(request)
        return web.Response()  # never written: the connection is gone
    if rule.kind == "code":
        return _closing(rt, code_answer(path, rule.code or ""))
    response = await handler(request)
    if rule.kind == "drop":
        send_rst(request)
        return response
    await asyncio.sleep(rule.delay_ms / 1000.0)  # "slow"
    return _closing(rt, response)
