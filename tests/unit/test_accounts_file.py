"""The accounts file: push forms, callback secrets, one entry per vendor account, ${VAR:-default}."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dispatcher.config.accounts import (
    MIN_CALLBACK_SECRET_CHARS,
    SHIPPED_CALLBACK_SECRETS,
    callback_secret_problem,
    load_accounts,
    parse_accounts,
)
from dispatcher.errors import ConfigurationError
from dispatcher.limits import Limit
from dispatcher.local.demo import accounts_doc

REPO = Path(__file__).resolve().parents[2]


def _doc(**aiofish: Any) -> dict[str, Any]:
    doc = accounts_doc("http://127.0.0.1:9")
    doc["aiofish"][0].update(aiofish)
    return doc


def test_an_aiofish_account_takes_the_push_form_it_declares_or_else_the_one_it_sends_with() -> None:
    assert parse_accounts(_doc(push_variant="phone")).get("aiofish", "demo").push_variant == "phone"
    doc = _doc(encryption="plain")
    del doc["aiofish"][0]["push_variant"]
    assert parse_accounts(doc).get("aiofish", "demo").push_variant == "plain"


@pytest.mark.parametrize(("fields", "message"), [
    ({"push_variant": "signed"},
     r"aiofish\[0\] \(aiofish:demo\)\.push_variant: 'signed' is not one of plain, phone, full"),
    ({"push_variant": "phone", "aes_key": None, "encryption": "plain"}, r"push_variant: phone pushes need aes_key"),
    ({"push_variant": "full", "app_secret": None, "encryption": "plain"}, r"push_variant: full pushes need app_secret"),
])
def test_a_push_form_the_account_cannot_verify_is_refused_naming_the_entry(fields: dict[str, Any],
                                                                          message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_accounts(_doc(**fields))


def test_an_opass_entry_cannot_declare_a_push_form() -> None:
    doc = _doc()
    doc["opass"][0]["push_variant"] = "full"
    with pytest.raises(ConfigurationError, match=r"opass\[0\]"):
        parse_accounts(doc)


def test_one_vendor_account_under_two_names_is_refused() -> None:
    doc = _doc()
    doc["opass"].append({**doc["opass"][0], "name": "again"})
    with pytest.raises(ConfigurationError, match=r"opass\[1\]: same vendor account as opass:demo"):
        parse_accounts(doc)


def test_callback_secrets_that_prove_nothing_are_named_and_an_empty_one_means_no_pushes() -> None:
    assert callback_secret_problem("") is None
    assert callback_secret_problem("x" * MIN_CALLBACK_SECRET_CHARS) is None
    assert "shorter than 32" in (callback_secret_problem("x" * (MIN_CALLBACK_SECRET_CHARS - 1)) or "")
    for shipped in SHIPPED_CALLBACK_SECRETS:
        assert "published" in (callback_secret_problem(shipped) or "")


def test_a_variable_with_a_default_falls_back_to_it_and_one_without_must_be_set() -> None:
    doc = _doc(callback_secret="${FISH_SECRET:-}")
    assert parse_accounts(doc, env={}).get("aiofish", "demo").callback_secret == ""
    assert parse_accounts(doc, env={"FISH_SECRET": "s" * 40}).get("aiofish", "demo").callback_secret == "s" * 40
    with pytest.raises(ConfigurationError, match="FISH_SECRET is not set"):
        parse_accounts(_doc(callback_secret="${FISH_SECRET}"), env={})


def test_the_example_file_loads_with_no_environment_and_takes_no_pushes() -> None:
    accounts = load_accounts(REPO / "config" / "accounts.example.json", env={})
    assert all(a.callback_secret == "" and a.hook_problem is None for a in accounts)


def test_every_callback_secret_the_repository_holds_is_on_the_refused_list() -> None:
    # Any literal token in a tracked file is public: the webhook must never serve it.
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    pattern = re.compile(r"""callback_secret["']?\s*[:=]\s*["']([^"'$]+)["']|_HOOK_TOKEN\s*=\s*["']([^"']+)["']""")
    found = set()
    for name in files:
        path = REPO / name
        if path.suffix not in {".py", ".json", ".md", ".yml", ".yaml", ".toml", ".env", ""} or not path.is_file():
            continue
        for match in pattern.finditer(path.read_text(encoding="utf-8", errors="replace")):
            found.add(match.group(1) or match.group(2))
    assert found <= SHIPPED_CALLBACK_SECRETS, sorted(found - SHIPPED_CALLBACK_SECRETS)


# ----------------------------------------------------------------------------- opass templates


def _with_templates(templates: Any) -> dict[str, Any]:
    doc = _doc()
    doc["opass"][0]["templates"] = templates
    return doc


def test_an_opass_entry_declares_its_templates_by_code() -> None:
    accounts = parse_accounts(_with_templates({"1000000000000000003": "{姓名,10}您好，您本次收入{金额,10}元。"}))
    template = accounts.get("opass", "demo").templates["1000000000000000003"]
    assert [(v.name, v.max_len) for v in template.variables] == [("姓名", 10), ("金额", 10)]
    assert parse_accounts(_doc()).get("opass", "demo").templates == {}


def test_a_template_text_is_taken_as_written_not_expanded_from_the_environment() -> None:
    """``${收入,10}`` (the manual's form) stays as written; a ``${NAME}`` is a broken variable, not a lookup."""
    accounts = parse_accounts(_with_templates({"1": "你本次收入${收入,10}元"}), env={})
    assert accounts.get("opass", "demo").templates["1"].text == "你本次收入${收入,10}元"
    with pytest.raises(ConfigurationError, match=r"template 2: unmatched '\{'"):
        parse_accounts(_with_templates({"2": "您好${GREETING}"}), env={"GREETING": "早上好"})


@pytest.mark.parametrize(("templates", "message"), [
    pytest.param({"1000000000000000002": "您的验证码是{验证码}"},
                 r"opass\[0\] \(opass:demo\) template 1000000000000000002: unmatched '\{' at character 7",
                 id="bad-syntax"),
    pytest.param({"TPL-2": "您好"}, r"opass\[0\] \(opass:demo\) template TPL-2: the code 'TPL-2' is not digits only",
                 id="non-digit-code"),
    pytest.param({"1000000000000000002": 6}, r"opass:demo\) template 1000000000000000002: the text must be",
                 id="no-text"),
    pytest.param(["您好"], r"opass:demo\)\.templates: expected an object of template code -> text", id="not-an-object"),
])
def test_a_malformed_template_is_refused_naming_the_account_and_the_template(templates: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_accounts(_with_templates(templates))


def test_an_aiofish_entry_cannot_declare_opass_templates() -> None:
    doc = _doc()
    doc["aiofish"][0]["templates"] = {"1": "您好"}
    with pytest.raises(ConfigurationError, match=r"aiofish\[0\].*templates"):
        parse_accounts(doc)


def test_the_example_file_declares_the_sandboxs_templates() -> None:
    """So a send the example accounts let through is one the sandbox (which checks the same texts) takes."""
    from dispatcher.local.sandbox.demo import OPASS_TEMPLATES

    accounts = load_accounts(REPO / "config" / "accounts.example.json", env={})
    declared = accounts.get("opass", "demo").templates
    assert {code: t.text for code, t in declared.items()} == dict(OPASS_TEMPLATES)


def test_each_aiofish_account_is_also_an_account_of_its_isms_channel() -> None:
    """The accounts file has no ``aiofish-isms`` entries: each aiofish account is the isms channel's
    too, with the same settings and callback secret (its hook and receipts' owner work)."""
    from dispatcher.config.accounts import parse_accounts
    from dispatcher.local.demo import AIOFISH_HOOK_TOKEN, accounts_doc

    accounts = parse_accounts(accounts_doc("http://127.0.0.1:1"))
    sms, isms = accounts.get("aiofish", "demo"), accounts.get("aiofish-isms", "demo")
    assert (isms.provider, isms.gateway, isms.callback_secret) == ("aiofish-isms", sms.gateway, AIOFISH_HOOK_TOKEN)


@pytest.fixture
def borrowing_channel() -> Any:
    """A toy channel registered for one test that sends through the aiofish accounts."""
    from dispatcher.providers import registry
    from dispatcher.providers.aiofish.account import AiofishAccount

    registry.gateways()  # the built-in plugs first, so the toy does not stand in for them
    plug = registry.Gateway(name="toy-borrower", account_class=AiofishAccount, client=lambda account: account,
                            kinds=(), accounts_of="aiofish")
    registry.register(plug)
    yield plug
    registry.unregister(plug.name)


def test_a_channel_on_another_gateways_accounts_gets_each_of_them_with_its_hook_secret(borrowing_channel: Any) -> None:
    """``accounts_of``: every aiofish entry is also an account of the channel (same settings and
    callback secret, so its hook is served), and without the entry's SMS limit overrides."""
    doc = _doc(limits={"send": [{"kind": "send", "count": 5, "window_s": 1}]})
    accounts = parse_accounts(doc)
    sms, borrowed = accounts.get("aiofish", "demo"), accounts.get("toy-borrower", "demo")
    assert (borrowed.provider, borrowed.gateway, borrowed.callback_secret) == (
        "toy-borrower", sms.gateway, sms.callback_secret)
    assert sms.limits and not borrowed.limits
    assert ("toy-borrower", "demo", "send") not in accounts.limit_overrides()


def test_an_aiofish_entry_without_an_app_key_is_no_video_or_international_account_and_says_why() -> None:
    """vsms and isms calls are signed with appKey/appSecret: an entry without them still sends SMS,
    and a video or international send through it is refused naming what it lacks."""
    accounts = parse_accounts(_doc(app_key=None, app_secret=None, encryption="plain", push_variant="plain"))
    assert accounts.get("aiofish", "demo").name == "demo"
    for channel in ("aiofish-vsms", "aiofish-isms"):
        with pytest.raises(ConfigurationError, match=f"{channel}:demo cannot send: .*no app_key/app_secret"):
            accounts.get(channel, "demo")


def test_a_channel_takes_its_own_limits_from_its_aiofish_entry() -> None:
    """``"limits": {"aiofish-isms": {"send": […]}}`` overrides the isms channel's assumed rate for that
    account; the entry's SMS limits and the video channel's stay as they were."""
    own = [{"kind": "send", "count": 7, "window_s": 1}]
    accounts = parse_accounts(_doc(limits={"send": [{"kind": "send", "count": 5, "window_s": 1}],
                                           "aiofish-isms": {"send": own}}))
    overrides = accounts.limit_overrides()
    assert overrides[("aiofish-isms", "demo", "send")] == (Limit("send", 7, 1.0),)
    assert overrides[("aiofish", "demo", "send")] == (Limit("send", 5, 1.0),)
    assert ("aiofish-vsms", "demo", "send") not in overrides


def test_limits_for_a_channel_the_gateway_does_not_have_are_refused_naming_it() -> None:
    with pytest.raises(ConfigurationError, match=r"aiofish\[0\]\.limits\.opass: not a channel of aiofish"):
        parse_accounts(_doc(limits={"opass": {"send": [{"kind": "send", "count": 7, "window_s": 1}]}}))
