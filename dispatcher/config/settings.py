"""Settings read from the environment (``SMSD_*``), with the defaults documented here."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from dispatcher.errors import ConfigurationError
from dispatcher.keys import JOB_TTL_S
from dispatcher.redact import build_repr, url_repr
from dispatcher.redis_server import REDIS_MAXMEMORY_MB


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a producer, worker, beat or webhook process needs besides accounts.

    Each field is read from ``SMSD_<FIELD NAME IN CAPITALS>``.
    """

    #: Redis for the ledger and (unless ``broker_url``) the Celery broker; empty =
    #: start an embedded redis-server with its data under ``data_dir``.
    redis_url: str = ""
    broker_url: str = ""
    accounts_file: str = "config/accounts.example.json"
    data_dir: str = ".data"
    key_prefix: str = "smsd"
    queue_otp: str = "sms.otp"
    queue_bulk: str = "sms.bulk"
    #: How long an ambiguous chunk waits for a receipt carrying its id before it
    #: is considered never to have arrived and is sent again.
    reconcile_window_s: float = 600.0
    #: When the gateway could not be asked about an ambiguous chunk (no query
    #: budget left, the query failed), ask again this much later: one slot of
    #: opass's 3-a-minute query budget.
    reconcile_retry_s: float = 20.0
    #: A chunk still ``sending`` after this long lost its worker: make it ambiguous.
    stuck_after_s: float = 120.0
    #: A pending chunk whose task has not run this long after it was due gets a
    #: new task (the old one may sit unacked with a killed worker until the
    #: broker's visibility timeout). Extra tasks are harmless: the claim is atomic.
    orphan_after_s: float = 600.0
    #: Recipients with no receipt this long after acceptance become ``unknown``.
    receipt_horizon_s: float = 72 * 3600.0
    #: A job, its chunks and its index entries are dropped this long after it
    #: was created (after its send time, if scheduled). Longer than the receipt
    #: horizon, so the ``unknown`` verdict lands while the job still exists.
    job_ttl_s: float = float(JOB_TTL_S)
    #: ``maxmemory`` of the embedded redis-server (and docker-compose's), in MiB;
    #: 0 = no limit. With ``noeviction`` a full Redis refuses new jobs
    #: (``StorageFullError``) instead of silently dropping ledger keys.
    redis_maxmemory_mb: int = REDIS_MAXMEMORY_MB
    #: How often beat looks for accounts whose next receipt or reply poll is
    #: due; each account's limit (1/min by default) sets the pace, and a poll
    #: whose slot falls within the next tick is queued to run right at it.
    receipt_tick_s: float = 5.0
    sweep_every_s: float = 15.0
    #: Entries the outcome feed keeps (``Dispatcher.outcomes``): one per chunk and
    #: change, so 100,000 hold at least the last 100,000 outcomes, usually many more.
    outcome_feed_max: int = 100_000
    #: The app's Celery task told of job events, e.g. ``myapp.tasks.sms_event``: sent
    #: ``(job_id, event, counts)`` for ``submitted`` and ``finished``; "" = none.
    on_job_event: str = ""
    #: The queue that task is sent to (the app's worker must consume it).
    job_event_queue: str = "celery"
    #: How often beat checks the balance of paused accounts and resumes those
    #: with credit left (``workers.tasks.check_paused``).
    check_paused_every_s: float = 60.0
    retry_base_s: float = 1.0
    retry_cap_s: float = 300.0
    max_attempts: int = 20
    #: Each limit's window is widened by this much: the time from taking a token
    #: to the request reaching the gateway varies by up to this (see limiter.py).
    limiter_jitter_s: float = 0.05
    #: How long a task may wait for a rate-limit token before re-queueing itself.
    limiter_max_wait_s: float = 2.0
    #: Most chunks one send task takes (a job is spread over 16+ tasks first);
    #: fewer Celery tasks per recipient, as each costs about as much CPU as an HTTP call.
    chunks_per_task: int = 8
    #: Run a receipt applier thread in each Celery worker (reads the receipt stream).
    receipt_applier: bool = True
    #: A receipt-stream entry read by an applier and not applied this long is
    #: taken to have lost its worker and is claimed by another applier.
    receipt_claim_idle_ms: int = 15_000
    log_level: str = "INFO"
    #: Send Celery task events from the start (Flower turns them on by itself
    #: when it runs; they cost three Redis PUBLISHes per task).
    task_events: bool = False

    def __repr__(self) -> str:  # a Redis or broker URL may carry a password
        shown = {f.name: url_repr(getattr(self, f.name)) if f.name.endswith("_url") else repr(getattr(self, f.name))
                 for f in fields(self)}
        return build_repr(self, **shown)

    def __post_init__(self) -> None:
        if self.job_ttl_s <= self.receipt_horizon_s:
            # Else the 72 h sweep would look for chunks that already expired, and
            # their index entries would outlive them until the horizon.
            raise ConfigurationError(
                f"SMSD_JOB_TTL_S ({self.job_ttl_s:g}) must be longer than SMSD_RECEIPT_HORIZON_S "
                f"({self.receipt_horizon_s:g})")
        if self.redis_maxmemory_mb < 0:
            raise ConfigurationError(f"SMSD_REDIS_MAXMEMORY_MB must be 0 (no limit) or more, "
                                     f"got {self.redis_maxmemory_mb}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``).

        Raises ``ConfigurationError`` naming the variable whose value is not of its type.
        """
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f"SMSD_{f.name.upper()}"
            if name not in env:
                continue
            raw = env[name]
            kind: Any = type(f.default)
            try:
                values[f.name] = _boolean(raw) if kind is bool else kind(raw) if kind is not str else raw
            except ValueError:
                raise ConfigurationError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
        return cls(**values)  # type: ignore[arg-type]

    @property
    def shared_budget_wait_s(self) -> float:
        """How long a call may wait for a slot of a budget it shares with receipt polls (seconds).

        Beat reserves each poll's slot up to a tick ahead, and a GCRA limit never
        hands out a slot before one already reserved, so a call sharing the
        budget (opass's 3/min queries: bid queries, balance) must queue behind a
        whole tick of them, or it loses to the polls every time.
        """
        return self.receipt_tick_s + self.limiter_max_wait_s

    @property
    def data_path(self) -> Path:
        """``data_dir`` as a path."""
        return Path(self.data_dir)


def _boolean(raw: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case); raises ``ValueError`` otherwise."""
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(raw)
