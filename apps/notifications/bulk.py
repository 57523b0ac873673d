"""Bulk writes through PostgreSQL COPY (psycopg 3): the hot paths write many rows per statement.

COPY runs on Django's own connection, so it joins the surrounding
``transaction.atomic()`` like any ORM write.
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Iterable, Sequence

from django.db import connection, models
from django.db.models.base import ModelState

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
def _init_plan(model: type[models.Model]):
    """What ``build_instances`` needs to know about a model, computed once.

    Returns (template, callables, positions, adapters, columns): ``template`` holds each concrete
    field's constant default in ``__init__``'s positional order, ``callables`` the (position,
    attname, default) of defaults to call per row, ``positions`` maps attnames to positions, ``adapters`` the
    (position, adapter) pairs of JSON fields.
    """
    template, callables, positions, adapters = [], [], {}, []
    for index, field in enumerate(model._meta.concrete_fields):
        if isinstance(field, models.AutoField):
            raise TypeError(f"{model.__name__}: build_instances() needs primary keys set before insert")
        default = field.default if field.has_default() else (None if field.null else "")
        if callable(default):
            callables.append((index, field.attname, default))
            default = None
        template.append(default)
        positions[field.attname] = index
        if isinstance(field, models.JSONField):
            encoder = field.encoder

            def adapter(value, _encoder=encoder):
                # JSON text: what Django's Jsonb adapter would send, without a wrapper object per value.
                return None if value is None else json.dumps(value, cls=_encoder)
            adapters.append((index, adapter))
    columns = tuple(f.column for f in model._meta.concrete_fields)
    attnames = tuple(f.attname for f in model._meta.concrete_fields)
    return tuple(template), tuple(callables), positions, tuple(adapters), columns, attnames


def build_instances(model: type[models.Model], values: Iterable[dict[str, Any]]):
    """Instances from dicts of attnames (fields left out take their defaults), and their rows for the database.

    Instances are made the way unpickling makes them (``__new__`` and the attribute dict, no
    ``__init__``): every concrete field is set, so they are complete, and at 1,000 rows a request
    ``Model(**kwargs)`` was the largest single cost of accepting a batch.
    """
    template, callables, positions, adapters, columns, attnames = _init_plan(model)
    instances, rows = [], []
    alias = connection.alias
    new = model.__new__
    for given in values:
        args = list(template)
        for index, attname, default in callables:
            if attname not in given:
                args[index] = default()
        for attname, value in given.items():
            args[positions[attname]] = value
        obj = new(model)
        obj.__dict__.update(zip(attnames, args))
        state = obj._state = ModelState()
        state.adding = False
        state.db = alias
        instances.append(obj)
        for index, adapter in adapters:
            args[index] = adapter(args[index])
        rows.append(args)
    return instances, rows, columns


# Up to this many rows go in one INSERT statement (one round trip); more go by COPY.
SMALL_BATCH = 20


def create_notifications(values: list[dict[str, Any]], events: list[tuple]) -> list[Notification]:
    """Insert notifications (dicts of attnames) and their first events; returns the instances.

    ``events[i]`` is ``(status, at, detail, provider, attempt)`` for ``values[i]``. Call it inside
    ``transaction.atomic()``. A few rows (the single endpoint) take one statement; a batch takes
    two COPYs.
    """
    instances, rows, columns = build_instances(Notification, values)
    event_rows = [(obj.pk, *event) for obj, event in zip(instances, events)]
    if len(rows) > SMALL_BATCH:
        copy_rows(Notification._meta.db_table, columns, rows)
        copy_rows(NotificationEvent._meta.db_table, EVENT_COLUMNS, event_rows)
        return instances
    if not rows:
        return instances
    qn = connection.ops.quote_name
    row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
    event_sql = "(" + ", ".join(["%s"] * len(EVENT_COLUMNS)) + ")"
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH inserted AS (INSERT INTO {qn(Notification._meta.db_table)} ({', '.join(map(qn, columns))}) "
            f"VALUES {', '.join([row_sql] * len(rows))}) "
            f"INSERT INTO {qn(NotificationEvent._meta.db_table)} ({', '.join(map(qn, EVENT_COLUMNS))}) "
            f"VALUES {', '.join([event_sql] * len(event_rows))}",
            [v for row in rows for v in row] + [v for row in event_rows for v in row],
        )
    return instances


_MISSING = object()
