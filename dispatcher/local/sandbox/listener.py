"""The listening socket, which the ``refuse`` fault closes and re-opens on the same port.

Closing the asyncio server closes only the listening socket: established
connections keep working, new ones get a real "connection refused". The socket
is re-bound with ``SO_REUSEADDR`` so the port can be taken again while
connections accepted on it are still open.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

import structlog

from dispatcher.local.sandbox.faults import FaultRule

#: A refuse rule without ``duration_ms`` closes for ``rate`` × this cycle …
REFUSE_CYCLE_S = 0.2
#: … but leaves at least this much open per cycle, so the control API stays reachable.
MIN_OPEN_S = 0.02
log = structlog.get_logger("dispatcher.local.sandbox.listener")


class Listener:
    """One TCP listener serving ``protocol_factory`` on ``host:port``."""

    def __init__(self, protocol_factory: Callable[[], asyncio.Protocol], host: str, port: int) -> None:
        self.factory = protocol_factory
        self.host = host
        self.port = port
        self.server: asyncio.Server | None = None
        self._refuser: asyncio.Task[None] | None = None
        self._shut = False

    def _socket(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            sock.listen(1024)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        return sock

    async def open(self) -> None:
        """Start listening (no-op if already open). Raises ``OSError`` if the port is taken."""
        if self.server is not None:
            return
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self.factory, sock=self._socket())

    def close(self) -> None:
        """Stop accepting: new connections are refused, existing ones stay."""
        if self.server is not None:
            self.server.close()
            self.server = None

    def shutdown(self) -> None:
        """Close for good: no refuse cycle may re-open the socket afterwards."""
        self._shut = True
        self.stop_refusing()
        self.close()

    def refuse(self, rule: FaultRule) -> None:
        """Start refusing connections per ``rule``; closes the listener right now."""
        self.stop_refusing()
        self.close()
        self._refuser = asyncio.get_running_loop().create_task(self._refuse_loop(rule))

    def stop_refusing(self) -> None:
        """Cancel any refuse cycle (the listener is re-opened by the cycle's cleanup)."""
        if self._refuser is not None:
            self._refuser.cancel()
            self._refuser = None

    async def accept_again(self) -> None:
        """Cancel any refuse cycle and return once the listener is open.

        The control API answers "faults cleared" only after this, so a client's next request is
        not refused by a listener the cancelled cycle had closed and not yet re-opened.
        """
        cycle, self._refuser = self._refuser, None
        if cycle is not None:
            cycle.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cycle  # its cleanup re-opens the listener
        await self._reopen()

    async def _reopen(self) -> None:
        while self.server is None and not self._shut:
            try:
                await self.open()
            except OSError as exc:  # someone grabbed the port meanwhile: keep trying
                log.warning("re-open failed", port=self.port, error=str(exc))
                await asyncio.sleep(0.05)

    async def _refuse_loop(self, rule: FaultRule) -> None:
        try:
            if rule.duration_ms is not None:
                rule.injected += 1
                await asyncio.sleep(rule.duration_ms / 1000.0)
                rule.finished = True
                return
            closed_s = min(rule.rate * REFUSE_CYCLE_S, REFUSE_CYCLE_S - MIN_OPEN_S)
            while True:
                self.close()
                rule.injected += 1
                await asyncio.sleep(closed_s)
                await self._reopen()
                await asyncio.sleep(REFUSE_CYCLE_S - closed_s)
        finally:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._reopen())
