"""Running the real ``sms-dispatch`` command and other processes from a test, and waiting on them.

Every wait polls a condition until a deadline (a failure bound, not a
measurement) and then fails the test with the last state it saw.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

#: The installed console script, as an operator runs it.
SMS_DISPATCH = str(Path(sys.executable).with_name("sms-dispatch"))


def cli(*args: str, env: Mapping[str, str], timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run ``sms-dispatch ARGS`` to completion and return what it printed and its exit code."""
    return subprocess.run([SMS_DISPATCH, *args], env=dict(env), capture_output=True, text=True, timeout=timeout_s,
                          check=False)


def status_code(url: str, **kwargs: Any) -> int | None:
    """The HTTP status ``GET url`` answers, or ``None`` when nothing answers (refused, reset)."""
    try:
        return requests.get(url, timeout=5, **kwargs).status_code
    except requests.ConnectionError:
        return None


def process_gone(pid: int) -> bool:
    """Whether process ``pid`` no longer runs (no such process, or a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def group_gone(pgid: int) -> bool:
    """Whether no process of process group ``pgid`` is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def stop_group(proc: subprocess.Popen[Any], timeout_s: float = 30.0) -> None:
    """Clean-up after a test: SIGKILL what is left of ``proc``'s own process group and reap ``proc``."""
    if proc.poll() is None or not group_gone(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=timeout_s)
