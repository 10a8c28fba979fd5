"""Minimal single-file Django settings for the sms-dispatch example: no database, no sessions.

sms-dispatch itself is configured by the ``SMSD_*`` environment here (the integration tests
point it at their Redis that way); a project may instead set ``SMS_DISPATCH = {"REDIS_URL": …}``
in this file, which ``SMSD_*`` variables then override.
"""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")
ROOT_URLCONF = "examples.django_app.smsdemo.urls"
WSGI_APPLICATION = "examples.django_app.smsdemo.wsgi.application"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
