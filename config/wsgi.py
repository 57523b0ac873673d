"""The WSGI application (``gunicorn -c config/gunicorn.py config.wsgi:application``, gthread workers).

Django's, behind ``BodyLimitApp``: a chunked request body (no Content-Length) is read in pieces up to
``NOTIFIER_MAX_BODY_BYTES`` and answered 413 beyond it, before Django or authentication sees it
(notifier/bodylimit.py). Bodies with a Content-Length are limited by ``BodySizeLimitMiddleware``.
"""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_wsgi = get_wsgi_application()  # sets Django up

from django.conf import settings  # noqa: E402

from notifier.bodylimit import BodyLimitApp  # noqa: E402

application = BodyLimitApp(django_wsgi, settings.NOTIFIER_MAX_BODY_BYTES)
