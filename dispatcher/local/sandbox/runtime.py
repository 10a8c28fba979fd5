"""What every handler reaches through ``request.app[RUNTIME]``: state, push sender, listener."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from dispatcher.local.sandbox.listener import Listener
from dispatcher.local.sandbox.push import PushSender
from dispatcher.local.sandbox.state import SandboxState


@dataclass(slots=True)
class Runtime:
    """The live parts of one sandbox process."""

    state: SandboxState
    push: PushSender
    listener: Listener | None = None

    async def apply_faults(self) -> None:
        """Start or stop refusing connections to match the current fault rules; with no refuse
        rule, return once the listener accepts connections again."""
        if self.listener is None:
            return
        rule = self.state.faults.refuse_rule()
        if rule is None:
            await self.listener.accept_again()
        else:
            self.listener.refuse(rule)

    async def reset(self) -> None:
        """Forget everything (state, pending pushes, refuse cycle); restore the start-up config."""
        self.push.reset()
        self.state.reset()
        await self.apply_faults()


RUNTIME: web.AppKey[Runtime] = web.AppKey("sandbox_runtime", Runtime)
