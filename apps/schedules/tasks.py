"""Celery task run by beat for every recurring send (a django-celery-beat PeriodicTask)."""
from celery import shared_task
from django.conf import settings

from . import services


@shared_task(name=services.TASK_NAME, queue=settings.NOTIFIER_RECURRING_QUEUE, acks_late=True, bind=True)
def send_recurring(self, **kwargs) -> int:
    """One run of a recurring send: ``kwargs`` are documented in ``apps.schedules.services``."""
    headers = getattr(self.request, "headers", None) or {}
    name = getattr(self.request, "periodic_task_name", None) or headers.get("periodic_task_name", "")
    return services.recurring_send_run(kwargs=kwargs, periodic_task_name=name or "")
