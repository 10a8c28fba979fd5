"""Each fault kind as a plain ``requests`` client sees it, and what the ledger says after."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from urllib3.exceptions import NewConnectionError

from dispatcher.local.sandbox import demo
from dispatcher.providers.opass.sign import new_nonce, signed_headers
from tests.integration.test_sandbox_support import TPL_NO_VARS, fish_plain, now_ms, opass, vsms_headers

BODY = {"phones": "13700000001,13700000002", "templateCode": TPL_NO_VARS}


def raw_send(url: str, timeout_s: float = 5.0) -> requests.Response:
    """One send on a fresh connection (no pooled keep-alive connection to hide a fault)."""
    headers = signed_headers(api_key=demo.OPASS_API_KEY, access_key=demo.OPASS_ACCESS_KEY, body=BODY,
                             timestamp_ms=now_ms(), nonce=new_nonce())
    with requests.Session() as session:
        return session.post(url + "/message/send", json=BODY, headers=headers, timeout=timeout_s)


def test_refuse_is_a_real_connection_refused_until_the_period_ends(sandbox: Any, sandbox_url: str) -> None:
    sandbox.set_faults({"kind": "refuse", "duration_ms": 1500})
    with pytest.raises(requests.ConnectionError) as caught:
        raw_send(sandbox_url)
    assert isinstance(caught.value.args[0].reason, NewConnectionError)
    sandbox.clear_faults()  # the control client itself retries until the listener is back
    assert raw_send(sandbox_url).json()["code"] == 200
    assert sandbox.ledger()["accepted"]["opass"] == {"13700000001": 1, "13700000002": 1}


def test_a_permanent_refuse_leaves_a_window_for_the_control_api(sandbox: Any, sandbox_url: str) -> None:
    sandbox.set_faults({"kind": "refuse", "rate": 1.0})
    refused = 0
    for _ in range(5):
        try:
            raw_send(sandbox_url)
        except requests.ConnectionError:
            refused += 1
    assert refused >= 3
    assert sandbox.faults()[0]["kind"] == "refuse"
    sandbox.clear_faults()
    assert raw_send(sandbox_url).headers.get("Connection", "").lower() != "close"


def test_once_faults_are_cleared_the_very_next_connection_is_accepted(sandbox: Any, sandbox_url: str) -> None:
    """Clearing a refuse rule answers only once the listener is open again: a client's next request,
    sent right after, is never refused (the refuse cycle used to re-open it a moment later)."""
    refused = 0
    for _ in range(30):
        sandbox.set_faults({"kind": "refuse", "rate": 1.0})
        sandbox.clear_faults()
        try:
            raw_send(sandbox_url)
        except requests.ConnectionError:
            refused += 1
    assert refused == 0


def test_reset_aborts_before_processing(sandbox: Any, sandbox_url: str) -> None:
    sandbox.set_faults({"kind": "reset", "count": 1, "path": "/message/send"})
    with pytest.raises(requests.ConnectionError):
        raw_send(sandbox_url)
    ledger = sandbox.ledger()
    assert ledger["accepted"]["opass"] == {}
    assert ledger["requests"] == {"/message/send": 1}
    assert raw_send(sandbox_url).json()["code"] == 200  # count 1: only the first request


def test_drop_accepts_then_resets_the_connection(sandbox: Any, sandbox_url: str) -> None:
    sandbox.set_faults({"kind": "drop", "count": 1})
    with pytest.raises(requests.ConnectionError):
        raw_send(sandbox_url)
    assert sandbox.ledger()["accepted"]["opass"] == {"13700000001": 1, "13700000002": 1}


def test_slow_answers_after_processing(sandbox: Any, sandbox_url: str) -> None:
    """The message is accepted first and its answer comes at least ``delay_ms`` later.

    Both instants are wall-clock readings of this host (the sandbox's own record of
    when it accepted, the client's of when the answer arrived); the bound is a lower
    one, the fault's evidence, not a speed target.
    """
    sandbox.set_faults({"kind": "slow", "delay_ms": 500, "count": 1})
    answer = raw_send(sandbox_url, timeout_s=30.0)
    answered_s = time.time()
    assert answer.json()["code"] == 200
    assert sandbox.ledger()["accepted"]["opass"] == {"13700000001": 1, "13700000002": 1}
    assert sandbox.faults()[0]["injected"] == 1
    accepted_s = sandbox.messages("13700000001")[0]["accepted_at"]
    assert answered_s - accepted_s >= 0.5, (accepted_s, answered_s)


@pytest.mark.parametrize("code", ["-1", "6000", "60009", "40002"])
def test_opass_code_faults_answer_the_code_and_accept_nothing(sandbox: Any, sandbox_url: str, code: str) -> None:
    sandbox.set_faults({"kind": "code", "code": code, "count": 1})
    answer = opass(sandbox_url, "/message/send", BODY)
    assert answer["code"] == int(code) and answer["data"] is None and answer["requestId"]
    assert sandbox.ledger()["accepted"]["opass"] == {}


@pytest.mark.parametrize(("code", "numeric"), [("p:010", 121), ("p:004", 102), ("121", 121)])
def test_aiofish_code_faults_only_hit_aiofish_paths(sandbox: Any, sandbox_url: str, code: str, numeric: int) -> None:
    sandbox.set_faults({"kind": "code", "code": code})
    assert opass(sandbox_url, "/message/send", BODY)["code"] == 200  # not this gateway's code
    answer = fish_plain(sandbox_url, "/rest/sms/sendSms", {"mobile": "13700000003", "content": "【沙箱】你好"}).json()
    assert answer["code"] == numeric and answer["smsId"] is None and answer["subStat"] == code.replace("121", "p:010")
    assert sandbox.ledger()["accepted"]["aiofish"] == {}


def test_vsms_code_fault(sandbox: Any, sandbox_url: str) -> None:
    sandbox.set_faults({"kind": "code", "code": "request_limit", "path": "/rest/isms/"})
    ts = str(now_ms())
    body = {"appKey": demo.AIOFISH_APP_KEY, "ts": ts, "content": "hi", "mobiles": ["85212341234"]}
    answer = requests.post(sandbox_url + "/rest/isms/sendIsms", json=body, headers=vsms_headers(ts), timeout=5)
    assert answer.json() == {"code": "request_limit"}
    assert sandbox.ledger()["accepted"]["aiofish-isms"] == {}


def test_bad_fault_rules_are_refused(sandbox: Any) -> None:
    for rule in ({"kind": "explode"}, {"kind": "code", "code": "not-a-code"}, {"kind": "slow", "rate": 2}):
        with pytest.raises(requests.HTTPError):
            sandbox.set_faults(rule)
    assert sandbox.faults() == []
