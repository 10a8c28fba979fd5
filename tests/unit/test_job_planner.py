"""The job planner, exactly: which recipients a job holds and in what order, what it carries, how it is cut.

tests/unit/test_jobs.py checks that problems are found; here every outcome is pinned whole: the
JobSpec a producer's call becomes (kind, meta, phones, payloads, counts), each problem's field
and masked message, and the chunk sizes at the per-call limits the vendor manuals give.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from dispatcher import jobs
from dispatcher.errors import Problem, ValidationError
from dispatcher.jobs import JobSpec
from dispatcher.providers.aiofish.jobs import content_job
from dispatcher.providers.opass.jobs import template_job
from dispatcher.providers.registry import chunk_limits

P1, P2, P3 = "13800000001", "13800000002", "13800000003"
SIGNED = "【沙箱】您的验证码是493817"
NEED_11 = " (expected an 11-digit mainland mobile)"
SIGNATURE = "must carry a 【signature】 (1-20 characters in 【】)"


def problems(call: Any, **kwargs: Any) -> list[tuple[str, str]]:
    """Every (field, message) the call is refused with, in the order found."""
    with pytest.raises(ValidationError) as err:
        call("demo", **kwargs)
    return [(p.field, p.message) for p in err.value.problems]


def opass_meta(kind: str, **changes: str) -> dict[str, str]:
    """The meta an opass job stores, with the defaults a bare call gives."""
    return {"priority": "bulk", "send_at_ms": "0", "kind": kind, "provider": "opass", "account": "demo",
            "template_code": "1000000000000000002", "params": "[]", "extend_code": "", "tag": "", **changes}


def aiofish_meta(kind: str, **changes: str) -> dict[str, str]:
    """The meta an aiofish job stores, with the defaults a bare call gives."""
    return {"priority": "bulk", "send_at_ms": "0", "kind": kind, "provider": "aiofish", "account": "demo",
            "content": "", "sub_code": "", "tag": "", **changes}


# -- what a JobSpec carries --------------------------------------------------------------------------


def test_a_template_job_carries_every_field_the_sender_needs() -> None:
    """Template code stripped, params as JSON keeping Chinese as is, extend code, bid, priority, send time."""
    spec = template_job("demo", template_code=" 1000000000000000002 ", phones=[P1, P2], params=["张三", 7],
                        extend_code="15", bid="j.0.1", priority="otp", send_at_ms=1_700_000_000_000)
    assert spec == JobSpec("opass.send", "opass", "demo", opass_meta(
        "opass.send", priority="otp", send_at_ms="1700000000000", params='["张三", "7"]', extend_code="15",
        tag="j.0.1"), [P1, P2], None, 0, ())


def test_a_per_phone_template_job_carries_each_phones_params() -> None:
    spec = template_job("demo", template_code="1000000000000000002", recipients=[(P1, ["a"]), (P2, ["b"])])
    assert spec == JobSpec("opass.batch", "opass", "demo", opass_meta("opass.batch"), [P1, P2], [["a"], ["b"]])


def test_a_content_job_carries_its_content_and_codes() -> None:
    spec = content_job("demo", content=SIGNED, phones=[P1], sub_code="0012", sms_id="j.0.1",
                       priority="otp", send_at_ms=0)
    assert spec == JobSpec("aiofish.send", "aiofish", "demo", aiofish_meta(
        "aiofish.send", priority="otp", content=SIGNED, sub_code="0012", tag="j.0.1"), [P1])


def test_a_per_phone_content_job_carries_each_phones_text() -> None:
    spec = content_job("demo", recipients=[(P1, SIGNED), (P2, "【沙箱】b")])
    assert spec == JobSpec("aiofish.batch", "aiofish", "demo", aiofish_meta("aiofish.batch"), [P1, P2],
                           [SIGNED, "【沙箱】b"])


# -- recipients: normalised, in the caller's order, each once ---------------------------------------------


def test_recipients_keep_the_callers_order_and_their_first_occurrence() -> None:
    """Prefixes and blanks go, repeats are dropped and counted; the rest stays in the order given."""
    spec = template_job("demo", template_code="1000000000000000002",
                        phones=[P3, "+8613800000001", P3, f" {P2} ", "008613800000001", P3])
    assert (spec.phones, spec.duplicates, spec.payloads) == ([P3, P1, P2], 3, None)


def test_a_repeated_phone_keeps_its_first_payload() -> None:
    spec = content_job("demo", recipients=[(P2, "【沙箱】first"), (P1, "【沙箱】x"), ("+86" + P2, "【沙箱】second")])
    assert (spec.phones, spec.payloads, spec.duplicates) == ([P2, P1], ["【沙箱】first", "【沙箱】x"], 1)


def _phones() -> Iterator[str]:
    yield from (P1, P2)


@pytest.mark.parametrize("given", [lambda: (P1, P2), _phones], ids=["tuple", "generator"])
def test_any_iterable_of_phones_becomes_a_list(given: Callable[[], Iterable[str]]) -> None:
    """A tuple or a generator is taken whole, and the job holds a list (what the ledger stores)."""
    assert content_job("demo", content=SIGNED, phones=given()).phones == [P1, P2]


def test_every_bad_phone_is_named_by_index_and_masked() -> None:
    """Each bad value has its own problem at its index; a number shows masked, never whole."""
    assert problems(template_job, template_code="1000000000000000002",
                    phones=[P1, "1380000", "abc", "23800000001", 13800000001, "  "]) == [
        ("phones[1]", "'*******' is not a valid number" + NEED_11),
        ("phones[2]", "'***' is not a valid number" + NEED_11),
        ("phones[3]", "'238****0001' is not a valid number" + NEED_11),
        ("phones[4]", "expected a string, got int" + NEED_11),
        ("phones[5]", "is empty" + NEED_11),
    ]


def test_every_bad_recipient_pair_is_named_and_the_rest_still_checked() -> None:
    """A non-pair (even a 2-character string) is named as such, and checking goes on after it."""
    assert problems(content_job, recipients=[(P1, SIGNED), "ab", (P2,), ("23800000001", SIGNED),
                                             [P3, "no signature"]]) == [
        ("recipients[1]", "must be a (phone, value) pair"),
        ("recipients[2]", "must be a (phone, value) pair"),
        ("recipients[3].phone", "'238****0001' is not a valid number" + NEED_11),
        ("recipients[4].content", SIGNATURE),
    ]


def test_skip_invalid_sets_bad_phones_aside_with_their_problems() -> None:
    """With skip_invalid the good phones are sent and the bad ones listed; without it the job is refused."""
    spec = content_job("demo", content=SIGNED, phones=[P1, "23800000001", P2], skip_invalid=True)
    assert (spec.phones, spec.invalid) == ([P1, P2], (Problem("phones[1]", "'238****0001' is not a valid number"
                                                              + NEED_11),))
    assert problems(content_job, content=SIGNED, phones=[P1, "23800000001"]) == [
        ("phones[1]", "'238****0001' is not a valid number" + NEED_11)]


@pytest.mark.parametrize(("call", "kwargs", "field"), [
    (template_job, {"template_code": "1000000000000000002", "phones": []}, "phones"),
    (content_job, {"recipients": []}, "recipients"),
    (content_job, {"content": SIGNED, "phones": ["bad"], "skip_invalid": True}, "phones"),
], ids=["no-phones", "no-recipients", "all-skipped"])
def test_a_job_without_a_valid_recipient_is_refused(call: Any, kwargs: dict[str, Any], field: str) -> None:
    assert problems(call, **kwargs) == [(field, "no valid recipient")]


@pytest.mark.parametrize("kwargs", [{}, {"phones": [P1], "recipients": [(P1, SIGNED)]}], ids=["neither", "both"])
def test_phones_and_recipients_are_one_or_the_other(kwargs: dict[str, Any]) -> None:
    assert problems(template_job, template_code="1000000000000000002", **kwargs) == [
        ("phones", "give either phones (same message for all) or recipients (per phone), not both")]


def test_a_job_holds_at_most_max_job_recipients(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cap counts distinct phones: exactly the cap passes, one more is refused by name.

    Ten million numbers do not fit a unit test, so the cap is lowered to 3 here.
    """
    monkeypatch.setattr(jobs, "MAX_JOB_RECIPIENTS", 3)
    # "+86…" takes the per-item loop, where the cap is counted.
    assert content_job("demo", content=SIGNED, phones=["+86" + P1, P2, P3, P2]).phones == [P1, P2, P3]
    assert problems(content_job, content=SIGNED, phones=["+86" + P1, P2, P3, "13800000004"]) == [
        ("phones", "more than 3 recipients in one job")]
    assert problems(content_job, recipients=[(p, SIGNED) for p in (P1, P2, P3, "13800000004")]) == [
        ("recipients", "more than 3 recipients in one job")]


# -- the other fields ---------------------------------------------------------------------------------


def test_each_template_job_field_problem_is_exact() -> None:
    assert problems(template_job, template_code=" ", phones=[P1], params=["x"], recipients=[(P1, ["x"])],
                    priority="urgent", send_at_ms=-1) == [
        ("template_code", "must be the approved template's code"),
        ("params", "give params (same for all) or recipients (per phone), not both"),
        ("priority", "must be one of ('otp', 'bulk'), got 'urgent'"),
        ("send_at", "must be a datetime or epoch milliseconds"),
        ("phones", "give either phones (same message for all) or recipients (per phone), not both"),
    ]


def test_each_content_job_field_problem_is_exact() -> None:
    assert problems(content_job, content="no signature", phones=[P1], priority="now", send_at_ms="soon") == [
        ("content", SIGNATURE),
        ("priority", "must be one of ('otp', 'bulk'), got 'now'"),
        ("send_at", "must be a datetime or epoch milliseconds"),
    ]
    assert problems(content_job, content=SIGNED, recipients=[(P1, SIGNED)]) == [
        ("content", "give content (same for all) or recipients (per phone), not both")]
    assert problems(content_job, content=None, phones=[P1]) == [("content", "must be a string, got NoneType")]


@pytest.mark.parametrize(("send_at_ms", "stored"), [(None, "0"), (0, "0"), (1, "1"), (1_700_000_000_000,
                                                                                     "1700000000000")])
def test_a_send_time_from_zero_up_is_stored_as_given(send_at_ms: int | None, stored: str) -> None:
    """Epoch 0 and later are times (0 and none both mean now); only negative ones are refused."""
    assert content_job("demo", content=SIGNED, phones=[P1], send_at_ms=send_at_ms).meta["send_at_ms"] == stored


def test_per_phone_params_of_different_counts_name_the_first_odd_one() -> None:
    assert problems(template_job, template_code="1000000000000000002",
                    recipients=[(P1, ["a"]), (P2, ["a"]), (P3, ["a", "b"])]) == [
        ("recipients[2]", "every recipient needs the same number of values; found 1 (first at recipients[0]), "
                          "2 (first at recipients[2])")]


# -- the JobSpec repr ------------------------------------------------------------------------------------


def test_a_job_spec_repr_shows_keys_masked_phones_and_counts_only() -> None:
    """The whole repr: meta by its keys (it holds content and params), phones masked, payloads by size."""
    spec = template_job("demo", template_code="1000000000000000002", phones=[P1, P2, P1, "bad"],
                        params=["493817"], skip_invalid=True)
    assert repr(spec) == (
        "JobSpec(kind='opass.send', account='demo', meta=<keys: priority, send_at_ms, kind, provider, account, "
        "template_code, params, extend_code, tag>, phones=(138****0001, 138****0002; 2 in all), "
        "payloads=None, duplicates=1, invalid=1, suppressed=0)")
    batch = content_job("demo", recipients=[(P1, SIGNED), (P2, SIGNED)])
    assert repr(batch) == (
        "JobSpec(kind='aiofish.batch', account='demo', meta=<keys: priority, send_at_ms, kind, provider, account, "
        "content, sub_code, tag>, phones=(138****0001, 138****0002; 2 in all), payloads=<2 items>, "
        "duplicates=0, invalid=0, suppressed=0)")


# -- chunks at the manuals' per-call limits -------------------------------------------------------------


def test_the_chunk_limits_are_the_manuals_per_call_limits() -> None:
    """opass: 1000 phones per /message/send and /message/sendBatch call (000_…: 最多可以向1000个手机号码);
    aiofish: 2000 per sendSms (单次提交数量不超过2000个), 200 per batchSendSms (提交数量不超过200个)."""
    sms = {k: v for k, v in chunk_limits().items() if k.split(".")[0] in ("opass", "aiofish")}
    assert sms == {"opass.send": 1000, "opass.batch": 1000, "aiofish.send": 2000, "aiofish.batch": 200}


def _numbers(n: int) -> list[str]:
    return [f"139{i:08d}" for i in range(n)]


@pytest.mark.parametrize(("kind", "count", "sizes"), [
    ("opass.send", 999, [999]), ("opass.send", 1000, [1000]), ("opass.send", 1001, [1000, 1]),
    ("opass.batch", 2001, [1000, 1000, 1]),
    ("aiofish.send", 1999, [1999]), ("aiofish.send", 2000, [2000]), ("aiofish.send", 2001, [2000, 1]),
    ("aiofish.batch", 199, [199]), ("aiofish.batch", 200, [200]), ("aiofish.batch", 401, [200, 200, 1]),
])
def test_chunks_are_cut_at_the_limit_in_order(kind: str, count: int, sizes: list[int]) -> None:
    """At, below and above each limit: full chunks first, the rest last, phones and payloads side by side."""
    phones = _numbers(count)
    if kind == "opass.send":
        spec = template_job("demo", template_code="1000000000000000002", phones=phones)
    elif kind == "opass.batch":
        spec = template_job("demo", template_code="1000000000000000002", recipients=[(p, [p]) for p in phones])
    elif kind == "aiofish.send":
        spec = content_job("demo", content=SIGNED, phones=phones)
    else:
        spec = content_job("demo", recipients=[(p, f"【沙箱】{p}") for p in phones])
    assert spec.kind == kind
    chunks = list(spec.chunks(chunk_limits()[kind]))
    assert [len(c.phones) for c in chunks] == sizes
    assert [p for c in chunks for p in c.phones] == phones
    if spec.payloads is None:
        assert all(c.payloads is None for c in chunks)
    else:
        assert [len(c.payloads or ()) for c in chunks] == sizes
        assert [v for c in chunks for v in c.payloads or ()] == spec.payloads
