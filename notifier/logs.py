"""Structured logs: one JSON object per line, personal data masked.

Standard ``logging`` with a JSON formatter (no extra dependency). Every line
has ``ts``, ``level``, ``logger``, ``message`` and, when known, the
``request_id`` of the API request that caused the work. Fields passed with
``extra={...}`` (``notification_id``, ``channel``, ``priority``, ``attempt``,
``provider``, ``status``, ``to``...) become top-level keys. Email addresses
and phone numbers in the message and in string fields are masked by
``notifier.pii``.

``LOG_FORMAT=json`` (default when DEBUG is off) or ``plain`` (default when
DEBUG is on, easier to read in a terminal).
"""
from __future__ import annotations

import json
import logging
import traceback
from datetime import datetime, timezone

from . import pii
from .context import get_request_id
from .interrupts import INTERRUPTS

NO_REQUEST = "-"  # shown by the plain format outside any request

# Attributes every LogRecord has; anything else came from `extra=`.
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (from the context variable) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None) or record.request_id == NO_REQUEST:
            # django.request logs after the middleware has finished; its record carries the request.
            record.request_id = (get_request_id() or getattr(getattr(record, "request", None), "request_id", None)
                                 or NO_REQUEST)
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line with masked personal data."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except INTERRUPTS:
            raise
        except Exception:  # noqa: BLE001 - a bad format string must not lose the line
            message = str(record.msg)
        entry: dict = {
            "ts": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": pii.scrub_text(message),
        }
        request_id = getattr(record, "request_id", None)
        if not request_id or request_id == NO_REQUEST:
            request_id = get_request_id()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key in _RESERVED or key.startswith("_"):
                continue
            entry[key] = _clean(key, value)
        if record.exc_info:
            entry["exc_info"] = pii.scrub_text("".join(traceback.format_exception(*record.exc_info)))
        if record.stack_info:
            entry["stack_info"] = pii.scrub_text(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def _clean(key: str, value):
    if isinstance(value, str):
        return pii.scrub_text(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    if isinstance(value, (dict, list, tuple)):
        return pii.scrub_data(value)
    return pii.scrub_text(str(value))


def logging_config(*, fmt: str, level: str, delivery_level: str, task_level: str = "WARNING") -> dict:
    """The ``LOGGING`` dict for settings (also applied to Celery processes)."""
    formatter = "json" if fmt == "json" else "plain"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "notifier.logs.RequestIdFilter"}},
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
            "json": {"()": "notifier.logs.JsonFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": formatter, "filters": ["request_id"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "INFO"},
            # Replaces Django's default console handler, so every line has one format.
            "django": {"handlers": ["console"], "level": level, "propagate": False},
            # Explicit levels so Celery's `-l` on the root logger does not hide them.
            "notifier": {"level": level},
            "apps": {"level": level},
            # One line per delivery result; raise to WARNING for very high volumes.
            "notifier.delivery": {"level": delivery_level},
            # Celery's "Task ... received" and "... succeeded in" lines, two per task.
            "celery.app.trace": {"level": task_level},
            "celery.worker.strategy": {"level": task_level},
        },
    }
