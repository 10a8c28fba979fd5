"""WSGI entry point: ``gunicorn examples.django_app.smsdemo.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.smsdemo.settings")
application = get_wsgi_application()
