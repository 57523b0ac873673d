"""Celery tasks of the idempotency app."""
from celery import shared_task

from . import services


@shared_task(name="notifier.idempotency_purge", acks_late=True)
def idempotency_purge() -> int:
    """Beat (hourly): forget Idempotency-Keys older than NOTIFIER_IDEMPOTENCY_TTL."""
    return services.idempotency_purge()
