"""Per-phone frequency caps: how often one account may reach one phone, per job priority.

An accounts-file entry may set ``"caps": {"bulk": [[1, 60], [3, 3600], [5, 86400]],
"otp": [[5, 3600]]}``: each pair is ``[count, window_s]``, "at most ``count`` sends to a
phone in any ``window_s`` seconds". A job's priority picks its list; OTP and bulk sends are
counted apart, so a campaign never uses up a phone's OTPs and the other way round. An
entry's channels (video and international SMS through an aiofish entry) share its caps and
its counts: the caps protect the person, who does not care which channel reached them.

They are enforced in the ledger's claim (:data:`dispatcher.ledger_scripts.CLAIM`), atomically
across every worker and host: a phone over a cap is not sent and ends ``rejected`` with code
:data:`CAPPED` (the rest of its chunk goes out). Semantics, kept exact at one-second
resolution: the claim keeps each phone's last ``largest count`` send times (whole epoch
seconds) and counts a phone over a cap when ``count`` of them are at most ``window_s``
seconds old, so no ``window_s``-second span ever holds more than ``count`` sends, and a
send is at most one second later than an exact timer would allow. Pure module: parsing,
validation and the script arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dispatcher.errors import ConfigurationError
from dispatcher.providers import registry

#: The record code of a recipient a cap kept from being sent.
CAPPED = "capped"
#: Buckets each epoch's counts are spread over. Redis keeps a hash of up to 128 short fields
#: as a compact list (``hash-max-ziplist-entries``), ~16 bytes a phone; 16,384 buckets keep
#: 2M phones an epoch that compactly (past that a bucket becomes a hash table, ~4x larger).
CAP_BUCKETS = 16_384
#: A count above this stores more than 64 bytes for a phone sent that often (4 bytes a send),
#: which turns that phone's bucket into a hash table; refused beyond :data:`MAX_COUNT`.
COMPACT_COUNT = 16
MAX_COUNT = 1000
#: The longest window: the counts of a class live two of its largest windows.
MAX_WINDOW_S = 366 * 86_400


@dataclass(frozen=True, slots=True)
class Cap:
    """At most ``count`` sends to one phone in any ``window_s`` seconds."""

    count: int
    window_s: int

    def describe(self, priority: str) -> str:
        """The text a capped recipient's record carries, e.g. ``bulk cap 1 per 60 s``."""
        return f"{priority} cap {self.count} per {self.window_s} s"


@dataclass(frozen=True, slots=True)
class Caps:
    """An entry's caps by job priority (``otp`` / ``bulk``); a priority it does not name is uncapped."""

    by_priority: Mapping[str, tuple[Cap, ...]] = field(default_factory=dict)

    def of(self, priority: str) -> tuple[Cap, ...]:
        """The caps of jobs of ``priority`` (empty: none)."""
        return self.by_priority.get(priority, ())


@dataclass(frozen=True, slots=True)
class CapRule:
    """What one claim checks: the caps of one priority of one accounts-file entry (``scope``:
    ``provider:name`` of the entry, whichever of its channels sends)."""

    scope: str
    priority: str
    caps: tuple[Cap, ...]

    @property
    def epoch_s(self) -> int:
        """Length of the time slices the counts are kept in: the largest window."""
        return max(c.window_s for c in self.caps)

    @property
    def keep(self) -> int:
        """Send times kept per phone: the largest count."""
        return max(c.count for c in self.caps)

    def script_args(self, head: str) -> list[Any]:
        """The claim script's cap arguments: key head, epoch length, buckets, times kept, number of
        caps, then per cap its count, window and record entry (``code<TAB>text``)."""
        args: list[Any] = [head, self.epoch_s, CAP_BUCKETS, self.keep, len(self.caps)]
        for cap in self.caps:
            args += [cap.count, cap.window_s, f"{CAPPED}\t{cap.describe(self.priority)}"]
        return args


def rule_for(caps: Caps, provider: str, account: str, priority: str) -> CapRule | None:
    """The rule a chunk of ``provider:account`` at ``priority`` is claimed under, or ``None`` (uncapped).

    A channel that sends through another gateway's accounts (``Gateway.accounts_of``) counts in
    its entry's scope, so an aiofish entry's SMS, video and international sends share counts.
    """
    chosen = caps.of(priority)
    if not chosen:
        return None
    entry = registry.gateway(provider).accounts_of or provider
    return CapRule(f"{entry}:{account}", priority, chosen)


def parse_caps(raw: Any, where: str) -> Caps:
    """An entry's ``caps`` value; raises ``ConfigurationError`` naming ``where.caps…`` and what is wrong."""
    from dispatcher.jobs import PRIORITIES  # jobs imports the ledger, which imports this module

    if raw is None:
        return Caps()
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{where}.caps: expected an object by priority ({', '.join(PRIORITIES)}), "
                                 f"got {type(raw).__name__}")
    out: dict[str, tuple[Cap, ...]] = {}
    for priority, items in raw.items():
        at = f"{where}.caps.{priority}"
        if priority not in PRIORITIES:
            raise ConfigurationError(f"{at}: not a job priority (one of {', '.join(PRIORITIES)})")
        if not isinstance(items, list):
            raise ConfigurationError(f"{at}: expected a list of [count, window_s] pairs")
        caps = tuple(_cap(item, f"{at}[{i}]") for i, item in enumerate(items))
        windows = [c.window_s for c in caps]
        if len(set(windows)) != len(windows):
            raise ConfigurationError(f"{at}: two caps for one window ({sorted(windows)}); keep the tighter one")
        if caps:
            out[priority] = caps
    return Caps(out)


def _cap(item: Any, at: str) -> Cap:
    if not isinstance(item, list) or len(item) != 2 or not all(_whole(v) for v in item):
        raise ConfigurationError(f"{at}: expected [count, window_s] (whole numbers), got {item!r}")
    count, window_s = int(item[0]), int(item[1])
    if not 1 <= count <= MAX_COUNT:
        raise ConfigurationError(f"{at}: count must be 1 to {MAX_COUNT}, got {count}")
    if not 1 <= window_s <= MAX_WINDOW_S:
        raise ConfigurationError(f"{at}: window_s must be 1 to {MAX_WINDOW_S} seconds, got {window_s}")
    return Cap(count, window_s)


def _whole(value: Any) -> bool:
    """A whole number (``60`` or ``60.0``), not a bool."""
    return not isinstance(value, bool) and isinstance(value, int | float) and float(value).is_integer()
