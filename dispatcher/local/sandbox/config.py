"""Sandbox configuration: defaults (``defaults.py``), JSON files, deep-merge, typed views.

The effective configuration is one JSON-able dict (what ``GET /_sandbox/config``
returns); :func:`parse_config` turns it into frozen dataclasses the gateways read.
Every duration carries its unit in its name; ``null`` for a limit means unlimited.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatcher.local.sandbox.defaults import DEFAULT_LIMITS, DEFAULTS
from dispatcher.local.sandbox.receipts import OutcomeMix
from dispatcher.local.sandbox.templates import OpassTemplate, parse_template
from dispatcher.providers.aiofish.crypto import password_md5

PUSH_MODES = ("plain", "phone", "full")
RECEIPT_MODES = ("both", "pull", "push")
OPASS_BALANCE_ITEMS = ("行业短信", "会员短信", "推广短信")


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """At most ``max_count`` requests in any sliding window of ``window_s`` seconds."""

    max_count: int
    window_s: float


@dataclass(frozen=True, slots=True)
class OpassAccountConfig:
    """One opass account as the sandbox knows it."""

    api_key: str
    access_key: str
    balance: Mapping[str, int]
    ip_whitelist: frozenset[str] | None
    signature: str
    status_url: str | None
    uplink_url: str | None
    limits: Mapping[str, LimitSpec | None]


@dataclass(frozen=True, slots=True)
class AiofishAccountConfig:
    """One aiofish account (SMS account + vsms/isms appKey) as the sandbox knows it."""

    account: str
    password_md5: str
    app_key: str | None
    app_secret: str | None
    aes_key: str | None
    balance: int
    push_mode: str
    report_url: str | None
    reply_url: str | None
    vsms_status_url: str | None
    vsms_audit_url: str | None
    isms_status_url: str | None
    limits: Mapping[str, LimitSpec | None]


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """The parsed, validated configuration (immutable; replaced on every update)."""

    raw: Mapping[str, Any]
    seed: int
    time_scale: float
    receipt_delay_s: float
    receipt_mode: str
    outcomes: OutcomeMix
    blacklist: frozenset[str]
    opass_accounts: Mapping[str, OpassAccountConfig]
    opass_templates: Mapping[str, OpassTemplate]
    aiofish_accounts: Mapping[str, AiofishAccountConfig]
    aiofish_by_app_key: Mapping[str, AiofishAccountConfig]

    def num(self, key: str) -> float:
        """A numeric top-level setting (``push_timeout_s``, ``batch_max``…)."""
        return float(self.raw[key])

    def int(self, key: str) -> int:
        """An integer top-level setting."""
        return int(self.raw[key])

    def scaled_s(self, seconds: float) -> float:
        """A vendor-documented delay multiplied by ``time_scale``."""
        return seconds * self.time_scale


#: Settings that are one value as a whole: an update replaces them instead of merging.
ATOMIC_KEYS = frozenset({"outcomes"})


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated with ``update``: dicts merge recursively, anything else replaces.

    ``outcomes`` is one distribution, so it is replaced whole (see :data:`ATOMIC_KEYS`).
    """
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        if key not in ATOMIC_KEYS and isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON config file (keys starting with ``_`` are comments and dropped).

    Raises ``ValueError`` if the file is not a JSON object, ``OSError`` if unreadable.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the sandbox config must be a JSON object")
    return {k: v for k, v in data.items() if not k.startswith("_")}


def _limit(name: str, value: Any) -> LimitSpec | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or "max" not in value or "window_s" not in value:
        raise ValueError(f"limits.{name} must be null or {{'max': N, 'window_s': S}}")
    max_count, window_s = int(value["max"]), float(value["window_s"])
    if max_count < 1 or window_s <= 0:
        raise ValueError(f"limits.{name}: max must be >= 1 and window_s > 0")
    return LimitSpec(max_count, window_s)


def _limits(global_limits: Mapping[str, Any], own: Mapping[str, Any] | None) -> dict[str, LimitSpec | None]:
    merged = {**global_limits, **(own or {})}
    unknown = set(merged) - set(DEFAULT_LIMITS)
    if unknown:
        raise ValueError(f"unknown limits: {sorted(unknown)}; known: {sorted(DEFAULT_LIMITS)}")
    return {name: _limit(name, value) for name, value in merged.items()}


def _url(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError(f"{where} must be an http(s) URL or null")
    return value


def _opass_account(api_key: str, raw: Mapping[str, Any], limits: Mapping[str, Any]) -> OpassAccountConfig:
    balance = {item: int(raw.get("balance", {}).get(item, 0)) for item in OPASS_BALANCE_ITEMS}
    whitelist = raw.get("ip_whitelist")
    return OpassAccountConfig(
        api_key=api_key,
        access_key=str(raw["access_key"]),
        balance=balance,
        ip_whitelist=frozenset(whitelist) if whitelist else None,
        signature=str(raw.get("signature") or ""),
        status_url=_url(raw.get("status_url"), f"opass.accounts.{api_key}.status_url"),
        uplink_url=_url(raw.get("uplink_url"), f"opass.accounts.{api_key}.uplink_url"),
        limits=_limits(limits, raw.get("limits")),
    )


def _aiofish_account(name: str, raw: Mapping[str, Any], limits: Mapping[str, Any]) -> AiofishAccountConfig:
    mode = raw.get("push_mode", "plain")
    if mode not in PUSH_MODES:
        raise ValueError(f"aiofish.accounts.{name}.push_mode must be one of {PUSH_MODES}")
    aes_key = raw.get("aes_key")
    if aes_key is not None and len(str(aes_key).encode()) not in (16, 24, 32):
        raise ValueError(f"aiofish.accounts.{name}.aes_key must be 16, 24 or 32 bytes")
    where = f"aiofish.accounts.{name}"
    if mode != "plain" and aes_key is None:
        raise ValueError(f"{where}.push_mode={mode} needs aes_key")
    if mode == "full" and not raw.get("app_secret"):
        raise ValueError(f"{where}.push_mode=full needs app_secret")
    return AiofishAccountConfig(
        account=name,
        password_md5=password_md5(str(raw["password"])),
        app_key=raw.get("app_key"),
        app_secret=raw.get("app_secret"),
        aes_key=aes_key,
        balance=int(raw.get("balance", 0)),
        push_mode=mode,
        report_url=_url(raw.get("report_url"), f"{where}.report_url"),
        reply_url=_url(raw.get("reply_url"), f"{where}.reply_url"),
        vsms_status_url=_url(raw.get("vsms_status_url"), f"{where}.vsms_status_url"),
        vsms_audit_url=_url(raw.get("vsms_audit_url"), f"{where}.vsms_audit_url"),
        isms_status_url=_url(raw.get("isms_status_url"), f"{where}.isms_status_url"),
        limits=_limits(limits, raw.get("limits")),
    )


def parse_config(raw: Mapping[str, Any]) -> SandboxConfig:
    """Validate ``raw`` (a full config dict) and return its typed view.

    Raises ``ValueError`` (or ``KeyError``/``TypeError`` for missing or mistyped
    entries) naming the offending setting.
    """
    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown settings: {sorted(unknown)}")
    for key, default in DEFAULTS.items():
        if isinstance(default, int | float) and not isinstance(default, bool):
            value = raw[key]
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{key} must be a non-negative number")
    if raw["receipt_mode"] not in RECEIPT_MODES:
        raise ValueError(f"receipt_mode must be one of {RECEIPT_MODES}")
    if raw["push_concurrency"] < 1 or raw["opass_push_batch"] < 1 or raw["batch_max"] < 1:
        raise ValueError("push_concurrency, opass_push_batch and batch_max must be >= 1")
    limits = raw["limits"]
    _limits(limits, None)  # validates the global table
    opass_accounts = {k: _opass_account(k, v, limits) for k, v in raw["opass"]["accounts"].items()}
    aiofish_accounts = {k: _aiofish_account(k, v, limits) for k, v in raw["aiofish"]["accounts"].items()}
    templates = {str(code): parse_template(str(code), str(text)) for code, text in raw["opass"]["templates"].items()}
    return SandboxConfig(
        raw=raw,
        seed=int(raw["seed"]),
        time_scale=float(raw["time_scale"]),
        receipt_delay_s=float(raw["receipt_delay_s"]),
        receipt_mode=str(raw["receipt_mode"]),
        outcomes=OutcomeMix.from_mapping(raw["outcomes"]),
        blacklist=frozenset(str(p) for p in raw["blacklist"]),
        opass_accounts=opass_accounts,
        opass_templates=templates,
        aiofish_accounts=aiofish_accounts,
        aiofish_by_app_key={a.app_key: a for a in aiofish_accounts.values() if a.app_key},
    )


def initial_config(file_path: str | Path | None = None, time_scale: float | None = None) -> dict[str, Any]:
    """The start-up config: defaults, then the JSON file, then ``--time-scale``.

    Raises ``ValueError`` if the result does not validate.
    """
    raw = copy.deepcopy(DEFAULTS)
    if file_path is not None:
        raw = deep_merge(raw, load_file(file_path))
    if time_scale is not None:
        raw["time_scale"] = time_scale
    parse_config(raw)
    return raw
