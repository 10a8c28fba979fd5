"""``celery -A workers`` from a checkout: the Celery app lives in :mod:`dispatcher.workers`.

This folder is not installed with the package (an app's own ``workers`` module
must not be shadowed); installed, use ``celery -A dispatcher.workers``.
"""

from dispatcher.workers.app import app

__all__ = ["app"]
