"""Django views over the producer API: plain JSON endpoints (CSRF-exempt: a service API).

How to run the project: see ``examples/django_app/manage.py``.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from examples import common


def _json(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object, or ``{}`` (validation then names what is missing)."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _answer(result: common.Answer) -> JsonResponse:
    status, body = result
    return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


@csrf_exempt
@require_POST
def otp(request: HttpRequest) -> JsonResponse:
    """Send a one-time code: ``{"phone": "138…"}`` → ``{"job_id"}``."""
    return _answer(common.handle(common.send_otp, _json(request)))


@csrf_exempt
@require_POST
def campaign(request: HttpRequest) -> JsonResponse:
    """Send the same content to many: ``{"phones": […], "content": "【签名】…"}``."""
    return _answer(common.handle(common.send_campaign, _json(request)))


@require_GET
def job(request: HttpRequest, job_id: str) -> JsonResponse:
    """The job's funnel: recipients per state."""
    return _answer(common.job_status(job_id))
