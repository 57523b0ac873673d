"""Prometheus metric definitions and the helpers the pipeline calls.

Multiprocess-safe: when ``PROMETHEUS_MULTIPROC_DIR`` is set (``make run``, the
Procfile and docker/ set it for every process, and clean it at start), every
process (gunicorn workers, Celery prefork children, beat) writes its counters
to memory-mapped files in that directory, and ``/metrics`` (served by Django,
``apps/ops``) adds them up with ``MultiProcessCollector``. Workers therefore
need no port of their own. The directory must be set before this module is
imported.

Helpers take whole batches and increment by counts: one ``inc(n)`` per label
set, never one per row.

Gauges that describe the outside world (queue depths, consumers, breaker
state) are not stored here; ``apps/ops/collectors.py`` reads them at scrape
time.
"""
from __future__ import annotations

import logging
import os
import socket
from bisect import bisect_left
from collections import Counter as Tally
from datetime import datetime
from typing import Iterable

from prometheus_client import Counter, Histogram, values

from notifier.interrupts import INTERRUPTS

logger = logging.getLogger(__name__)

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None

_HOST = socket.gethostname().replace("_", "-")


def process_identifier(pid: int | None = None) -> str:
    """Names this process's files in the shared directory. With several containers
    sharing one directory (docker/), pids collide, so the host name is part of it."""
    return f"{_HOST}-{os.getpid() if pid is None else pid}"


if MULTIPROC_DIR:
    values.ValueClass = values.MultiProcessValue(process_identifier)

# --- notifications -------------------------------------------------------------
NOTIFICATIONS = Counter(
    "notifier_notifications", "Notifications entering each status (summed over all processes).",
    ["channel", "status"],
)
NOTIFICATION_STATUS = Counter(
    "notifier_notification_status", "Notifications entering each status, by channel, category and priority.",
    ["channel", "category", "priority", "status"],
)
ACCEPTED = Counter(
    "notifier_notifications_accepted", "Notifications accepted by the API (any initial status).",
    ["channel", "category", "priority"],
)
ATTEMPTS = Counter(
    "notifier_delivery_attempts", "Provider calls, by provider and outcome (accepted, transient_error, permanent_error).",
    ["channel", "provider", "outcome"],
)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
LATENCY = Histogram(
    "notifier_delivery_latency_seconds", "Time from created_at to sent_at, by priority.",
    ["priority"], buckets=LATENCY_BUCKETS,
)

# --- API -----------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "notifier_http_requests", "API requests by method, route and status code.", ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "notifier_http_request_duration_seconds", "API request duration by method and route.", ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BACKLOG_WAITS = Counter(
    "notifier_backlog_waits", "Batch requests that waited for a deep delivery queue (backpressure).", ["queue"],
)
BACKLOG_WAIT_SECONDS = Counter(
    "notifier_backlog_wait_seconds", "Seconds batch requests waited for deep delivery queues.", ["queue"],
)


def _safe(fn):
    """Metrics never break the work they describe."""

    def wrapper(*args, **kwargs):
        try:
            fn(*args, **kwargs)
        except INTERRUPTS:
            raise
        except Exception:  # noqa: BLE001
            logger.warning("metrics update failed", exc_info=True)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@_safe
def notifications_entered(rows: Iterable[tuple[str, str, str, str]]) -> None:
    """Count notifications entering a status: ``rows`` of (channel, category, priority, status),
    or a mapping of such tuples to counts (a caller that has counted them already)."""
    detailed = Tally(rows)
    by_status: Tally = Tally()
    for (channel, category, priority, status), n in detailed.items():
        NOTIFICATION_STATUS.labels(channel, category or "", priority or "", status).inc(n)
        by_status[(channel, status)] += n
    for (channel, status), n in by_status.items():
        NOTIFICATIONS.labels(channel, status).inc(n)


@_safe
def notifications_accepted(rows: Iterable[tuple[str, str, str]]) -> None:
    """Count accepted notifications: ``rows`` of (channel, category, priority)."""
    for (channel, category, priority), n in Tally(rows).items():
        ACCEPTED.labels(channel, category or "", priority or "").inc(n)


@_safe
def attempts_made(channel: str, paths: Iterable[tuple[list[tuple[str, str]], bool, bool]]) -> None:
    """Count provider calls from failover paths.

    ``paths``: (path, ok, permanent) per message, where path is the list of
    (provider, "accepted" | error text) it went through. Every step but the
    last was a transient error (failover moved on); the last one is the outcome.
    """
    tally: Tally = Tally()
    for path, ok, permanent in paths:
        if ok and len(path) == 1:  # the common case: the first provider accepted it
            tally[(path[0][0], "accepted")] += 1
            continue
        for index, (provider, _) in enumerate(path):
            if index < len(path) - 1:
                tally[(provider, "transient_error")] += 1
            elif ok:
                tally[(provider, "accepted")] += 1
            else:
                tally[(provider, "permanent_error" if permanent else "transient_error")] += 1
    for (provider, outcome), n in tally.items():
        ATTEMPTS.labels(channel, provider, outcome).inc(n)


def observe_many(histogram, amounts: Iterable[tuple[float, int]]) -> None:
    """``histogram.observe(amount)`` ``count`` times for each (amount, count), one write per bucket.

    The same buckets, count and sum as observing each value in turn (the sum up
    to float rounding), but each bucket and the sum are incremented once: with
    ``PROMETHEUS_MULTIPROC_DIR`` every increment is a write to a memory-mapped
    file with a pid check, and one ``observe`` per delivered notification was
    the largest part of the worker's metrics cost. ``histogram`` is a labelled
    child (``LATENCY.labels(...)``). prometheus_client stores non-cumulative
    bucket counts (an observation increments the first bucket whose bound is
    >= the value) and adds them up at collection; this follows that.
    """
    histogram._raise_if_not_observable()
    bounds = histogram._upper_bounds  # ends with +Inf
    counts = [0] * len(bounds)
    total = 0.0
    for amount, count in amounts:
        counts[bisect_left(bounds, amount)] += count
        total += amount * count
    if not any(counts):
        return
    histogram._sum.inc(total)
    for bucket, count in zip(histogram._buckets, counts):
        if count:
            bucket.inc(count)


@_safe
def latency_observed(rows: Iterable[tuple[str, datetime, datetime]]) -> None:
    """Observe created→sent latency: ``rows`` of (priority, created_at, sent_at), or a mapping of
    such tuples to counts.

    A chunk's rows mostly share their times (a batch is created at one instant
    and its results written at another), so equal rows are counted first and
    each priority's histogram is written once (``observe_many``).
    """
    by_priority: dict[str, list[tuple[float, int]]] = {}
    for (priority, created_at, sent_at), count in Tally(rows).items():
        if created_at is not None and sent_at is not None:
            amount = max((sent_at - created_at).total_seconds(), 0.0)
            by_priority.setdefault(priority or "", []).append((amount, count))
    for priority, amounts in by_priority.items():
        observe_many(LATENCY.labels(priority), amounts)


@_safe
@_safe
def backlog_waited(queues: list[str], seconds: float) -> None:
    for queue in queues:
        BACKLOG_WAITS.labels(queue).inc()
        BACKLOG_WAIT_SECONDS.labels(queue).inc(seconds)


def http_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(seconds)


# --- circuit breakers ------------------------------------------------------------------
# Breaker states are read at scrape time. notifier.circuit (when present) is
# asked first; other modules may register a source returning {provider: state}.
BREAKER_STATE_VALUES = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}
_breaker_sources: list = []


def register_breaker_source(source) -> None:
    """Register a callable returning ``{provider: "closed" | "half_open" | "open"}``."""
    if source not in _breaker_sources:
        _breaker_sources.append(source)


def breaker_states() -> dict[str, str]:
    """Every known breaker's state, from notifier.circuit.states() and registered sources."""
    states: dict[str, str] = {}
    sources = list(_breaker_sources)
    try:
        from notifier import circuit  # built separately; absent on some branches
    except ImportError:
        circuit = None
    if circuit is not None and hasattr(circuit, "states"):
        sources.insert(0, circuit.states)
    for source in sources:
        try:
            found = source()
        except Exception:  # noqa: BLE001 - a broken source must not break /metrics
            logger.warning("circuit breaker source %r failed", source, exc_info=True)
            continue
        if isinstance(found, dict):
            items = found.items()
        else:  # notifier.circuit.states(): [{"provider", "state", ...}, ...]
            items = [(i["provider"], i["state"]) if isinstance(i, dict) else i for i in found]
        for name, state in items:
            state = getattr(state, "value", getattr(state, "state", state))
            states[str(name)] = str(state).lower()
    return states
