"""The Flask example's Celery side: the task the sms-dispatch workers send job events to.

The workers are told its name and queue (they send, the app's worker runs it)::

    SMSD_ON_JOB_EVENT=examples.flask_app.tasks.sms_event SMSD_JOB_EVENT_QUEUE=sms.events \\
        .venv/bin/celery -A dispatcher.workers worker -Q sms.otp,sms.bulk &
    .venv/bin/celery -A examples.flask_app.tasks worker -Q sms.events &   # the app's own worker

Each job's ``submitted`` (nothing left to send) and ``finished`` (every recipient final) then
arrives as ``sms_event(job_id, event, counts)``, at least once; ``GET /jobs/<job_id>`` shows them.
"""

from __future__ import annotations

from celery import Celery

from examples import common

celery = Celery("flask_example", broker=common.broker_url())
celery.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True)


@celery.task(name="examples.flask_app.tasks.sms_event")
def sms_event(job_id: str, event: str, counts: dict[str, int]) -> None:
    """A job was ``submitted`` or ``finished``: record it (idempotent: events may come twice)."""
    common.record_job_event(job_id, event, counts)
