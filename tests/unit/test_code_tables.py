"""Every vendor code maps to exactly one outcome, in one table per gateway."""

from __future__ import annotations

import re

import pytest

from dispatcher.errors import OUTCOME_CLASSES, AccountFatalError, AmbiguousError, ThrottledError, TransientError
from dispatcher.providers.aiofish_codes import AIOFISH_CODES, AIOFISH_SUBSTAT_HTTP_CODE
from dispatcher.providers.base import raise_for_code
from dispatcher.providers.opass_codes import OPASS_CODES
from tests.conftest import SHARED

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
