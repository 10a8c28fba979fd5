"""A Flask app that sends SMS through sms-dispatch: OTPs (opass) and campaigns (aiofish).

Run it from the repository root, against the local sandbox (its demo accounts
are in ``config/accounts.example.json``; with no ``SMSD_REDIS_URL`` an embedded
redis-server under ``.data/`` is shared by every process)::

    .venv/bin/sms-dispatch sandbox --port 8800 &              # both fake gateways
    SMSD_ON_JOB_EVENT=examples.flask_app.tasks.sms_event SMSD_JOB_EVENT_QUEUE=sms.events \
        .venv/bin/celery -A dispatcher.workers worker -Q sms.otp,sms.bulk &  # sends what the app queues
    .venv/bin/celery -A dispatcher.workers beat -s .data/celerybeat-schedule &  # pulls receipts
    .venv/bin/celery -A examples.flask_app.tasks worker -Q sms.events &  # the app's worker: job events
    .venv/bin/flask --app examples.flask_app.app run --port 5000

    curl -X POST localhost:5000/otp -H 'Content-Type: application/json' -d '{"phone": "13800138000"}'
    curl -X POST localhost:5000/campaign -H 'Content-Type: application/json' \\
         -d '{"phones": ["13800138000", "13900139000"], "content": "【沙箱】会员日：全场八折。"}'
    curl localhost:5000/jobs/<job_id>

Endpoints: ``POST /otp`` ``{"phone"}`` → 202 ``{"job_id"}``; ``POST /campaign``
``{"phones": [...], "content"}`` → 202 ``{"job_id", "recipients", "duplicates_dropped"}``;
``GET /jobs/<job_id>`` → the funnel, and under ``events`` what the app's task
``examples.flask_app.tasks.sms_event`` heard: ``{"submitted": counts, "finished": counts}``
as sms-dispatch sent them (``SMSD_ON_JOB_EVENT``, at least once). Bad input → 400
``{"problems": [{"field", "message"}]}`` and nothing is queued. Settings come from the ``SMSD_*``
environment (``dispatcher/config/settings.py``).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

from examples import common

app = Flask(__name__)


def _json() -> dict[str, Any]:
    """The request's JSON object, or ``{}`` (validation then names what is missing)."""
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


@app.post("/otp")
def otp() -> tuple[dict[str, Any], int]:
    """Send a one-time code: ``{"phone": "138…"}`` → ``{"job_id"}``."""
    status, body = common.handle(common.send_otp, _json())
    return body, status


@app.post("/campaign")
def campaign() -> tuple[dict[str, Any], int]:
    """Send the same content to many: ``{"phones": […], "content": "【签名】…"}``."""
    status, body = common.handle(common.send_campaign, _json())
    return body, status


@app.get("/jobs/<job_id>")
def job(job_id: str) -> tuple[dict[str, Any], int]:
    """The job's funnel: recipients per state."""
    status, body = common.job_status(job_id)
    return body, status
