"""Flower options (``celery -A config.celery_app flower --conf=config/flowerconfig.py``).

- Basic auth is required: ``FLOWER_BASIC_AUTH=user:password`` (comma-separate
  several). ``make run`` writes local credentials into ``.env``; docker/ takes
  them from the environment. Flower refuses to start without them.
- Like every other process, Flower reads the project's ``.env`` (or
  ``NOTIFIER_DOTENV``) under the environment before reading any option. It
  must load it itself: with ``CELERY_BROKER_URL`` exported, Celery answers
  ``broker_url`` from the environment without loading Django's settings, so
  nothing else would have loaded it yet.
- The broker tab and ``/api/queues/length`` read RabbitMQ's management API.
  ``FLOWER_BROKER_API`` sets its URL; otherwise it is derived from the broker
  URL: same host, user and password, port ``RABBITMQ_MANAGEMENT_PORT`` (15672).
"""
import os
from urllib.parse import quote, unquote, urlsplit

from notifier.env import load_project_dotenv

load_project_dotenv()

from config.celery_app import app  # noqa: E402


def _broker_api(broker_url: str) -> str:
    # Several URLs (a cluster, "amqp://a//;amqp://b//"): the management API of the first.
    parts = urlsplit(broker_url.split(";")[0].strip())
    user = quote(unquote(parts.username or "guest"), safe="")
    password = quote(unquote(parts.password or "guest"), safe="")
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    port = os.environ.get("RABBITMQ_MANAGEMENT_PORT", "15672")
    scheme = "https" if parts.scheme in ("amqps", "pyamqps") else "http"
    return f"{scheme}://{user}:{password}@{host}:{port}/api/"


broker_api = os.environ.get("FLOWER_BROKER_API") or _broker_api(app.conf.broker_url)

_credentials = [c.strip() for c in os.environ.get("FLOWER_BASIC_AUTH", "").split(",") if c.strip()]
if not _credentials and not os.environ.get("FLOWER_AUTH"):
    raise SystemExit("Flower needs FLOWER_BASIC_AUTH=user:password in the environment or .env "
                     "(make run writes one into .env)")
if _credentials:
    basic_auth = _credentials

# Flower normally switches task events on in every worker it sees (a control command every few
# seconds), which overrides CELERY_WORKER_SEND_TASK_EVENTS=0: three more messages per task. Follow
# the setting instead, so a deployment that turned events off for throughput keeps them off.
enable_events = bool(app.conf.worker_send_task_events)

# Keep the UI responsive with many tasks; workers are listed even when offline for a while.
max_tasks = int(os.environ.get("FLOWER_MAX_TASKS", "10000"))


def _list_every_queue() -> None:
    """Flower lists only queues some worker consumes; operators also need a queue whose
    pool is down (0 consumers) and the dead-letter queue. Add them to its list."""
    from django.conf import settings
    from flower.views import BaseHandler

    original = BaseHandler.get_active_queue_names
    if getattr(original, "_notifier", False):
        return
    ours = {*settings.PRIORITY_QUEUES.values(), settings.MAINTENANCE_QUEUE, settings.NOTIFIER_DEAD_QUEUE}

    def get_active_queue_names(self):
        return sorted(set(original(self)) | ours)

    get_active_queue_names._notifier = True
    BaseHandler.get_active_queue_names = get_active_queue_names


_list_every_queue()
