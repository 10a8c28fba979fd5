"""Suppression lists: phones that replied an unsubscribe keyword are not sent bulk jobs again.

A reply (uplink, MO) whose whole text is one of the account's unsubscribe keywords
(default :data:`DEFAULT_KEYWORDS`: ``TD``, ``T``, ``退订``, ``N``; compared after NFKC,
case folding and trimming, see :func:`normalise_reply`) puts its phone on the
account's suppression list, in the same atomic step that keeps the reply (and only
the first time a reply is seen: a push repeated by the vendor is not acted on twice).
A bulk job skips listed phones when it is stored: they are recorded ``suppressed``
(code ``suppressed``), counted, never sent. OTP jobs are exempt unless the account's
``"unsubscribe": {"otp": true}`` says otherwise.

Whose list: one per accounts-file entry (:func:`list_owner`). A channel sending
through another gateway's accounts (aiofish video and international SMS through an
aiofish entry) uses that entry's list: a 退订 to an account's SMS also stops its video
SMS, the same sender to the person who asked. Two entries are two lists, even for one
business (an operator adds a phone to both with ``sms-dispatch suppress add``).

Storage: one Redis SET per list (``P:sup:{provider}:{account}``, no TTL); a job is
checked against it when stored (:meth:`SuppressionStore.flags`: the list read whole when
it is no longer than the job, else a script asked per phone in pipelined batches), and
not at all while the list is empty.
Phones never appear in a log line here, only counts.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from dispatcher.errors import ConfigurationError, Problem, ValidationError
from dispatcher.keys import MO_MAX_ITEMS, UPLINK_SEEN_TTL_S, Keys
from dispatcher.phones import describe_bad, normalise_international, normalise_mainland
from dispatcher.providers import registry

#: The keywords a reply unsubscribes with unless the account names its own.
DEFAULT_KEYWORDS = ("TD", "T", "退订", "N")
#: The state and the code of a suppressed recipient's record.
SUPPRESSED = "suppressed"
#: Phones per :data:`CHECK_LISTED` call, and per pipelined round trip, when a job is checked against a long list.
CHECK_BATCH = 10_000
CHECK_PHONES_PER_CALL = 100_000
#: Phones per ``SADD`` / ``SREM`` of an add, remove or import.
WRITE_BATCH = 10_000

# Ends of a reply that carry no word: spaces, punctuation, symbols (emoji), controls.
_EDGE_CATEGORIES = ("P", "S", "Z", "C")
_SEPARATOR = re.compile(r"[\s\W_]+")


def _is_edge(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch)[0] in _EDGE_CATEGORIES


def normalise_reply(text: str) -> str:
    """A reply as keywords are compared: NFKC (full-width ``ＴＤ`` is ``TD``, the ideographic space a
    space), case-folded, without spaces, punctuation or symbols at either end. Pure."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    start, end = 0, len(folded)
    while start < end and _is_edge(folded[start]):
        start += 1
    while end > start and _is_edge(folded[end - 1]):
        end -= 1
    return folded[start:end]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """An account's unsubscribe rules (``"unsubscribe"`` in its accounts-file entry).

    ``keywords`` are kept normalised (:func:`normalise_reply`); none means replies never
    suppress (the list still works by hand). ``otp``: whether OTP jobs skip listed phones too.
    """

    keywords: frozenset[str] = field(default=frozenset(normalise_reply(k) for k in DEFAULT_KEYWORDS))
    otp: bool = False

    def matches(self, text: str) -> bool:
        """Whether a reply unsubscribes: its text is a keyword, or only keywords (``退订 TD``). Pure.

        Anything more (``TD 谢谢``, ``退订了吗``) is not: a reply that asks something else is
        left to a person, who can add the phone by hand.
        """
        reply = normalise_reply(text)
        if not reply or not self.keywords:
            return False
        if reply in self.keywords:
            return True
        words = [w for w in _SEPARATOR.split(reply) if w]
        return bool(words) and all(w in self.keywords for w in words)

    def applies_to(self, priority: str) -> bool:
        """Whether a job of this priority skips listed phones (OTPs only if ``otp``)."""
        return priority != "otp" or self.otp


def parse_unsubscribe(raw: Any, where: str) -> Unsubscribe:
    """The ``"unsubscribe": {"keywords": [...], "otp": false}`` of an accounts-file entry (absent: the
    defaults). Raises ``ConfigurationError`` naming ``where``."""
    if raw is None:
        return Unsubscribe()
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{where}.unsubscribe: expected an object {{keywords, otp}}, got {raw!r}")
    unknown = sorted(set(raw) - {"keywords", "otp"})
    if unknown:
        raise ConfigurationError(f"{where}.unsubscribe: unknown field(s) {', '.join(unknown)} (keywords, otp)")
    otp = raw.get("otp", False)
    if not isinstance(otp, bool):
        raise ConfigurationError(f"{where}.unsubscribe.otp: expected true or false, got {otp!r}")
    if "keywords" not in raw:
        return Unsubscribe(otp=otp)
    words = raw["keywords"]
    if not isinstance(words, list) or not all(isinstance(w, str) and normalise_reply(w) for w in words):
        raise ConfigurationError(f"{where}.unsubscribe.keywords: expected a list of words (e.g. [\"TD\", \"退订\"]), "
                                 f"got {words!r}")
    return Unsubscribe(frozenset(normalise_reply(w) for w in words), otp)


def list_owner(provider: str, account: str) -> tuple[str, str]:
    """The accounts-file entry whose list ``provider:account`` uses: a channel of another gateway's
    accounts (``Gateway.accounts_of``) shares that gateway's entry of the same name."""
    return registry.gateway(provider).accounts_of or provider, account


def list_phone(raw: object) -> str | None:
    """A phone as the lists keep it: a mainland mobile's 11 digits, else a number with its country
    code (digits only), else ``None``. Pure."""
    return normalise_mainland(raw) or normalise_international(raw)


def check_phones(phones: str | Iterable[Any]) -> list[str]:
    """``phones`` (one, or many) as the lists keep them, duplicates dropped. Pure.

    Raises ``ValidationError`` naming every ``phones[i]`` that is no number (masked).
    """
    given = [phones] if isinstance(phones, str) else list(phones)
    out: dict[str, None] = {}
    problems = []
    for i, raw in enumerate(given):
        phone = list_phone(raw)
        if phone is None:
            problems.append(Problem(f"phones[{i}]", f"{describe_bad(raw)} (expected a mainland mobile or a number "
                                                     "with its country code)"))
        else:
            out[phone] = None
    if problems:
        raise ValidationError(problems)
    return list(out)


class SuppressionStore:
    """The suppression lists in Redis: one SET per list (see the module doc). Raises ``redis.RedisError``."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.r = client
        self.keys = keys

    def key(self, provider: str, account: str) -> str:
        """The SET holding ``provider:account``'s list (its :func:`list_owner`'s)."""
        return self.keys.suppressed(*list_owner(provider, account))

    def add(self, provider: str, account: str, phones: Sequence[str]) -> int:
        """Put phones (as :func:`list_phone` gives them) on the list; return how many were not on it."""
        return self._write("sadd", self.key(provider, account), phones)

    def remove(self, provider: str, account: str, phones: Sequence[str]) -> int:
        """Take phones off the list; return how many were on it."""
        return self._write("srem", self.key(provider, account), phones)

    def _write(self, command: str, key: str, phones: Sequence[str]) -> int:
        pipe = self.r.pipeline(transaction=False)
        for start in range(0, len(phones), WRITE_BATCH):
            getattr(pipe, command)(key, *phones[start : start + WRITE_BATCH])
        return sum(int(n) for n in pipe.execute()) if phones else 0

    def contains(self, provider: str, account: str, phone: str) -> bool:
        """Whether ``phone`` is on the list."""
        return bool(self.r.sismember(self.key(provider, account), phone))

    def count(self, provider: str, account: str) -> int:
        """How many phones the list holds."""
        return int(self.r.scard(self.key(provider, account)))

    def members(self, provider: str, account: str) -> Iterator[str]:
        """Every phone on the list, in no particular order (``SSCAN``: Redis is never held for long)."""
        for raw in self.r.sscan_iter(self.key(provider, account), count=1000):
            yield raw.decode() if isinstance(raw, bytes) else str(raw)

    def flags(self, provider: str, account: str, phones: Sequence[str]) -> Sequence[int] | None:
        """For each phone 1 if it is on the list, else 0; ``None`` when the list is empty (one ``SCARD``).

        A list no longer than the job is read whole (``SSCAN``) and the phones are looked up
        here: for a 1M job and 100k listed, ~0.4 s and little Redis time. A longer list is asked
        per phone by :data:`CHECK_LISTED` in calls of :data:`CHECK_BATCH` phones (~8 ms of Redis
        each), :data:`CHECK_PHONES_PER_CALL` a round trip. (``SMISMEMBER`` was measured slower:
        the client parses one reply element per phone, ~2 µs each; see BENCHMARKS.md.)
        """
        key = self.key(provider, account)
        if not phones:
            return None
        listed = int(self.r.scard(key))
        if not listed:
            return None
        if listed <= len(phones):
            members = {raw.decode() for raw in self.r.sscan_iter(key, count=1000)}
            return bytearray(p in members for p in phones)
        return self.flags_by_script(key, phones)

    def flags_by_script(self, key: str, phones: Sequence[str]) -> bytearray:
        """:meth:`flags` asked of Redis per phone (:data:`CHECK_LISTED`), whatever the list's length."""
        check = self.r.register_script(CHECK_LISTED)
        out = bytearray(len(phones))
        for call in range(0, len(phones), CHECK_PHONES_PER_CALL):
            pipe = self.r.pipeline(transaction=False)
            starts = range(call, min(len(phones), call + CHECK_PHONES_PER_CALL), CHECK_BATCH)
            for start in starts:
                check(keys=[key], args=[",".join(phones[start : start + CHECK_BATCH])], client=pipe)
            for start, hits in zip(starts, pipe.execute(), strict=True):
                for i in hits:
                    out[start + int(i)] = 1
        return out


# Which of a batch of phones (comma-joined) are on the list: their 0-based indexes. One call holds
# Redis ~0.8 µs a phone; the reply names only the hits, so the client parses little.
# KEYS: the list   ARGV: "phone,phone,…"
CHECK_LISTED = """
local hits, i = {}, 0
for phone in string.gmatch(ARGV[1], '[^,]+') do
  if redis.call('SISMEMBER', KEYS[1], phone) == 1 then hits[#hits + 1] = i end
  i = i + 1
end
return hits
"""


class MemorySuppressions:
    """The same lists in memory, for :class:`dispatcher.testing.FakeDispatcher`. Not thread-safe by itself."""

    def __init__(self) -> None:
        self.lists: dict[tuple[str, str], set[str]] = {}

    def _list(self, provider: str, account: str) -> set[str]:
        return self.lists.setdefault(list_owner(provider, account), set())

    def add(self, provider: str, account: str, phones: Sequence[str]) -> int:
        """As :meth:`SuppressionStore.add`."""
        listed = self._list(provider, account)
        before = len(listed)
        listed.update(phones)
        return len(listed) - before

    def remove(self, provider: str, account: str, phones: Sequence[str]) -> int:
        """As :meth:`SuppressionStore.remove`."""
        listed = self._list(provider, account)
        before = len(listed)
        listed.difference_update(phones)
        return before - len(listed)

    def contains(self, provider: str, account: str, phone: str) -> bool:
        """As :meth:`SuppressionStore.contains`."""
        return phone in self._list(provider, account)

    def count(self, provider: str, account: str) -> int:
        """As :meth:`SuppressionStore.count`."""
        return len(self._list(provider, account))

    def members(self, provider: str, account: str) -> Iterator[str]:
        """As :meth:`SuppressionStore.members` (a copy: the list may change while it is read)."""
        return iter(sorted(self._list(provider, account)))

    def flags(self, provider: str, account: str, phones: Sequence[str]) -> Sequence[int] | None:
        """As :meth:`SuppressionStore.flags`."""
        listed = self._list(provider, account)
        return [int(p in listed) for p in phones] if listed and phones else None


# -- uplinks ---------------------------------------------------------------------------------------------

# Keep each uplink not seen before and, if it unsubscribes, list its phone: one atomic step,
# so a reply is never kept without its suppression (or the reverse), and a push repeated by
# the vendor (same fingerprint) changes nothing.
# KEYS: the account's MO list, its suppression SET, then one seen-key per uplink
# ARGV: MO list cap, seen TTL (s), then per uplink: its JSON, the phone to list or ''
# Returns {kept, phones newly listed}
KEEP_UPLINKS = """
local kept, listed = 0, 0
for i = 3, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[2]) then
    local at = 2 * (i - 2) + 1
    redis.call('LPUSH', KEYS[1], ARGV[at])
    kept = kept + 1
    if ARGV[at + 1] ~= '' then listed = listed + redis.call('SADD', KEYS[2], ARGV[at + 1]) end
  end
end
if kept > 0 then redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[1]) - 1) end
return {kept, listed}
"""


def uplink_fingerprint(phone: str, content: str, at_ms: int | None, message_id: str | None) -> str:
    """What tells one reply from another: its phone, text and time (the vendor's message id when it
    gives no time). A repeated push of a reply has the same. Pure."""
    mark = str(at_ms) if at_ms is not None else f"id:{message_id or ''}"
    return hashlib.sha256("\x1f".join((phone, content, mark)).encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class KeptUplinks:
    """What :func:`keep_uplinks` did: replies kept (not seen before), phones newly put on the list."""

    kept: int = 0
    unsubscribed: int = 0


def keep_uplinks(client: redis.Redis, keys: Keys, provider: str, account: str,
                 items: Sequence[tuple[dict[str, Any], int | None, str | None]],
                 unsubscribe: Unsubscribe | None) -> KeptUplinks:
    """Keep replies ``(record, at_ms, message_id)`` on the account's MO list and list the phones of
    those that unsubscribe (``unsubscribe``: the account's rules; ``None``: nobody is listed), once
    per reply however often it is pushed. One script call. Raises ``redis.RedisError``."""
    if not items:
        return KeptUplinks()
    script_keys = [keys.uplinks(provider, account), keys.suppressed(*list_owner(provider, account))]
    args: list[Any] = [MO_MAX_ITEMS, UPLINK_SEEN_TTL_S]
    for record, at_ms, message_id in items:
        phone, content = str(record.get("phone") or ""), str(record.get("content") or "")
        script_keys.append(keys.uplink_seen(provider, account, uplink_fingerprint(phone, content, at_ms, message_id)))
        listed = list_phone(phone) if unsubscribe is not None and unsubscribe.matches(content) else None
        args += [json.dumps(record, ensure_ascii=False), listed or ""]
    kept, listed_now = client.register_script(KEEP_UPLINKS)(keys=script_keys, args=args)
    return KeptUplinks(int(kept), int(listed_now))
