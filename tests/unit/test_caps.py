"""Per-phone frequency caps as configured: what an accounts file may say, and what a claim checks. Pure.

An operator writes ``"caps": {"bulk": [[1, 60], …], "otp": […]}`` on an entry; a mistake stops
the process naming the entry and the pair, never a cap silently dropped or misread.
"""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.caps import CAPPED, Cap, CapRule, Caps, parse_caps, rule_for
from dispatcher.config.accounts import parse_accounts
from dispatcher.errors import ConfigurationError
from dispatcher.ledger import Claim
from dispatcher.local.demo import accounts_doc
from dispatcher.providers import registry

ISSUE_EXAMPLE = {"bulk": [[1, 60], [3, 3600], [5, 86400]], "otp": [[5, 3600]]}


def _doc_with_caps(caps: Any, gateway: str = "opass") -> dict[str, Any]:
    doc = accounts_doc("http://127.0.0.1:1")
    doc[gateway][0]["caps"] = caps
    return doc


def test_the_issues_example_reads_as_caps_per_priority() -> None:
    """The pairs become caps of their priority, in order; a priority not named is uncapped."""
    caps = parse_caps(ISSUE_EXAMPLE, "opass[0]")
    assert caps.of("bulk") == (Cap(1, 60), Cap(3, 3600), Cap(5, 86400))
    assert caps.of("otp") == (Cap(5, 3600),)
    assert parse_caps({"bulk": [[2, 60]]}, "opass[0]").of("otp") == ()


def test_an_accounts_file_entry_carries_its_caps() -> None:
    """parse_accounts keeps an entry's caps on its AccountConfig, and the claim's rule comes from them."""
    accounts = parse_accounts(_doc_with_caps(ISSUE_EXAMPLE), env={})
    account = next((a for a in accounts if a.caps.of("bulk")), None)
    assert account is not None, "no entry kept its caps"
    rule = accounts.cap_rule(account.provider, account.name, "bulk")
    assert rule is not None and rule.caps == (Cap(1, 60), Cap(3, 3600), Cap(5, 86400))
    assert (rule.epoch_s, rule.keep) == (86400, 5)  # counts kept in day slices, five send times a phone
    assert accounts.cap_rule(account.provider, "no-such-account", "bulk") is None


@pytest.mark.parametrize(("caps", "message"), [
    ([[1, 60]], "opass[0].caps: expected an object by priority (otp, bulk), got list"),
    ({"promo": [[1, 60]]}, "opass[0].caps.promo: not a job priority (one of otp, bulk)"),
    ({"bulk": [1, 60]}, "opass[0].caps.bulk[0]: expected [count, window_s] (whole numbers), got 1"),
    ({"bulk": [[1, 60], [3]]}, "opass[0].caps.bulk[1]: expected [count, window_s] (whole numbers), got [3]"),
    ({"bulk": [[1, 60.5]]}, "opass[0].caps.bulk[0]: expected [count, window_s] (whole numbers), got [1, 60.5]"),
    ({"bulk": [["1", 60]]}, "opass[0].caps.bulk[0]: expected [count, window_s] (whole numbers), got ['1', 60]"),
    ({"bulk": [[True, 60]]}, "opass[0].caps.bulk[0]: expected [count, window_s] (whole numbers), got [True, 60]"),
    ({"bulk": [[0, 60]]}, "opass[0].caps.bulk[0]: count must be 1 to 1000, got 0"),
    ({"bulk": [[1, 0]]}, "opass[0].caps.bulk[0]: window_s must be 1 to 31622400 seconds, got 0"),
    ({"otp": "5/3600"}, "opass[0].caps.otp: expected a list of [count, window_s] pairs"),
    ({"bulk": [[1, 60], [2, 60]]}, "opass[0].caps.bulk: two caps for one window ([60, 60]); keep the tighter one"),
])
def test_a_malformed_cap_stops_the_process_naming_the_entry(caps: Any, message: str) -> None:
    """Each mistake is a ConfigurationError that says which entry, which pair and what is wrong."""
    with pytest.raises(ConfigurationError) as err:
        parse_accounts(_doc_with_caps(caps), env={})
    assert str(err.value) == message


def test_a_channel_on_anothers_accounts_counts_in_its_entrys_scope() -> None:
    """Video or international SMS through an aiofish entry share the entry's counts with its SMS: one
    scope per accounts-file entry, whichever channel claims."""
    channels = [g for g in registry.gateways() if g.accounts_of is not None]
    assert channels, "the registry has channels on another gateway's accounts"
    caps = Caps({"bulk": (Cap(1, 60),)})
    for channel in channels:
        rule = rule_for(caps, channel.name, "demo", "bulk")
        assert rule is not None and rule.scope == f"{channel.accounts_of}:demo"
    owner = channels[0].accounts_of
    assert owner is not None
    accounts = parse_accounts(_doc_with_caps({"bulk": [[1, 60]]}, gateway=owner), env={})
    rules = {p: accounts.cap_rule(p, "demo", "bulk") for p in [owner, *(c.name for c in channels)]}
    assert len({r.scope for r in rules.values() if r is not None}) == 1
    assert all(r is not None for r in rules.values())


def test_the_script_arguments_name_each_cap_and_its_record_text() -> None:
    """What the claim script is given: key head, slice, buckets, times kept, then per cap its
    count, window and the record entry a capped phone gets (code 'capped', the cap as its text)."""
    rule = CapRule("opass:demo", "otp", (Cap(1, 60), Cap(5, 3600)))
    args = rule.script_args("smsd:cap:opass:demo:otp:3600:")
    assert args[:5] == ["smsd:cap:opass:demo:otp:3600:", 3600, 16_384, 5, 2]
    assert args[5:] == [1, 60, f"{CAPPED}\totp cap 1 per 60 s", 5, 3600, f"{CAPPED}\totp cap 5 per 3600 s"]


def test_a_claim_sends_only_the_phones_no_cap_holds_back() -> None:
    """sendable() leaves out the capped indexes and keeps each payload with its phone."""
    phones = ("13800000000", "13800000001", "13800000002", "13800000003")
    payloads = [["a"], ["b"], ["c"], ["d"]]
    claim = Claim("ok", attempt=1, phones=phones, payloads=payloads, capped=(1, 3))
    assert claim.sendable() == (("13800000000", "13800000002"), [["a"], ["c"]])
    plain = Claim("ok", attempt=1, phones=phones, payloads=None, capped=(0,))
    assert plain.sendable() == (phones[1:], None)
    assert Claim("ok", attempt=1, phones=phones).sendable() == (phones, None)
