"""Every vendor code maps to exactly one outcome, in one table per gateway.

The classes are pinned here by hand, from the manuals' code lists (opass 返回码说明 in seeds/000_…,
aiofish 提交响应错误码 in seeds/003_…) read with SPEC.md and DESIGN.md's meaning of each class:
transient = provably not taken, retry with backoff; throttled = "too fast", retry after a delay;
ambiguous = may have been taken, reconcile; request-rejected = resending the same request fails
again; recipient-rejected = the recipients were refused; account-fatal = nothing sends until a
human acts. The production tables must equal these entry by entry, with no code more or less.
"""

from __future__ import annotations

import re

import pytest

from dispatcher.errors import (
    OUTCOME_CLASSES,
    AccountFatalError,
    AmbiguousError,
    ProviderError,
    RecipientRejectedError,
    RequestRejectedError,
    ThrottledError,
    TransientError,
)
from dispatcher.providers.aiofish.codes import AIOFISH_CODES, AIOFISH_SUBSTAT_HTTP_CODE
from dispatcher.providers.base import raise_for_code
from dispatcher.providers.opass.codes import OPASS_CODES, OPASS_RECEIPT_STATES
from tests.conftest import SHARED

Outcome = type[ProviderError] | None

#: opass: code → class (None = success). Written from the manual, never from OPASS_CODES.
OPASS_CLASSES: dict[str, Outcome] = {
    "200": None,  # 请求成功
    "-1": TransientError,  # 系统繁忙，请稍后再试: busy, "try again later"
    "2000": AccountFatalError,  # IP白名单限制: someone must whitelist this host
    "2001": AccountFatalError,  # API授权错误 (also the ±60 s clock window): keys or clock to fix
    "6000": ThrottledError,  # 访问频繁,请稍后再试: too frequent
    "40002": AccountFatalError,  # 余额不足: balance to top up
    "40004": RequestRejectedError,  # 参数错误
    "40005": RequestRejectedError,  # 超出模板参数设置限制
    "40006": RequestRejectedError,  # 扩展号不匹配或者被企业其他账号占用: the extend code is wrong
    "60001": RequestRejectedError,  # 模板不存在
    "60002": RequestRejectedError,  # 批量发送下电话数量和参数数量不一样
    "60003": RequestRejectedError,  # 短信变量个数和模板变量个数不一样: same params fail again
    "60004": RequestRejectedError,  # 变量值超过模板设置的变量值最大长度
    "60005": RequestRejectedError,  # 没有可以发送的内容
    "60006": RequestRejectedError,  # 模板参数变量格式错误
    "60007": RecipientRejectedError,  # 手机号参数格式错误: the numbers are refused
    "60008": RequestRejectedError,  # 手机号数量大于1000
    "60009": TransientError,  # 短信资源被锁定: "occasional; retry" (FAQ)
}

#: aiofish: every code of every product → class. SMS numeric codes and their subStats mean the
#: same; 999/p:999 is 受理失败 (not accepted: any subStat but r:000), so retrying is safe; vsms/isms
#: ``error`` (处理异常) never says the request was not taken, so a send is ambiguous.
AIOFISH_CLASSES: dict[str, Outcome] = {
    "200": None, "r:000": None,  # 处理成功
    "421": RequestRejectedError, "p:001": RequestRejectedError,  # 内容错误
    "411": RecipientRejectedError, "p:002": RecipientRejectedError,  # 号码错误
    "401": AccountFatalError, "p:003": AccountFatalError,  # 账号或密码错误
    "102": AccountFatalError, "p:004": AccountFatalError,  # 余额不足
    "412": RequestRejectedError, "p:006": RequestRejectedError,  # 提交号码数量过多
    "451": AccountFatalError, "p:007": AccountFatalError,  # 业务类型错误: set on the account by the vendor
    "111": AccountFatalError, "p:008": AccountFatalError,  # 没有权限
    "121": ThrottledError, "p:010": ThrottledError,  # 访问速度过快
    "122": AccountFatalError, "p:011": AccountFatalError,  # 解密失败: the account's AES key is wrong
    "999": TransientError, "p:999": TransientError,  # 其他错误, 受理失败
    "success": None,  # 请求成功
    "invalid_data": RequestRejectedError,  # 无效数据
    "invalid_sign": AccountFatalError,  # 无效签名: appSecret wrong
    "invalid_appkey": AccountFatalError,  # 无效APPKEY
    "invalid_ts": AccountFatalError,  # 无效时间戳: this host's clock is wrong
    "invalid_title": RequestRejectedError,  # 无效标题
    "invalid_tpl": RequestRejectedError,  # 无效模板
    "invalid_content": RequestRejectedError,  # 无效内容
    "invalid_resource": RequestRejectedError,  # 无效的文件数据
    "resource_limit": RequestRejectedError,  # 文件数据大小超限
    "invalid_mobile": RecipientRejectedError,  # 无效手机号
    "permission": AccountFatalError,  # 无权限
    "authorization": AccountFatalError,  # 身份验证失败
    "mobile_limit": RequestRejectedError,  # 号码数量超过限制
    "request_limit": ThrottledError,  # 请求次数超过限制: "retry later"
    "error": AmbiguousError,  # 处理异常
}

#: The manual's 提交响应错误码 table: each subStat beside its numeric code.
AIOFISH_PAIRS = {
    "r:000": 200, "p:001": 421, "p:002": 411, "p:003": 401, "p:004": 102, "p:006": 412,
    "p:007": 451, "p:008": 111, "p:010": 121, "p:011": 122, "p:999": 999,
}

#: opass receipt states (短信网关回执短信状态).
OPASS_STATES = {"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD"}

# The codes as SPEC.md lists them, copied by hand so the test runs without ../shared too.
OPASS_SPEC_CODES = [
    "-1", "200", "2000", "2001", "6000", "40002", "40004", "40005", "40006",
    "60001", "60002", "60003", "60004", "60005", "60006", "60007", "60008", "60009",
]
AIOFISH_SPEC_CODES = [
    "200", "r:000", "421", "p:001", "411", "p:002", "401", "p:003", "102", "p:004",
    "412", "p:006", "451", "p:007", "111", "p:008", "121", "p:010", "122", "p:011", "999", "p:999",
]
AIOFISH_STRING_CODES = [
    "success", "invalid_data", "invalid_sign", "invalid_appkey", "invalid_ts", "invalid_title",
    "invalid_tpl", "invalid_content", "invalid_resource", "resource_limit", "invalid_mobile",
    "permission", "authorization", "mobile_limit", "request_limit", "error",
]


def _name(cls: Outcome) -> str:
    return "success" if cls is None else cls.__name__


@pytest.mark.parametrize(("code", "expected"), OPASS_CLASSES.items(), ids=OPASS_CLASSES.keys())
def test_opass_code_has_its_pinned_class(code: str, expected: Outcome) -> None:
    assert code in OPASS_CODES, f"opass {code} is not in the table"
    assert _name(OPASS_CODES[code].error) == _name(expected), f"opass {code}"


@pytest.mark.parametrize(("code", "expected"), AIOFISH_CLASSES.items(), ids=AIOFISH_CLASSES.keys())
def test_aiofish_code_has_its_pinned_class(code: str, expected: Outcome) -> None:
    assert code in AIOFISH_CODES, f"aiofish {code} is not in the table"
    assert _name(AIOFISH_CODES[code].error) == _name(expected), f"aiofish {code}"


def test_the_tables_hold_no_code_the_manuals_lack() -> None:
    assert sorted(set(OPASS_CODES) - set(OPASS_CLASSES)) == []
    assert sorted(set(AIOFISH_CODES) - set(AIOFISH_CLASSES)) == []


def test_the_substat_pairs_are_the_manuals() -> None:
    assert dict(AIOFISH_SUBSTAT_HTTP_CODE) == AIOFISH_PAIRS


def test_the_receipt_states_are_the_manuals() -> None:
    assert set(OPASS_RECEIPT_STATES) == OPASS_STATES


def test_the_pinned_tables_agree_with_spec_md_lists() -> None:
    # The hand-written tables above and the code lists copied from SPEC.md name the same codes.
    assert sorted(OPASS_CLASSES) == sorted(OPASS_SPEC_CODES)
    assert sorted(AIOFISH_CLASSES) == sorted(AIOFISH_SPEC_CODES + AIOFISH_STRING_CODES)
    assert sorted(AIOFISH_PAIRS) == sorted(c for c in AIOFISH_SPEC_CODES if ":" in c)


def _spec_text() -> str:
    path = SHARED / "SPEC.md"
    if not path.exists():
        pytest.skip(f"{path} is not beside the checkout (CI provides it)")
    return path.read_text(encoding="utf-8")


def _section(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


@pytest.mark.parametrize("code", OPASS_SPEC_CODES)
def test_every_opass_code_in_spec_is_mapped(code: str) -> None:
    assert code in OPASS_CODES


@pytest.mark.parametrize("code", AIOFISH_SPEC_CODES + AIOFISH_STRING_CODES)
def test_every_aiofish_code_in_spec_is_mapped(code: str) -> None:
    assert code in AIOFISH_CODES


def test_codes_parsed_from_spec_md_are_all_mapped() -> None:
    text = _spec_text()
    opass = _section(text, "### Return codes\n-1", "### Other facts")
    opass_codes = set(re.findall(r"(?:^|· )(-?\d+) ", opass, flags=re.M))
    aiofish = _section(text, "### Return codes (submit)", "### Length and billing")
    pairs = re.findall(r"(\d{3})/([pr]:\d{3})", aiofish)
    vsms_list = re.search(r"- Codes: (.*?)\.\n", text, flags=re.S)
    assert vsms_list is not None
    vsms_codes = {c.split(" ")[0] for c in re.split(r",\s*", vsms_list.group(1).replace("\n", " "))}

    assert len(opass_codes) >= 18, opass_codes
    assert len(pairs) >= 11, pairs
    assert len(vsms_codes) >= 16, vsms_codes
    missing = sorted(c for c in opass_codes if c not in OPASS_CODES)
    missing += sorted(c for pair in pairs for c in pair if c not in AIOFISH_CODES)
    missing += sorted(c for c in vsms_codes if c not in AIOFISH_CODES)
    assert missing == [], f"codes in SPEC.md with no class: {missing}"


def test_numeric_and_substat_codes_of_one_pair_mean_the_same() -> None:
    for sub_stat, numeric in AIOFISH_SUBSTAT_HTTP_CODE.items():
        assert AIOFISH_CODES[sub_stat].error is AIOFISH_CODES[str(numeric)].error, sub_stat


@pytest.mark.parametrize("table", [OPASS_CODES, AIOFISH_CODES], ids=["opass", "aiofish"])
def test_each_code_maps_to_success_or_one_outcome_class(table) -> None:  # type: ignore[no-untyped-def]
    for code, info in table.items():
        assert info.error is None or info.error in OUTCOME_CLASSES, code
        assert info.text, code


def test_success_codes_are_exactly_the_documented_ones() -> None:
    assert {c for c, i in OPASS_CODES.items() if i.error is None} == {"200"}
    assert {c for c, i in AIOFISH_CODES.items() if i.error is None} == {"200", "r:000", "success"}


def test_the_codes_that_decide_retries_are_classified_as_the_manuals_say() -> None:
    # -1 and 60009 say "retry"; 6000/p:010/request_limit say "too fast"; balance/auth pause.
    assert OPASS_CODES["-1"].error is TransientError
    assert OPASS_CODES["60009"].error is TransientError
    for table, code in [(OPASS_CODES, "6000"), (AIOFISH_CODES, "p:010"), (AIOFISH_CODES, "request_limit")]:
        assert table[code].error is ThrottledError
    for table, code in [(OPASS_CODES, "40002"), (OPASS_CODES, "2000"), (OPASS_CODES, "2001"),
                        (AIOFISH_CODES, "p:004"), (AIOFISH_CODES, "p:003")]:
        assert table[code].error is AccountFatalError


def test_aiofish_other_errors_are_settled_as_the_manual_reads() -> None:
    # 999/p:999: a subStat other than r:000 means "受理失败" (not accepted): retry.
    # error (vsms/isms 处理异常): the manual never says it was not taken: ambiguous for a send.
    assert AIOFISH_CODES["999"].error is TransientError
    assert AIOFISH_CODES["p:999"].error is TransientError
    assert AIOFISH_CODES["error"].error is AmbiguousError
    with pytest.raises(AmbiguousError):
        raise_for_code(AIOFISH_CODES, "error", provider="aiofish-isms", account="t", side_effect=True)
    with pytest.raises(TransientError) as err:
        raise_for_code(AIOFISH_CODES, "error", provider="aiofish-vsms", account="t", side_effect=False)
    assert not isinstance(err.value, AmbiguousError)
