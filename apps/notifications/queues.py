"""Publishing to RabbitMQ: delivery tasks by priority, and the dead-letter queue."""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import Iterable

from django.conf import settings
from kombu import Exchange, Queue

logger = logging.getLogger(__name__)


def priority_queue(priority: str) -> str:
    return settings.PRIORITY_QUEUES.get(priority, settings.PRIORITY_QUEUES["normal"])


def dead_letter_queue() -> Queue:
    exchange = Exchange(settings.NOTIFIER_DEAD_EXCHANGE, type="direct", durable=True)
    arguments = {"x-queue-type": "quorum"} if getattr(settings, "NOTIFIER_QUEUE_TYPE", "classic") == "quorum" else None
    return Queue(settings.NOTIFIER_DEAD_QUEUE, exchange, routing_key=settings.NOTIFIER_DEAD_QUEUE, durable=True,
                 queue_arguments=arguments)


def chunked(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def publish_deliveries(items: Iterable[tuple[object, str]], *, chunk_size: int | None = None) -> None:
    """Publish delivery tasks for (id, priority) pairs: one message per chunk of ids per priority
    (chunks of ``NOTIFIER_CHUNK_SIZE``, or of ``chunk_size``).

    Every publish waits for RabbitMQ's confirm (``confirm_publish``), so a
    return means the broker has the message. Raises on broker errors.
    """
    from notifier.context import task_headers

    from .tasks import deliver

    _ensure_topology()
    headers = task_headers()  # the API request id, restored in the worker
    by_priority: dict[str, list[str]] = defaultdict(list)
    for notification_id, priority in items:
        by_priority[priority].append(str(notification_id))
    for priority, ids in by_priority.items():
        queue = priority_queue(priority)
        for chunk in chunked(ids, chunk_size or settings.NOTIFIER_CHUNK_SIZE):
            # argsrepr (what Flower shows): the first id and the count. Celery would otherwise
            # build a truncated repr of the whole list of ids for every message.
            deliver.apply_async(args=[chunk], queue=queue, routing_key=queue,
                                exchange=settings.NOTIFIER_EXCHANGE, headers=headers,
                                argsrepr=_ids_repr(chunk))


def _ids_repr(ids: list[str]) -> str:
    return f"[['{ids[0]}']]" if len(ids) == 1 else f"[['{ids[0]}', ... {len(ids)} ids]]"


_declared = False


def _ensure_topology() -> None:
    """Declare queues once per process, so a message is never dropped as unroutable
    because no worker has declared its queue yet."""
    global _declared
    if not _declared:
        declare_topology()
        _declared = True


def declare_topology() -> None:
    """Declare the exchanges and durable queues (workers also declare theirs)."""
    from config.celery_app import app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in settings.CELERY_TASK_QUEUES:
            queue.bind(channel).declare()
        dead_letter_queue().bind(channel).declare()


def publish_dead_letters(letters: list[dict]) -> None:
    """Put one persistent JSON message per failed notification on ``notifications.dead``."""
    if not letters:
        return
    from config.celery_app import app

    queue = dead_letter_queue()
    with app.producer_or_acquire() as producer:
        for letter in letters:
            producer.publish(
                json.dumps(letter), exchange=queue.exchange, routing_key=queue.routing_key,
                declare=[queue], content_type="application/json", content_encoding="utf-8",
                delivery_mode=2, retry=True,
                headers={"notification_id": letter["id"], "channel": letter.get("channel", "")},
            )


def process_dead_letters(*, limit: int | None, select, handle, consume: bool = True) -> tuple[int, int]:
    """Walk ``notifications.dead``: for each letter ``select(letter)`` picks it,
    ``handle(letter)`` acts on it, and only then is it removed (when
    ``consume``); letters not picked, or not consumed, are put back.
    Returns (handled, left).
    """
    from config.celery_app import app

    handled = 0
    pending = []
    with app.connection_for_write() as conn:
        channel = conn.channel()
        try:
            queue = dead_letter_queue().bind(channel)
            queue.declare()
            while limit is None or handled < limit:
                message = queue.get(no_ack=False, accept=["json", "application/json"])
                if message is None:
                    break
                try:
                    letter = json.loads(message.body)
                except (TypeError, ValueError):
                    letter = None
                if isinstance(letter, dict) and select(letter):
                    handle(letter)
                    handled += 1
                    if consume:
                        message.ack()
                        continue
                pending.append(message)
            for message in pending:
                message.requeue()
        finally:
            channel.close()
    return handled, len(pending)
