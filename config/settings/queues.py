"""Settings: Celery on RabbitMQ (exchanges, priority and maintenance queues, worker options) and beat's jobs."""
from __future__ import annotations

import math

from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from notifier.env import env_bool, env_float, env_int, env_str

from .delivery import (NOTIFIER_DISPATCH_INTERVAL, NOTIFIER_PARTITION_CHECK_INTERVAL, NOTIFIER_RESULT_HOOK_INTERVAL,
                       NOTIFIER_SWEEP_INTERVAL)

# --- Celery on RabbitMQ -------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
NOTIFIER_EXCHANGE = "notifications"
NOTIFIER_DEAD_EXCHANGE = "notifications.dlx"
NOTIFIER_DEAD_QUEUE = "notifications.dead"
PRIORITY_QUEUES = {p: f"notifications.{p}" for p in ("high", "normal", "low")}

_exchange = Exchange(NOTIFIER_EXCHANGE, type="direct", durable=True)
_queue_args = {
    "x-dead-letter-exchange": NOTIFIER_DEAD_EXCHANGE,
    "x-dead-letter-routing-key": NOTIFIER_DEAD_QUEUE,
}
# Operations: `quorum` on a RabbitMQ cluster (replicated queues, see docs/scaling.md);
# `classic` (default) on one node. Changing it needs the queues deleted and redeclared.
NOTIFIER_QUEUE_TYPE = env_str("NOTIFIER_QUEUE_TYPE", "classic")
if NOTIFIER_QUEUE_TYPE not in ("classic", "quorum"):
    raise ImproperlyConfigured(f"NOTIFIER_QUEUE_TYPE={NOTIFIER_QUEUE_TYPE!r}: use classic or quorum")
if NOTIFIER_QUEUE_TYPE == "quorum":
    _queue_args["x-queue-type"] = "quorum"
# Beat's own jobs (the dispatcher, the sweep, the idempotency purge) run on a queue and worker pool of their
# own (Procfile worker-maintenance): slow high-priority chunks never hold up scheduled sends and retries.
# No dead-letter arguments: a lost run of a periodic job is simply made good by the next one.
MAINTENANCE_QUEUE = "notifications.maintenance"
CELERY_TASK_QUEUES = tuple(
    Queue(name, _exchange, routing_key=name, durable=True, queue_arguments=_queue_args)
    for name in PRIORITY_QUEUES.values()
) + (Queue(MAINTENANCE_QUEUE, _exchange, routing_key=MAINTENANCE_QUEUE, durable=True,
           queue_arguments={"x-queue-type": "quorum"} if NOTIFIER_QUEUE_TYPE == "quorum" else None),)
_MAINTENANCE_TASKS = ("notifier.dispatch_due", "notifier.sweep", "notifier.result_hooks", "notifier.idempotency_purge",
                      "notifier.partitions",
                      "notifier.broadcast_expand", "notifier.broadcasts_due")
CELERY_TASK_ROUTES = {name: {"queue": MAINTENANCE_QUEUE, "routing_key": MAINTENANCE_QUEUE}
                      for name in _MAINTENANCE_TASKS}
CELERY_TASK_DEFAULT_QUEUE = PRIORITY_QUEUES["normal"]
CELERY_TASK_DEFAULT_EXCHANGE = NOTIFIER_EXCHANGE
CELERY_TASK_DEFAULT_ROUTING_KEY = PRIORITY_QUEUES["normal"]
CELERY_TASK_DEFAULT_DELIVERY_MODE = "persistent"
CELERY_TASK_CREATE_MISSING_QUEUES = False
CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_POOL_LIMIT = env_int("CELERY_BROKER_POOL_LIMIT", 10)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 2)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 270)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Task events (three more messages per task) feed Flower's task pages; off by default for throughput.
# Flower's worker and queue pages need none of them. CELERY_WORKER_SEND_TASK_EVENTS=1 turns them on.
CELERY_WORKER_SEND_TASK_EVENTS = env_bool("CELERY_WORKER_SEND_TASK_EVENTS", False)
CELERY_TASK_SEND_SENT_EVENT = False
CELERY_TIMEZONE = "UTC"
# Celery's consumer minus native delayed delivery (ETA tasks on quorum queues; notifier has none).
CELERY_WORKER_CONSUMER = "config.celery_app:NotifierConsumer"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"


# --- Beat schedule (scheduling) ----------------------------------------------------
# django-celery-beat's DatabaseScheduler stores these as PeriodicTasks with an
# IntervalSchedule whose `every` is an integer number of seconds (0.25 would be
# stored as 0), and it reads `expire_seconds`, not `expires`; the file-based
# scheduler reads `expires`. So: whole seconds, and both expiry options.
def _beat_entry(task: str, every: float, expire: int) -> dict:
    seconds = max(1, math.ceil(every))
    return {"task": task, "schedule": seconds,
            "options": {"queue": MAINTENANCE_QUEUE, "expires": expire, "expire_seconds": expire}}


CELERY_BEAT_SCHEDULE = {
    "notifier-dispatch-due": _beat_entry("notifier.dispatch_due", NOTIFIER_DISPATCH_INTERVAL,
                                         max(math.ceil(NOTIFIER_DISPATCH_INTERVAL * 5), 5)),
    "notifier-sweep": _beat_entry("notifier.sweep", NOTIFIER_SWEEP_INTERVAL,
                                  max(math.ceil(NOTIFIER_SWEEP_INTERVAL * 2), 10)),
    "notifier-result-hooks": _beat_entry("notifier.result_hooks", NOTIFIER_RESULT_HOOK_INTERVAL,
                                         max(math.ceil(NOTIFIER_RESULT_HOOK_INTERVAL * 2), 10)),
    "notifier-idempotency-purge": _beat_entry("notifier.idempotency_purge", 3600, 3600),
    "notifier-partitions": _beat_entry("notifier.partitions", NOTIFIER_PARTITION_CHECK_INTERVAL,
                                       max(math.ceil(NOTIFIER_PARTITION_CHECK_INTERVAL * 2), 10)),
}

# --- Broadcasts (apps.broadcasts, docs/broadcasts.md) ------------------------------------------------
# Subscribers per page (one transaction: their notifications and the cursor), seconds one expander task
# runs before it hands over, the beat job's interval, and how long a broadcast's counts are reused.
NOTIFIER_BROADCAST_PAGE = env_int("NOTIFIER_BROADCAST_PAGE", 5000)
NOTIFIER_BROADCAST_SLICE = env_float("NOTIFIER_BROADCAST_SLICE", 10.0)
NOTIFIER_BROADCAST_INTERVAL = env_float("NOTIFIER_BROADCAST_INTERVAL", 2.0)
NOTIFIER_BROADCAST_COUNTS_TTL = env_float("NOTIFIER_BROADCAST_COUNTS_TTL", 2.0)
CELERY_BEAT_SCHEDULE["notifier-broadcasts-due"] = _beat_entry(
    "notifier.broadcasts_due", NOTIFIER_BROADCAST_INTERVAL, max(math.ceil(NOTIFIER_BROADCAST_INTERVAL * 5), 10))
# Rows one dispatcher transaction releases at most (it loops until nothing is due).
NOTIFIER_DISPATCH_LIMIT = env_int("NOTIFIER_DISPATCH_LIMIT", 5000)
# No result backend, so no daily `celery.backend_cleanup` entry in the database schedule.
CELERY_RESULT_EXPIRES = None
# Recurring sends (apps.schedules): the queue their `notifier.send_recurring` runs on,
# and how many recipients one recurring send may name.
NOTIFIER_RECURRING_QUEUE = env_str("NOTIFIER_RECURRING_QUEUE", PRIORITY_QUEUES["normal"])
NOTIFIER_RECURRING_MAX_RECIPIENTS = env_int("NOTIFIER_RECURRING_MAX_RECIPIENTS", 1000)
if NOTIFIER_RECURRING_QUEUE not in PRIORITY_QUEUES.values():
    raise ImproperlyConfigured(f"NOTIFIER_RECURRING_QUEUE must be one of {', '.join(PRIORITY_QUEUES.values())}")
