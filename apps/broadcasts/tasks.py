"""Celery tasks of broadcasts, on the maintenance queue (routed in settings): thin wrappers."""
from celery import shared_task

from . import services


@shared_task(name="notifier.broadcast_expand", acks_late=True)
def broadcast_expand(broadcast_id: str | None = None) -> dict[str, int]:
    """Create broadcasts' notifications for one slice of time, ``broadcast_id`` first (services.py)."""
    return services.broadcasts_expand(first=broadcast_id)


@shared_task(name="notifier.broadcasts_due", acks_late=True)
def broadcasts_due() -> dict[str, int]:
    """Beat: start scheduled broadcasts whose time has come, and the expander where it is not running."""
    return services.broadcasts_due()
