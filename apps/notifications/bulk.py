"""Bulk writes through PostgreSQL COPY (psycopg 3): the hot paths write many rows per statement.

COPY runs on Django's own connection, so it joins the surrounding
``transaction.atomic()`` like any ORM write.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Iterable, Sequence

from django.db import connection, models
from django.db.models.base import ModelState
from psycopg import Cursor, RawCursor
from psycopg.types.json import Jsonb, set_json_dumps

from notifier import fastjson

from .models import Notification, NotificationEvent, PendingPublish

EVENT_COLUMNS = ("notification_id", "status", "at", "detail", "provider", "attempt")


@contextmanager
def driver_cursor(cursor_class: type = Cursor):
    """A cursor of psycopg itself on Django's connection (binary rows, COPY, ``$n`` placeholders),
    with its errors passed through Django's error wrapper as Django's own cursors are.

    Without the wrapper a lost connection (PostgreSQL restarted, a failover, an administrator's
    ``pg_terminate_backend``) raised psycopg's error: a task's ``autoretry_for=DatabaseError`` did not
    retry it, and Django never learned the connection was broken (``errors_occurred``), so neither
    ``close_old_connections`` nor Celery's hook before each task replaced it. Every later claim of
    that worker thread failed on the dead connection (tests/integration/test_fault_tolerance.py).
    """
    connection.ensure_connection()
    with connection.wrap_database_errors, cursor_class(connection.connection) as cursor:
        yield cursor


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]],
              types: Sequence[str] | None = None) -> None:
    """``COPY table (columns) FROM STDIN`` with ``rows`` (tuples in ``columns`` order).

    With ``types`` (PostgreSQL type names, one per column) the rows go in binary format:
    no text escaping on either side. JSON columns then take Python objects, not JSON text,
    encoded by ``notifier.fastjson`` (a ``Jsonb`` with its own ``dumps`` keeps it).
    """
    qn = connection.ops.quote_name
    quoted = ", ".join(qn(c) for c in columns)
    binary = " (FORMAT BINARY)" if types else ""
    with driver_cursor() as cursor:
        if types:
            set_json_dumps(fastjson.dumps, cursor)
        with cursor.copy(f"COPY {qn(table)} ({quoted}) FROM STDIN{binary}") as copy:
            if types:
                copy.set_types(types)
            for row in rows:
                copy.write_row(row)


# Column types binary COPY knows how to send, by Django's db_type() (without any "(n)").
_BINARY_TYPES = {
    "uuid": "uuid", "varchar": "varchar", "text": "text", "jsonb": "jsonb", "boolean": "bool", "date": "date",
    "timestamp with time zone": "timestamptz", "integer": "int4", "bigint": "int8", "smallint": "int2",
}
EVENT_TYPES = ("uuid", "varchar", "timestamptz", "text", "varchar", "int4")


@dataclass(frozen=True)
class _Plan:
    template: tuple  # each concrete field's constant default, in __init__'s positional order
    callables: tuple  # (position, attname, default) of defaults to call per row
    positions: dict  # attname -> position
    attnames: tuple
    columns: tuple
    json_fields: tuple  # (position, encoder) of JSON fields
    binary_types: tuple | None  # for binary COPY, or None when a column type is not in _BINARY_TYPES


@lru_cache(maxsize=None)
def _init_plan(model: type[models.Model]) -> _Plan:
    """What ``build_instances`` needs to know about a model, computed once."""
    template, callables, positions, json_fields, types = [], [], {}, [], []
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
            json_fields.append((index, field.encoder))
        target = field.target_field if field.is_relation else field
        types.append(_BINARY_TYPES.get((target.db_type(connection) or "").split("(")[0]))
    fields = model._meta.concrete_fields
    return _Plan(tuple(template), tuple(callables), positions, tuple(f.attname for f in fields),
                 tuple(f.column for f in fields), tuple(json_fields), None if None in types else tuple(types))


def insert_plan(model: type[models.Model]) -> _Plan:
    """The model's columns, their binary COPY types and JSON fields (computed once)."""
    return _init_plan(model)


def json_as_text(rows: list[list], model: type[models.Model]) -> None:
    """The JSON values of full rows of ``model`` as JSON text (query parameters cast to jsonb), in place."""
    _adapt_json(rows, _init_plan(model).json_fields, binary=False)


def build_instances(model: type[models.Model], values: Iterable[dict[str, Any]]):
    """Instances from dicts of attnames (fields left out take their defaults), and their values.

    Instances are made the way unpickling makes them (``__new__`` and the attribute dict, no
    ``__init__``): every concrete field is set, so they are complete, and at 1,000 rows a request
    ``Model(**kwargs)`` was the largest single cost of accepting a batch. Returns
    ``(instances, rows)``, ``rows[i]`` being the field values of ``instances[i]`` in column order.
    """
    plan = _init_plan(model)
    template, callables, positions = plan.template, plan.callables, plan.positions
    rows = []
    for given in values:
        args = list(template)
        for index, attname, default in callables:
            if attname not in given:
                args[index] = default()
        for attname, value in given.items():
            args[positions[attname]] = value
        rows.append(args)
    return instances_from_full_rows(model, rows), rows


def instances_from_rows(model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
                       constants: dict[str, Any] | None = None) -> list:
    """Saved instances from database rows of ``columns`` (field or column names, in the rows' order),
    made like ``build_instances`` makes them: what ``Model.from_db`` gives, without a call of
    ``__init__`` each. Fields not among ``columns`` are deferred (Django loads one on access);
    ``constants`` are attribute values every instance gets (values the caller knows without
    reading them back)."""
    attnames = tuple(model._meta.get_field(column).attname for column in columns)
    alias, new, extra = connection.alias, model.__new__, constants or {}
    instances = []
    for row in rows:
        values = dict(zip(attnames, row))
        values.update(extra)
        state = values["_state"] = ModelState()
        state.adding = False
        state.db = alias
        obj = new(model)
        obj.__dict__ = values
        instances.append(obj)
    return instances


def _adapt_json(rows: list[list], json_fields, *, binary: bool) -> None:
    """JSON values as binary COPY wants them (objects; Jsonb for a custom encoder) or as JSON text."""
    for index, encoder in json_fields:
        if binary and encoder is None:
            continue  # copy_rows has psycopg's jsonb dumper encode it (notifier.fastjson)
        for args in rows:
            value = args[index]
            if value is None:
                continue
            if encoder is None:  # the small INSERT: JSON text
                args[index] = fastjson.dumps_str(value)
            else:
                args[index] = (Jsonb(value, dumps=partial(json.dumps, cls=encoder)) if binary
                               else json.dumps(value, cls=encoder))


# Up to this many rows go in one INSERT statement (one round trip); more go by COPY.
SMALL_BATCH = 20


def create_notifications(values: list[dict[str, Any]], events: list[tuple]) -> list[Notification]:
    """Insert notifications (dicts of attnames) and their first events; returns the instances.

    ``events[i]`` is ``(status, at, detail, provider, attempt)`` for ``values[i]``. Call it inside
    ``transaction.atomic()``. A few rows (the single endpoint) take one statement; a batch takes
    two COPYs. Rows without a ``project_id`` belong to the default project (looked up once, not per row).
    """
    if any("project_id" not in v for v in values):
        from apps.apikeys.models import default_project_id

        project_id = default_project_id()
        for v in values:
            v.setdefault("project_id", project_id)
    instances, rows = build_instances(Notification, values)
    insert_notification_rows(rows, [(obj.pk, *event) for obj, event in zip(instances, events)])
    return instances


def insert_notification_rows(rows: list[list], event_rows: list[tuple], *, pending: Any = None) -> None:
    """Insert notification rows (every column, in column order: ``build_instances`` or
    ``row_builder`` made them) and their events (``EVENT_COLUMNS``). JSON values are adapted in
    place. A few rows take one statement; more take two COPYs (call it inside a transaction).
    ``pending``: the key of the rows' ``PendingPublish`` entry, inserted with them (in the same
    statement, or one more in the COPYs' transaction)."""
    if not rows:
        return
    plan = _init_plan(Notification)
    if len(rows) > SMALL_BATCH:
        _adapt_json(rows, plan.json_fields, binary=plan.binary_types is not None)
        copy_rows(Notification._meta.db_table, plan.columns, rows, types=plan.binary_types)
        copy_rows(NotificationEvent._meta.db_table, EVENT_COLUMNS, event_rows, types=EVENT_TYPES)
        if pending is not None:
            with driver_cursor() as cursor:
                cursor.execute(f"INSERT INTO {connection.ops.quote_name(PendingPublish._meta.db_table)} (id) "
                               f"VALUES (%s)", [pending])
        return
    _adapt_json(rows, plan.json_fields, binary=False)
    # A raw cursor: the statement has PostgreSQL's own $n placeholders and goes as it is, the values
    # bound by the server. Django's cursor would rewrite its hundreds of %s placeholders into literals
    # on every call (psycopg caches that only for statements of up to 50 parameters): 3 ms of CPU for
    # 18 rows against 0.7 ms, on the one thread that creates every single request of the process.
    params = [v for row in rows for v in row] + [v for row in event_rows for v in row]
    if pending is not None:
        params.append(pending)
    with driver_cursor(RawCursor) as cursor:
        cursor.execute(_insert_sql(plan.columns, len(rows), pending is not None), params)


@lru_cache(maxsize=None)
def row_builder(model: type[models.Model], attnames: tuple[str, ...]):
    """A function of ``len(attnames)`` positional values that returns a full row of ``model`` (a
    list in column order, as ``build_instances`` makes it): the values in their columns, every
    other field's default.

    It is compiled once per model and set of fields, as the standard library compiles a
    namedtuple's methods: at 1,000 rows a request, making a dict of each row and placing its
    values one by one cost more than validating the row.
    """
    plan = _init_plan(model)
    unknown = set(attnames) - plan.positions.keys()
    if unknown:
        raise ValueError(f"{model.__name__} has no fields {sorted(unknown)}")
    given = {plan.positions[name]: f"v{i}" for i, name in enumerate(attnames)}
    called = {index: f"d{index}" for index, _, _ in plan.callables if index not in given}
    namespace = {f"c{index}": value for index, value in enumerate(plan.template)}
    namespace.update({f"d{index}": default for index, _, default in plan.callables if index in called})
    cells = [given.get(index) or (f"{called[index]}()" if index in called else f"c{index}")
             for index in range(len(plan.template))]
    source = f"def build({', '.join(f'v{i}' for i in range(len(attnames)))}):\n    return [{', '.join(cells)}]\n"
    exec(compile(source, f"<row_builder {model.__name__}>", "exec"), namespace)  # noqa: S102 - our own source
    return namespace["build"]


def instances_from_full_rows(model: type[models.Model], rows: Iterable[Sequence[Any]]) -> list:
    """Instances, as after their insert, of full rows (``row_builder``, ``build_instances``): made the way
    unpickling makes them, ``__new__`` and the attribute dict."""
    plan = _init_plan(model)
    attnames, alias, new = plan.attnames, connection.alias, model.__new__
    instances = []
    for args in rows:
        obj = new(model)
        obj.__dict__.update(zip(attnames, args))
        state = obj._state = ModelState()
        state.adding = False
        state.db = alias
        instances.append(obj)
    return instances


@lru_cache(maxsize=2 * SMALL_BATCH)
def _insert_sql(columns: tuple, count: int, pending: bool = False) -> str:
    """One statement inserting ``count`` notifications and their ``count`` events ($n placeholders),
    and with ``pending`` their ``PendingPublish`` entry (the last parameter)."""
    qn = connection.ops.quote_name

    def values(width: int, first: int) -> str:  # count rows of width parameters, numbered from first
        return ", ".join("(" + ", ".join(f"${first + row * width + i}" for i in range(width)) + ")"
                         for row in range(count))

    entry = (f", pending AS (INSERT INTO {qn(PendingPublish._meta.db_table)} (id) "
             f"VALUES (${1 + count * (len(columns) + len(EVENT_COLUMNS))}))") if pending else ""
    return (
        f"WITH inserted AS (INSERT INTO {qn(Notification._meta.db_table)} ({', '.join(map(qn, columns))}) "
        f"VALUES {values(len(columns), 1)}){entry} "
        f"INSERT INTO {qn(NotificationEvent._meta.db_table)} ({', '.join(map(qn, EVENT_COLUMNS))}) "
        f"VALUES {values(len(EVENT_COLUMNS), 1 + count * len(columns))}"
    )


