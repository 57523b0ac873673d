"""Reads: which addresses are suppressed."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from django.db import connection

from apps.notifications.categories import category_get
from notifier.pgarray import text_array

from .models import Suppression, SuppressionReason


def suppressions_by_address(addresses: Iterable[str]) -> dict[str, list[Suppression]]:
    """Every suppression of the given canonical addresses, in one query."""
    wanted = {a for a in addresses if a}
    found: dict[str, list[Suppression]] = defaultdict(list)
    if wanted:
        # `= ANY(array)`: one parameter, not one placeholder per address (a batch has 1,000), given
        # as the array's text: psycopg would quote a Python list element by element, in Python.
        # A plain cursor, not .raw(): this runs for every accepted request and almost always finds
        # nothing, and RawQuerySet's per-query set-up (columns, model init order) cost more than the
        # round trip. The rare rows become the same instances .raw() made (Model.from_db).
        with connection.cursor() as cursor:
            cursor.execute(_SUPPRESSIONS_SQL, [text_array(wanted)])
            rows = cursor.fetchall()
        for values in rows:
            row = Suppression.from_db(connection.alias, _SUPPRESSION_FIELDS, values)
            found[row.address].append(row)
    return found


_SUPPRESSION_FIELDS = ("id", "address", "category", "reason", "detail", "created_at")
_SUPPRESSIONS_SQL = (f"SELECT {', '.join(_SUPPRESSION_FIELDS)} FROM {Suppression._meta.db_table} "
                     "WHERE address = ANY(%s::text[])")


def suppression_matching(rows: list[Suppression], category: str) -> Suppression | None:
    """The first of ``rows`` that stops a notification of ``category``."""
    for row in rows:
        if _stops(row, category):
            return row
    return None


def suppressions_matching(rows: list[Suppression], category: str) -> list[Suppression]:
    """Every one of ``rows`` that stops a notification of ``category``."""
    return [row for row in rows if _stops(row, category)]


def _stops(row: Suppression, category: str) -> bool:
    if row.category and row.category != category:
        return False
    if row.reason == SuppressionReason.UNSUBSCRIBED:
        cat = category_get(category)
        if cat is not None and not cat.allow_opt_out:
            return False
    return True
