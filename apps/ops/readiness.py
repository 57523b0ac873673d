"""Readiness: can this process reach PostgreSQL, RabbitMQ and Redis right now?

Each check opens its own short-lived connection with a short timeout (it must
answer even when the pooled connections are wedged), and the three run in
parallel, so a full check takes at most about ``NOTIFIER_READINESS_TIMEOUT``.

``/readyz`` needs no key, so what it answers is ``public_readiness()``: the
result is kept for ``CACHE_SECONDS`` per process (concurrent calls wait for the
one check under way instead of opening their own connections), and it names
only which component is down; host names, ports and error texts go to the log.
``manage.py check_stack`` (an operator's shell) shows them with ``readiness()``.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from django.conf import settings

OK = "ok"
DOWN = "down"
CACHE_SECONDS = 1.0

logger = logging.getLogger(__name__)


def _timeout() -> float:
    return settings.NOTIFIER_READINESS_TIMEOUT


def check_postgresql() -> None:
    import psycopg

    db = settings.DATABASES["default"]
    params = {
        "dbname": db.get("NAME") or None, "user": db.get("USER") or None, "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None, "port": db.get("PORT") or None,
        # libpq takes whole seconds and treats values under 2 as 2.
        "connect_timeout": max(2, int(round(_timeout()))),
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}, autocommit=True) as conn:
        conn.execute("SELECT 1").fetchone()


def check_rabbitmq() -> None:
    from kombu import Connection

    conn = Connection(settings.CELERY_BROKER_URL, connect_timeout=_timeout())
    try:
        conn.connection  # one attempt, no retry loop  # noqa: B018
    finally:
        conn.release()


def check_redis() -> None:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=_timeout(), socket_timeout=_timeout())
    try:
        client.ping()
    finally:
        client.close()


CHECKS: dict[str, Callable[[], None]] = {
    "postgresql": check_postgresql,
    "rabbitmq": check_rabbitmq,
    "redis": check_redis,
}


def _run(check: Callable[[], None]) -> str:
    try:
        check()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the message says why
        text = str(exc).strip() or type(exc).__name__
        return f"error: {type(exc).__name__}: {text}"[:300]
    return OK


def readiness() -> dict:
    """``{"status": "ok" | "unavailable", "checks": {name: "ok" | "error: ..."}}``."""
    with ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="readyz") as pool:
        futures = {name: pool.submit(_run, check) for name, check in CHECKS.items()}
        checks = {name: future.result() for name, future in futures.items()}
    ready = all(value == OK for value in checks.values())
    return {"status": "ok" if ready else "unavailable", "checks": checks}


_lock = threading.Lock()
_cached: tuple[float, tuple, dict] | None = None  # (expires, configuration, result)


def _configuration() -> tuple:
    """What the checks connect to: a cached result is only reused for the same targets."""
    db = settings.DATABASES["default"]
    return (settings.CELERY_BROKER_URL, settings.REDIS_URL,
            *(db.get(k) for k in ("HOST", "PORT", "NAME", "USER")))


def public_readiness(*, clock: Callable[[], float] = time.monotonic) -> dict:
    """``{"status": "ok" | "unavailable", "checks": {name: "ok" | "down"}}``, checked at most once per
    ``CACHE_SECONDS`` in this process; what failed and why is logged, not answered."""
    global _cached
    configuration = _configuration()
    cached = _cached
    if cached is not None and cached[0] > clock() and cached[1] == configuration:
        return cached[2]
    with _lock:  # one check at a time; who waited takes its result
        cached = _cached
        if cached is not None and cached[0] > clock() and cached[1] == configuration:
            return cached[2]
        detailed = readiness()
        for name, value in detailed["checks"].items():
            if value != OK:
                logger.warning("readiness: %s is down: %s", name, value)
        result = {"status": detailed["status"],
                  "checks": {name: OK if value == OK else DOWN for name, value in detailed["checks"].items()}}
        _cached = (clock() + CACHE_SECONDS, configuration, result)
        return result


def clear_cache() -> None:
    global _cached
    _cached = None
