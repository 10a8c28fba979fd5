"""Routes, pure: how a route splits recipients, what the accounts file may say, each gateway's form."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.config.accounts import parse_accounts
from dispatcher.errors import ConfigurationError, ValidationError
from dispatcher.local.demo import accounts_doc, phones
from dispatcher.local.drill import with_route
from dispatcher.routes import split
from dispatcher.testing import FakeDispatcher


def _doc() -> dict[str, Any]:
    return with_route(accounts_doc("http://127.0.0.1:9"))


@pytest.mark.parametrize(("count", "weights", "shares"), [
    (400, [3, 1], [300, 100]), (10, [3, 1], [8, 2]), (10, [1, 1, 1], [4, 3, 3]), (1, [1, 5], [0, 1]),
    (0, [3, 1], [0, 0]), (1_000_001, [3, 1], [750_001, 250_000])])
def test_split_gives_each_weight_its_share_and_the_remainders_to_the_largest_fractions(
        count: int, weights: list[int], shares: list[int]) -> None:
    """Shares are within one of count*weight/total and always add up to count."""
    assert split(count, weights) == shares


def test_a_route_send_splits_3_to_1_and_gives_each_gateway_its_form() -> None:
    """Through the fake (the same producer code): opass gets template …002 with the values as params,
    aiofish the rendered text behind the route entry's signature; in the route's order."""
    fake = FakeDispatcher(parse_accounts(_doc()))
    numbers = phones(40, seed=5)
    handle = fake.send("drill", template="otp", params=["424242"], phones=numbers, force=True)
    opass, aiofish = fake.outbox
    assert (opass.provider, opass.phones, opass.template_code, opass.params) == (
        "opass", numbers[:30], "1000000000000000002", ["424242"])
    assert (aiofish.provider, aiofish.phones, aiofish.content) == (
        "aiofish", numbers[30:], "【飞鱼】您的验证码是424242，5分钟内有效。")
    assert fake.status(handle.job_id).total == 40


def test_a_paused_account_gets_no_share_of_a_new_route_send() -> None:
    """An account paused when the send is made is left out; the others share its recipients by weight."""
    fake = FakeDispatcher(parse_accounts(_doc()))
    fake.pause("opass", "demo")
    handle = fake.send("drill", template="otp", params=["1"], phones=phones(7, seed=6), force=True)
    assert [(j.provider, j.total) for j in handle.jobs] == [("aiofish", 7)]


def test_values_are_checked_against_the_route_template_before_anything_is_stored() -> None:
    """A value longer than its variable's maxLen is refused naming it; nothing reaches any account. With
    opass paused the whole send goes to aiofish, which takes any text: the route's own check refuses it."""
    fake = FakeDispatcher(parse_accounts(_doc()))
    fake.pause("opass", "demo")
    with pytest.raises(ValidationError, match=r"params\[0\]: is 7 characters; variable \{验证码,6\}"):
        fake.send("drill", template="otp", params=["1234567"], phones=phones(4, seed=7))
    with pytest.raises(ValidationError, match=r"template: must be one of \['otp'\]"):
        fake.send("drill", template="nope", params=["1"], phones=phones(4, seed=7))
    assert fake.outbox == []


def test_an_opass_account_without_the_template_declared_is_refused_naming_it() -> None:
    """opass sends a route template as the console template whose declared text is the same: none, no send."""
    doc = _doc()
    doc["opass"][0]["templates"] = {}
    fake = FakeDispatcher(parse_accounts(doc))
    with pytest.raises(ConfigurationError, match="opass:demo declares no template with the text of route template"):
        fake.send("drill", template="otp", params=["1"], phones=phones(4, seed=8))
    assert fake.outbox == []


@pytest.mark.parametrize(("routes", "message"), [
    ({"r": [{"account": "opass:nope"}]}, r"routes.r\[0\].account: no account opass:nope"),
    ({"r": [{"account": "opass:demo", "weight": 0}]}, r"routes.r\[0\].weight: expected a whole number >= 1"),
    ({"r": []}, r"routes.r: expected a non-empty list"),
    ({"r": {"accounts": [{"account": "opass:demo"}], "cooldown_s": -1}}, r"routes.r.cooldown_s"),
    ({"r": [{"account": "opass:demo"}, {"account": "opass:demo"}]}, "an account is named twice"),
])
def test_a_bad_route_is_refused_naming_where(routes: dict[str, Any], message: str) -> None:
    """The accounts file is refused at load, naming the route and entry."""
    doc = _doc()
    doc["routes"] = routes
    with pytest.raises(ConfigurationError, match=message):
        parse_accounts(doc)


def test_an_aiofish_entry_without_a_signature_cannot_send() -> None:
    """aiofish texts must carry a 【signature】: the route entry must name it."""
    doc = _doc()
    del doc["routes"]["drill"]["accounts"][1]["signature"]
    fake = FakeDispatcher(parse_accounts(doc))
    fake.pause("opass", "demo")  # everything to aiofish
    with pytest.raises(ConfigurationError, match='aiofish:demo in a route needs "signature"'):
        fake.send("drill", template="otp", params=["1"], phones=phones(4, seed=9))
