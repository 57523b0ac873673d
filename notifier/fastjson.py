"""JSON encoding on the hot paths through orjson, with the standard library's answer wherever orjson's would differ.

At 1,000 items a batch the API encodes two jsonb values per notification (``content``, ``metadata``) and
one answer per item. ``json.dumps`` costs 1-2 us a small object in its Python set-up alone (an encoder
per call); orjson about 0.1 us. Only what both encode the same way goes to orjson: anything it would
encode differently or not at all (keys that are not strings, integers past 64 bits, subclasses of
built-in types, dates, dataclasses) raises ``TypeError`` there and is encoded as before.

Loading stays with ``json``: orjson reads an integer past 64 bits as a float, silently.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import orjson

# Types orjson would otherwise encode itself in its own way: handed to `default`, which refuses them.
_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is left to json.dumps")


def dumps(value: Any) -> bytes:
    """``json.dumps(value)`` as UTF-8 bytes, equal as JSON (no spaces, non-ASCII characters as
    they are). For values PostgreSQL stores as ``jsonb``: psycopg's dumpers take bytes."""
    try:
        return orjson.dumps(value, default=_refuse, option=_PASSTHROUGH)
    except TypeError:
        return json.dumps(value).encode()


def dumps_str(value: Any) -> str:
    """``dumps`` as text (a query parameter)."""
    return dumps(value).decode()


def dumps_with(default: Callable[[Any], Any], value: Any) -> bytes | None:
    """``value`` by orjson, with ``default`` for the types it does not know (an encoder's
    ``default``); None where orjson refuses it (an integer past 64 bits, a key that is not a string),
    for the caller's own encoder."""
    try:
        return orjson.dumps(value, default=default, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except TypeError:
        return None
