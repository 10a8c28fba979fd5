"""Every aiofish input rule, one case each: the error names the field and the item, and nothing is sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dispatcher.errors import ValidationError
from dispatcher.providers.aiofish import requests as rq
from dispatcher.providers.aiofish import vsms as mv
from dispatcher.providers.aiofish.client import AiofishClient
from dispatcher.providers.aiofish.vsms import AiofishIsmsClient, AiofishVsmsClient, Frame
from tests.unit.test_aiofish_requests import NOW_MS, make_account, recording_session

OK = "【沙箱】您好"
P1, P2 = "13800000001", "13800000002"
PAST = "2023-11-14 00:00:00"  # before NOW_MS (2023-11-15 06:13:20 China time)
FUTURE = "2030-01-01 00:00:00"


def many(n: int, prefix: str = "138") -> list[str]:
    return [f"{prefix}{i:08d}" for i in range(n)]


def send(phones: Any = (P1,), content: Any = OK, **kw: Any) -> Callable[[], object]:
    return lambda: rq.plan_send(make_account(), list(phones) if isinstance(phones, tuple) else phones, content,
                                now_ms=NOW_MS, **kw)


def batch(items: Any, **kw: Any) -> Callable[[], object]:
    return lambda: rq.plan_batch(make_account("full"), items, now_ms=NOW_MS, **kw)


def vsms(phones: Any = (P1,), tpl: Any = "tpl1", **kw: Any) -> Callable[[], object]:
    return lambda: mv.plan_vsms_send("k", tpl, list(phones) if isinstance(phones, tuple) else phones,
                                     now_ms=NOW_MS, **kw)


def vsms_vars(recipients: Any, **kw: Any) -> Callable[[], object]:
    return lambda: mv.plan_vsms_vars("k", "tpl1", recipients, now_ms=NOW_MS, **kw)


def isms(phones: Any = ("85212341234",), content: Any = "hello", **kw: Any) -> Callable[[], object]:
    return lambda: mv.plan_isms("k", content, list(phones) if isinstance(phones, tuple) else phones,
                                now_ms=NOW_MS, **kw)


def template(title: Any = "双十一", frames: Any = None, files: Any = None) -> Callable[[], object]:
    frames = [Frame.of_file(1, 1, "a.jpg"), Frame.of_text(1, 2, "【沙箱】#p_1#您好")] if frames is None else frames
    files = {"a.jpg": b"\xff\xd8"} if files is None else files
    return lambda: mv.plan_template("k", title, frames, files, ts=str(NOW_MS))


# The case names stay ASCII: pytest escapes a non-ASCII explicit id again each time it collects
# in one process, so mutmut's fork server (which collects once before forking) could not find
# such a test by its id and counted every mutant it guards as killed.
RULES: dict[str, tuple[Callable[[], object], str]] = {
    # sendSms (all three variants share these checks)
    "send: a phone must be an 11-digit mainland mobile": (send((P1, "1380000000")), "phones[1]"),
    "send: a phone must be text": (send((13800000001,)), "phones[0]"),
    "send: phones must be a list, not one string": (send(P1), "phones"),
    "send: phones must not be empty": (send(()), "phones"),
    "send: at most 2000 distinct phones": (send(tuple(many(2001))), "phones"),
    "send: content must not be empty": (send(content="  "), "content"),
    "send: content must be text": (send(content=None), "content"),
    "send: content at most 500 characters": (send(content="【沙箱】" + "长" * 497), "content"),
    "send: content must carry a signature": (send(content="您好"), "content"),
    "send: sms_id at most 32 characters": (send(sms_id="x" * 33), "sms_id"),
    "send: sms_id plain characters only": (send(sms_id="job 1"), "sms_id"),
    "send: sub_code digits only": (send(sub_code="12a"), "sub_code"),
    "send: send_time yyyy-MM-dd HH:mm:ss": (send(send_time="2030/01/01 00:00"), "send_time"),
    # batchSendSms
    "batch: items must be a list": (batch("13800000001"), "items"),
    "batch: each item is a (phone, content) pair": (batch([(P1, OK), (P2,)]), "items[1]"),
    "batch: at most 200 distinct phones": (batch([(p, OK) for p in many(201)]), "items"),
    "batch: each phone is a mainland mobile": (batch([(P1, OK), ("+1 555", OK)]), "items[1]"),
    "batch: each content must not be empty": (batch([(P1, OK), (P2, "")]), "items[1].content"),
    "batch: each content carries a signature": (batch([(P1, "hi"), (P2, OK)]), "items[0].content"),
    "batch: each content at most 500 characters": (batch([(P1, OK + "x" * 500)]), "items[0].content"),
    "batch: the shared options are checked too": (batch([(P1, OK)], sub_code="-1"), "sub_code"),
    # vsms
    "vsms: tpl_id must be given": (vsms(tpl=""), "tpl_id"),
    "vsms: a phone must be a mainland mobile": (vsms(("85212341234",)), "phones[0]"),
    "vsms: at most 1000 distinct phones": (vsms(tuple(many(1001))), "phones"),
    "vsms: uuid at most 64 characters": (vsms(uuid="u" * 65), "uuid"),
    "vsms: schedule_time must be later than now": (vsms(schedule_time=PAST), "schedule_time"),
    "vsms: schedule_time yyyy-MM-dd HH:mm:ss": (vsms(schedule_time="tomorrow"), "schedule_time"),
    "vars: each recipient is a (phone, vars) pair": (vsms_vars([P1]), "recipients[0]"),
    "vars: each phone is a mainland mobile": (vsms_vars([(P1, ["a"]), ("1", ["b"])]), "recipients[1]"),
    "vars: at most 5 values": (vsms_vars([(P1, list("abcdef"))]), "recipients[0].vars"),
    "vars: each value at most 15 characters": (vsms_vars([(P1, ["a", "x" * 16])]), "recipients[0].vars[1]"),
    "vars: each value is text": (vsms_vars([(P1, [None])]), "recipients[0].vars[0]"),
    "vars: every recipient gives the same count": (vsms_vars([(P1, ["a"]), (P2, ["a", "b"])]), "recipients[1].vars"),
    "vars: at most 1000 distinct phones": (vsms_vars([(p, ["a"]) for p in many(1001)]), "recipients"),
    # vsms templates
    "template: title must not be empty": (template(title=""), "title"),
    "template: title at most 100 characters": (template(title="t" * 101), "title"),
    "template: frames must not be empty": (template(frames=[]), "frames"),
    "template: frames are Frame values": (template(frames=[{"text": "x"}]), "frames[0]"),
    "template: a file frame names an uploaded file": (template(frames=[Frame.of_file(1, 1, "b.jpg")]),
                                                      "frames[0].text"),
    "template: variables are #p_1#..#p_5#": (template(frames=[Frame.of_text(1, 1, "【沙箱】#p_6#")]),
                                             "frames[0].text"),
    "template: a text frame is not empty": (template(frames=[Frame.of_text(1, 1, "")]), "frames[0].text"),
    "template: ext_type is 1 or 2": (template(frames=[Frame(1, 1, 3, "x")]), "frames[0].ext_type"),
    "template: frame_index from 1": (template(frames=[Frame.of_text(0, 1, "x")]), "frames[0].frame_index"),
    "template: order_by from 1": (template(frames=[Frame.of_text(1, -1, "x")]), "frames[0].order_by"),
    "template: no two items at one position": (template(frames=[Frame.of_text(1, 1, "x"), Frame.of_text(1, 1, "y")]),
                                               "frames[1]"),
    "template: files must be a mapping": (template(files=[b"x"]), "files"),
    "template: a file needs bytes": (template(files={"a.jpg": b""}), "files['a.jpg']"),
    # isms
    "isms: a phone carries a country code": (isms(("0852123",)), "phones[0]"),
    "isms: content must not be empty": (isms(content=""), "content"),
    "isms: at most 1000 distinct phones": (isms(tuple(many(1001, "852"))), "phones"),
    "isms: schedule_time must be later than now": (isms(schedule_time=PAST), "schedule_time"),
}


# pytest.param ids, not ids=: pytest re-escapes explicit non-ASCII ids when one process collects twice
# (mutmut does), so "【signature】" cases were "not found" and the mutation run stopped.
@pytest.mark.parametrize(("call", "field"), [pytest.param(*case, id=name) for name, case in RULES.items()])
def test_each_rule_names_its_field_and_item(call: Callable[[], object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        call()
    assert err.value.fields == (field,)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as err:
        send((P1, "1", 7), content="no signature", sms_id="x" * 33, sub_code="a", send_time="soon")()
    assert set(err.value.fields) == {"phones[1]", "phones[2]", "content", "sms_id", "sub_code", "send_time"}


def test_a_rejected_phone_is_masked_in_the_message() -> None:
    with pytest.raises(ValidationError) as err:
        send(("138000000012",))()
    assert "138000000012" not in str(err.value) and "138****0012" in str(err.value)


def test_valid_edges_pass() -> None:
    rq.plan_send(make_account(), many(2000), "【沙箱】" + "长" * 496, sms_id="x" * 32, sub_code="0123",
                 send_time=FUTURE, now_ms=NOW_MS)
    rq.plan_batch(make_account(), [(p, OK) for p in many(200)], now_ms=NOW_MS)
    mv.plan_vsms_vars("k", "t", [(P1, ["x" * 15] * 5)], now_ms=NOW_MS, schedule_time=FUTURE)
    mv.plan_isms("k", "hi", many(1000, "852"), now_ms=NOW_MS)


def test_invalid_input_sends_nothing() -> None:
    session, adapter = recording_session()
    account = make_account()
    with pytest.raises(ValidationError):
        AiofishClient(account, session=session).send(["1"], OK)
    with pytest.raises(ValidationError):
        AiofishClient(account, session=session).send_batch([(P1, "")])
    with pytest.raises(ValidationError):
        AiofishVsmsClient(account, session=session).send("t", ["1"])
    with pytest.raises(ValidationError):
        AiofishVsmsClient(account, session=session).submit_template("", [], {})
    with pytest.raises(ValidationError):
        AiofishVsmsClient(account, session=session).template_status(" ")
    with pytest.raises(ValidationError):
        AiofishIsmsClient(account, session=session).send("hi", ["1"])
    assert adapter.requests == []
