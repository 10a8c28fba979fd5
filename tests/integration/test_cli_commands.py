"""`sms-dispatch segments`, `sandbox` and `webhook` run as an operator runs them: the installed command."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from dispatcher.local.demo import accounts_doc
from dispatcher.local.stack import wait_for
from dispatcher.redis_server import free_port
from tests.integration.processes import SMS_DISPATCH, cli, group_gone, status_code, stop_group

# Expected parts come from aiofish's manual (/work/shared/seeds/003_…, 短信内容长度计算规则):
# domestic (signature + body) up to 70 characters is one part, longer text is billed in parts
# of 67 ("150字 … 67字/67字/16字"); letters, digits and punctuation count 1 like 汉字.
# International pure GSM text: up to 160 one part, else parts of 153 ("320字 … 153字/153字/14字"),
# extension characters counting 2; any other international text: 70 / 67.
SEGMENT_CASES = [
    pytest.param("字" * 70, [], "ucs2", 70, [70], id="domestic-70-is-one-part"),
    pytest.param("字" * 71, [], "ucs2", 71, [67, 4], id="domestic-71-is-two-parts-of-67"),
    pytest.param("字" * 150, [], "ucs2", 150, [67, 67, 16], id="domestic-150-manual-example"),
    pytest.param("【沙箱】" + "a" * 67, [], "ucs2", 71, [67, 4], id="domestic-letters-count-like-hanzi"),
    pytest.param("a" * 160, ["--international"], "gsm7", 160, [160], id="gsm7-160-is-one-part"),
    pytest.param("a" * 161, ["--international"], "gsm7", 161, [153, 8], id="gsm7-161-is-two-parts-of-153"),
    pytest.param("a" * 320, ["--international"], "gsm7", 320, [153, 153, 14], id="gsm7-320-manual-example"),
    pytest.param("字" * 71, ["--international"], "ucs2", 71, [67, 4], id="international-non-gsm-is-70-67"),
]


@pytest.mark.parametrize(("text", "flags", "encoding", "units", "parts"), SEGMENT_CASES)
def test_segments_prints_the_parts_the_manual_bills(text: str, flags: list[str], encoding: str, units: int,
                                                    parts: list[int]) -> None:
    """`sms-dispatch segments` prints the encoding, units, part sizes and count the vendor bills."""
    result = cli("segments", text, *flags, env=os.environ)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"encoding": encoding, "units": units, "parts": parts,
                                         "count": len(parts)}


def test_segments_counts_a_gsm_extension_character_as_two() -> None:
    """81 `{` are 162 GSM units (the manual: 扩展字符按2个字计算), so over 160: billed as two parts."""
    result = cli("segments", "{" * 81, "--international", env=os.environ)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["encoding"], shown["units"], shown["count"]) == ("gsm7", 162, 2)


@pytest.mark.parametrize("args", [
    pytest.param([], id="no-text"),
    pytest.param(["abc", "--intl"], id="unknown-option"),
    pytest.param(["abc", "def"], id="two-texts"),
])
def test_segments_refuses_bad_input_with_a_usage_error(args: list[str]) -> None:
    """A missing or extra TEXT, or an unknown option, exits 2 with a usage message and prints no count."""
    result = cli("segments", *args, env=os.environ)
    assert result.returncode == 2
    assert "Usage: sms-dispatch segments" in result.stderr
    assert result.stdout == ""


def _start(argv: list[str], out: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    # Own process group, so the test can tell that no child (a gunicorn worker) is left behind.
    with out.open("wb") as fh:
        return subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env or dict(os.environ),
                                start_new_session=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sandbox_command_serves_both_gateways_and_stops_cleanly_on_a_signal(tmp_path: Path, sig: int) -> None:
    """`sms-dispatch sandbox --port 0` answers on the URL it announces, and a Ctrl-C or a SIGTERM
    ends it with exit status 0, no traceback, and the port closed."""
    out = tmp_path / "sandbox.out"
    proc = _start([SMS_DISPATCH, "sandbox", "--port", "0"], out)
    try:
        found = wait_for(lambda: proc.poll() is None and re.search(r"listening on (http://\S+)", out.read_text()),
                           timeout_s=60, what="sandbox announces its URL")
        url = found.group(1)
        assert status_code(f"{url}/_sandbox/ledger") == 200
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 0, out.read_text()[-2000:]
        assert status_code(f"{url}/_sandbox/ledger") is None
        assert "Traceback" not in out.read_text()
    finally:
        stop_group(proc)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_webhook_command_answers_healthz_and_stops_cleanly_on_a_signal(tmp_path: Path, redis_url: str,
                                                                       sig: int) -> None:
    """`sms-dispatch webhook --bind` serves /healthz 200 on that address; a signal stops gunicorn and
    its workers (exit 0, port closed, no process of its group left)."""
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps(accounts_doc("http://127.0.0.1:9"), ensure_ascii=False))
    env = {**os.environ, "SMSD_REDIS_URL": redis_url, "SMSD_ACCOUNTS_FILE": str(accounts),
           "SMSD_DATA_DIR": str(tmp_path)}
    port = free_port()
    out = tmp_path / "webhook.out"
    proc = _start([SMS_DISPATCH, "webhook", "--bind", f"127.0.0.1:{port}", "--workers", "2"], out, env)
    try:
        healthz = f"http://127.0.0.1:{port}/healthz"
        wait_for(lambda: proc.poll() is None and status_code(healthz) == 200, timeout_s=60,
                   what=f"webhook answers 200 on {healthz}")
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 0, out.read_text()[-2000:]
        assert status_code(healthz) is None
        wait_for(lambda: group_gone(proc.pid), timeout_s=30, what="no gunicorn worker left")
    finally:
        stop_group(proc)
