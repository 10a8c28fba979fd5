"""Declared opass templates: the manual's ``{name,maxLen}`` syntax, rendering, and the checks a send meets.

Syntax and examples come from the opass manual (/work/shared/seeds/000_…):
``你有一个事务编号为{事务编号,30}需要处理。`` (its 1.3) and ``你本次收入${收入,10}元。``
received as ``你本次收入300.09元。`` (its 1.4). Its template FAQ forbids 【】 anywhere
and [] at either end; its codes 60003 / 60004 are a wrong value count and a value
over its maxLen.
"""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.config.accounts import parse_accounts
from dispatcher.errors import ValidationError
from dispatcher.local.demo import accounts_doc
from dispatcher.producer import check_send
from dispatcher.providers.opass.jobs import template_job
from dispatcher.templates import TemplateSyntaxError, parse_template, render_template, template_variables
from dispatcher.testing import FakeDispatcher

OTP = "1000000000000000002"
OTP_TEXT = "您的验证码是{验证码,6}，5分钟内有效。"
INCOME = "1000000000000000003"
INCOME_TEXT = "{姓名,10}您好，您本次收入${金额,10}元。"
P1, P2, P3 = "13800000001", "13800000002", "13800000003"


def _problems(**kwargs: Any) -> list[tuple[str, str]]:
    """The (field, message) pairs a template job with ``kwargs`` is refused with."""
    with pytest.raises(ValidationError) as err:
        template_job("demo", **kwargs)
    return [(p.field, p.message) for p in err.value.problems]


# ------------------------------------------------------------------ the pure module


def test_the_variables_are_read_in_order_with_their_max_lengths() -> None:
    assert [(v.name, v.max_len) for v in template_variables(INCOME_TEXT)] == [("姓名", 10), ("金额", 10)]
    assert template_variables("您有一个事务需要处理。") == ()


def test_rendering_puts_the_values_in_order_and_drops_the_manuals_dollar() -> None:
    """The manual's 1.4 example: ``你本次收入${收入,10}元。`` with 300.09 arrives as ``你本次收入300.09元。``."""
    assert render_template("你本次收入${收入,10}元。", ["300.09"]) == "你本次收入300.09元。"
    assert render_template("你有一个事务编号为{事务编号,30}需要处理。", ["1xhsf1282abhx5"]) == \
        "你有一个事务编号为1xhsf1282abhx5需要处理。"
    assert render_template(INCOME_TEXT, ["王五", "222"]) == "王五您好，您本次收入222元。"
    assert render_template("固定内容。", []) == "固定内容。"


def test_rendering_with_the_wrong_number_of_values_is_refused() -> None:
    with pytest.raises(ValueError, match="2 variables, got 1"):
        render_template(INCOME_TEXT, ["王五"])


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("验证码{验证码}", r"unmatched '\{' at character 4", id="no-max-length"),
    pytest.param("验证码{验证码,6", r"unmatched '\{' at character 4", id="unclosed"),
    pytest.param("验证码是6}", r"unmatched '\}' at character 6", id="stray-close"),
    pytest.param("码{,6}", r"variable \{,6\} at character 2: the name is empty", id="empty-name"),
    pytest.param("码{验证码,0}", r"maxLen must be a positive whole number", id="zero-length"),
    pytest.param("码{验证码,六}", r"maxLen must be a positive whole number", id="not-a-number"),
    pytest.param("码{验证码,6,7}", r"maxLen must be a positive whole number", id="two-lengths"),
    pytest.param("【沙箱】您的验证码是{验证码,6}", r"contains 【 or 】", id="signature-inside"),
    pytest.param("[通知]您好", r"starts with \[ or ends with \]", id="bracket-first"),
    pytest.param("   ", r"non-empty string", id="blank"),
])
def test_a_malformed_template_text_is_refused_saying_where(text: str, message: str) -> None:
    with pytest.raises(TemplateSyntaxError, match=message):
        parse_template(OTP, text)


@pytest.mark.parametrize("code", ["abc", "10000000000000000O2", "", "１２３"])
def test_a_template_code_that_is_not_ascii_digits_is_refused(code: str) -> None:
    with pytest.raises(TemplateSyntaxError, match="is not digits only"):
        parse_template(code, OTP_TEXT)


# ------------------------------------------------------------------ the checks a send meets


def test_a_declared_template_refuses_the_wrong_number_of_values_naming_its_variables() -> None:
    template = parse_template(INCOME, INCOME_TEXT)
    assert _problems(template_code=INCOME, phones=[P1], params=["王五"], template=template) == [
        ("params", f"template {INCOME} takes 2 values ({{姓名,10}} {{金额,10}}); got 1")]
    assert _problems(template_code=INCOME, phones=[P1], template=template)[0][0] == "params"


def test_a_value_over_its_variables_max_length_is_refused_naming_the_value_and_the_variable() -> None:
    template = parse_template(OTP, OTP_TEXT)
    assert _problems(template_code=OTP, phones=[P1], params=["1234567"], template=template) == [
        ("params[0]", "is 7 characters; variable {验证码,6} takes at most 6")]


def test_per_phone_values_are_checked_per_recipient_naming_it() -> None:
    """Recipient 2's second value and recipient 1's count are named; recipient 0 passes."""
    template = parse_template(INCOME, INCOME_TEXT)
    problems = _problems(template_code=INCOME, template=template,
                         recipients=[(P1, ["王五", "222"]), (P2, ["王五"]), (P3, ["王五", "12345678901"])])
    assert problems == [
        ("recipients[1].params", f"template {INCOME} takes 2 values ({{姓名,10}} {{金额,10}}); got 1"),
        ("recipients[2].params[1]", "is 11 characters; variable {金额,10} takes at most 10"),
    ]


def test_a_value_of_the_wrong_type_is_named_once_not_also_as_a_misplaced_length() -> None:
    template = parse_template(INCOME, INCOME_TEXT)
    assert [f for f, _ in _problems(template_code=INCOME, phones=[P1], params=[None, "12345678901"],
                                    template=template)] == ["params[0]"]


def test_values_that_fit_the_template_make_a_job() -> None:
    template = parse_template(INCOME, INCOME_TEXT)
    spec = template_job("demo", template_code=INCOME, recipients=[(P1, ["王五", "1234567890"])], template=template)
    assert spec.payloads == [["王五", "1234567890"]]


def _accounts() -> Any:
    doc = accounts_doc("http://127.0.0.1:9")
    doc["opass"][0]["templates"] = {OTP: OTP_TEXT, INCOME: INCOME_TEXT}
    return parse_accounts(doc)


def _spec(code: str, **kwargs: Any) -> Any:
    return check_send(_accounts(), "template", "demo", template_code=code, phones=kwargs.get("phones"),
                         params=kwargs.get("params"), recipients=kwargs.get("recipients"), bid=None,
                         extend_code=None, priority="bulk", send_at=None, skip_invalid=False)


def test_the_producer_checks_a_template_the_account_declares() -> None:
    """``check_send`` (Dispatcher's and FakeDispatcher's check) finds the template by its code, spaces trimmed."""
    with pytest.raises(ValidationError) as err:
        _spec(f" {OTP} ", phones=[P1], params=["1234567"])
    assert err.value.fields == ("params[0]",)


def test_a_template_the_account_does_not_declare_is_sent_unchecked() -> None:
    spec, _ = _spec("1000000000000000009", phones=[P1], params=["any", "number", "of values"])
    assert spec.meta["params"] == '["any", "number", "of values"]'


def test_the_fake_dispatcher_refuses_what_the_real_one_refuses_and_keeps_nothing() -> None:
    fake = FakeDispatcher(_accounts())
    with pytest.raises(ValidationError) as err:
        fake.send_template("demo", template_code=INCOME, recipients=[(P1, ["王五", "1" * 11])])
    assert err.value.fields == ("recipients[0].params[1]",)
    assert "{金额,10}" in str(err.value)
    assert fake.outbox == []


def test_a_value_over_the_500_character_cap_is_named_once() -> None:
    """Over both its maxLen and the 500-character cap every value has: one problem, not two for one field."""
    template = parse_template(OTP, OTP_TEXT)
    assert [f for f, _ in _problems(template_code=OTP, phones=[P1], params=["1" * 501], template=template)] == \
        ["params[0]"]
