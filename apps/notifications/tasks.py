"""Celery tasks: thin wrappers that take ids and call the worker side (``delivery``, ``maintenance``,
``resulthooks``). Their names and queues are the SPEC.md contract; ``outbox`` sends them by name."""
import time

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from . import maintenance, partitions, resulthooks
from .delivery import worker


@shared_task(name="notifier.deliver", bind=True, acks_late=True, autoretry_for=(DatabaseError,),
             retry_backoff=True, retry_backoff_max=60, max_retries=10)
def deliver(self, ids: list[str]) -> dict[str, int]:
    """Deliver a chunk of notifications (published to the queue of their priority).

    Its deadline follows the time limits the message carries (Celery stamps the publisher's
    ``CELERY_TASK_*TIME_LIMIT`` on each message, and a prefork worker enforces those, not its own).
    """
    hard, soft = self.request.timelimit or (None, None)
    return worker.deliver_chunk(ids, deadline=time.monotonic() + worker.chunk_deadline(soft=soft, hard=hard))


@shared_task(name="notifier.dispatch_due", acks_late=True)
def dispatch_due() -> int:
    """Beat: queue scheduled notifications and retries that are due."""
    return maintenance.dispatch_due(limit=settings.NOTIFIER_DISPATCH_LIMIT)


@shared_task(name="notifier.sweep", acks_late=True)
def sweep() -> dict[str, int]:
    """Beat: put back work lost to dead workers or dropped publishes."""
    return maintenance.sweep()


@shared_task(name="notifier.result_hooks", acks_late=True)
def result_hooks() -> dict[str, int]:
    """Beat: run the result hooks left behind by a process that died after recording results, and retries."""
    return resulthooks.run_due()


@shared_task(name="notifier.partitions", acks_late=True)
def partitions_maintain() -> dict:
    """Beat: time partitions created ahead, expired ones dropped (retention)."""
    return partitions.maintain()
