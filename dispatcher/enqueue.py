"""The one place the dispatcher hands work to Celery: by task name, ids only."""

from __future__ import annotations


def enqueue_fanout(job_id: str, queue: str, countdown_s: int = 0) -> None:
    """Queue the fan-out of a stored job on ``queue`` (the job id is the only argument)."""
    from workers.app import app

    app.send_task("workers.tasks.fanout", args=[job_id], queue=queue, countdown=countdown_s or None)
