"""Routes: one send spread over accounts of several gateways by weight, with failover. Pure.

The accounts file names them at its top level, with the templates they send::

    "templates": {"otp": "您的验证码是{验证码,6}，5分钟内有效。"},
    "routes": {
      "marketing": [{"account": "opass:a", "weight": 3},
                    {"account": "aiofish:b", "weight": 1, "signature": "飞鱼"}],
      "alerts": {"accounts": [...], "cooldown_s": 10}
    }

A template is written once, in the opass manual's ``{name,maxLen}`` syntax without a
signature (:mod:`dispatcher.templates`), and each gateway's plug turns it into its own
send (``Gateway.route``): an opass account sends the console template of its own whose
declared text is exactly this one (its code is looked up in the entry's ``templates``;
codes differ per account, so a route never carries one that could disagree with the
text), an aiofish account sends the rendered text behind the entry's ``【signature】``
(signatures are registered per vendor account, so it belongs to the route's entry).

``Dispatcher.send(route, template=…, params=…, phones=…)`` splits the recipients by the
weights of the route's accounts that are not paused, in the order given
(:func:`split`), one job per account. When an account of the route has been paused for
``cooldown_s`` (an account-fatal answer such as opass's ``40002`` pauses it), its
recipients not yet submitted move to the next account of the route that is not paused
(:mod:`dispatcher.route_failover`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dispatcher.errors import ConfigurationError
from dispatcher.templates import Template, TemplateSyntaxError, parse_template

#: Default seconds an account of a route stays paused before its recipients move on.
DEFAULT_COOLDOWN_S = 30.0
#: The code a recipient moved to another account carries on the account it left (state ``cancelled``).
REROUTED_CODE = "rerouted"
#: Fields of a route entry that are the route's, not the gateway's options.
_ENTRY_FIELDS = ("account", "weight")


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """One account of a route: ``provider:account``, its weight, and the options its gateway
    takes for routed sends (``signature`` for a gateway that sends text)."""

    provider: str
    account: str
    weight: int
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``provider:account``, as the accounts file writes it."""
        return f"{self.provider}:{self.account}"


@dataclass(frozen=True, slots=True)
class Route:
    """A named route: its accounts in failover order, and how long a paused one is waited for."""

    name: str
    entries: tuple[RouteEntry, ...]
    cooldown_s: float = DEFAULT_COOLDOWN_S

    def entry(self, key: str) -> RouteEntry | None:
        """The entry ``provider:account``, or ``None``."""
        return next((e for e in self.entries if e.key == key), None)

    def next_after(self, key: str, down: set[str]) -> RouteEntry | None:
        """The first entry after ``key`` (wrapping round) that is not ``key`` and not in ``down``."""
        keys = [e.key for e in self.entries]
        start = keys.index(key) if key in keys else -1
        for step in range(1, len(keys) + 1):
            entry = self.entries[(start + step) % len(keys)]
            if entry.key != key and entry.key not in down:
                return entry
        return None


def split(count: int, weights: Sequence[int]) -> list[int]:
    """How many of ``count`` recipients each weight gets: proportional, the remainders to the
    largest fractions (ties to the first), summing to ``count``. Pure.

    >>> split(400, [3, 1])
    [300, 100]
    >>> split(10, [1, 1, 1])
    [4, 3, 3]
    """
    total = sum(weights)
    if total <= 0:
        raise ValueError("weights must add up to more than zero")
    exact = [count * w / total for w in weights]
    shares = [math.floor(x) for x in exact]
    by_fraction = sorted(range(len(weights)), key=lambda i: (shares[i] - exact[i], i))
    for i in by_fraction[: count - sum(shares)]:
        shares[i] += 1
    return shares


def parse_templates(raw: Any) -> dict[str, Template]:
    """The accounts file's top-level ``templates`` (name → text); raises ``ConfigurationError``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigurationError(f"templates: expected an object of name -> text, got {type(raw).__name__}")
    out = {}
    for name, text in raw.items():
        try:
            # parse_template wants a digits-only code: a route template is named, not numbered
            parsed = parse_template("0", text)
        except TemplateSyntaxError as exc:
            raise ConfigurationError(f"templates.{name}: {exc}") from None
        out[str(name)] = Template(str(name), parsed.text, parsed.pieces, parsed.variables)
    return out


def parse_routes(raw: Any, known: set[tuple[str, str]]) -> dict[str, Route]:
    """The accounts file's ``routes``; ``known`` are the configured ``(provider, account)`` pairs.

    Raises ``ConfigurationError`` naming the route and entry.
    """
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigurationError(f"routes: expected an object of name -> accounts, got {type(raw).__name__}")
    return {str(name): _route(str(name), body, known) for name, body in raw.items()}


def _route(name: str, body: Any, known: set[tuple[str, str]]) -> Route:
    where = f"routes.{name}"
    cooldown: Any = DEFAULT_COOLDOWN_S
    if isinstance(body, dict):
        unknown = set(body) - {"accounts", "cooldown_s"}
        if unknown:
            raise ConfigurationError(f"{where}: unknown fields {sorted(unknown)} (known: accounts, cooldown_s)")
        cooldown = body.get("cooldown_s", DEFAULT_COOLDOWN_S)
        body = body.get("accounts")
    if isinstance(cooldown, bool) or not isinstance(cooldown, int | float) or not math.isfinite(cooldown) \
            or cooldown < 0:
        raise ConfigurationError(f"{where}.cooldown_s: expected a number of seconds >= 0, got {cooldown!r}")
    if not isinstance(body, list) or not body:
        raise ConfigurationError(f"{where}: expected a non-empty list of {{account, weight}}")
    entries = tuple(_entry(f"{where}[{i}]", item, known) for i, item in enumerate(body))
    keys = [e.key for e in entries]
    if len(set(keys)) != len(keys):
        raise ConfigurationError(f"{where}: an account is named twice")
    return Route(name, entries, float(cooldown))


def _entry(where: str, item: Any, known: set[tuple[str, str]]) -> RouteEntry:
    if not isinstance(item, dict):
        raise ConfigurationError(f"{where}: expected an object {{account, weight}}")
    account = item.get("account")
    provider, _, name = account.partition(":") if isinstance(account, str) else ("", "", "")
    if not provider or not name:
        raise ConfigurationError(f"{where}.account: expected \"provider:name\", got {account!r}")
    if (provider, name) not in known:
        names = ", ".join(f"{p}:{n}" for p, n in sorted(known)) or "none"
        raise ConfigurationError(f"{where}.account: no account {account} (configured: {names})")
    weight = item.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
        raise ConfigurationError(f"{where}.weight: expected a whole number >= 1, got {weight!r}")
    options = {k: v for k, v in item.items() if k not in _ENTRY_FIELDS}
    return RouteEntry(provider, name, weight, options)
