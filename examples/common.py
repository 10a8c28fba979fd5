"""What both framework examples share: one Dispatcher per process, and JSON shapes.

Each view stays a few lines: parse the request, call the producer, turn a
``ValidationError`` into a 400 that lists every field and item that is wrong.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from dispatcher.errors import ValidationError
from dispatcher.producer import Dispatcher

OTP_TEMPLATE = "1000000000000000002"  # 您的验证码是{验证码,6}，5分钟内有效。
_dispatcher: Dispatcher | None = None
_lock = threading.Lock()


def dispatcher() -> Dispatcher:
    """The process's Dispatcher, built from the SMSD_* environment on first use."""
    global _dispatcher
    with _lock:
        if _dispatcher is None:
            _dispatcher = Dispatcher()
        return _dispatcher


def send_otp(payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Queue a one-time code for ``payload["phone"]`` on the OTP queue."""
    code = f"{secrets.randbelow(10**6):06d}"
    job = dispatcher().send_template("demo", template_code=OTP_TEMPLATE, phones=[payload.get("phone")],
                                     params=[code], priority="otp")
    return 202, {"job_id": job.job_id}


def send_campaign(payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Queue a bulk aiofish campaign: the same content (with its 【signature】) to many phones."""
    job = dispatcher().send_content("demo", phones=payload.get("phones") or [], content=payload.get("content"))
    return 202, {"job_id": job.job_id, "recipients": job.total, "duplicates_dropped": job.duplicates}


def job_status(job_id: str) -> tuple[int, dict[str, Any]]:
    """A job's funnel, or 404."""
    try:
        status = dispatcher().status(job_id)
    except KeyError:
        return 404, {"error": f"no job {job_id}"}
    return 200, {"job_id": job_id, "total": status.total, "counts": status.counts, "paused": status.paused}


def handle(action: Any, *args: Any) -> tuple[int, dict[str, Any]]:
    """Run ``action``; a ValidationError becomes 400 with ``{"problems": [{field, message}]}``."""
    try:
        return action(*args)
    except ValidationError as exc:
        return 400, {"problems": [{"field": p.field, "message": p.message} for p in exc.problems]}
