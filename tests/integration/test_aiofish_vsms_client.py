"""The vsms and isms clients against the real sandbox over real HTTP: templates, sends, errors, pushes."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from dispatcher.errors import (
    AccountFatalError,
    AmbiguousError,
    RecipientRejectedError,
    RequestRejectedError,
    ThrottledError,
    TransientError,
)
from dispatcher.local.sandbox import demo
from dispatcher.local.stack import wait_for
from dispatcher.providers.aiofish.push import TemplateAudit, parse_isms_push, parse_vsms_push
from dispatcher.providers.aiofish.vsms import AiofishIsmsClient, AiofishVsmsClient, Frame
from dispatcher.providers.results import Receipt
from tests.integration.test_aiofish_client import ALL_DELIVERED, P1, P2, PushReceiver

# vsms and isms do not depend on the SMS encryption variant: one account setting is enough.
pytestmark = [pytest.mark.parametrize("aiofish_account", ["plain"], indirect=True)]
FRAMES = [Frame.of_file(1, 1, "a.jpg"), Frame.of_text(1, 2, "【沙箱】#p_1#您好,#p_2#")]
FILES = {"a.jpg": b"\xff\xd8\xff\xe0 not really a jpeg"}
HK, UK = "85212341234", "447911123456"


def approved_template(sandbox: Any, vsms: AiofishVsmsClient, title: str = "双十一") -> str:
    sandbox.configure(vsms_audit_delay_s=0.3)
    tpl = vsms.submit_template(title, FRAMES, FILES)
    assert vsms.template_status(tpl).audit_status == 100  # pending until the audit delay has passed
    wait_for(lambda: vsms.template_status(tpl).audit_status != 100, what="template audited")
    return tpl


def test_a_template_is_approved_then_sent_plain_and_with_variables(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    vsms = AiofishVsmsClient(aiofish_account)
    tpl = approved_template(sandbox, vsms)
    assert vsms.template_status(tpl).approved
    sent = vsms.send(tpl, [P1, P2, "+86" + P1], uuid="job.v.1")
    assert sent.message_id and sent.accepted == (P1, P2) and sent.duplicates == (P1,)
    vars_sent = vsms.send_vars(tpl, [(P2, ['张"三', "a\\b"])])
    assert vars_sent.accepted == (P2,)
    assert sandbox.ledger()["accepted"]["aiofish-vsms"] == {P1: 1, P2: 2}
    texts = [m["text"] for m in sandbox.messages(P2)]
    assert texts[-1] == '[a.jpg]\n【沙箱】张"三您好,a\\b'


def test_a_rejected_template_cannot_be_sent(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    vsms = AiofishVsmsClient(aiofish_account)
    tpl = approved_template(sandbox, vsms, title="REJECT me")
    status = vsms.template_status(tpl)
    assert status.audit_status == 400 and status.reason
    with pytest.raises(RequestRejectedError) as err:
        vsms.send(tpl, [P1])
    assert err.value.code == "invalid_tpl"
    assert sandbox.ledger()["accepted"].get("aiofish-vsms", {}) == {}


def test_a_refused_number_refuses_the_vsms_send(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    vsms = AiofishVsmsClient(aiofish_account)
    tpl = approved_template(sandbox, vsms)
    sandbox.configure(blacklist=[P2])
    with pytest.raises(RecipientRejectedError) as err:
        vsms.send(tpl, [P1, P2])
    assert err.value.code == "invalid_mobile"


def test_the_request_limit_throttles(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    sandbox.configure(limits={"vsms_request": {"max": 1, "window_s": 60.0}})
    vsms = AiofishVsmsClient(aiofish_account)
    vsms.submit_template("t", FRAMES, FILES)
    with pytest.raises(ThrottledError) as err:
        vsms.template_status("anything")
    assert err.value.code == "request_limit"


def test_a_request_limit_fault_throttles_a_send(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    sandbox.set_faults({"kind": "code", "code": "request_limit", "rate": 1.0, "count": 1, "path": "/rest/vsms/"})
    with pytest.raises(ThrottledError):
        AiofishVsmsClient(aiofish_account).send("tpl", [P1])


def test_an_error_answer_leaves_a_send_ambiguous_and_a_status_query_retryable(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    # "error" (处理异常) does not say the request was refused: the send must not be repeated blindly.
    sandbox.set_faults({"kind": "code", "code": "error", "rate": 1.0, "count": 2, "path": "/rest/"})
    with pytest.raises(AmbiguousError) as err:
        AiofishIsmsClient(aiofish_account).send("hello", [HK])
    assert err.value.code == "error"
    with pytest.raises(TransientError):
        AiofishVsmsClient(aiofish_account).template_status("t")


def test_a_wrong_app_secret_pauses_the_account(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    bad = dataclasses.replace(aiofish_account, app_secret="wrong")
    for call in (lambda: AiofishVsmsClient(bad).template_status("t"), lambda: AiofishIsmsClient(bad).send("x", [HK])):
        with pytest.raises(AccountFatalError) as err:
            call()
        assert err.value.code == "invalid_sign"


def test_isms_sends_to_numbers_with_country_codes_exactly_as_written(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    text = 'Order "A\\B" shipped\n😀 {ok} [1] ~€'
    sent = AiofishIsmsClient(aiofish_account).send(text, ["+" + HK, "00" + UK, HK], uuid="job.i.1")
    assert sent.accepted == (HK, UK) and sent.duplicates == (HK,) and sent.message_id
    assert sandbox.ledger()["accepted"]["aiofish-isms"] == {HK: 1, UK: 1}
    assert [m["text"] for m in sandbox.messages(UK)] == [text]


def test_a_dropped_isms_answer_is_ambiguous_and_sent_once(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    sandbox.set_faults({"kind": "drop", "rate": 1.0, "count": 1, "path": "/rest/isms/"})
    with pytest.raises(AmbiguousError):
        AiofishIsmsClient(aiofish_account).send("hello", [HK])
    assert sandbox.ledger()["accepted"]["aiofish-isms"] == {HK: 1}


def test_the_gateways_vsms_audit_and_isms_pushes_are_read(sandbox, aiofish_account) -> None:  # type: ignore[no-untyped-def]
    with PushReceiver() as receiver:
        _vsms_audit_and_isms_pushes(sandbox, aiofish_account, receiver)


def _vsms_audit_and_isms_pushes(sandbox: Any, aiofish_account: Any, receiver: PushReceiver) -> None:
    sandbox.configure(receipt_delay_s=0.1, receipt_mode="push", outcomes=ALL_DELIVERED, aiofish={"accounts": {
        demo.AIOFISH_ACCOUNT: {"vsms_status_url": receiver.url + "/vsms", "vsms_audit_url": receiver.url + "/audit",
                               "isms_status_url": receiver.url + "/isms"}}})
    vsms = AiofishVsmsClient(aiofish_account)
    tpl = approved_template(sandbox, vsms)
    path, _, body = receiver.take()
    audit = parse_vsms_push(body)
    assert path == "/audit" and audit == TemplateAudit(tpl, 200, audit.reason)  # type: ignore[union-attr]
    sent = vsms.send(tpl, [P1])
    path, _, body = receiver.take()
    status = parse_vsms_push(body)
    assert path == "/vsms" and isinstance(status, Receipt)
    assert (status.message_id, status.phone, status.delivered) == (sent.message_id, P1, True)
    assert status.at_ms and abs(status.at_ms - time.time() * 1000) < 60_000  # China-time text read correctly
    sent = AiofishIsmsClient(aiofish_account).send("hello", [HK])
    path, _, body = receiver.take()
    receipt = parse_isms_push(body)
    assert path == "/isms" and (receipt.message_id, receipt.phone, receipt.delivered) == (sent.message_id, HK, True)
    assert receipt.at_ms and abs(receipt.at_ms - time.time() * 1000) < 60_000
