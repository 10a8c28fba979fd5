"""Settings from Django's ``SMS_DISPATCH`` dict and the ``SMSD_*`` environment, with the defaults documented here.

:func:`load_settings` is the one loader every process uses (workers, beat, webhook, an
app's ``Dispatcher()``). Precedence, lowest first: the defaults below, then Django's
``settings.SMS_DISPATCH`` (when Django is in use), then ``SMSD_*`` variables, so an
operator can override one process without editing the project's settings.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
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

    Each field is read from ``SMSD_<FIELD NAME IN CAPITALS>``, or from the key of the same
    name (upper or lower case) in Django's ``SMS_DISPATCH`` dict; see :func:`load_settings`.
    """

    #: Redis for the ledger and (unless ``broker_url``) the Celery broker; empty =
    #: start an embedded redis-server with its data under ``data_dir``.
    redis_url: str = ""
    broker_url: str = ""
    #: Redis Sentinel instead of ``redis_url``: every sentinel as ``host:port``, comma-separated.
    #: The ledger, the limiter and (unless ``broker_url``) the broker follow the master they name.
    redis_sentinels: str = ""
    #: The name the sentinels know the master by (``sentinel monitor NAME …``); required with them.
    redis_sentinel_master: str = ""
    #: The sentinels' own password (their ``requirepass``), if they have one.
    redis_sentinel_password: str = ""
    #: The master's and replicas' password under Sentinel (with ``redis_url`` it is part of the URL).
    redis_password: str = ""
    #: Under Sentinel, replicas that must hold a chunk's claim before its request leaves, and a
    #: push before it is answered 200 (``WAIT``): a failover cannot then forget either. 0 = no wait.
    redis_wait_replicas: int = 1
    #: How long (ms) to wait for them; a claim not confirmed in time goes back unsent, a push gets 503.
    redis_wait_timeout_ms: int = 500
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
    #: An account whose calls failed this often (transient, ambiguous, refused whole;
    #: not throttled) over ``error_window_s`` is marked failing: a route moves its
    #: recipients not yet submitted to its next account, as for a paused one.
    error_rate_max: float = 0.5
    error_window_s: float = 60.0
    #: ... once at least this many calls are in the window (one process's count).
    error_min_calls: int = 20
    #: How often beat checks the balance of paused accounts and resumes those
    #: with credit left (``workers.tasks.check_paused``).
    check_paused_every_s: float = 60.0
    #: How long a balance read by a producer (the send guard, ``Dispatcher.estimate``) is
    #: reused; each read spends a slot of the account's ``balance`` limit (opass: also its
    #: 3/min query budget, shared with receipt polls). 0 = read every time the limit allows.
    balance_cache_s: float = 300.0
    retry_base_s: float = 1.0
    retry_cap_s: float = 300.0
    max_attempts: int = 20
    #: Each limit's window is widened by this much: the time from taking a token
    #: to the request reaching the gateway varies by up to this (see limiter.py).
    limiter_jitter_s: float = 0.05
    #: How long a task may wait for a rate-limit token before re-queueing itself.
    limiter_max_wait_s: float = 2.0
    #: How much of an account's limit, in seconds of its slots, each worker
    #: process holds reserved for bulk chunks about to go out: an OTP's slot is
    #: about this far away however many bulk chunks wait for the account (they
    #: wait in their process: dispatcher/pacing.py). Also the slack that rides
    #: out a process slow to send at its slot; less loses slots on a busy host.
    send_ahead_s: float = 0.1
    #: Requests in flight per worker process: the threads of its Celery pool
    #: (``-c`` overrides). An account at 300/s with the gateway 200 ms away
    #: needs ~60 in flight, plus those waiting up to ``send_ahead_s`` for their slot.
    send_concurrency: int = 128
    #: Most chunks one send task takes (a job is spread over 64+ tasks first,
    #: and a task holds at most ~30 ms of its account's limit); fewer Celery
    #: tasks per recipient, as each costs more CPU than the HTTP call it makes.
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
        shown = {f.name: _shown(f.name, getattr(self, f.name)) for f in fields(self)}
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
        if not 0 < self.error_rate_max <= 1 or self.error_window_s <= 0 or self.error_min_calls < 1:
            raise ConfigurationError(
                f"SMSD_ERROR_RATE_MAX must be in (0, 1], SMSD_ERROR_WINDOW_S above 0 and SMSD_ERROR_MIN_CALLS 1 or "
                f"more; got {self.error_rate_max:g}, {self.error_window_s:g}, {self.error_min_calls}")
        _check_sentinel(self)

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``redis_sentinels`` as ``(host, port)`` pairs (empty without Sentinel)."""
        return sentinel_addresses(self.redis_sentinels)

    @property
    def replicas_to_wait(self) -> int:
        """Replicas a claim or push must reach before it counts: ``redis_wait_replicas`` under Sentinel, else 0."""
        return self.redis_wait_replicas if self.redis_sentinels else 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``) alone; see :func:`load_settings` for Django's.

        Raises ``ConfigurationError`` naming the variable whose value is not of its type.
        """
        return cls(**env_values(os.environ if env is None else env))  # type: ignore[arg-type]

    @classmethod
    def from_mapping(cls, given: Mapping[str, Any], *, source: str = "SMS_DISPATCH") -> Settings:
        """Build settings from a dict keyed by field name (any case), as Django's ``SMS_DISPATCH``.

        Raises ``ConfigurationError`` naming an unknown key or a value not of its field's type.
        """
        return cls(**mapping_values(given, source=source))  # type: ignore[arg-type]

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


_FIELDS = {f.name: f for f in fields(Settings)}


def _shown(name: str, value: object) -> str:
    """A field's value for ``repr``: URLs without their password, passwords not at all."""
    if name.endswith("_url"):
        return url_repr(str(value))
    if name.endswith("_password"):
        return "'***'" if value else "''"
    return repr(value)


def sentinel_addresses(text: str) -> list[tuple[str, int]]:
    """``"h1:26379, h2:26379"`` (``[v6]:port`` too) as pairs; raises ``ConfigurationError`` naming
    ``SMSD_REDIS_SENTINELS`` for an entry that is not ``host:port``."""
    pairs = []
    for entry in (e.strip() for e in text.split(",")):
        host, _, port = entry.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not entry or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(f"SMSD_REDIS_SENTINELS={text!r}: {entry!r} is not host:port "
                                     "(give every sentinel, comma-separated: s1:26379,s2:26379,s3:26379)")
        pairs.append((host, int(port)))
    return pairs


def _check_sentinel(s: Settings) -> None:
    """Refuse Sentinel settings that cannot work together, naming the variable to fix."""
    if s.redis_sentinels:
        sentinel_addresses(s.redis_sentinels)
        if not s.redis_sentinel_master:
            raise ConfigurationError("SMSD_REDIS_SENTINELS is set but SMSD_REDIS_SENTINEL_MASTER is not: "
                                     "give the name the sentinels monitor the master under")
        if s.redis_url:
            raise ConfigurationError("SMSD_REDIS_URL and SMSD_REDIS_SENTINELS are both set: the sentinels name "
                                     "the master, so leave SMSD_REDIS_URL empty")
    else:
        for name in ("redis_sentinel_master", "redis_sentinel_password", "redis_password"):
            if getattr(s, name):
                raise ConfigurationError(f"SMSD_{name.upper()} is set but SMSD_REDIS_SENTINELS is not"
                                         + (" (put the password in SMSD_REDIS_URL)" if name == "redis_password"
                                            else ""))
    if s.redis_wait_replicas < 0:
        raise ConfigurationError(f"SMSD_REDIS_WAIT_REPLICAS must be 0 (no wait) or more, got {s.redis_wait_replicas}")
    if s.redis_wait_timeout_ms <= 0:
        # WAIT with 0 blocks until the replicas answer, however long: a hung replica would hang every sender.
        raise ConfigurationError(f"SMSD_REDIS_WAIT_TIMEOUT_MS must be above 0, got {s.redis_wait_timeout_ms}")


def _kind(name: str) -> Any:
    """The Python type of field ``name``: that of its default."""
    return type(_FIELDS[name].default)


def env_values(env: Mapping[str, str]) -> dict[str, object]:
    """The settings given as ``SMSD_*`` variables in ``env``, typed; raises ``ConfigurationError`` naming one."""
    values: dict[str, object] = {}
    for name in _FIELDS:
        var = f"SMSD_{name.upper()}"
        if var in env:
            values[name] = _from_text(env[var], _kind(name), var)
    return values


def mapping_values(given: Mapping[str, Any], *, source: str = "SMS_DISPATCH") -> dict[str, object]:
    """The settings in ``given`` (keys: field names, upper or lower case), typed.

    A value may be the text an ``SMSD_*`` variable would hold or a Python value of the
    field's type (an int for a float field, any path for a text field). Raises
    ``ConfigurationError`` naming the key for an unknown key, one given twice, or a value
    of the wrong type.
    """
    if not isinstance(given, Mapping):
        raise ConfigurationError(f"{source} must be a dict of settings, got {type(given).__name__}")
    values: dict[str, object] = {}
    for key, raw in given.items():
        name = key.lower() if isinstance(key, str) else ""
        where = f"{source}[{key!r}]"
        if name not in _FIELDS:
            known = ", ".join(n.upper() for n in _FIELDS)
            raise ConfigurationError(f"{where} is not a setting of sms-dispatch (known: {known})")
        if name in values:
            raise ConfigurationError(f"{where}: {name.upper()} is given twice (keys differ only in case)")
        values[name] = _from_value(raw, _kind(name), where)
    return values


def _from_text(raw: str, kind: Any, where: str) -> object:
    """``raw`` (an environment variable's text) as ``kind``; raises ``ConfigurationError`` naming ``where``."""
    try:
        return _boolean(raw) if kind is bool else raw if kind is str else kind(raw)
    except ValueError:
        raise ConfigurationError(f"{where}={raw!r} is not a valid {kind.__name__}") from None


def _from_value(raw: Any, kind: Any, where: str) -> object:
    """A Python value (or the text a variable would hold) as ``kind``; raises ``ConfigurationError`` naming it."""
    if isinstance(raw, str):
        return _from_text(raw, kind, where)
    if kind is str and isinstance(raw, os.PathLike):
        return os.fspath(raw)
    if kind is bool and isinstance(raw, bool):
        return raw
    # A bool is an int to Python, but True seconds is a slip, not a setting.
    numeric = isinstance(raw, int | float) and not isinstance(raw, bool)
    if kind is float and numeric and math.isfinite(raw):
        return float(raw)
    if kind is int and numeric and float(raw).is_integer():
        return int(raw)
    raise ConfigurationError(f"{where}={raw!r} is not a valid {kind.__name__}")


def django_settings_dict(env: Mapping[str, str] | None = None) -> Any:
    """Django's ``settings.SMS_DISPATCH`` as given there; ``None`` when Django is not in use or it has none.

    Django is in use when it is importable and either its settings are already
    configured (``settings.configure()``, or a running Django process) or
    ``DJANGO_SETTINGS_MODULE`` is set (a Celery worker started inside the project). Django
    is never imported otherwise: sms-dispatch does not need it. A settings module that
    cannot be imported raises ``ConfigurationError``.
    """
    env = os.environ if env is None else env
    module = env.get("DJANGO_SETTINGS_MODULE", "")
    if "django" not in sys.modules and not (module and importlib.util.find_spec("django") is not None):
        return None
    from django.conf import settings as django_settings

    if not django_settings.configured and not module:
        return None
    from django.core.exceptions import ImproperlyConfigured

    try:
        return getattr(django_settings, "SMS_DISPATCH", None)
    except (ImportError, ImproperlyConfigured) as exc:
        raise ConfigurationError(f"DJANGO_SETTINGS_MODULE={module!r} cannot be imported: {exc}") from None


def settings_from(django: Mapping[str, Any] | None, env: Mapping[str, str]) -> Settings:
    """Defaults, overridden by ``django`` (an ``SMS_DISPATCH`` dict, or None), overridden by ``SMSD_*`` in ``env``.

    Raises ``ConfigurationError`` naming the key or variable at fault.
    """
    given = {} if django is None else mapping_values(django)
    return Settings(**{**given, **env_values(env)})  # type: ignore[arg-type]


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The settings of this process: defaults, then Django's ``SMS_DISPATCH``, then ``SMSD_*`` from ``env``.

    ``env`` defaults to ``os.environ``. Every process builds its settings here.
    """
    env = os.environ if env is None else env
    return settings_from(django_settings_dict(env), env)


def _boolean(raw: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case); raises ``ValueError`` otherwise."""
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(raw)
