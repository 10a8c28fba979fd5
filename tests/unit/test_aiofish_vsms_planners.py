"""vsms/isms request planners and answer parsers, pure: exact bodies, messages and error classes.

Field names and shapes come from the aiofish manual's video SMS and international SMS
pages (SPEC.md digest): ``{appKey, ts, tplId, mobiles[], uuid?, scheduleTime?}``, vars as
``[{phone, vars}]``, ``x-sign`` = MD5 hex of ``appKey,ts,appSecret``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from dispatcher.errors import AmbiguousError, RecipientRejectedError, ThrottledError, TransientError, ValidationError
from dispatcher.providers.aiofish import vsms as mv
from dispatcher.providers.aiofish.vsms import Frame

NOW_MS = 1_700_000_000_000  # 2023-11-15 06:13:20 China time
P1, P2 = "13812345678", "13987654321"


def problems(call: Any, *args: Any, **kw: Any) -> list[str]:
    with pytest.raises(ValidationError) as err:
        call(*args, **kw)
    return [str(p) for p in err.value.problems]


# -- signing -----------------------------------------------------------------------------------------


def test_sign_headers_are_the_md5_of_app_key_ts_and_secret_comma_joined() -> None:
    expected = hashlib.md5(b"app-key,1700000000000,app-secret").hexdigest()
    assert mv.sign_headers("app-key", "app-secret", "1700000000000") == {"x-sign": expected}


# -- the plans ---------------------------------------------------------------------------------------


def test_a_vsms_send_body_is_the_manuals_fields() -> None:
    plan = mv.plan_vsms_send("app-key", "tpl-9", [P1, P2, P1], uuid="u-1", schedule_time="2030-01-01 08:00:00",
                             now_ms=NOW_MS)
    assert (plan.path, plan.phones, plan.duplicates, plan.uuid) == ("/rest/vsms/v1/message", (P1, P2), (P1,), "u-1")
    assert plan.body == {"appKey": "app-key", "ts": "1700000000000", "tplId": "tpl-9", "mobiles": [P1, P2],
                         "uuid": "u-1", "scheduleTime": "2030-01-01 08:00:00"}


def test_a_vsms_vars_body_pairs_each_phone_with_its_values() -> None:
    plan = mv.plan_vsms_vars("app-key", "tpl-9", [(P1, ["张三", "1"]), (P2, ["李四", 2]), (P1, ["x", "y"])],
                             uuid="u-2", schedule_time="2030-01-01 08:00:00", now_ms=NOW_MS)
    assert (plan.path, plan.phones, plan.duplicates, plan.uuid) == ("/rest/vsms/v1/message/vars", (P1, P2), (P1,),
                                                                    "u-2")
    # A repeated phone keeps its first values; integer values travel as text.
    assert plan.body == {"appKey": "app-key", "ts": "1700000000000", "tplId": "tpl-9",
                         "mobiles": [{"phone": P1, "vars": ["张三", "1"]}, {"phone": P2, "vars": ["李四", "2"]}],
                         "uuid": "u-2", "scheduleTime": "2030-01-01 08:00:00"}


def test_an_isms_body_carries_digits_with_country_code_and_the_uuid() -> None:
    plan = mv.plan_isms("app-key", "Hello", ["+85212341234", "0085212341234", "447911123456"], uuid="u-3",
                        schedule_time="2030-01-01 08:00:00", now_ms=NOW_MS)
    assert (plan.path, plan.phones, plan.duplicates, plan.uuid) == (
        "/rest/isms/sendIsms", ("85212341234", "447911123456"), ("85212341234",), "u-3")
    assert plan.body == {"appKey": "app-key", "ts": "1700000000000", "content": "Hello",
                         "mobiles": ["85212341234", "447911123456"], "uuid": "u-3",
                         "scheduleTime": "2030-01-01 08:00:00"}


def test_a_media_plan_shows_keys_masked_phones_counts_and_uuid_exactly() -> None:
    """The body holds phones and per-phone values: the repr shows key names, masked phones and counts."""
    plan = mv.plan_vsms_vars("app-key", "tpl-9", [(P1, ["493817"]), (P2, ["493817"]), (P1, ["1"])], uuid="u-1",
                             now_ms=NOW_MS)
    assert repr(plan) == (
        "MediaPlan(path='/rest/vsms/v1/message/vars', body=<keys: appKey, ts, tplId, mobiles, uuid>, "
        "phones=(138****5678, 139****4321; 2 in all), duplicates=(138****5678; 1 in all), uuid='u-1')"
    )


def test_a_template_form_is_compact_json_data_then_each_file_with_its_type() -> None:
    frames = [Frame.of_file(1, 1, "a.jpg"), Frame.of_text(1, 2, "【沙箱】#p_1#您好")]
    files = {"a.jpg": b"\xff\xd8", "clip.vsmsblob": bytearray(b"\x00\x01")}
    form = mv.plan_template("app-key", "双十一", frames, files, ts="1700000000000")
    assert form == [
        ("data", (None, '{"appKey":"app-key","ts":"1700000000000","title":"双十一","content":['
                        '{"orderBy":1,"frameIndex":1,"extType":2,"text":"a.jpg"},'
                        '{"orderBy":2,"frameIndex":1,"extType":1,"text":"【沙箱】#p_1#您好"}]}')),
        ("file", ("a.jpg", b"\xff\xd8", "image/jpeg")),
        # A name with no known type goes as bytes.
        ("file", ("clip.vsmsblob", b"\x00\x01", "application/octet-stream")),
    ]


def test_a_text_frame_may_use_every_variable_from_p_1_to_p_5() -> None:
    frame = Frame.of_text(1, 1, "#p_1##p_2##p_3##p_4##p_5#")
    assert len(mv.plan_template("k", "t", [frame], {}, ts="1")) == 1


@pytest.mark.parametrize("text", ["#p_6#", "#p_0#", "#p_10#", "#p_a#", "#p_#"])
def test_a_text_frame_refuses_any_other_variable(text: str) -> None:
    """Only #p_1#..#p_5# are filled; anything else of that form would reach the phone as is."""
    assert problems(mv.plan_template, "k", "t", [Frame.of_text(1, 1, f"【沙箱】{text}")], {}, ts="1") == [
        "frames[0].text: variables are #p_1#..#p_5# only"
    ]


# -- what the messages say ---------------------------------------------------------------------------


def test_template_messages_say_what_is_wrong_and_where() -> None:
    frames = [Frame.of_text(1, 1, "#p_6# and #p_0#"), "not a frame", Frame(True, 0, 1, "x"), Frame(1, 2, 3, "x"),
              Frame.of_file(2, 1, "missing.jpg"), Frame.of_text(1, 1, "again")]
    assert problems(mv.plan_template, "k", "t", frames, {"": b"x", "ok.jpg": "not bytes"}, ts="1") == [
        "files['']: needs a non-empty name and non-empty bytes",
        "files['ok.jpg']: needs a non-empty name and non-empty bytes",
        "frames[0].text: variables are #p_1#..#p_5# only",
        "frames[1]: must be a Frame",
        "frames[2].frame_index: must be an integer ≥ 1",
        "frames[2].order_by: must be an integer ≥ 1",
        "frames[3].ext_type: must be 1 (text) or 2 (file)",
        "frames[4].text: names a file that is not among files",
        "frames[5]: repeats the frame_index and order_by of an earlier item",
    ]


def test_files_and_frames_of_the_wrong_type_are_named_once() -> None:
    assert problems(mv.plan_template, "k", "t", "abc", None, ts="1") == [
        "files: must map file names to their bytes",
        "frames: must be a non-empty list of Frame",
    ]
    assert problems(mv.plan_template, "k", "t", [Frame.of_text(1, 1, "x")], {"  ": b"x"}, ts="1") == [
        "files['  ']: needs a non-empty name and non-empty bytes"
    ]


def test_vsms_messages_say_what_is_wrong_and_where() -> None:
    assert problems(mv.plan_vsms_send, "k", " tpl", [P1], now_ms=NOW_MS) == [
        "tpl_id: must be a non-empty template id without spaces"
    ]
    assert problems(mv.plan_vsms_vars, "k", "", [(P1, ["a"])], now_ms=NOW_MS) == [
        "tpl_id: must be a non-empty template id without spaces"
    ]
    assert problems(mv.plan_vsms_vars, "k", "tpl", P1, now_ms=NOW_MS) == [
        "recipients: must be a list of (phone, vars) pairs"
    ]
    assert problems(mv.plan_vsms_vars, "k", "tpl", [(P1, ["a"]), "ab"], now_ms=NOW_MS) == [
        "recipients[1]: must be a (phone, vars) pair"
    ]
    assert problems(mv.plan_vsms_vars, "k", "tpl", [(P1, ["a", "b"]), (P2, ["c"])], now_ms=NOW_MS) == [
        "recipients[1].vars: has 1 values; recipients[0] has 2"
    ]


def test_schedule_time_must_be_later_than_now_in_china_time() -> None:
    """NOW_MS is 2023-11-15 06:13:20 in China: that very second is refused, the next one accepted."""
    assert problems(mv.plan_vsms_send, "k", "tpl", [P1], schedule_time="2023-11-15 06:13:20", now_ms=NOW_MS) == [
        "schedule_time: 2023-11-15 06:13:20 (China time) is not later than now"
    ]
    # Read as UTC this would be 8 hours ahead of now; in China time it is past.
    assert problems(mv.plan_isms, "k", "hi", ["85212341234"], schedule_time="2023-11-15 00:00:00",
                    now_ms=NOW_MS) == ["schedule_time: 2023-11-15 00:00:00 (China time) is not later than now"]
    plan = mv.plan_vsms_send("k", "tpl", [P1], schedule_time="2023-11-15 06:13:21", now_ms=NOW_MS)
    assert plan.body["scheduleTime"] == "2023-11-15 06:13:21"


def test_vars_options_and_isms_uuid_are_checked() -> None:
    assert problems(mv.plan_vsms_vars, "k", "tpl", [(P1, ["a"])], uuid="u 1", schedule_time="soon",
                    now_ms=NOW_MS) == [
        "uuid: may only contain letters, digits and _ . : -",
        "schedule_time: must be a datetime or text like 2025-01-31 08:00:00",
    ]
    assert problems(mv.plan_isms, "k", "hi", ["85212341234"], uuid="u" * 65, now_ms=NOW_MS) == [
        "uuid: is 65 characters; at most 64"
    ]


# -- answers -----------------------------------------------------------------------------------------


def _plan() -> mv.MediaPlan:
    return mv.plan_vsms_send("k", "tpl", [P1, P2, P1], uuid="u-1", now_ms=NOW_MS)


def test_a_sent_answer_becomes_a_result_of_this_account() -> None:
    result = mv.parse_sent({"code": "success", "msgId": "m1"}, _plan(), provider=mv.ISMS, account="unit")
    assert (result.provider, result.account, result.message_id, result.client_id) == ("aiofish-isms", "unit", "m1",
                                                                                      "u-1")
    assert (result.accepted, result.failed, result.duplicates) == ((P1, P2), (), (P1,))


def test_success_without_msg_id_is_ambiguous_and_says_so() -> None:
    with pytest.raises(AmbiguousError) as err:
        mv.parse_sent({"code": "success"}, _plan(), provider=mv.VSMS, account="unit")
    assert str(err.value) == "aiofish-vsms:unit [code success] success without msgId; the send may have been taken"
    assert (err.value.provider, err.value.account, err.value.code) == ("aiofish-vsms", "unit", "success")


def test_an_answer_without_code_is_ambiguous_for_a_send_and_transient_for_a_query() -> None:
    with pytest.raises(AmbiguousError) as sent:
        mv.parse_sent({"msgId": "m1"}, _plan(), provider=mv.ISMS, account="unit")
    assert str(sent.value) == "aiofish-isms:unit answer carries no code"
    with pytest.raises(TransientError) as status:
        mv.parse_template_status({}, "tpl", account="unit")
    assert str(status.value) == "aiofish-vsms:unit answer carries no code"


def test_the_gateways_own_text_is_kept_with_phones_masked() -> None:
    with pytest.raises(RecipientRejectedError) as err:
        mv.parse_sent({"code": "invalid_mobile", "msg": f"号码 {P1} 无效"}, _plan(), provider=mv.VSMS, account="unit")
    assert str(err.value) == "aiofish-vsms:unit [code invalid_mobile] 号码 138****5678 无效"
    assert (err.value.provider, err.value.account) == ("aiofish-vsms", "unit")
    # Some answers say "message" instead of "msg".
    with pytest.raises(RecipientRejectedError) as other:
        mv.parse_sent({"code": "invalid_mobile", "message": f"bad {P2}"}, _plan(), provider=mv.VSMS, account="u")
    assert str(other.value) == "aiofish-vsms:u [code invalid_mobile] bad 139****4321"


def test_request_limit_asks_to_retry_after_a_second() -> None:
    with pytest.raises(ThrottledError) as err:
        mv.parse_sent({"code": "request_limit"}, _plan(), provider=mv.VSMS, account="unit")
    assert err.value.retry_after_s == 1.0


def test_an_error_code_is_ambiguous_for_a_submit_and_transient_for_a_status_query() -> None:
    """``error`` may hide a created template; a status query can simply be asked again."""
    with pytest.raises(AmbiguousError) as submit:
        mv.parse_submitted({"code": "error"}, account="unit")
    assert (submit.value.provider, submit.value.account) == ("aiofish-vsms", "unit")
    with pytest.raises(TransientError) as status:
        mv.parse_template_status({"code": "error"}, "tpl", account="unit")
    assert not isinstance(status.value, AmbiguousError)
    assert (status.value.provider, status.value.account) == ("aiofish-vsms", "unit")


def test_a_submit_without_tpl_id_is_ambiguous_and_says_so() -> None:
    with pytest.raises(AmbiguousError) as err:
        mv.parse_submitted({"code": "success"}, account="unit")
    assert str(err.value) == (
        "aiofish-vsms:unit [code success] success without tplId; the template may have been created"
    )
    assert err.value.code == "success"
    assert mv.parse_submitted({"code": "success", "tplId": "tpl-9"}, account="unit") == "tpl-9"


def test_a_status_answer_reads_the_audit_and_prefers_the_gateways_tpl_id() -> None:
    status = mv.parse_template_status({"code": "success", "tplId": "tpl-9", "auditStatus": "400",
                                       "auditReason": "图片不清晰"}, "tpl-asked", account="unit")
    assert (status.tpl_id, status.audit_status, status.reason) == ("tpl-9", 400, "图片不清晰")
    # Without a tplId in the answer, the one asked about.
    assert mv.parse_template_status({"code": "success", "auditStatus": 200}, "tpl-asked", account="u").tpl_id == \
        "tpl-asked"


@pytest.mark.parametrize("audit", [None, "pending", "２００"])
def test_an_unreadable_audit_status_is_transient_and_says_so(audit: object) -> None:
    with pytest.raises(TransientError) as err:
        mv.parse_template_status({"code": "success", "auditStatus": audit}, "tpl", account="unit")
    assert str(err.value) == "aiofish-vsms:unit answer has no auditStatus"


# -- the limits (module constants: mutmut leaves them alone, these tests guard them) -------------------


def many(n: int, prefix: str = "138") -> list[str]:
    return [f"{prefix}{i:08d}" for i in range(n)]


def test_a_call_carries_at_most_1000_phones() -> None:
    """The manual gives mobile_limit no number; ours is 1000 (the sandbox's default too)."""
    assert len(mv.plan_vsms_send("k", "tpl", many(1000), now_ms=NOW_MS).phones) == 1000
    assert problems(mv.plan_vsms_send, "k", "tpl", many(1001), now_ms=NOW_MS) == [
        "phones: has 1001 distinct numbers; at most 1000 per call"
    ]
    assert problems(mv.plan_vsms_vars, "k", "tpl", [(p, ["a"]) for p in many(1001)], now_ms=NOW_MS) == [
        "recipients: has 1001 distinct numbers; at most 1000 per call"
    ]


def test_vars_are_at_most_5_values_of_at_most_15_characters() -> None:
    """The manual: #p_1#..#p_5#, each value ≤ 15 characters."""
    plan = mv.plan_vsms_vars("k", "tpl", [(P1, ["x" * 15] * 5)], now_ms=NOW_MS)
    assert plan.body["mobiles"] == [{"phone": P1, "vars": ["x" * 15] * 5}]
    assert problems(mv.plan_vsms_vars, "k", "tpl", [(P1, ["a"] * 6)], now_ms=NOW_MS) == [
        "recipients[0].vars: has 6 values; at most 5"
    ]
    assert problems(mv.plan_vsms_vars, "k", "tpl", [(P1, ["a", "x" * 16])], now_ms=NOW_MS) == [
        "recipients[0].vars[1]: is 16 characters; at most 15"
    ]


def test_a_uuid_has_at_most_64_and_a_title_at_most_100_characters() -> None:
    assert mv.plan_isms("k", "hi", ["85212341234"], uuid="u" * 64, now_ms=NOW_MS).uuid == "u" * 64
    assert problems(mv.plan_vsms_send, "k", "tpl", [P1], uuid="u" * 65, now_ms=NOW_MS) == [
        "uuid: is 65 characters; at most 64"
    ]
    assert len(mv.plan_template("k", "t" * 100, [Frame.of_text(1, 1, "x")], {}, ts="1")) == 1
    assert problems(mv.plan_template, "k", "t" * 101, [Frame.of_text(1, 1, "x")], {}, ts="1") == [
        "title: is 101 characters; at most 100"
    ]
