"""Gateway accounts from a JSON file; secrets come from the environment as ``${VAR}``.

A value written ``"${OPASS_ACCESS_KEY}"`` is replaced by that environment
variable (``"${NAME:-default}"`` falls back to ``default`` when it is unset), so
the committed example files hold no secret, and production puts secrets in the
environment or in an untracked ``config/accounts.local.json``.

An opass entry may declare its console templates, ``"templates": {"<code>": "<text>"}``
(see :mod:`dispatcher.templates`); a send naming a declared template is checked against
it before anything is stored. Template texts are taken as written (no ``${VAR}``
expansion: ``${收入,10}`` is a variable in the opass manual).

A ``callback_secret`` is the path token of the account's webhook URL, the only
proof of origin the plain pushes have: one shorter than
:data:`MIN_CALLBACK_SECRET_CHARS` or equal to a value this repository ever
shipped is refused (the webhook does not serve that account and says why).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dispatcher.caps import CapRule, Caps, parse_caps, rule_for
from dispatcher.errors import ConfigurationError
from dispatcher.limiter import Limit
from dispatcher.providers import registry
from dispatcher.providers.base import AccountSettings
from dispatcher.routes import Route, parse_routes, parse_templates
from dispatcher.suppression import Unsubscribe, parse_unsubscribe
from dispatcher.templates import Template

_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")
#: Shortest callback secret served: 32 characters of ``secrets.token_urlsafe`` is ~190 bits.
MIN_CALLBACK_SECRET_CHARS = 32
#: Every callback secret a file of this repository has held (examples, old demo
#: constants): public, so never a proof of anything. A test keeps this complete.
SHIPPED_CALLBACK_SECRETS = frozenset({"demo-opass-hook-token", "demo-aiofish-hook-token"})


def callback_secret_problem(secret: str) -> str | None:
    """Why the webhook must not serve an account with this callback secret, or ``None`` if it may.

    An empty secret is no problem: it means the account takes no pushes.
    """
    if not secret:
        return None
    if secret in SHIPPED_CALLBACK_SECRETS:
        return "callback_secret is a value published in the sms-dispatch repository; generate your own"
    if len(secret) < MIN_CALLBACK_SECRET_CHARS:
        return f"callback_secret is shorter than {MIN_CALLBACK_SECRET_CHARS} characters"
    return None


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """One configured account: its protocol settings plus what the pipeline adds.

    ``callback_secret`` is the path token the webhook requires for this
    account's pushes (empty: no pushes taken); ``limits`` overrides the
    documented defaults per operation; ``push_variant`` (aiofish) is the push
    form its console is set to, the only form its hook takes;
    ``reconcile_window_s``, when set, overrides ``Settings.reconcile_window_s``
    for this account's ambiguous chunks; ``templates`` (opass) are the
    declared console templates by code; ``channel_limits`` are the limits of the
    channels that send through this account (video and international SMS through
    an aiofish entry), by channel: ``"limits": {"send": […], "aiofish-vsms": {"send": […]}}``;
    ``unsubscribe`` the reply keywords that put a phone on the entry's suppression list and
    whether OTP jobs skip listed phones too (``"unsubscribe": {"keywords": […], "otp": false}``,
    :mod:`dispatcher.suppression`; the entry's channels share them with its list).
    ``caps`` the per-phone frequency caps by job priority (``"caps": {"bulk": [[1, 60]], "otp": …}``,
    :mod:`dispatcher.caps`; the entry's channels share them and their counts).
    """

    provider: str
    gateway: AccountSettings
    callback_secret: str = field(default="", repr=False)
    limits: Mapping[str, tuple[Limit, ...]] = field(default_factory=dict)
    push_variant: str = ""
    reconcile_window_s: float | None = None
    templates: Mapping[str, Template] = field(default_factory=dict)
    channel_limits: Mapping[str, Mapping[str, tuple[Limit, ...]]] = field(default_factory=dict)
    unsubscribe: Unsubscribe = field(default_factory=Unsubscribe)
    caps: Caps = field(default_factory=Caps)

    @property
    def hook_problem(self) -> str | None:
        """Why the webhook refuses this account's pushes although a secret is set, or ``None``."""
        return callback_secret_problem(self.callback_secret)

    @property
    def name(self) -> str:
        """The account's name, unique per provider."""
        return self.gateway.name


@dataclass(frozen=True, slots=True)
class Accounts:
    """All configured accounts, by provider and name."""

    by_key: Mapping[tuple[str, str], AccountConfig]
    #: Accounts a channel had to leave out (``Gateway.cannot_serve``), with why.
    unusable: Mapping[tuple[str, str], str] = field(default_factory=dict)
    #: Routes by name and the templates they send (the file's top-level ``routes``,
    #: ``templates``; :mod:`dispatcher.routes`).
    routes: Mapping[str, Route] = field(default_factory=dict)
    templates: Mapping[str, Template] = field(default_factory=dict)

    def route(self, name: str) -> Route:
        """The route ``name``; raises ``ConfigurationError`` naming the configured ones."""
        try:
            return self.routes[name]
        except KeyError:
            raise ConfigurationError(f"no route {name!r} (configured: {', '.join(sorted(self.routes)) or 'none'})") \
                from None

    def get(self, provider: str, name: str) -> AccountConfig:
        """The account ``provider:name``; raises ``ConfigurationError`` if unknown or unusable (saying why)."""
        try:
            return self.by_key[(provider, name)]
        except KeyError:
            if (provider, name) in self.unusable:
                raise ConfigurationError(f"{provider}:{name} cannot send: {self.unusable[(provider, name)]}") \
                    from None
            known = ", ".join(f"{p}:{n}" for p, n in sorted(self.by_key)) or "none"
            raise ConfigurationError(f"no account {provider}:{name} (configured: {known})") from None

    def __iter__(self) -> Iterator[AccountConfig]:
        return iter(self.by_key.values())

    def reconcile_window_s(self, provider: str, name: str, default_s: float) -> float:
        """The reconcile window of ``provider:name``: its own if set, else ``default_s``.

        An account no longer configured (its jobs outlive it) gets ``default_s``.
        """
        account = self.by_key.get((provider, name))
        if account is None or account.reconcile_window_s is None:
            return default_s
        return account.reconcile_window_s

    def cap_rule(self, provider: str, name: str, priority: str) -> CapRule | None:
        """The frequency caps a chunk of ``provider:name`` at job ``priority`` is claimed under, or ``None``.

        An account no longer configured (its jobs outlive it) has none.
        """
        account = self.by_key.get((provider, name))
        return None if account is None else rule_for(account.caps, provider, name, priority)

    def limit_overrides(self) -> dict[tuple[str, str, str], tuple[Limit, ...]]:
        """Per-account limit overrides in the form the limiter takes."""
        return {(a.provider, a.name, op): lim for a in self for op, lim in a.limits.items()}


def _expand(value: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            if m.group(1) in env:
                return env[m.group(1)]
            if m.group(2) is not None:
                return m.group(2)
            raise ConfigurationError(f"{where}: environment variable {m.group(1)} is not set")
        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, env, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _limits(raw: Mapping[str, Any], where: str) -> dict[str, tuple[Limit, ...]]:
    out: dict[str, tuple[Limit, ...]] = {}
    for op, items in raw.items():
        try:
            out[op] = tuple(Limit(str(i["kind"]), int(i["count"]), float(i["window_s"])) for i in items)
        except (KeyError, TypeError, ValueError):
            raise ConfigurationError(
                f"{where}.limits.{op}: expected a list of {{kind, count, window_s}}"
            ) from None
    return out


def _window_s(raw: Any, where: str) -> float | None:
    """An optional positive number of seconds; raises ConfigurationError naming ``where``."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or raw <= 0:
        raise ConfigurationError(f"{where}.reconcile_window_s: expected a positive number of seconds, got {raw!r}")
    return float(raw)


def parse_accounts(doc: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Accounts:
    """Build :class:`Accounts` from a parsed file; raises ``ConfigurationError`` naming the entry."""
    env = os.environ if env is None else env
    by_key: dict[tuple[str, str], AccountConfig] = {}
    for plug in registry.gateways():
        if plug.accounts_of is not None:
            continue  # its accounts are another gateway's: added below, once all entries are read
        provider = plug.name
        if plug.accounts_of is not None:
            continue  # a channel of another gateway's accounts: added below
        for i, raw in enumerate(doc.get(provider, [])):
            where = f"{provider}[{i}]"
            item = dict(raw)
            # The gateway's own fields are taken out before ${VAR} expansion: opass's
            # template texts are not secrets, and the manual's ${收入,10} is a template variable.
            own = {name: item.pop(name) for name in plug.raw_fields if name in item}
            # Reply keywords are words, not secrets: taken as written, as template texts are.
            unsubscribe = parse_unsubscribe(item.pop("unsubscribe", None), where)
            caps = parse_caps(item.pop("caps", None), where)  # numbers, not secrets: taken as written
            item = _expand(item, env, where)
            secret = str(item.pop("callback_secret", ""))
            raw_limits = dict(item.pop("limits", {}))
            channel_limits = {channel: _limits(raw_limits.pop(channel), f"{where}.limits.{channel}")
                              for channel in [k for k, v in raw_limits.items() if isinstance(v, dict)]}
            _check_channels(provider, channel_limits, where)
            limits = _limits(raw_limits, where)
            window_s = _window_s(item.pop("reconcile_window_s", None), where)
            try:
                gateway = plug.account_class(**item)
            except TypeError as exc:
                raise ConfigurationError(f"{where}: {exc}") from None
            key = (provider, gateway.name)
            if key in by_key:
                raise ConfigurationError(f"{where}: duplicate account name {gateway.name!r}")
            identity = plug.identity(gateway)
            twin = next((n for (p, n), a in by_key.items()
                         if p == provider and plug.identity(a.gateway) == identity), None)
            if twin is not None:
                # Receipts are applied only to jobs of the account they came through,
                # so one vendor account under two names would see its pulled receipts
                # refused for the other name's jobs (and the gateway returns each once).
                raise ConfigurationError(f"{where}: same vendor account as {provider}:{twin}; "
                                         f"keep one entry per vendor account")
            extras = plug.account_extras(own, gateway, f"{where} ({provider}:{gateway.name})")
            by_key[key] = AccountConfig(provider, gateway, secret, limits, reconcile_window_s=window_s,
                                        channel_limits=channel_limits, unsubscribe=unsubscribe,
                                        caps=caps, **extras)
    unusable = _add_channels(by_key)
    routes = parse_routes(doc.get("routes"), set(by_key))
    for route in routes.values():
        for i, entry in enumerate(route.entries):
            if registry.gateway(entry.provider).route is None:
                raise ConfigurationError(f"routes.{route.name}[{i}]: {entry.provider} accounts cannot be in a route")
    return Accounts(by_key, unusable, routes, parse_templates(doc.get("templates")))


def _check_channels(provider: str, channel_limits: Mapping[str, Any], where: str) -> None:
    """Each key of an entry's channel limits names a channel of its gateway; raises ConfigurationError."""
    channels = [p.name for p in registry.gateways() if p.accounts_of == provider]
    for channel in channel_limits:
        if channel not in channels:
            raise ConfigurationError(f"{where}.limits.{channel}: not a channel of {provider} "
                                     f"(its channels: {', '.join(channels) or 'none'})")


def _add_channels(by_key: dict[tuple[str, str], AccountConfig]) -> dict[tuple[str, str], str]:
    """Each account of a gateway that other plugs are channels of (``Gateway.accounts_of``) becomes
    an account of those channels too: same name, settings, callback secret and reconcile window
    (so its hook and its receipts' owner ``channel:name`` work); its limits are the entry's
    ``limits.<channel>`` over the channel plug's. Returns the accounts a channel cannot serve, with why."""
    unusable = {}
    for plug in registry.gateways():
        if plug.accounts_of is None:
            continue
        for (provider, name), account in list(by_key.items()):
            if provider != plug.accounts_of:
                continue
            problem = plug.cannot_serve(account.gateway)
            if problem is not None:
                unusable[(plug.name, name)] = problem
                continue
            by_key[(plug.name, name)] = replace(account, provider=plug.name, channel_limits={},
                                                limits=account.channel_limits.get(plug.name, {}))
    return unusable


def load_accounts(path: str | Path, env: Mapping[str, str] | None = None) -> Accounts:
    """Read and parse an accounts JSON file; raises ``ConfigurationError`` if unusable."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"accounts file {path} does not exist (set SMSD_ACCOUNTS_FILE)") from None
    except ValueError as exc:
        raise ConfigurationError(f"accounts file {path} is not valid JSON: {exc}") from None
    return parse_accounts(doc, env)
