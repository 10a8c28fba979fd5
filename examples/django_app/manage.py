#!/usr/bin/env python
"""A minimal Django project that sends SMS through sms-dispatch (no database).

Run it from the repository root, against the local sandbox (its demo accounts
are in ``config/accounts.example.json``; with no ``SMSD_REDIS_URL`` an embedded
redis-server under ``.data/`` is shared by every process)::

    .venv/bin/sms-dispatch sandbox --port 8800 &              # both fake gateways
    SMSD_ON_JOB_EVENT=smsdemo.tasks.sms_event SMSD_JOB_EVENT_QUEUE=sms.events \
        .venv/bin/celery -A dispatcher.workers worker -Q sms.otp,sms.bulk &  # sends what the app queues
    .venv/bin/celery -A dispatcher.workers beat -s .data/celerybeat-schedule &  # pulls receipts
    .venv/bin/celery -A examples.django_app.smsdemo.tasks worker -Q sms.events &  # job events
    .venv/bin/python examples/django_app/manage.py runserver 8000

    curl -X POST localhost:8000/otp -H 'Content-Type: application/json' -d '{"phone": "13800138000"}'
    curl localhost:8000/jobs/<job_id>

In production serve ``examples.django_app.smsdemo.wsgi`` with gunicorn. The
endpoints and their answers are those of the Flask example (``examples/flask_app/app.py``),
including ``events`` on ``GET /jobs/<id>``: what ``smsdemo.tasks.sms_event``
(``examples/django_app/smsdemo/tasks.py``) recorded of each job's ``submitted`` and ``finished``;
settings come from the ``SMSD_*`` environment here; a project may put them in its
settings as ``SMS_DISPATCH = {...}`` instead (``dispatcher/config/settings.py``). The app's
tests use ``dispatcher.testing.FakeDispatcher``::

    .venv/bin/python examples/django_app/manage.py test examples.django_app.smsdemo
"""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # The repository root, so that ``examples``, ``dispatcher`` and ``config`` import.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.smsdemo.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
