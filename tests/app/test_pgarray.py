"""Array literals built in Python read back as the same values in PostgreSQL."""
import uuid
from datetime import datetime, timezone

import pytest
from django.db import connection

from notifier.pgarray import plain_array, text_array

pytestmark = pytest.mark.django_db

ODD = ["", "plain", "NULL", "null", " spaced ", "a,b", "{braces}", 'say "hi"', "back\\slash", 'both \\"',
       "new\nline\ttab", "ünïcödé ✓", "'single'", "$$", "%s", "%(x)s"]


def _select(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def test_text_arrays_keep_every_string_as_it_was():
    assert _select("SELECT %s::text[]", [text_array(ODD)]) == ODD
    assert _select("SELECT %s::text[]", [text_array(["only plain", "values"])]) == ["only plain", "values"]
    assert _select("SELECT %s::text[]", [text_array(iter(ODD))]) == ODD
    # Values holding what the separators hold (`","`), alone or among plain ones.
    for values in (['"'], ['a","b'], ["x", '","'], ['"', "y", "z"], ["p", "q", 'r"']):
        assert _select("SELECT %s::text[]", [text_array(values)]) == values


def test_plain_arrays_carry_numbers_uuids_times_and_nulls():
    ids = [uuid.uuid4() for _ in range(3)]
    assert _select("SELECT %s::uuid[]", [plain_array(ids)]) == ids
    assert _select("SELECT %s::int[]", [plain_array([1, None, 3])]) == [1, None, 3]
    at = datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=timezone.utc)
    assert _select("SELECT %s::timestamptz[]", [plain_array([at.isoformat(), None])]) == [at, None]
