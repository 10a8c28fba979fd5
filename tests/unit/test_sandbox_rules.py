"""Pure sandbox rules: faults, limits, outcomes, loopback guard, phone checks, opass templates."""

from __future__ import annotations

from collections import Counter

import pytest

from dispatcher.local.sandbox.config import LimitSpec
from dispatcher.local.sandbox.faults import FaultEngine, code_families, parse_rule, path_family
from dispatcher.local.sandbox.limits import Limiter
from dispatcher.local.sandbox.phone_check import all_mainland, check_items, check_text
from dispatcher.local.sandbox.receipts import OutcomeMix
from dispatcher.local.sandbox.templates import ParamError, parse_batch_params, parse_param_text, parse_template
from dispatcher.local.sandbox.web_util import is_loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
     ("10.0.0.1", False), ("192.168.1.2", False), ("::ffff:10.0.0.1", False), ("fe80::1%eth0", False),
     ("", False), (None, False), ("localhost", False)],
)
def test_only_loopback_peers_reach_the_control_api(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_code_faults_belong_to_the_gateway_that_owns_the_code() -> None:
    assert code_families("-1") == {"opass"}
    assert code_families("60009") == {"opass"}
    assert code_families("p:010") == {"aiofish"} and code_families("121") == {"aiofish"}
    assert code_families("request_limit") == {"vsms"}
    assert code_families("nonsense") == frozenset()
    assert path_family("/sms/arrive/qry") == "opass" and path_family("/rest/sms/getReport") == "aiofish"
    assert path_family("/rest/isms/sendIsms") == "vsms" and path_family("/_sandbox/ledger") is None


def test_fault_rules_fire_by_path_prefix_family_and_count() -> None:
    engine = FaultEngine(seed=1)
    engine.replace([parse_rule({"kind": "code", "code": "p:010", "count": 2}),
                    parse_rule({"kind": "slow", "path": "/message/send", "count": 1})])
    assert engine.decide("/message/send").kind == "slow"  # type: ignore[union-attr]
    assert engine.decide("/message/send") is None  # slow used up; p:010 is not an opass code
    assert [engine.decide("/rest/sms/sendSms") is not None for _ in range(3)] == [True, True, False]


def test_fault_rates_are_seeded_and_roughly_respected() -> None:
    def fired(seed: int) -> list[bool]:
        engine = FaultEngine(seed)
        engine.replace([parse_rule({"kind": "reset", "rate": 0.25})])
        return [engine.decide("/message/send") is not None for _ in range(4000)]

    assert fired(7) == fired(7)
    assert 850 <= sum(fired(7)) <= 1150  # mean 1000, sd ~27


def test_sliding_window_refuses_and_remembers_the_busiest_window() -> None:
    limiter = Limiter()
    spec = [("opass_residue", LimitSpec(1, 15.0)), ("opass_query", LimitSpec(3, 60.0))]
    assert limiter.admit("opass", "k", spec, 0.0) is None
    assert limiter.admit("opass", "k", spec, 14.9) == "opass_residue"
    assert limiter.admit("opass", "k", spec, 15.0) is None
    assert limiter.admit("opass", "k", spec, 30.0) is None
    assert limiter.admit("opass", "k", spec, 45.0) == "opass_query"  # 3 in the last 60 s
    stats = limiter.stats()["opass"]["k"]
    # every attempt reaches every limit's window, admitted or not
    assert stats["opass_query"] == {"max_seen": 3, "max_attempted": 5, "refused": 1, "limit": 3, "window_s": 60.0}
    assert (stats["opass_residue"]["max_seen"], stats["opass_residue"]["refused"]) == (1, 1)
    assert limiter.admit("opass", "k", [("x", None)], 46.0) is None  # unlimited


def test_outcomes_are_deterministic_and_follow_the_mix() -> None:
    mix = OutcomeMix.from_mapping({"DELIVRD": 6, "UNDELIV": 3, "none": 1})
    picks = Counter(mix.pick(42, "m1", f"1380000{i:04d}") for i in range(10_000))
    assert mix.pick(42, "m1", "13800000001") == mix.pick(42, "m1", "13800000001")
    assert abs(picks["DELIVRD"] - 6000) < 250 and abs(picks["UNDELIV"] - 3000) < 230 and abs(picks[None] - 1000) < 150
    with pytest.raises(ValueError):
        OutcomeMix.from_mapping({"LOST": 1})


def test_fast_phone_check_agrees_with_the_slow_one() -> None:
    good = ",".join(f"1{d}{i:09d}" for d in "3456789" for i in range(3))
    assert all_mainland(good)
    for bad in (good + ",", "," + good, good.replace("13", "12", 1), good[:-1] + "x", good[:-1] + "٣",
                good + ",1380000000", "", "13800000001,,13800000002"):
        assert not all_mainland(bad), bad
    accepted, count, failed = check_text("13800000001,+8613800000002,12,13800000003", frozenset({"13800000003"}))
    assert (accepted, count, failed) == (["13800000001", "13800000002"], 2, ["12", "13800000003"])
    assert check_text("13800000001,13800000002", frozenset()) == ("13800000001,13800000002", 2, [])
    assert check_items(["13800000001", 13800000002, None], frozenset()) == (["13800000001"], [1, 2])


def test_templates_render_and_check_parameters() -> None:
    tpl = parse_template("3", "{姓名,3}您好，收入{金额,5}元。")
    assert tpl.variables == (("姓名", 3), ("金额", 5))
    assert tpl.render(["张三", "12"]) == "张三您好，收入12元。"
    for values, code in ((["张三"], "60003"), (["张三丰李", "1"], "60004")):
        with pytest.raises(ParamError) as caught:
            tpl.check(values)
        assert caught.value.code == code
    assert parse_param_text('["a\\\\b"]') == ["a\\b"]
    for bad in ("[1]", '{"a":1}', "[", 5):
        with pytest.raises(ParamError):
            parse_param_text(bad)
    plain = parse_template("1", "固定内容")
    assert parse_batch_params('["",""]', 2, plain) == [[], []]
    assert parse_batch_params("[[],[]]", 2, plain) == [[], []]
    with pytest.raises(ParamError):
        parse_batch_params('[""]', 2, plain)
