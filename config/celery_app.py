import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("notifier")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# --- PII: the handlers Celery adds itself (task loggers) mask addresses like Django's do.
from celery import signals  # noqa: E402


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _mask_pii_in_celery_logs(logger=None, **kwargs):
    from notifier.pii import mask_all_log_handlers

    mask_all_log_handlers()


# --- Operations: logging and request ids in worker processes ----------------------
from celery.signals import setup_logging, task_postrun, task_prerun  # noqa: E402

from notifier.context import REQUEST_ID_HEADER, set_request_id  # noqa: E402


@setup_logging.connect
def configure_logging(loglevel=None, **kwargs):
    """Use the project's LOGGING (JSON lines by default) instead of Celery's own set-up,
    with every handler masking email addresses and phone numbers. The worker's ``--loglevel``
    (``WORKER_LOGLEVEL`` in the Procfile) sets the level of Celery's own loggers."""
    import logging

    from django.conf import settings

    from notifier.pii import configure_logging as configure_masked_logging

    configure_masked_logging(settings.LOGGING)
    if loglevel:
        logging.getLogger("celery").setLevel(loglevel)


def _header(request, name):
    value = getattr(request, name, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(name)
    return value


@task_prerun.connect
def restore_request_id(task=None, **kwargs):
    """The request id published with the task (see queues.publish_deliveries) rules its logs."""
    set_request_id(_header(task.request, REQUEST_ID_HEADER) if task is not None else None)


@task_postrun.connect
def clear_request_id(**kwargs):
    set_request_id(None)


# --- Database connections: reuse them across tasks ------------------------------------
# Celery's Django fixup closes every database connection before and after each task unless
# CELERY_DB_REUSE_MAX is set: a new PostgreSQL connection per task (≈3 ms of server CPU each,
# the cost of the tutorial-style design). With it set, the fixup only recycles connections every
# 2 × CELERY_DB_REUSE_MAX tasks, and Django's own rule (CONN_MAX_AGE, health checks, a
# connection left unusable by an error) decides around each task, as it does around requests.
app.conf.CELERY_DB_REUSE_MAX = 1000


@task_prerun.connect
@task_postrun.connect
def _drop_unusable_or_obsolete_connections(**kwargs):
    from django.db import close_old_connections

    close_old_connections()


# --- Garbage collection: start-up objects out of the collector's walks -----------------------
from celery.signals import worker_process_init, worker_ready  # noqa: E402


@worker_ready.connect  # the main process (where the threads and solo pools run tasks)
@worker_process_init.connect  # each prefork child
def _freeze_startup_objects(**kwargs):
    from notifier.process import freeze_startup_objects

    freeze_startup_objects()


# --- Quorum queues: no native delayed delivery -------------------------------------------------
from celery.worker.consumer import Consumer as _CeleryConsumer  # noqa: E402


class NotifierConsumer(_CeleryConsumer):
    """Celery's consumer without its native delayed delivery step (CELERY_WORKER_CONSUMER).

    With quorum queues Celery (5.5+) adds a step that, at every consumer (re)start, declares 28
    ``celery_delayed_*`` exchanges and quorum queues on EACH broker URL and binds every task queue
    to them, for ETA/countdown tasks. notifier sends none (retry and schedule times live in
    PostgreSQL), its exchange is direct (which that feature does not serve anyway), and the step
    retries a broker that is down for about 16 s before the worker consumes again: after a RabbitMQ
    node of a cluster died, every worker stopped delivering that long (make cluster-test)."""

    class Blueprint(_CeleryConsumer.Blueprint):
        default_steps = [step for step in _CeleryConsumer.Blueprint.default_steps
                         if not step.endswith(":DelayedDelivery")]
