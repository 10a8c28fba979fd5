"""How the webhook is served: gunicorn's command line for ``dispatcher.webhook:app``.

Its own module so that the CLI and the local stack can build the command
without importing the app, which connects to Redis as it loads (and, with no
``SMSD_REDIS_URL``, starts the embedded server: importing it from the stack left
a detached redis-server behind in ``./.data``).
"""

from __future__ import annotations

import sys

#: gunicorn threads per webhook worker process.
WEBHOOK_THREADS = 16


def webhook_argv(bind: str, workers: int, *, threads: int = WEBHOOK_THREADS, access_log: bool = False) -> list[str]:
    """gunicorn serving the webhook: threaded workers, so a burst of one vendor's
    pushes cannot keep another vendor's answer past its 1 s limit (opass stops
    pushing after three slow answers); the work is mostly waiting on Redis."""
    # The hooks keep the metrics of every worker process in one directory (dispatcher.gunicorn_hooks).
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:dispatcher.gunicorn_hooks",
            "--bind", bind, "--workers", str(workers),
            "--worker-class", "gthread", "--threads", str(threads), "--backlog", "2048"]
    if access_log:
        # No request path: it carries the account's callback secret.
        argv += ["--access-logfile", "-", "--access-logformat", "%(h)s %(m)s %(s)s %(b)s %(M)sms"]
    return [*argv, "dispatcher.webhook:app"]
