"""Reads: recurring sends are the PeriodicTasks that run ``notifier.send_recurring``."""
from __future__ import annotations

from django_celery_beat.models import PeriodicTask

from .services import TASK_NAME


def recurring_send_list():
    return PeriodicTask.objects.filter(task=TASK_NAME).select_related("interval", "crontab").order_by("id")


def recurring_send_get(schedule_id) -> PeriodicTask | None:
    try:
        pk = int(schedule_id)
    except (TypeError, ValueError):
        return None
    return recurring_send_list().filter(pk=pk).first()
