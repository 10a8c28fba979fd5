"""The control API and the process contract: ledger shape, reset, config, loopback-only, stdout, signals."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from dispatcher.local.sandbox import demo
from dispatcher.local.sandbox.control import SandboxControl
from tests.integration.test_sandbox_support import TPL_NO_VARS, fish_plain, opass


def test_ledger_has_exactly_the_documented_shape(sandbox: Any, sandbox_url: str) -> None:
    assert sandbox.ledger() == {
        "accepted": {"opass": {}, "aiofish": {}, "aiofish-vsms": {}, "aiofish-isms": {}},
        "requests": {},
    }
    body = {"phones": "13600000001,13600000001", "templateCode": TPL_NO_VARS}
    assert opass(sandbox_url, "/message/send", body)["code"] == 200
    opass(sandbox_url, "/message/send", body)
    fish_plain(sandbox_url, "/rest/sms/sendSms", {"mobile": "13600000002", "content": "no signature"})
    requests.get(sandbox_url + "/no/such/path", timeout=5)
    ledger = sandbox.ledger()
    assert ledger["accepted"]["opass"] == {"13600000001": 4}  # counted per number per accepted request
    assert ledger["accepted"]["aiofish"] == {}  # rejected (no 【signature】)
    assert ledger["requests"] == {"/message/send": 2, "/rest/sms/sendSms": 1, "/no/such/path": 1}


def test_reset_restores_the_start_up_config_and_clears_everything(sandbox: Any, sandbox_url: str) -> None:
    original = sandbox.config()
    changed = sandbox.configure(receipt_delay_s=7.5, limits={"opass_send": {"max": 5, "window_s": 2}})
    assert changed["receipt_delay_s"] == 7.5 and changed["limits"]["opass_send"] == {"max": 5, "window_s": 2}
    assert changed["limits"]["opass_query"] == original["limits"]["opass_query"]  # deep merge
    opass(sandbox_url, "/message/send", {"phones": "13600000001", "templateCode": TPL_NO_VARS})
    sandbox.set_faults({"kind": "slow", "delay_ms": 1})
    sandbox.reset()
    assert sandbox.config() == original
    assert sandbox.faults() == [] and sandbox.messages("13600000001") == []
    assert sandbox.ledger()["requests"] == {}


def test_config_updates_are_validated(sandbox: Any) -> None:
    for bad in ({"receipt_mode": "carrier-pigeon"}, {"no_such_setting": 1}, {"outcomes": {"LOST": 1.0}},
                {"limits": {"opass_send": {"max": 0, "window_s": 1}}}):
        with pytest.raises(requests.HTTPError):
            sandbox.configure(**bad)
    assert sandbox.config()["receipt_mode"] == "both"


def test_messages_list_what_was_accepted_newest_last(sandbox: Any, sandbox_url: str) -> None:
    opass(sandbox_url, "/message/send", {"phones": "13600000001", "templateCode": TPL_NO_VARS, "bid": "first"})
    fish_plain(sandbox_url, "/rest/sms/sendSms",
               {"mobile": "13600000001", "content": "【沙箱】第二", "smsId": "second"})
    got = sandbox.messages("13600000001")
    assert [(m["gateway"], m["client_id"], m["text"]) for m in got] == [
        ("opass", "first", "您有一个事务需要处理。"), ("aiofish", "second", "【沙箱】第二")]
    assert all(m["message_id"] for m in got)


def test_uplink_injection_is_validated(sandbox: Any) -> None:
    with pytest.raises(requests.HTTPError):
        sandbox.inject_uplink("opass", "unknown-key", "13600000001", "hi")
    sandbox.inject_uplink("opass", demo.OPASS_API_KEY, "13600000001", "hi")  # no uplink_url: nothing to push


def _outside_address() -> str | None:
    """A non-loopback address of this host, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


def start(*extra: str) -> tuple[subprocess.Popen[str], str]:
    """Start a private sandbox process on a free port; return it and the port."""
    argv = [sys.executable, "-m", "dispatcher.local.sandbox", "--port", "0", "--log-level", "WARNING", *extra]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("sandbox listening on http://127.0.0.1:"), line
    return proc, line.strip().rsplit(":", 1)[1]


def finish(proc: subprocess.Popen[str]) -> None:
    """Stop a private sandbox if it is still running, and close its pipe."""
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def test_process_contract_config_file_time_scale_and_clean_sigint(tmp_path: Path) -> None:
    config = tmp_path / "sandbox.json"
    config.write_text(json.dumps({"_comment": "test", "receipt_delay_s": 0.25}))
    proc, port = start("--host", "127.0.0.1", "--config", str(config), "--time-scale", "0.5")
    try:
        effective = SandboxControl(f"http://127.0.0.1:{port}").config()
        assert (effective["receipt_delay_s"], effective["time_scale"]) == (0.25, 0.5)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None and proc.stdout.read() == ""  # nothing after the one line
    finally:
        finish(proc)


def test_a_bad_config_file_exits_with_an_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"receipt_mode": "nope"}))
    done = subprocess.run([sys.executable, "-m", "dispatcher.local.sandbox", "--port", "0", "--config", str(config)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2 and done.stdout == "" and "receipt_mode" in done.stderr


def test_control_api_answers_404_to_peers_outside_loopback() -> None:
    outside = _outside_address()
    if outside is None:
        pytest.skip("this host has no non-loopback address")
    proc, port = start("--host", "0.0.0.0")  # reachable from outside on purpose
    try:
        assert requests.get(f"http://127.0.0.1:{port}/_sandbox/ledger", timeout=5).status_code == 200
        assert requests.get(f"http://{outside}:{port}/_sandbox/ledger", timeout=5).status_code == 404
        assert requests.post(f"http://{outside}:{port}/health/info", timeout=5).json()["code"] == 200
    finally:
        finish(proc)
