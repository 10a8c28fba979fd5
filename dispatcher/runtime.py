"""Per-process wiring: settings, accounts, Redis, ledger, limiter and gateway clients.

Built once per process (worker, beat, webhook, CLI) and reused; gateway clients
are created on first use and keep their HTTP connection pools.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import redis
import structlog

from dispatcher.account_health import ErrorWindow
from dispatcher.config.accounts import AccountConfig, Accounts, load_accounts
from dispatcher.config.settings import Settings, load_settings
from dispatcher.keys import Keys
from dispatcher.ledger import Ledger
from dispatcher.limiter import RateLimiter
from dispatcher.pacing import Gates
from dispatcher.providers import registry
from dispatcher.redis_connection import connect

log = structlog.get_logger("dispatcher.runtime")


class Runtime:
    """Everything a process needs to send, receive and account for SMS."""

    def __init__(
        self, settings: Settings | None = None, *, accounts: Accounts | None = None, client: redis.Redis | None = None
    ) -> None:
        self.settings = settings or load_settings()
        self.accounts = accounts or load_accounts(self.settings.accounts_file)
        self.redis = client or connect(self.settings)
        self.keys = Keys(self.settings.key_prefix)
        self.ledger = Ledger(self.redis, self.keys, job_ttl_s=self.settings.job_ttl_s,
                             outcome_feed_max=self.settings.outcome_feed_max,
                             wait_replicas=self.settings.replicas_to_wait,
                             wait_timeout_ms=self.settings.redis_wait_timeout_ms)
        self.limiter = RateLimiter(self.redis, self.keys, overrides=self.accounts.limit_overrides(),
                                   jitter_s=self.settings.limiter_jitter_s)
        # This process's view of each account's recent calls (a route moves a failing account's recipients).
        self.errors = ErrorWindow(window_s=self.settings.error_window_s, min_calls=self.settings.error_min_calls,
                                  max_share=self.settings.error_rate_max)
        #: Per account, how many bulk chunks of this process may hold a reserved slot at once.
        self.gates = Gates()
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def reconcile_window_s(self, provider: str, name: str) -> float:
        """How long an ambiguous chunk of ``provider:name`` waits for a receipt (accounts file, else settings)."""
        return self.accounts.reconcile_window_s(provider, name, self.settings.reconcile_window_s)

    def client(self, provider: str, name: str) -> Any:
        """The gateway client of account ``provider:name`` (created once)."""
        key = (provider, name)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = make_client(self.accounts.get(provider, name))
            return self._clients[key]


def make_client(account: AccountConfig) -> Any:
    """A protocol client for one account, built by its gateway's plug (:mod:`dispatcher.providers.registry`).

    Plugs import their HTTP clients only here, so producers (Django, Flask) never
    load them; workers preload them (dispatcher/workers/tasks.py) so forked pool
    processes share the loaded modules. Raises ``ConfigurationError``.
    """
    return registry.gateway(account.provider).client(account)


class LazyRuntime:
    """One runtime per process, built by ``build`` on first call (thread-safe); ``reset`` forgets it."""

    def __init__(self, build: Callable[[], Runtime]) -> None:
        self._build = build
        self._runtime: Runtime | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Runtime:
        """The runtime, built now if this is the first call since start or :meth:`reset`."""
        with self._lock:
            if self._runtime is None:
                self._runtime = self._build()
            return self._runtime

    def reset(self) -> None:
        """Forget the runtime (after fork, or in tests): the next call builds a new one."""
        with self._lock:
            self._runtime = None


_process_runtime = LazyRuntime(Runtime)


def get_runtime() -> Runtime:
    """The process-wide runtime, built from the environment on first use."""
    return _process_runtime()


def warm_runtime() -> None:
    """Build the process-wide runtime and every account's client now, not on first use.

    A configuration problem is logged, not raised: the task that needs the
    broken part raises it where it can be handled.
    """
    try:
        rt = get_runtime()
        for account in rt.accounts:
            rt.client(account.provider, account.name)
    except Exception as exc:  # noqa: BLE001 - reported again, in context, by the first task
        log.warning("runtime.warm_failed", error=type(exc).__name__, detail=str(exc))


def reset_runtime() -> None:
    """Forget the process-wide runtime (after fork, or in tests)."""
    _process_runtime.reset()
