"""gunicorn server hooks of the webhook (``--config python:dispatcher.gunicorn_hooks``): its metrics' files.

With ``PROMETHEUS_MULTIPROC_DIR`` set, every gunicorn worker keeps its metrics in a
file of that directory and ``/metrics`` sums them (:mod:`dispatcher.metrics_export`).
The master clears a previous run's files from it before it forks the first worker, and does the
bookkeeping when a worker exits. gunicorn reads this module's names as settings:
it holds nothing but the two hooks.
"""

from __future__ import annotations

from typing import Any


def on_starting(server: Any) -> None:
    """Clear the metrics directory of a previous run's files (the master, before any worker exists)."""
    from dispatcher.metrics_export import prepare_dir

    prepare_dir()


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited: prometheus_client's bookkeeping for its pid (``mark_process_dead``)."""
    from dispatcher.metrics_export import process_exited

    process_exited(worker.pid)
