"""The publish outbox: what leaves for RabbitMQ once its rows are committed.

Delivery tasks (``notifier.deliver``, sent by name: this module never imports the tasks) go to the queue
of their priority in chunks of ``NOTIFIER_CHUNK_SIZE`` ids, with publisher confirms; small publishes of
concurrent requests are coalesced on the process's publisher thread (``notifier.batching``), which also
deletes the ``PendingPublish`` entries of confirmed groups. A publish that fails makes its rows due for
the dispatcher. Dead letters go to ``notifications.dead``; the topology (exchanges, durable queues) is
declared once per process before the first publish.
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import Any, Iterable

from django.conf import settings
from django.db import transaction
from kombu import Exchange, Queue

from notifier.batching import CoalescingPublisher
from notifier.context import task_headers
from notifier.interrupts import INTERRUPTS

from . import store

logger = logging.getLogger(__name__)

# The delivery task's name (SPEC.md): sent by name, so publishing never imports the worker side.
DELIVER = "notifier.deliver"


# --- delivery tasks ----------------------------------------------------------------------

def publish(items: list[tuple[Any, str]], *, coalesce: bool = True, wait: bool = True,
                         pending: list | tuple = ()) -> None:
    """Publish delivery tasks; if the broker is unreachable, leave the rows due for the dispatcher.

    A few items (the single endpoint) join those of concurrent requests in one
    message (``NOTIFIER_PUBLISH_COALESCE_MS``, see ``publisher.py``); the caller
    still waits for the broker's confirm of that message. ``coalesce=False``: the
    caller has already gathered them (the group committer), publish at once.
    ``wait=False``: hand them to the process's publisher thread and return at once
    (the group committer, unless ``NOTIFIER_ANSWER_AFTER_CONFIRM``); the rows are
    committed, so a publish that fails or never happens is made good by the
    dispatcher (a process that dies first leaves their ``PendingPublish`` entry,
    which the dispatcher finds after ``NOTIFIER_PUBLISH_GRACE`` seconds) or the sweep.
    ``pending``: the keys of the items' ``PendingPublish`` entries (``store.insert_notifications``),
    deleted by the publisher thread once the items are published (or marked due).
    """
    if not wait:
        _coalescing_publisher(always=True).submit(items, pending=pending)
        return
    publisher = _coalescing_publisher() if coalesce else None
    if publisher is not None and len(items) < publisher.max_items:
        publisher.submit(items, wait=settings.NOTIFIER_PUBLISH_WAIT, pending=pending)
        return
    publish_or_mark_due(items)
    if pending:
        _coalescing_publisher(always=True).submit([], pending=pending)  # deleted off this thread


def publish_on_commit(items: list[tuple[Any, str]], **options) -> None:
    """``publish(items)`` once the surrounding transaction commits (at once outside one)."""
    transaction.on_commit(lambda: publish(items, **options))


_publisher = None


def _coalescing_publisher(*, always: bool = False):
    """The process's coalescing publisher; None when coalescing is off, unless ``always``
    (then one that publishes what it has as soon as it can)."""
    global _publisher
    window = max(settings.NOTIFIER_PUBLISH_COALESCE_MS / 1000, 0.0)
    if window <= 0 and not always:
        return None
    if _publisher is None or _publisher.window != window:
        lazy = window and max(settings.NOTIFIER_PUBLISH_LAZY_MS, 0.0) / 1000
        _publisher = CoalescingPublisher(publish_or_mark_due, window=window, max_items=settings.NOTIFIER_CHUNK_SIZE,
                                         settle=_settle_published, on_idle=_close_thread_connections,
                                         # The lazy window only where it would gather a few notifications.
                                         lazy_window=lazy, lazy_min_rate=_LAZY_GATHERS / lazy if lazy else 0.0,
                                         settle_every=min(max(settings.NOTIFIER_PUBLISH_SETTLE_MS, 0.0) / 1000,
                                                          settings.NOTIFIER_PUBLISH_GRACE / 10))
    return _publisher


# The lazy window is kept while it would gather at least this many notifications (the publisher's recent rate
# times the window); a slower trickle is published after NOTIFIER_PUBLISH_COALESCE_MS, as a waiting caller's.
_LAZY_GATHERS = 4


def _close_thread_connections() -> None:
    """The publisher thread's database connection (it deletes the ``PendingPublish`` entries of what it
    published, and marks rows due after a failed publish) is kept while it works and closed once it has
    been idle for a while or drained: no connection per web process idling on the server, and tests
    drop their database."""
    from django.db import connections

    connections.close_all()


def _settle_published(keys: list) -> None:
    """Delete the ``PendingPublish`` entries of published groups: one statement for every group of a flush."""
    try:
        store.delete_pending(keys)
    except Exception:  # noqa: BLE001 - left, the dispatcher republishes those groups after the grace (harmless)
        logger.exception("could not delete %d pending-publish entries", len(keys))
        _close_thread_connections()


def publisher_drain(timeout: float = 10.0) -> bool:
    """Publish what the process's publisher thread still holds (before the process exits)."""
    return _publisher.drain(timeout) if _publisher is not None else True


def publish_or_mark_due(items: list[tuple[Any, str]], *, chunk_size: int | None = None) -> None:
    """Publish ``items``; if the broker fails, make their rows due (the dispatcher republishes them)."""
    try:
        if chunk_size is None:
            publish_deliveries(items)
        else:  # a worker's unsent rest, in smaller chunks (delivery.worker)
            publish_deliveries(items, chunk_size=chunk_size)
    except Exception as exc:  # noqa: BLE001 - the row is safe in PostgreSQL; the dispatcher republishes it
        logger.exception("publish failed for %d notifications; the dispatcher will republish them", len(items))
        try:
            store.mark_due([i for i, _ in items])
        except INTERRUPTS:
            raise
        except Exception:  # noqa: BLE001 - then the sweep finds them by queued_at
            logger.exception("could not mark unpublished notifications as due")
        if isinstance(exc, INTERRUPTS):
            raise  # a worker's task time is up (notifier.interrupts), its rows marked due all the same


def priority_queue(priority: str) -> str:
    return settings.PRIORITY_QUEUES.get(priority, settings.PRIORITY_QUEUES["normal"])


def chunked(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def publish_deliveries(items: Iterable[tuple[object, str]], *, chunk_size: int | None = None) -> None:
    """Publish delivery tasks for (id, priority) pairs: one message per chunk of ids per priority
    (chunks of ``NOTIFIER_CHUNK_SIZE``, or of ``chunk_size``).

    Every publish waits for RabbitMQ's confirm (``confirm_publish``), so a
    return means the broker has the message. Raises on broker errors.
    """
    from config.celery_app import app

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
            app.send_task(DELIVER, args=[chunk], queue=queue, routing_key=queue,
                          exchange=settings.NOTIFIER_EXCHANGE, headers=headers, argsrepr=_ids_repr(chunk),
                          ignore_result=app.conf.task_ignore_result)


def _ids_repr(ids: list[str]) -> str:
    return f"[['{ids[0]}']]" if len(ids) == 1 else f"[['{ids[0]}', ... {len(ids)} ids]]"


# --- topology ----------------------------------------------------------------------------

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


# --- dead letters ------------------------------------------------------------------------

def dead_letter_queue() -> Queue:
    exchange = Exchange(settings.NOTIFIER_DEAD_EXCHANGE, type="direct", durable=True)
    arguments = {"x-queue-type": "quorum"} if settings.NOTIFIER_QUEUE_TYPE == "quorum" else None
    return Queue(settings.NOTIFIER_DEAD_QUEUE, exchange, routing_key=settings.NOTIFIER_DEAD_QUEUE, durable=True,
                 queue_arguments=arguments)


def dead_letter(letters: list[dict]) -> None:
    """``publish_dead_letters``, logging a failure (the rows are recorded ``failed`` whatever happens)."""
    try:
        publish_dead_letters(letters)
    except INTERRUPTS:
        raise
    except Exception:  # noqa: BLE001 - the rows are `failed` in PostgreSQL; `replay --status failed` finds them
        logger.exception("could not publish %d dead letters", len(letters))


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
