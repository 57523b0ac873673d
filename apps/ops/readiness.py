"""Readiness: can this process reach PostgreSQL, RabbitMQ and Redis right now?

Each check opens its own short-lived connection with a short timeout (it must
answer even when the pooled connections are wedged), and the three run in
parallel, so a full check takes at most about ``NOTIFIER_READINESS_TIMEOUT``.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from django.conf import settings

OK = "ok"


def _timeout() -> float:
    return float(getattr(settings, "NOTIFIER_READINESS_TIMEOUT", 2.0))


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
