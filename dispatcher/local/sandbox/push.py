"""The push sender: an aiohttp client in the sandbox's loop that plays the vendors' pushes.

A pump wakes every ``PUMP_TICK_S``, turns due receipts into :class:`PushJob`s
(opass: batches of ``opass_push_batch``; aiofish/vsms/isms: one item each) while
the backlog is below ``push_backlog_max``, and sends them with at most
``push_concurrency`` in flight. Failed pushes are retried on the vendor's
schedule times ``time_scale``. opass answers slower than ``opass_push_slow_s``
count as slow; after ``opass_push_stop_after`` consecutive slow answers the
account gets no more pushes (the vendor's rule), which ``stats()`` reports.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import structlog

from dispatcher.local.sandbox import push_payloads as pp
from dispatcher.local.sandbox.state import SandboxState, VsmsTemplate

PUMP_TICK_S = 0.02
log = structlog.get_logger("dispatcher.local.sandbox.push")


class PushSender:
    """Sends pushes for one :class:`SandboxState`; :meth:`reset` forgets everything pending."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.session: aiohttp.ClientSession | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.timers: set[asyncio.TimerHandle] = set()
        self._pump: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(state.config.int("push_concurrency"))
        self._slots_size = state.config.int("push_concurrency")
        self._epoch = 0

    async def start(self) -> None:
        """Open the client session and start the pump."""
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self._pump = asyncio.get_running_loop().create_task(self._pump_loop())

    async def close(self) -> None:
        """Stop the pump, cancel pending pushes and close the session."""
        if self._pump is not None:
            self._pump.cancel()
        self.reset()
        if self.session is not None:
            await self.session.close()

    def reset(self) -> None:
        """Cancel every in-flight push and scheduled retry (their results are ignored)."""
        self._epoch += 1
        for task in list(self.tasks):
            task.cancel()
        for timer in list(self.timers):
            timer.cancel()
        self.tasks.clear()
        self.timers.clear()

    def status(self) -> dict[str, int]:
        """Pushes in flight or waiting for a slot, and retries/audits scheduled."""
        return {"in_flight": len(self.tasks), "scheduled": len(self.timers)}

    # ------------------------------------------------------------------ submission

    def submit(self, job: pp.PushJob) -> None:
        """Send ``job`` as soon as a slot is free."""
        size = self.state.config.int("push_concurrency")
        if size != self._slots_size:  # reconfigured: new pushes use the new bound
            self._slots, self._slots_size = asyncio.Semaphore(size), size
        task = asyncio.get_running_loop().create_task(self._run(job, self._slots, self._epoch))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def later(self, delay_s: float, callback: Any, *args: Any) -> None:
        """Run ``callback(*args)`` after ``delay_s`` unless the sandbox is reset first."""
        loop = asyncio.get_running_loop()
        epoch = self._epoch

        def fire() -> None:
            self.timers.discard(handle)
            if epoch == self._epoch:
                callback(*args)

        handle = loop.call_later(max(0.0, delay_s), fire)
        self.timers.add(handle)

    def schedule_audit(self, tpl: VsmsTemplate) -> None:
        """Push the template's audit result when it is decided (if an audit URL is set)."""
        self.later(tpl.audit_due_s - self.state.clock(), self._audit_due, tpl)

    def _audit_due(self, tpl: VsmsTemplate) -> None:
        account = self.state.config.aiofish_by_app_key.get(tpl.app_key)
        if account is None or account.vsms_audit_url is None or tpl.audit_pushed:
            return
        tpl.audit_pushed = True
        state, reason = tpl.status(self.state.clock())
        self.submit(pp.vsms_audit(tpl.app_key, tpl.tpl_id, state, reason, account.vsms_audit_url))

    # ------------------------------------------------------------------ sending

    async def _run(self, job: pp.PushJob, slots: asyncio.Semaphore, epoch: int) -> None:
        async with slots:
            if epoch == self._epoch:
                await self._attempt(job)

    def _stopped(self, job: pp.PushJob) -> bool:
        return self.state.push_stats.stopped.get(job.gateway, {}).get(job.account, False)

    async def _attempt(self, job: pp.PushJob) -> None:
        stats, cfg = self.state.push_stats, self.state.config
        if self._stopped(job) or self.session is None:
            stats.count(job.gateway, "dropped")
            return
        is_opass = job.gateway == "opass"
        timeout_s = cfg.num("opass_push_timeout_s") if is_opass else cfg.num("push_timeout_s")
        stats.count(job.gateway, "attempted")
        started = time.monotonic()
        ok = False
        try:
            async with self.session.post(
                job.url, data=job.body, headers={"Content-Type": job.content_type},
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as resp:
                ok = pp.is_success(job, resp.status, await resp.read())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("push failed", gateway=job.gateway, kind=job.kind, error=type(exc).__name__)
        elapsed_s = time.monotonic() - started
        stats.answered(job.gateway, elapsed_s * 1000.0)
        if is_opass:
            self._track_slow(job, elapsed_s >= cfg.num("opass_push_slow_s"))
        stats.count(job.gateway, "succeeded" if ok else "failed")
        if not ok and job.attempt < len(job.retry_delays_s) and not self._stopped(job):
            stats.count(job.gateway, "retried")
            self.later(cfg.scaled_s(job.retry_delays_s[job.attempt]), self.submit, job.next_attempt())

    def _track_slow(self, job: pp.PushJob, slow: bool) -> None:
        stats = self.state.push_stats
        streak = stats.slow_streak.get(job.account, 0) + 1 if slow else 0
        stats.slow_streak[job.account] = streak
        if streak >= self.state.config.int("opass_push_stop_after"):
            stats.stopped.setdefault("opass", {})[job.account] = True
            log.warning("opass push stopped after consecutive slow answers", streak=streak)

    # ------------------------------------------------------------------ pump

    async def _pump_loop(self) -> None:
        while True:
            await asyncio.sleep(PUMP_TICK_S)
            try:
                self.pump()
            except Exception:  # a bad push config must not kill the pump
                log.exception("push pump failed")

    def pump(self) -> None:
        """Turn due receipts into push jobs while the backlog has room."""
        cfg, receipts = self.state.config, self.state.receipts
        now = self.state.clock()
        room = cfg.int("push_backlog_max") - len(self.tasks)
        for key in list(receipts.push_keys(now)):
            if room <= 0:
                return
            gateway, account = key
            if gateway == "opass":
                acct = cfg.opass_accounts.get(account)
                url = acct.status_url if acct else None
                batch = cfg.int("opass_push_batch")
                while room > 0:
                    got = receipts.take_push(key, now, batch)
                    if not got:
                        break
                    room -= 1
                    if url is None:
                        continue  # URL removed after acceptance: the receipts are dropped
                    self.submit(pp.opass_status(account, got, url))
                continue
            for receipt in receipts.take_push(key, now, room):
                room -= 1
                job = self._aiofish_job(gateway, account, receipt, int(now * 1000))
                if job is not None:
                    self.submit(job)

    def _aiofish_job(self, gateway: str, account: str, receipt: Any, now_ms: int) -> pp.PushJob | None:
        cfg = self.state.config
        if gateway == "aiofish":
            fish = cfg.aiofish_accounts.get(account)
            if fish is None or fish.report_url is None:
                return None
            return pp.aiofish_push(fish, "report", pp.aiofish_report(receipt), fish.report_url, now_ms)
        fish = cfg.aiofish_by_app_key.get(account)
        if gateway == "aiofish-vsms" and fish is not None and fish.vsms_status_url:
            return pp.vsms_status(account, receipt, fish.vsms_status_url)
        if gateway == "aiofish-isms" and fish is not None and fish.isms_status_url:
            return pp.isms_status(account, receipt, fish.isms_status_url)
        return None
