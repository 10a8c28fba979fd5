"""Small aiohttp helpers shared by the gateways: JSON answers, bodies, peers, TCP resets."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import struct
from typing import Any

from aiohttp import web

_LINGER_ZERO = struct.pack("ii", 1, 0)


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON (non-ASCII kept, as the vendors answer)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(obj: Any, status: int = 200) -> web.Response:
    """A JSON answer with ``Content-Type: application/json; charset=utf-8``."""
    return web.Response(body=dumps(obj), status=status, content_type="application/json", charset="utf-8")


async def read_json(request: web.Request) -> Any:
    """The request body decoded as JSON (an empty body is ``{}``).

    Raises ``ValueError`` if the body is not valid UTF-8 JSON.
    """
    raw = await request.read()
    if not raw or raw.isspace():  # isspace() does not copy the body as strip() would
        return {}
    return json.loads(raw)


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a peer address) is 127.0.0.0/8, ``::1`` or IPv4-mapped loopback."""
    if not host:
        return False
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback


def send_rst(request: web.Request) -> None:
    """Abort the request's connection with a TCP RST (SO_LINGER 0, then abort)."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # OSError: already closed by the peer; abort() below is all that is left.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    transport.abort()
