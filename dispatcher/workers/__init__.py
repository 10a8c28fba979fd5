"""Celery workers of sms-dispatch: ``celery -A dispatcher.workers worker`` / ``celery -A dispatcher.workers beat``."""

from dispatcher.workers.app import app

__all__ = ["app"]
