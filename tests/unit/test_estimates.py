"""The pure estimate and the balance guard's decision, through FakeDispatcher (no Redis, no gateway). Pure."""

from __future__ import annotations

import pytest

from dispatcher.config.accounts import parse_accounts
from dispatcher.errors import InsufficientBalanceError, ValidationError
from dispatcher.estimates import Estimate
from dispatcher.local.demo import accounts_doc
from dispatcher.testing import FakeDispatcher

#: 71 characters with its signature: two billable messages; 70 fit in one.
TWO_PART = "【沙箱】" + "会" * 67
ONE_PART = "【沙箱】" + "会" * 66
PHONES = ["13800000001", "13800000002", "13800000003"]


def test_shared_content_is_billed_its_segments_for_every_distinct_recipient() -> None:
    """Three phones (one given twice) of a two-part text: 3 recipients, 6 segments, exact."""
    est = FakeDispatcher().estimate("content", "demo", content=TWO_PART, phones=[*PHONES, PHONES[0]])
    assert (est.recipients, est.segments, est.segments_exact) == (3, 6, True)


def test_per_phone_content_is_billed_each_recipients_own_text() -> None:
    est = FakeDispatcher().estimate("content", "demo", recipients=[(PHONES[0], TWO_PART), (PHONES[1], ONE_PART),
                                                                   (PHONES[2], TWO_PART)])
    assert (est.recipients, est.segments) == (3, 5)


def test_an_undeclared_opass_template_counts_one_message_a_recipient_marked_inexact() -> None:
    est = FakeDispatcher().estimate("template", "demo", template_code="1000000000000000002", phones=PHONES,
                                    params=["493817"])
    assert (est.provider, est.recipients, est.segments, est.segments_exact) == ("opass", 3, 3, False)


def test_a_declared_opass_template_is_rendered_per_recipient_and_billed_its_segments() -> None:
    """A long declared template takes 2 messages for a long value and 1 for a short one; the signature
    opass adds is not known, so the count stays marked inexact."""
    doc = accounts_doc("http://127.0.0.1:9")
    doc["opass"][0]["templates"] = {"1000000000000000009": "尊敬的客户" + "会" * 55 + "{名字,20}"}
    fake = FakeDispatcher(parse_accounts(doc))
    est = fake.estimate("template", "demo", template_code="1000000000000000009",
                        recipients=[(PHONES[0], ["张" * 20]), (PHONES[1], ["李"]), (PHONES[2], ["张" * 20])])
    assert (est.recipients, est.segments, est.segments_exact) == (3, 5, False)


def test_estimate_takes_a_send_calls_arguments_and_checks_them_as_the_send_does() -> None:
    """``force`` and ``progress`` are accepted; a bad phone is refused naming it, as send_content does."""
    fake = FakeDispatcher()
    est = fake.estimate("content", "demo", content=ONE_PART, phones=PHONES, force=True, progress=print)
    assert est.segments == 3
    with pytest.raises(ValidationError) as bad:
        fake.estimate("content", "demo", content=ONE_PART, phones=["138000"])
    assert bad.value.fields == ("phones[0]",)
    with pytest.raises(ValidationError) as unknown:
        fake.estimate("fax", "demo", template_id="1")
    assert unknown.value.fields == ("send",)
    assert fake.outbox == []


def test_a_send_needing_more_than_the_balance_is_refused_and_nothing_is_kept() -> None:
    fake = FakeDispatcher()
    fake.balances[("aiofish", "demo")] = 5
    with pytest.raises(InsufficientBalanceError) as short:
        fake.send_content("demo", content=TWO_PART, phones=PHONES)
    assert (short.value.needed, short.value.available, short.value.account) == (6, 5, "aiofish:demo")
    assert fake.outbox == []


def test_a_balance_that_covers_the_send_or_force_lets_it_through() -> None:
    fake = FakeDispatcher()
    fake.balances[("aiofish", "demo")] = 6
    fake.send_content("demo", content=TWO_PART, phones=PHONES)
    fake.balances[("aiofish", "demo")] = 0
    fake.send_content("demo", content=TWO_PART, phones=PHONES, force=True)
    assert len(fake.outbox) == 2


def test_an_unknown_balance_does_not_block_a_send() -> None:
    """No balance known for the account (the real one: unreadable): the job is taken, the estimate says unknown."""
    fake = FakeDispatcher()
    assert fake.estimate("content", "demo", content=TWO_PART, phones=PHONES).covered is None
    fake.send_content("demo", content=TWO_PART, phones=PHONES)
    assert len(fake.outbox) == 1


def test_the_printed_estimate_names_a_shortfall_and_an_unknown_balance() -> None:
    short = Estimate("aiofish", "demo", "aiofish.send", 3, 6, True, balance=5, balance_age_s=12.0)
    assert short.covered is False
    assert "balance:    5 (read 12 s ago): SHORT by 1" in short.lines()
    unknown = Estimate("opass", "demo", "opass.send", 3, 3, False, balance_note="gateway down")
    assert "segments:   3 (assumed: 1 per recipient, template text not declared)" in unknown.lines()
    assert any("unknown (gateway down)" in line for line in unknown.lines())


def test_a_channel_without_a_balance_query_is_sent_unchecked_and_without_a_warning() -> None:
    """International SMS has no balance call: nothing to check its sends against, nothing to warn about."""
    from structlog.testing import capture_logs

    fake = FakeDispatcher()
    with capture_logs() as logs:
        fake.send_international("demo", content="Your code is 123456.", phones=["+85291234567"])
    assert [e for e in logs if e["event"] == "send.balance_unknown"] == []
    with capture_logs() as logs:  # a channel with a balance query still says when it could not read it
        fake.send_content("demo", content=ONE_PART, phones=PHONES)
    assert [e["provider"] for e in logs if e["event"] == "send.balance_unknown"] == ["aiofish"]
