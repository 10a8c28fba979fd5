"""The send path stands without the local tooling: a worker, the webhook, a producer and the CLI load
nothing of ``dispatcher.local`` and no aiohttp (checked in a fresh interpreter, as a worker image starts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_the_send_path_imports_no_local_tooling_and_no_aiohttp() -> None:
    probe = ("import json, sys, dispatcher.workers.app, dispatcher.webhook, dispatcher.producer, dispatcher.cli; "
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('dispatcher.local', 'aiohttp')))))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False,
                          env={"PATH": "/usr/bin:/bin", "SMSD_REDIS_URL": "redis://127.0.0.1:9/0"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_importing_the_cli_and_the_local_stack_starts_no_redis_server(tmp_path: Path) -> None:
    """With no ``SMSD_REDIS_URL`` the embedded server starts when a client is first needed, not on import:
    the stack importing the webhook's app left a detached redis-server running in ``./.data``."""
    probe = "import dispatcher.cli, dispatcher.local.stack, dispatcher.webhook_server"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False,
                          cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "SMSD_DATA_DIR": str(tmp_path / "data")})
    assert done.returncode == 0, done.stderr[-2000:]
    started = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert started == [], f"importing wrote {started} (an embedded redis-server started)"
