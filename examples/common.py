"""What both framework examples share: one Dispatcher per process, and JSON shapes.

Each view stays a few lines: parse the request, call the producer, turn a
``ValidationError`` into a 400 that lists every field and item that is wrong.
The Dispatcher is built on first use from the ``SMSD_*`` environment, so an
app (or a test) only has to set the environment before the first request.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any

from dispatcher.errors import Problem, ValidationError
from dispatcher.producer import Dispatcher
from dispatcher.redis_connection import redis_url

OTP_TEMPLATE = "1000000000000000002"  # 您的验证码是{验证码,6}，5分钟内有效。
OTP_DIGITS = 6
ACCOUNT = "demo"  # the same name under "opass" and "aiofish" in the accounts file

Answer = tuple[int, dict[str, Any]]
#: Where each job's events are kept (beside sms-dispatch's keys, under its prefix): a hash event → counts.
EVENTS_KEY = "{prefix}:example:events:{job_id}"

log = logging.getLogger("examples.sms_events")

_dispatcher: Dispatcher | None = None
_lock = threading.Lock()


def dispatcher() -> Dispatcher:
    """The process's Dispatcher, built from the SMSD_* environment on first use."""
    global _dispatcher
    with _lock:
        if _dispatcher is None:
            _dispatcher = Dispatcher()
        return _dispatcher


def use_dispatcher(replacement: Dispatcher | None) -> Dispatcher | None:
    """Make ``replacement`` the process's Dispatcher (a test's ``FakeDispatcher``); return the one it replaces.

    ``None`` forgets it: the next request builds one from the settings again.
    """
    global _dispatcher
    with _lock:
        previous, _dispatcher = _dispatcher, replacement
        return previous


def send_otp(payload: dict[str, Any]) -> Answer:
    """Queue a random 6-digit code for ``payload["phone"]`` on the OTP queue; 202 ``{"job_id"}``."""
    code = f"{secrets.randbelow(10**OTP_DIGITS):0{OTP_DIGITS}d}"
    try:
        job = dispatcher().send_template(ACCOUNT, template_code=OTP_TEMPLATE, phones=[payload.get("phone")],
                                         params=[code], priority="otp")
    except ValidationError as exc:
        # The producer names the list item; this endpoint's field is the single "phone".
        raise ValidationError([Problem("phone" if p.field == "phones[0]" else p.field, p.message)
                               for p in exc.problems]) from None
    return 202, {"job_id": job.job_id}


def send_campaign(payload: dict[str, Any]) -> Answer:
    """Queue a bulk aiofish campaign: the same content (with its 【signature】) to many phones."""
    phones = payload.get("phones")
    if not isinstance(phones, list):
        # A bare string would otherwise be validated one character at a time.
        raise ValidationError([Problem("phones", "must be a JSON list of phone numbers")])
    job = dispatcher().send_content(ACCOUNT, phones=phones, content=payload.get("content"))
    return 202, {"job_id": job.job_id, "recipients": job.total, "duplicates_dropped": job.duplicates}


def job_status(job_id: str) -> Answer:
    """A job's funnel (recipients per state), or 404."""
    try:
        status = dispatcher().status(job_id)
    except KeyError:
        return 404, {"error": f"no job {job_id}"}
    return 200, {"job_id": job_id, "total": status.total, "counts": status.counts,
                 "finished": status.finished, "paused": status.paused, "events": job_events(job_id)}


def broker_url() -> str:
    """The broker the sms-dispatch workers send job events through (``SMSD_BROKER_URL``, else its Redis):
    the app's own Celery worker takes them from there."""
    settings = dispatcher().settings
    return settings.broker_url or redis_url(settings)


def record_job_event(job_id: str, event: str, counts: dict[str, int]) -> None:
    """What both examples' ``SMSD_ON_JOB_EVENT`` task does: log it and keep the counts under the job.

    Events come at least once, so this is idempotent: a repeat overwrites the same field with the
    same counts. An app would notify its user here, or mark its own order as sent.
    """
    log.info("sms job %s %s: %s", job_id, event, counts)
    d = dispatcher()
    d.redis.hset(EVENTS_KEY.format(prefix=d.settings.key_prefix, job_id=job_id), event, json.dumps(counts))


def job_events(job_id: str) -> dict[str, dict[str, int]]:
    """The events the app's task recorded for a job: ``{"submitted": counts, "finished": counts}`` (so far)."""
    d = dispatcher()
    if not isinstance(d, Dispatcher):  # a test's FakeDispatcher: no worker sends events to it
        return {}
    raw: Any = d.redis.hgetall(EVENTS_KEY.format(prefix=d.settings.key_prefix, job_id=job_id))
    return {k.decode(): json.loads(v) for k, v in raw.items()}


def handle(action: Callable[..., Answer], *args: Any) -> Answer:
    """Run ``action``; a ValidationError becomes 400 ``{"problems": [{"field", "message"}, …]}``."""
    try:
        return action(*args)
    except ValidationError as exc:
        return 400, {"problems": [{"field": p.field, "message": p.message} for p in exc.problems]}
