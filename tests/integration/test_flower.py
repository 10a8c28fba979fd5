"""Flower as the Procfile starts it: basic auth, so without the password it answers 401.

The Procfile line is run as honcho runs it (``sh -c LINE``), only its fixed
port swapped for a free one, so its ``--basic-auth`` and the shell's
``${FLOWER_USER:-admin}`` / ``${FLOWER_PASSWORD:?…}`` are what is tested.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatcher.local.stack import wait_for
from dispatcher.redis_server import free_port
from tests.conftest import REPO
from tests.integration.processes import status_code, stop_group

PASSWORD = secrets.token_urlsafe(16)


def _procfile_line(name: str) -> str:
    for line in (REPO / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} line in the Procfile")


def _env(tmp_path: Path, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    return {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "SMSD_REDIS_URL": redis_url, "SMSD_DATA_DIR": str(tmp_path), **extra}


def _start(tmp_path: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    line = _procfile_line("flower")
    assert "--port=5555" in line
    with (tmp_path / "flower.log").open("wb") as log:
        return subprocess.Popen(["sh", "-c", line.replace("--port=5555", f"--port={port}")], env=env, cwd=REPO,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture
def flower_url(tmp_path: Path, redis_url: str) -> Iterator[str]:
    """URL of Flower started from the Procfile with FLOWER_PASSWORD set and FLOWER_USER unset."""
    port = free_port()
    proc = _start(tmp_path, _env(tmp_path, redis_url, FLOWER_PASSWORD=PASSWORD), port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is None and status_code(url + "/") is not None, timeout_s=90,
                   what=f"Flower answers on {url} (log: {tmp_path / 'flower.log'})")
        yield url
    finally:
        stop_group(proc)


@pytest.mark.parametrize("auth", [
    pytest.param(None, id="no-credentials"),
    pytest.param(("admin", "not-" + PASSWORD), id="wrong-password"),
    pytest.param(("root", PASSWORD), id="wrong-user"),
])
def test_flower_answers_401_without_the_right_credentials(flower_url: str, auth: tuple[str, str] | None) -> None:
    """Flower can revoke tasks: without the right user and password every page is 401."""
    for page in ("/", "/api/workers", "/tasks"):
        assert status_code(flower_url + page, auth=auth) == 401, page


def test_flower_answers_200_to_the_default_user_with_the_password(flower_url: str) -> None:
    """FLOWER_USER defaults to admin: admin with FLOWER_PASSWORD gets the dashboard."""
    assert status_code(flower_url + "/", auth=("admin", PASSWORD)) == 200


def test_the_procfile_flower_line_refuses_to_start_without_a_password(tmp_path: Path, redis_url: str) -> None:
    """No FLOWER_PASSWORD: the line exits non-zero saying so, and nothing ever listens (no open Flower)."""
    port = free_port()
    proc = _start(tmp_path, _env(tmp_path, redis_url), port)
    try:
        assert proc.wait(timeout=60) != 0
        assert "set FLOWER_PASSWORD" in (tmp_path / "flower.log").read_text()
        assert status_code(f"http://127.0.0.1:{port}/") is None
    finally:
        stop_group(proc)
