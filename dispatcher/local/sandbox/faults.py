"""Fault rules and the pure decision of which one hits a request.

Kinds: ``refuse`` (listener closed: handled by the server, never per request),
``reset`` (TCP RST before processing), ``drop`` (process, then RST instead of
answering), ``slow`` (process, then wait ``delay_ms``), ``code`` (answer a vendor
code, accept nothing). ``path`` is a prefix filter, ``count`` caps injections,
``rate`` is the probability per matching request (rules are tried in order; the
first that fires wins). A ``code`` rule only matches paths of the gateway family
that owns the code.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from dispatcher.providers.aiofish.codes import AIOFISH_CODES, AIOFISH_SUBSTAT_HTTP_CODE
from dispatcher.providers.opass.codes import OPASS_CODES

KINDS = ("refuse", "reset", "drop", "slow", "code")
OPASS, AIOFISH, VSMS = "opass", "aiofish", "vsms"
_NUMERIC_AIOFISH = {str(v): k for k, v in AIOFISH_SUBSTAT_HTTP_CODE.items()}


def path_family(path: str) -> str | None:
    """Which gateway a path belongs to: ``opass``, ``aiofish`` (SMS), ``vsms`` (vsms+isms)."""
    if path.startswith(("/rest/vsms/", "/rest/isms/")):
        return VSMS
    if path.startswith("/rest/sms/"):
        return AIOFISH
    if path.startswith(("/message/", "/sms/", "/health/")):
        return OPASS
    return None


def code_families(code: str) -> frozenset[str]:
    """The gateway families that can answer ``code`` (may be several, e.g. ``200``)."""
    families = set()
    if code in OPASS_CODES:
        families.add(OPASS)
    if code in AIOFISH_SUBSTAT_HTTP_CODE or code in _NUMERIC_AIOFISH:
        families.add(AIOFISH)
    if code in AIOFISH_CODES and not code.startswith(("p:", "r:")) and not code.lstrip("-").isdigit():
        families.add(VSMS)
    return frozenset(families)


def aiofish_substat(code: str) -> str:
    """The ``p:0xx`` subStat for an aiofish code given as subStat or numeric code."""
    return code if code in AIOFISH_SUBSTAT_HTTP_CODE else _NUMERIC_AIOFISH[code]


@dataclass(slots=True)
class FaultRule:
    """One fault rule as configured, plus how often it fired."""

    kind: str
    rate: float = 1.0
    count: int | None = None
    path: str | None = None
    code: str | None = None
    delay_ms: int = 2000
    duration_ms: int | None = None
    injected: int = 0
    finished: bool = False  # a refuse rule whose duration is over

    @property
    def exhausted(self) -> bool:
        """Whether the rule has fired ``count`` times (or its refuse period ended)."""
        return self.finished or (self.count is not None and self.injected >= self.count)

    def to_json(self) -> dict[str, Any]:
        """The rule as the control API shows it."""
        return asdict(self)


def parse_rule(raw: Mapping[str, Any]) -> FaultRule:
    """Validate one rule dict.

    Raises ``ValueError`` for an unknown kind or key, a rate outside 0..1, a
    negative count/delay, or a ``code`` rule whose code no gateway answers.
    """
    if not isinstance(raw, Mapping):
        raise ValueError("a fault rule must be an object")
    unknown = set(raw) - {"kind", "rate", "count", "path", "code", "delay_ms", "duration_ms"}
    if unknown:
        raise ValueError(f"unknown fault rule keys: {sorted(unknown)}")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ValueError(f"fault kind must be one of {KINDS}")
    rule = FaultRule(
        kind=kind,
        rate=float(raw.get("rate", 1.0)),
        count=None if raw.get("count") is None else int(raw["count"]),
        path=raw.get("path"),
        code=None if raw.get("code") is None else str(raw["code"]),
        delay_ms=int(raw.get("delay_ms", 2000)),
        duration_ms=None if raw.get("duration_ms") is None else int(raw["duration_ms"]),
    )
    if not 0.0 <= rule.rate <= 1.0:
        raise ValueError("rate must be within 0..1")
    if (rule.count is not None and rule.count < 0) or rule.delay_ms < 0 or (rule.duration_ms or 0) < 0:
        raise ValueError("count, delay_ms and duration_ms must be >= 0")
    if kind == "code" and (rule.code is None or not code_families(rule.code)):
        raise ValueError(f"code {rule.code!r} is not an opass, aiofish or vsms/isms code")
    if rule.path is not None and not isinstance(rule.path, str):
        raise ValueError("path must be a string prefix or null")
    return rule


class FaultEngine:
    """The active rules and the seeded RNG that decides probabilistic ones."""

    def __init__(self, seed: int) -> None:
        self.rules: list[FaultRule] = []
        self.rng = random.Random(seed)

    def replace(self, rules: list[FaultRule]) -> None:
        """Replace all rules."""
        self.rules = rules

    def refuse_rule(self) -> FaultRule | None:
        """The first refuse rule that is still in force."""
        for rule in self.rules:
            if rule.kind == "refuse" and not rule.finished:
                return rule
        return None

    def decide(self, path: str) -> FaultRule | None:
        """The per-request rule that fires for ``path`` (its count is consumed), or ``None``."""
        for rule in self.rules:
            if rule.kind == "refuse" or rule.exhausted:
                continue
            if rule.path is not None and not path.startswith(rule.path):
                continue
            if rule.kind == "code":
                family = path_family(path)
                if family is None or family not in code_families(rule.code or ""):
                    continue
            # rate 1.0 never draws, so deterministic rules leave the RNG sequence alone.
            if rule.rate < 1.0 and self.rng.random() >= rule.rate:
                continue
            rule.injected += 1
            return rule
        return None
