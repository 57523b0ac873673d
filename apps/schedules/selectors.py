"""Reads: recurring sends are the PeriodicTasks that run ``notifier.send_recurring``."""
from __future__ import annotations

from django_celery_beat.models import PeriodicTask

from .services import TASK_NAME


def recurring_send_list(*, project_id: int, channels=None):
    """The recurring sends of ``project_id`` (of ``channels`` only, when given: a key's allowed channels)."""
    qs = PeriodicTask.objects.filter(task=TASK_NAME, notifier_owner__project_id=project_id)
    if channels:
        qs = qs.filter(notifier_owner__channel__in=list(channels))
    return qs.select_related("interval", "crontab").order_by("id")


def recurring_send_get(schedule_id, *, project_id: int, channels=None) -> PeriodicTask | None:
    try:
        pk = int(schedule_id)
    except (TypeError, ValueError):
        return None
    return recurring_send_list(project_id=project_id, channels=channels).filter(pk=pk).first()
