"""What ``/metrics`` serves: the counters of every process plus gauges read at scrape time.

Queue depth and consumer counts come from RabbitMQ with a passive
``queue.declare`` per queue over one long-lived connection per web process,
cached for ``NOTIFIER_METRICS_QUEUE_CACHE`` seconds so frequent scrapes do not
load the broker. Circuit breaker states come from ``notifier.metrics.breaker_states``.
"""
from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from notifier import metrics

logger = logging.getLogger(__name__)


def queue_names() -> list[str]:
    return [*settings.PRIORITY_QUEUES.values(), settings.MAINTENANCE_QUEUE, settings.NOTIFIER_DEAD_QUEUE]


class BrokerProbe:
    """Reads (messages, consumers) per queue over a reused AMQP connection."""

    def __init__(self):
        self._lock = threading.Lock()
        self._conn = None
        self._url = None
        self._cached_at = 0.0
        self._cached: dict | None = None

    def _connection(self):
        from kombu import Connection

        url = settings.CELERY_BROKER_URL
        if self._conn is None or self._url != url:
            self.close()
            self._conn = Connection(url, connect_timeout=settings.NOTIFIER_READINESS_TIMEOUT)
            self._url = url
        self._conn.connection  # connect once (one attempt) if not connected  # noqa: B018
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.release()
            except Exception:  # noqa: BLE001
                pass
        self._conn = None

    def queue_stats(self, *, max_age: float | None = None) -> dict[str, tuple[int, int] | None]:
        """``{queue: (messages, consumers) or None if it does not exist}``; raises when the broker is down."""
        if max_age is None:
            max_age = settings.NOTIFIER_METRICS_QUEUE_CACHE
        with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached_at < max_age and self._url == settings.CELERY_BROKER_URL:
                return self._cached
            try:
                conn = self._connection()
                stats: dict[str, tuple[int, int] | None] = {}
                for name in queue_names():
                    channel = conn.channel()
                    try:
                        _, messages, consumers = channel.queue_declare(queue=name, passive=True)
                        stats[name] = (messages, consumers)
                    except Exception as exc:  # noqa: BLE001
                        from amqp.exceptions import NotFound

                        if not isinstance(exc, NotFound):
                            raise
                        stats[name] = None
                    finally:
                        try:
                            channel.close()
                        except Exception:  # noqa: BLE001 - the server already closed it (404)
                            pass
            except Exception:
                self.close()
                self._cached = None
                raise
            self._cached, self._cached_at = stats, now
            return stats


probe = BrokerProbe()


class QueueCollector:
    def collect(self):
        up = GaugeMetricFamily("notifier_broker_up", "1 if RabbitMQ answered the last queue scrape.")
        depth = GaugeMetricFamily("notifier_queue_messages", "Messages ready in each queue.", labels=["queue"])
        consumers = GaugeMetricFamily("notifier_queue_consumers", "Consumers on each queue.", labels=["queue"])
        dead = GaugeMetricFamily("notifier_dead_letter_messages", "Messages in the dead-letter queue.")
        try:
            stats = probe.queue_stats()
        except Exception as exc:  # noqa: BLE001 - the scrape still answers, with broker_up 0
            logger.warning("queue metrics unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for name, value in stats.items():
            if value is None:
                continue
            messages, count = value
            depth.add_metric([name], messages)
            consumers.add_metric([name], count)
            if name == settings.NOTIFIER_DEAD_QUEUE:
                dead.add_metric([], messages)
        yield from (up, depth, consumers, dead)


class BreakerCollector:
    def collect(self):
        state = GaugeMetricFamily(
            "notifier_circuit_breaker_state", "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open.",
            labels=["provider"])
        is_open = GaugeMetricFamily("notifier_circuit_breaker_open", "1 while a provider's breaker is open.",
                                    labels=["provider"])
        for provider, name in sorted(metrics.breaker_states().items()):
            value = metrics.BREAKER_STATE_VALUES.get(name, 0)
            state.add_metric([provider], value)
            is_open.add_metric([provider], 1 if value == 2 else 0)
        yield state
        yield is_open


class _ProcessRegistry:
    """This process's own metrics (used when PROMETHEUS_MULTIPROC_DIR is not set)."""

    def collect(self):
        return REGISTRY.collect()


def render() -> bytes:
    """The text exposition of every metric for one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    if metrics.MULTIPROC_DIR:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=metrics.MULTIPROC_DIR)
    else:
        registry.register(_ProcessRegistry())
    registry.register(QueueCollector())
    registry.register(BreakerCollector())
    return generate_latest(registry)
