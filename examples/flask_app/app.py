"""A Flask app that sends SMS through sms-dispatch.

Run it (with a worker running, see the README)::

    SMSD_ACCOUNTS_FILE=config/accounts.example.json flask --app examples.flask_app.app run

    curl -X POST localhost:5000/otp -H 'Content-Type: application/json' -d '{"phone": "13800138000"}'
    curl localhost:5000/jobs/<job_id>
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

from examples import common

app = Flask(__name__)


def _json() -> dict[str, Any]:
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
    """The job's funnel."""
    status, body = common.job_status(job_id)
    return body, status
