"""PostgreSQL array literals built in one pass, for hot-path statements that pass many values.

psycopg adapts a Python list parameter element by element, in Python (quoting
and escaping each one); at 1,000 elements a statement that was most of its
cost. The text of the array (``{"a","b"}``) is one string parameter that
PostgreSQL parses in C; cast it in SQL (``%s::text[]``, ``%s::uuid[]``).
"""
from __future__ import annotations

from typing import Iterable


def text_array(values: Iterable[str]) -> str:
    """A literal of strings: every element quoted (so commas, braces, spaces and the word NULL
    stay text), quotes and backslashes escaped when there are any. No NULL elements."""
    values = values if isinstance(values, (list, tuple)) else list(values)
    joined = '","'.join(values)
    # The separators' own quotes (two each) are not the values': only more than those need escaping.
    if "\\" in joined or joined.count('"') > 2 * (len(values) - 1):
        joined = '","'.join(v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return '{"' + joined + '"}'


def plain_array(values: Iterable[object]) -> str:
    """A literal of values whose text needs no quoting (numbers, uuids, ISO 8601 times); None is
    NULL. The caller guarantees the values: nothing is escaped."""
    return "{" + ",".join(["NULL" if v is None else str(v) for v in values]) + "}"
