"""Every parser of a gateway's answers and pushes, fed arbitrary JSON: it returns, or raises one of
the project's errors (which the caller knows how to handle). Anything else, a KeyError, TypeError,
OverflowError or RecursionError escaping a parser, is a crash a hostile or broken gateway could cause.

The documents are random trees over the field names the parsers read (and some others), with
every JSON type in every place: strings where numbers belong, lists where objects do, 1e999, NaN.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from dispatcher.errors import DispatchError
from dispatcher.providers.aiofish import client as fish
from dispatcher.providers.aiofish import push as fish_push
from dispatcher.providers.aiofish import requests as fish_rq
from dispatcher.providers.aiofish import vsms as vsms
from dispatcher.providers.opass import client as opass
from dispatcher.providers.opass import push as opass_push
from dispatcher.providers.opass.requests import plan_send
from tests.unit.test_aiofish_requests import NOW_MS, make_account
from tests.unit.test_opass_answers import ACCOUNT, PHONES

#: The fields each gateway's answers and pushes carry (from the manuals, and what the parsers read).
GATEWAY_FIELDS = {
    "opass": ["code", "message", "msg", "data", "failPhones", "msgId", "msgid", "bid", "phone", "tel", "status",
              "arriveTime", "arriveResult", "sendDate", "totalCount", "successCount", "failCount", "noReceiptCount",
              "itemName", "residueValue", "totalSize", "requestId", "apiKey", "content", "srcId"],
    "aiofish": ["code", "subStat", "subStatDes", "smsId", "revStat", "revStatDes", "resDetail", "phoneNumber",
                "mobile", "phone", "stat", "statDes", "revTime", "content", "subCode", "msgId", "state", "ts", "sign",
                "bizContent", "account"],
    "vsms": ["code", "msg", "message", "data", "tplId", "auditStatus", "auditReason", "msgId", "phone", "mobile",
             "state", "uuid", "reason", "revTime", "content"],
}
FIELDS = sorted({f for fields in GATEWAY_FIELDS.values() for f in fields} | {"other", ""})
PHONE_LIKE = st.sampled_from(["13800000001", "+8613800000002", "1380000000", "１３８００００００１", ""])
#: Values no gateway should send but a broken or hostile one can: JSON's 1e999 and NaN, numbers
#: past any count, text past int()'s digit limit, other scripts' digits, the wrong type.
HOSTILE = st.sampled_from([float("inf"), float("-inf"), float("nan"), 10**30, -1, 0.5, "9" * 5000, "１２", "٣",
                           True, False, None, "", [], {}, "[]", "{}", "1e999", "-0"])
REGULAR = st.one_of(
    st.integers(), st.floats(), st.text(max_size=12), PHONE_LIKE,
    st.sampled_from(["200", "0", "-1", "r:000", "p:011", "DELIVRD", "UNDELIV", "2104091735", "KEY", "success",
                     "error", "job.0.1", "c1"]),
)
SCALARS = st.one_of(HOSTILE, HOSTILE, REGULAR)  # twice: hostile values in two of every three leaves
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(FIELDS), inner, max_size=6)),
    max_leaves=30,
)
ABSENT = object()


def _some_of(fields: list[str], value: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects holding most of ``fields`` (each left out one time in four), each with a ``value``."""
    return st.fixed_dictionaries({k: st.one_of(value, value, value, st.just(ABSENT)) for k in fields}).map(
        lambda d: {k: v for k, v in d.items() if v is not ABSENT})


def _docs(gateway: str) -> st.SearchStrategy[dict[str, Any]]:
    """Answers shaped like the gateway's (lists of items under a key, or the manual's "String" holding
    JSON text of them) with hostile leaves, and free trees."""
    items = st.lists(_some_of(GATEWAY_FIELDS[gateway], SCALARS), min_size=1, max_size=3)
    return st.one_of(_some_of(GATEWAY_FIELDS[gateway], st.one_of(items, items.map(json.dumps), SCALARS, JSON)),
                     st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=8))


#: Examples per parser: enough to hit a crash of the kind found here (an opass balance of 1e999) in
#: most runs; set SMSD_HOSTILE_EXAMPLES=2000 for a deep search.
EXAMPLES = int(os.environ.get("SMSD_HOSTILE_EXAMPLES", "40"))
#: No shrinking: these documents are large and shrinking one took minutes; the failure prints the
#: document as drawn, and the exception that escaped says where.
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    phases=[Phase.explicit, Phase.reuse, Phase.generate], print_blob=True)

OPASS_PLAN = plan_send(ACCOUNT, PHONES, "T", bid="job.0.1")
FISH_PLANS = {mode: fish_rq.plan_send(make_account(mode), ["13800000001", "13800000002"], "【沙箱】hi", sms_id="c1",
                                      now_ms=NOW_MS) for mode in ("plain", "phone", "full")}
MEDIA_PLAN = vsms.plan_vsms_send("app-key", "1001", ["13800000001"], now_ms=NOW_MS)

ANSWER_PARSERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "opass send": lambda d: opass.parse_send_answer(d, OPASS_PLAN, account="t"),
    "opass receipts": lambda d: opass.parse_receipts_answer(d, account="t"),
    "opass statistics": lambda d: opass.parse_statistics_answer(d, account="t", page=1, page_size=10),
    "opass balance": lambda d: opass.parse_balance_answer(d, account="t"),
    "aiofish send plain": lambda d: fish.parse_send_answer(d, FISH_PLANS["plain"], account="t"),
    "aiofish send phone": lambda d: fish.parse_send_answer(d, FISH_PLANS["phone"], account="t"),
    "aiofish send full": lambda d: fish.parse_send_answer(d, FISH_PLANS["full"], account="t"),
    "aiofish balance": lambda d: fish.parse_balance(d, account="t"),
    "aiofish reports": lambda d: fish.parse_reports(d, account="t"),
    "aiofish replies": lambda d: fish.parse_replies(d, account="t"),
    "vsms sent": lambda d: vsms.parse_sent(d, MEDIA_PLAN, provider=vsms.VSMS, account="t"),
    "vsms submitted": lambda d: vsms.parse_submitted(d, account="t"),
    "vsms template status": lambda d: vsms.parse_template_status(d, "1001", account="t"),
}


def _body(doc: object) -> bytes:
    return json.dumps(doc, ensure_ascii=False, allow_nan=True).encode()


PUSH_PARSERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "opass push": lambda d: opass_push.parse_push(_body({**d, "apiKey": "KEY"} if "apiKey" in d else d),
                                                 expected_api_key="KEY"),  # a key present is the right one
    "aiofish push json plain": lambda d: fish_push.parse_sms_push(_body(d), "application/json", make_account("plain"),
                                                                  now_ms=NOW_MS, variant="plain"),
    "aiofish push form plain": lambda d: fish_push.parse_sms_push(
        urlencode({k: json.dumps(v) if not isinstance(v, str) else v for k, v in d.items()}).encode(),
        "application/x-www-form-urlencoded", make_account("plain"), now_ms=NOW_MS, variant="plain"),
    "aiofish push json full": lambda d: fish_push.parse_sms_push(_body(d), "application/json", make_account("full"),
                                                                 now_ms=NOW_MS, variant="full"),
    "vsms push": lambda d: fish_push.parse_vsms_push(_body(d)),
    "isms push": lambda d: fish_push.parse_isms_push(_body(d)),
}


#: What makes each gateway's answer a success, so the random fields reach the parsing past the code check.
SUCCESS = {"opass": {"code": 200}, "aiofish": {"code": 200, "subStat": "r:000", "revStat": "r:000"},
           "vsms": {"code": "success"}}


def _answers(name: str) -> st.SearchStrategy[dict[str, Any]]:
    """A document of the parser's gateway, half the time one that carries its success code."""
    gateway = name.split()[0]
    docs, envelope = _docs(gateway), SUCCESS[gateway]
    return st.one_of(docs, docs.map(lambda d: {**d, **envelope}))


def _only_our_errors(parse: Callable[[dict[str, Any]], object], doc: dict[str, Any]) -> None:
    with contextlib.suppress(DispatchError):  # refused in words the caller acts on
        parse(doc)


@pytest.mark.parametrize("name", sorted(ANSWER_PARSERS))
def test_an_answer_parser_returns_or_raises_a_dispatch_error_for_any_json(name: str) -> None:
    @SETTINGS
    @given(_answers(name))
    def check(doc: dict[str, Any]) -> None:
        _only_our_errors(ANSWER_PARSERS[name], doc)

    check()


@pytest.mark.parametrize("name", sorted(PUSH_PARSERS))
def test_a_push_parser_returns_or_raises_a_dispatch_error_for_any_json(name: str) -> None:
    @SETTINGS
    @given(_docs("opass" if name.startswith("opass") else "aiofish" if name.startswith("aiofish") else "vsms"))
    def check(doc: dict[str, Any]) -> None:
        _only_our_errors(PUSH_PARSERS[name], doc)

    check()


@pytest.mark.parametrize("name", sorted(PUSH_PARSERS))
@pytest.mark.parametrize("body", [b"", b"\xff\xfe", b"[" * 100_000, b"null", b"[]", b'"x"', b"1e999", b"NaN"])
def test_a_push_parser_refuses_bodies_that_are_no_object(name: str, body: bytes) -> None:
    parse = {
        "opass push": lambda: opass_push.parse_push(body, expected_api_key="KEY"),
        "aiofish push json plain": lambda: fish_push.parse_sms_push(body, "application/json", make_account("plain"),
                                                                    now_ms=NOW_MS, variant="plain"),
        "aiofish push form plain": lambda: fish_push.parse_sms_push(body, "application/x-www-form-urlencoded",
                                                                    make_account("plain"), now_ms=NOW_MS,
                                                                    variant="plain"),
        "aiofish push json full": lambda: fish_push.parse_sms_push(body, "application/json", make_account("full"),
                                                                   now_ms=NOW_MS, variant="full"),
        "vsms push": lambda: fish_push.parse_vsms_push(body),
        "isms push": lambda: fish_push.parse_isms_push(body),
    }[name]
    with pytest.raises(DispatchError):
        parse()
