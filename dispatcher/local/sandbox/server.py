"""The aiohttp application and process lifecycle of the sandbox."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from aiohttp import web

from dispatcher.local.sandbox import aiofish_gateway, control_api, opass_gateway, vsms_gateway
from dispatcher.local.sandbox.listener import Listener
from dispatcher.local.sandbox.middleware import sandbox_middleware
from dispatcher.local.sandbox.push import PushSender
from dispatcher.local.sandbox.runtime import RUNTIME, Runtime
from dispatcher.local.sandbox.state import SandboxState

#: Large enough for video-SMS attachments beyond the 2 MB limit, so the gateway
#: can answer ``resource_limit`` itself instead of aiohttp answering 413.
CLIENT_MAX_BYTES = 64 * 1024 * 1024
log = structlog.get_logger("dispatcher.local.sandbox")


def build_app(runtime: Runtime) -> web.Application:
    """The application with every gateway path and the control API."""
    app = web.Application(middlewares=[sandbox_middleware], client_max_size=CLIENT_MAX_BYTES)
    app[RUNTIME] = runtime
    opass_gateway.add_routes(app)
    aiofish_gateway.add_routes(app)
    vsms_gateway.add_routes(app)
    control_api.add_routes(app)
    return app


def public_url(host: str, port: int) -> str:
    """The URL clients use (a wildcard host is reached on loopback)."""
    if host in ("0.0.0.0", "", "::"):  # noqa: S104 - we only print, never bind, here
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(host: str, port: int, raw_config: Mapping[str, Any], ready: Callable[[str], None]) -> None:
    """Serve until SIGTERM/SIGINT; call ``ready(url)`` once listening.

    Raises ``OSError`` if the address cannot be bound.
    """
    state = SandboxState(raw_config)
    runtime = Runtime(state, PushSender(state))
    runner = web.AppRunner(build_app(runtime), handle_signals=False, access_log=None)
    await runner.setup()
    if runner.server is None:
        raise RuntimeError("aiohttp runner did not set up its server")
    listener = Listener(runner.server, host, port)
    runtime.listener = listener
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await listener.open()
        await runtime.push.start()
        url = public_url(host, listener.port)
        log.info("sandbox started", url=url, time_scale=state.config.time_scale)
        ready(url)
        await stop.wait()
        log.info("sandbox stopping")
    finally:
        listener.shutdown()
        await runtime.push.close()
        await runner.cleanup()
