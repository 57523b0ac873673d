"""The ASGI application served on port 8000 (gunicorn's ASGI worker, see Procfile).

Two kinds of views live in one process on one port:

- the async views (``NOTIFIER_ASYNC_PATHS``: the inbox's Server-Sent Events
  stream) run on the event loop through Django's ASGI handler, so an open
  stream costs a coroutine and a Redis subscription, not a thread;
- every other request runs the ordinary sync Django app (WSGI) on a fixed pool
  of ``NOTIFIER_WEB_THREADS`` long-lived threads, as gunicorn's gthread worker
  would. Each thread keeps its persistent database connection
  (``CONN_MAX_AGE``). Django's own ASGI handler would instead run each sync
  view in a fresh thread with a fresh database connection, which costs about
  half the CPU of a request on this kind of machine (docs/inbox.md);
- the common single create (``POST /api/v1/notifications/{channel}/``) is
  answered on the event loop and the group committer, without Django's
  request cycle (``apps/notifications/api/express.py``); everything else it
  declines goes to the sync app with the same body.
"""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi = get_asgi_application()  # sets Django up

from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

from apps.notifications.api.express import express_create  # noqa: E402
from config.hybrid import HybridApp  # noqa: E402

application = HybridApp(
    asgi_app=django_asgi,
    wsgi_app=get_wsgi_application(),
    async_paths=settings.NOTIFIER_ASYNC_PATHS,
    threads=settings.NOTIFIER_WEB_THREADS,
    max_body_bytes=settings.NOTIFIER_MAX_BODY_BYTES,
    express=express_create(),  # the common single create without Django's request cycle (express.py)
)
