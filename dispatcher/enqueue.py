"""The one place the dispatcher hands work to Celery: by task name, ids only.

A producer (a Django or Flask process) does not import the worker code: it
sends the fan-out task by name through a light Celery client bound to the
configured broker.
"""

from __future__ import annotations

import threading

from celery import Celery

from dispatcher.config.settings import Settings
from dispatcher.redis_connection import broker_of

FANOUT_TASK = "workers.tasks.fanout"
SEND_CHUNK_TASK = "workers.tasks.send_chunk"


class Enqueuer:
    """Sends ``fanout(job_id)`` (or ``send_chunk(job_id, n)``) to a queue of the broker in ``settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._app: Celery | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Celery:
        """The Celery client (created on first use: connecting is lazy)."""
        with self._lock:
            if self._app is None:
                broker, options = broker_of(self.settings)
                self._app = Celery("sms_dispatch_producer", broker=broker)
                self._app.conf.update(task_serializer="json", broker_connection_retry_on_startup=True,
                                      broker_transport_options=options)
            return self._app

    def __call__(self, job_id: str, queue: str, countdown_s: int = 0) -> None:
        """Queue the fan-out of a stored job (the job id is the only argument)."""
        self.app.send_task(FANOUT_TASK, args=[job_id], queue=queue, countdown=countdown_s or None)

    def job_event(self, job_id: str, event: str, counts: dict[str, int]) -> None:
        """Send ``SMSD_ON_JOB_EVENT(job_id, event, counts)`` to ``SMSD_JOB_EVENT_QUEUE`` (the app's task)."""
        self.app.send_task(self.settings.on_job_event, args=[job_id, event, counts],
                           queue=self.settings.job_event_queue)

    def send_chunk(self, job_id: str, n: int, queue: str) -> None:
        """Queue the send of chunk ``n`` of a stored job (a resume re-queues pending chunks this way)."""
        self.app.send_task(SEND_CHUNK_TASK, args=[job_id, n], queue=queue)
