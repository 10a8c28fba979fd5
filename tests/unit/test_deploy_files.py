"""docker-compose.yml and .dockerignore, read as text (no Docker engine or YAML parser needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMPOSE = (REPO / "docker-compose.yml").read_text(encoding="utf-8")


def _service(name: str) -> str:
    """The text of one service block: from ``  name:`` to the next two-space-indented key."""
    found = re.search(rf"^  {name}:\n((?:(?:    .*|\s*)\n)+)", COMPOSE, re.M)
    assert found, f"no service {name}"
    return found.group(1)


def _command(name: str) -> list[str]:
    """A service's ``command:`` (JSON-style list, possibly over several lines) as a list."""
    block = _service(name)
    found = re.search(r"command: (\[.*?\])", block, re.S)
    assert found, f"{name} has no command list"
    return list(json.loads(found.group(1)))


def test_the_webhook_runs_under_the_projects_own_gunicorn_settings() -> None:
    # `sms-dispatch webhook` execs gunicorn with webhook_server.webhook_argv (gthread, backlog, safe access log)
    command = _command("webhook")
    assert command[:2] == ["sms-dispatch", "webhook"]
    assert "gunicorn" not in command


def test_every_published_port_listens_on_loopback_only() -> None:
    published = re.findall(r"^\s+- \"([^\"]+)\"", COMPOSE, re.M)
    ports = [p for p in published if re.fullmatch(r"[\d.:]+", p)]
    assert "127.0.0.1:8900:8900" in ports
    assert ports and all(p.startswith("127.0.0.1:") for p in ports), ports


def test_compose_redis_has_a_memory_limit_and_never_evicts() -> None:
    command = _command("redis")
    assert command[command.index("--maxmemory") + 1] == "${SMSD_REDIS_MAXMEMORY_MB:-1024}mb"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_the_compose_memory_default_is_the_settings_default() -> None:
    from dispatcher.config.settings import Settings

    assert f"SMSD_REDIS_MAXMEMORY_MB:-{Settings().redis_maxmemory_mb}}}mb" in COMPOSE


def test_the_image_build_context_leaves_out_local_state_and_caches() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".venv", ".data", ".git", "**/__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"} <= ignored
    assert "config/accounts.local.*" in ignored  # local accounts may hold secrets


def test_the_compose_worker_is_the_procfiles_worker() -> None:
    """The deployment the benchmarks measure (bench.distance starts the Procfile's line) is compose's too."""
    procfile = next(line for line in (REPO / "Procfile").read_text().splitlines() if line.startswith("worker:"))
    assert _command("worker") == procfile.split(":", 1)[1].split()
    assert _command("worker")[_command("worker").index("-P") + 1] == "threads"
