"""The repr pieces, string for string: phones masked with their count, keys and sizes only, no password.

Every object that holds phones, text or secrets builds its ``repr`` from these pieces
(tests/unit/test_reprs.py checks the objects); here each piece's exact output is pinned,
so a piece that starts showing one more phone, a value, or part of a password fails.
"""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.providers.results import (
    Balance,
    BalanceItem,
    PhoneFailure,
    Receipt,
    SendResult,
    TemplateStatus,
    Uplink,
)
from dispatcher.redact import build_repr, keys_repr, phones_repr, size_repr, url_repr

P1, P2, P3, P4 = "13812345678", "13987654321", "13700000001", "13600000002"


@pytest.mark.parametrize(("phones", "shown"), [
    ([], "(; 0 in all)"),
    ([P1], "(138****5678; 1 in all)"),
    ([P1, P2, P3], "(138****5678, 139****4321, 137****0001; 3 in all)"),
    # Past three only the count shows, with an ellipsis saying there are more.
    ([P1, P2, P3, P4], "(138****5678, 139****4321, 137****0001, …; 4 in all)"),
    (("12345",), "(*****; 1 in all)"),  # too short to keep head and tail: all stars
], ids=["none", "one", "three-no-ellipsis", "four-ellipsis", "short"])
def test_phones_repr_masks_the_first_three_and_counts_all(phones: Any, shown: str) -> None:
    """At most three phones show, each as 3 digits, stars, 4 digits; the ellipsis only past three."""
    assert phones_repr(phones) == shown


@pytest.mark.parametrize(("mapping", "shown"), [
    (None, "None"),
    ({}, "<keys: >"),
    ({"phones": P1, "templateParam": '["493817"]'}, "<keys: phones, templateParam>"),
    ({1: P1}, "<keys: 1>"),
])
def test_keys_repr_shows_key_names_only(mapping: Any, shown: str) -> None:
    """A mapping shows its keys in order and none of its values; no mapping shows as ``None``."""
    assert keys_repr(mapping) == shown


@pytest.mark.parametrize(("value", "shown"), [
    (None, "None"),
    ("", "<0 items>"),
    ("【沙箱】您的验证码是493817", "<16 items>"),
    (b"\x00\x01", "<2 items>"),
    ([[P1], [P2], [P3]], "<3 items>"),
])
def test_size_repr_shows_only_the_length(value: Any, shown: str) -> None:
    """A text, body or list shows as its length; nothing at all shows as ``None``."""
    assert size_repr(value) == shown


@pytest.mark.parametrize(("url", "shown"), [
    ("", "''"),
    ("redis://cache:6379/0", "'redis://cache:6379/0'"),
    ("redis://smsd@cache:6379/0", "'redis://smsd@cache:6379/0'"),  # a user name is no secret
    ("redis://:redis-pass@cache:6379/0", "'redis://:***@cache:6379/0'"),
    ("amqp://smsd:amqp-pass@mq//", "'amqp://smsd:***@mq//'"),
    # A password may hold "@" itself: the host is what follows the last one.
    ("redis://:p@ss@word@cache:6379/0", "'redis://:***@cache:6379/0'"),
    ("rediss://u:p@ss@cache", "'rediss://u:***@cache'"),
], ids=["empty", "no-credentials", "user-only", "password-only", "user-and-password", "at-in-password",
        "at-in-password-with-user"])
def test_url_repr_replaces_the_password_and_keeps_the_rest(url: str, shown: str) -> None:
    """Only the password is replaced by ``***``; no part of it survives, even with ``@`` inside."""
    assert url_repr(url) == shown


def test_build_repr_names_the_type_and_joins_the_given_texts() -> None:
    """``Name(a=…, b=…)`` from the texts given, in order; nothing else is read from the object."""
    class Plan:
        secret = "sandbox-api-key"

    assert build_repr(Plan(), path="'/message/send'", phones=phones_repr([P1])) == (
        "Plan(path='/message/send', phones=(138****5678; 1 in all))")
    assert build_repr(Plan()) == "Plan()"


@pytest.mark.parametrize(("accepted", "shown"), [
    ((), "(; 0 in all)"),
    ((P1, P2, P3), "(138****5678, 139****4321, 137****0001; 3 in all)"),
    ((P1, P2, P3, P4), "(138****5678, 139****4321, 137****0001, …; 4 in all)"),
], ids=["none", "three", "four"])
def test_a_send_result_repr_is_exact_with_phones_masked(accepted: tuple[str, ...], shown: str) -> None:
    """A SendResult prints its ids, the accepted phones masked (three at most) and only counts of the rest."""
    result = SendResult("opass", "demo", "m1", "j.0.1", accepted=accepted,
                        failed=(PhoneFailure(P4, "F0072", "refused"),), duplicates=(P2, P3))
    assert repr(result) == (
        f"SendResult(provider='opass', account='demo', message_id='m1', client_id='j.0.1', accepted={shown}, "
        "failed=1, duplicates=2, request_id=None)")


def test_receipts_uplinks_and_refusals_print_no_phone_or_reply_text() -> None:
    """The whole repr of each result that holds a phone: the phone and the reply text are left out."""
    assert repr(Receipt("opass", "m1", P1, "DELIVRD", True, 1, "j.0.1", "0")) == (
        "Receipt(provider='opass', message_id='m1', status='DELIVRD', delivered=True, at_ms=1, client_id='j.0.1', "
        "code='0')")
    assert repr(Uplink("aiofish", P1, "退订 TD", "123", 2, "r1")) == (
        "Uplink(provider='aiofish', ext='123', at_ms=2, message_id='r1')")
    assert repr(PhoneFailure(P1, "F0072", "refused")) == "PhoneFailure(code='F0072', description='refused')"


def test_a_balance_totals_its_lines_and_only_audit_200_is_approved() -> None:
    assert Balance("aiofish", "demo", (BalanceItem("sms", 7), BalanceItem("vsms", 5))).total == 12
    assert Balance("aiofish", "demo", ()).total == 0
    assert [TemplateStatus("t", s).approved for s in (100, 200, 400)] == [False, True, False]
