"""Bulk writes through PostgreSQL COPY (psycopg 3): the hot paths write many rows per statement.

COPY runs on Django's own connection, so it joins the surrounding
``transaction.atomic()`` like any ORM write.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterable, Sequence

from django.db import connection, models

from .models import Notification, NotificationEvent

EVENT_COLUMNS = ("notification_id", "status", "at", "detail", "provider", "attempt")


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """``COPY table (columns) FROM STDIN`` with ``rows`` (tuples in ``columns`` order)."""
    connection.ensure_connection()
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.connection.cursor() as cursor:
        with cursor.copy(f"COPY {connection.ops.quote_name(table)} ({quoted}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


@lru_cache(maxsize=None)
def _model_columns(model: type[models.Model]) -> tuple[tuple[str, ...], tuple[tuple[str, Any], ...]]:
    """Column names and (attname, adapter or None) for every concrete field but an auto primary key."""
    columns, getters = [], []
    for field in model._meta.concrete_fields:
        if isinstance(field, models.AutoField):
            continue
        columns.append(field.column)
        adapter = None
        if isinstance(field, models.JSONField):
            encoder = field.encoder

            def adapter(value, _encoder=encoder):
                return None if value is None else connection.ops.adapt_json_value(value, _encoder)
        getters.append((field.attname, adapter))
    return tuple(columns), tuple(getters)


def insert_instances(objs: Sequence[models.Model]) -> None:
    """Insert unsaved model instances (their primary keys already set) with one COPY."""
    if not objs:
        return
    model = type(objs[0])
    columns, getters = _model_columns(model)

    def rows():
        for obj in objs:
            yield tuple(
                getattr(obj, attname) if adapter is None else adapter(getattr(obj, attname))
                for attname, adapter in getters
            )

    copy_rows(model._meta.db_table, columns, rows())
    alias = connection.alias
    for obj in objs:
        obj._state.adding = False
        obj._state.db = alias


def insert_notifications(notifications: Sequence[Notification]) -> None:
    insert_instances(notifications)


def insert_events(rows: Iterable[tuple[Any, str, Any, str, str, int | None]]) -> None:
    """Event rows as ``(notification_id, status, at, detail, provider, attempt)`` tuples, by COPY."""
    copy_rows(NotificationEvent._meta.db_table, EVENT_COLUMNS, rows)
