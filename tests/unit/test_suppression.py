"""Unsubscribe keywords, the accounts file's ``unsubscribe`` rules, whose list a channel uses, and the
FakeDispatcher an app tests its unsubscribe handling with. Pure."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from dispatcher.config.accounts import parse_accounts
from dispatcher.errors import ConfigurationError, ValidationError
from dispatcher.local.demo import accounts_doc
from dispatcher.providers.opass.jobs import template_job
from dispatcher.suppression import (
    Unsubscribe,
    check_phones,
    list_owner,
    normalise_reply,
    parse_unsubscribe,
    uplink_fingerprint,
)
from dispatcher.testing import FakeDispatcher

DEFAULT = Unsubscribe()
P1, P2, P3 = "13800000001", "13800000002", "13800000003"
OTP = "1000000000000000002"
CONTENT = "【沙箱】会员日：全场八折。回复TD退订"


# -- keywords -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reply", [
    "TD", "td", "Td", "T", "t", "N", "n", "退订",
    "ＴＤ",  # full width: NFKC makes it TD
    "ｔｄ", "Ｎ",
    "  TD  ", "\tTD\n", "\u3000退订\u3000",  # ideographic spaces are spaces too
    "TD.", "退订。", "【退订】", "TD!", "退订～", "TD👍",  # what people type around the word
    "退订 TD", "TD,退订", "t T",  # only keywords
])
def test_a_reply_of_a_default_keyword_unsubscribes(reply: str) -> None:
    """The issue's defaults, compared case- and width-insensitively, trimmed of spaces and punctuation."""
    assert DEFAULT.matches(reply)


@pytest.mark.parametrize("reply", [
    "", "   ", "。", "TD 谢谢", "退订了吗", "不要退订", "NO", "Tdd", "TD1", "好的", "1", "T D X", "回复TD退订",
])
def test_a_reply_that_says_more_than_a_keyword_does_not_unsubscribe(reply: str) -> None:
    """A question or a sentence holding a keyword is left to a person: only keywords alone count."""
    assert not DEFAULT.matches(reply)


def test_an_account_names_its_own_keywords_written_in_any_width_or_case() -> None:
    rules = parse_unsubscribe({"keywords": ["ＳＴＯＰ", "取消"]}, "opass[0]")
    assert rules.matches("stop") and rules.matches(" 取消 ") and not rules.matches("TD")
    assert rules.otp is False


def test_no_keywords_means_no_reply_unsubscribes() -> None:
    assert not parse_unsubscribe({"keywords": []}, "opass[0]").matches("TD")


def test_normalise_reply_folds_width_and_case_and_strips_the_ends_only() -> None:
    assert normalise_reply(" ＴＤ，谢谢！ ") == "td,谢谢"


@pytest.mark.parametrize(("raw", "message"), [
    ("TD", "opass[0].unsubscribe: expected an object {keywords, otp}"),
    ({"keyword": ["TD"]}, "opass[0].unsubscribe: unknown field(s) keyword (keywords, otp)"),
    ({"otp": "yes"}, "opass[0].unsubscribe.otp: expected true or false"),
    ({"keywords": "TD"}, "opass[0].unsubscribe.keywords: expected a list of words"),
    ({"keywords": ["TD", " 。"]}, "opass[0].unsubscribe.keywords: expected a list of words"),
])
def test_bad_unsubscribe_rules_are_refused_naming_the_field(raw: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        parse_unsubscribe(raw, "opass[0]")
    assert str(err.value).startswith(message)


def test_the_accounts_file_rules_reach_the_entry_and_its_channels() -> None:
    """``"unsubscribe"`` on an aiofish entry is its video and international SMS channels' rules too, and
    they share its list; an entry without it has the defaults."""
    doc = accounts_doc("http://127.0.0.1:9")
    doc["aiofish"][0]["unsubscribe"] = {"keywords": ["取消"], "otp": True}
    accounts = parse_accounts(doc)
    for provider in ("aiofish", "aiofish-vsms", "aiofish-isms"):
        assert accounts.get(provider, "demo").unsubscribe == Unsubscribe(frozenset({"取消"}), True)
        assert list_owner(provider, "demo") == ("aiofish", "demo")
    assert accounts.get("opass", "demo").unsubscribe == DEFAULT
    assert list_owner("opass", "demo") == ("opass", "demo")


def test_bad_rules_in_the_accounts_file_name_the_entry() -> None:
    doc = accounts_doc("http://127.0.0.1:9")
    doc["opass"][0]["unsubscribe"] = {"otp": 1}
    with pytest.raises(ConfigurationError, match=r"^opass\[0\]\.unsubscribe\.otp"):
        parse_accounts(doc)


# -- phones, fingerprints, the job split ------------------------------------------------------------------


def test_phones_are_kept_in_one_form_and_a_bad_one_is_named_masked() -> None:
    assert check_phones(["+8613800000001", P1, "0085291234567"]) == [P1, "85291234567"]
    assert check_phones(P2) == [P2]
    with pytest.raises(ValidationError) as err:
        check_phones([P1, "1380000000x", ""])
    assert [str(p) for p in err.value.problems] == [
        "phones[1]: '138****000x' is not a valid number (expected a mainland mobile or a number with its country code)",
        "phones[2]: is empty (expected a mainland mobile or a number with its country code)"]


def test_a_repeated_reply_has_the_same_fingerprint_and_another_reply_another() -> None:
    first = uplink_fingerprint(P1, "TD", 1_700_000_000_000, None)
    assert first == uplink_fingerprint(P1, "TD", 1_700_000_000_000, None)
    others = {uplink_fingerprint(P1, "TD", 1_700_000_000_001, None),
              uplink_fingerprint(P2, "TD", 1_700_000_000_000, None),
              uplink_fingerprint(P1, "N", 1_700_000_000_000, None),
              uplink_fingerprint(P1, "TD", None, "m1"), uplink_fingerprint(P1, "TD", None, "m2")}
    assert first not in others and len(others) == 5


def test_the_job_without_flagged_recipients_keeps_the_order_and_each_ones_values() -> None:
    spec = template_job("demo", template_code=OTP, recipients=[(P1, ["a"]), (P2, ["b"]), (P3, ["c"])])
    left = spec.without([0, 1, 0])
    assert (left.phones, left.payloads, left.suppressed) == ([P1, P3], [["a"], ["c"]], [P2])


# -- FakeDispatcher -------------------------------------------------------------------------------------


@pytest.fixture
def fake() -> FakeDispatcher:
    clock = itertools.count(1_700_000_000_000, 1000)
    return FakeDispatcher(clock_ms=lambda: next(clock))


def test_the_fake_lists_a_phone_that_replies_tuiding_and_its_next_campaign_skips_it(fake: FakeDispatcher) -> None:
    """As production: the reply lists the phone, a bulk job records it ``suppressed`` (not in the
    outbox's phones), counts it, and a lookup says why it got nothing."""
    fake.receive("aiofish", "shop", P2, "退订")
    assert fake.is_suppressed("aiofish", "shop", P2) and fake.is_suppressed("aiofish-vsms", "shop", P2)
    job = fake.send_content("shop", content=CONTENT, phones=[P1, P2, P3])
    assert (job.total, job.suppressed) == (3, 1)
    assert (fake.outbox[0].phones, fake.outbox[0].suppressed) == ([P1, P3], [P2])
    status = fake.status(job.job_id)
    assert (status.total, status.counts["pending"], status.counts["suppressed"]) == (3, 2, 1)
    [record] = fake.lookup(phone=P2)
    assert (record.state, record.code) == ("suppressed", "suppressed")


def test_the_fake_sends_an_otp_to_a_listed_phone_and_sends_again_once_unlisted(fake: FakeDispatcher) -> None:
    assert fake.suppress("opass", "shop", [P1, "+86" + P1]) == 1
    otp = fake.send_template("shop", template_code=OTP, phones=[P1], params=["1234"], priority="otp")
    assert otp.suppressed == 0 and fake.outbox[-1].phones == [P1]
    assert fake.unsuppress("opass", "shop", P1) == 1
    bulk = fake.send_template("shop", template_code=OTP, phones=[P1], params=["1234"])
    assert bulk.suppressed == 0 and list(fake.suppression_list("opass", "shop")) == []


def test_a_reply_that_is_no_keyword_lists_nobody(fake: FakeDispatcher) -> None:
    fake.receive("opass", "shop", P1, "收到，谢谢")
    assert fake.suppression_count("opass", "shop") == 0


def test_the_fake_refuses_a_list_of_an_account_the_app_does_not_have() -> None:
    fake = FakeDispatcher(parse_accounts(accounts_doc("http://127.0.0.1:9")))
    with pytest.raises(ConfigurationError, match="no account opass:nope"):
        fake.suppress("opass", "nope", P1)
