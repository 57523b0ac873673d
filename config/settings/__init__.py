"""Django's settings: ``config.settings`` is the entry every process names (manage.py, ASGI/WSGI, Celery,
Docker). It loads ``base`` (which reads the environment and the project's dotenv) and then ``local`` when
DEBUG is on or ``production`` when it is off.

When ``DJANGO_SETTINGS_MODULE`` names one of this package's modules itself (``config.settings.test`` for
the test suite, or ``config.settings.production``), importing that module runs this file first: it then
loads nothing, so that module sets up the environment before ``base`` reads it.
"""
import os

if os.environ.get("DJANGO_SETTINGS_MODULE", __name__) == __name__:
    from .base import DEBUG

    if DEBUG:
        from .local import *  # noqa: F401,F403
    else:
        from .production import *  # noqa: F401,F403
