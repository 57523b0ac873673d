"""Backpressure for bulk acceptance: a batch waits while the queues it would feed are deep.

Acceptance and delivery share the machine. Under a sustained bulk load the API can take
notifications faster than the workers send them (measured: 20,700/s accepted, 15,200/s sent while
four clients posted 1,000-item batches), and then the backlog, and every notification's wait
between ``created_at`` and ``sent_at``, grows for as long as the load lasts while the API's CPU is
spent on work that only waits. So before a batch is created, its priority queues are checked:
while one holds more than ``NOTIFIER_BACKLOG_MAX`` ready messages (delivery chunks that no worker
has taken yet), the request waits, for at most ``NOTIFIER_BACKLOG_WAIT`` seconds, and is then
accepted whatever the depth (the rows are safe in PostgreSQL; a stopped worker pool must not stop
the API). Single creates never wait here. ``NOTIFIER_BACKLOG_MAX=0`` turns it off.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable

from django.conf import settings

from notifier import metrics

from ..outbox import priority_queue

logger = logging.getLogger(__name__)


def queue_depth(queue: str) -> int:
    """Ready messages in ``queue`` (RabbitMQ's passive declare: one round trip on a pooled connection)."""
    from config.celery_app import app

    with app.pool.acquire(block=True) as conn:
        return conn.default_channel.queue_declare(queue=queue, passive=True).message_count


class Backlog:
    """Depths read at most every ``ttl`` seconds per queue, shared by the process's request threads."""

    def __init__(self, *, depth: Callable[[str], int] = queue_depth, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, ttl: float = 0.025):
        self.depth = depth
        self.clock = clock
        self.sleep = sleep
        self.ttl = ttl
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, int]] = {}

    def _depth(self, queue: str) -> int:
        now = self.clock()
        seen = self._seen.get(queue)
        if seen is not None and now - seen[0] < self.ttl:
            return seen[1]
        with self._lock:  # one thread asks the broker, the others take its answer
            seen = self._seen.get(queue)
            if seen is not None and self.clock() - seen[0] < self.ttl:
                return seen[1]
            try:
                depth = self.depth(queue)
            except Exception:  # noqa: BLE001 - no backpressure without a broker to ask; publishing will tell
                logger.warning("could not read the depth of %s; not waiting", queue, exc_info=True)
                depth = 0
            self._seen[queue] = (self.clock(), depth)
            return depth

    def wait_for_room(self, priorities: Iterable[str], *, limit: int, wait: float) -> float:
        """Wait until every queue of ``priorities`` holds at most ``limit`` ready messages, or ``wait``
        seconds have passed; returns the seconds waited."""
        queues = sorted({priority_queue(p) for p in priorities})
        if limit <= 0 or wait <= 0 or not queues:
            return 0.0
        deep = [q for q in queues if self._depth(q) > limit]
        if not deep:
            return 0.0
        started, waited_for = self.clock(), deep
        while deep:
            left = wait - (self.clock() - started)
            if left < 0.001:  # (not <= 0: a remainder of float rounding would never be slept away)
                break
            self.sleep(min(self.ttl, left))
            deep = [q for q in deep if self._depth(q) > limit]
        waited = self.clock() - started
        metrics.backlog_waited(waited_for, waited)
        return waited


_backlog = Backlog()


def wait_for_room(priorities: Iterable[str]) -> float:
    """The batch path's backpressure (see the module's docstring); returns the seconds waited."""
    return _backlog.wait_for_room(priorities, limit=settings.NOTIFIER_BACKLOG_MAX, wait=settings.NOTIFIER_BACKLOG_WAIT)
