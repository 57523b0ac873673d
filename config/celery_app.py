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
def configure_logging(**kwargs):
    """Use the project's LOGGING (JSON lines by default) instead of Celery's own set-up,
    with every handler masking email addresses and phone numbers."""
    from django.conf import settings

    from notifier.pii import configure_logging as configure_masked_logging

    configure_masked_logging(settings.LOGGING)


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
