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
