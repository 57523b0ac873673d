"""JSON parsing that turns every malformed body into a 400, never a 500."""
from __future__ import annotations

import json
import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, plus refusals PostgreSQL would otherwise turn into 500s.

    * nesting deep enough to exhaust the parser's recursion limit;
    * ``\\u0000`` anywhere (PostgreSQL text and jsonb cannot store NUL);
    * lone UTF-16 surrogates (``"\\ud800"``), which cannot be encoded as UTF-8.

    Strings are otherwise kept verbatim.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        return parse_json(raw, (parser_context or {}).get("encoding") or "utf-8")


def parse_json(raw: bytes, encoding: str = "utf-8"):
    """The JSON document in ``raw`` under the rules above; raises ``ParseError``."""
    if b"\\u0000" in raw:
        raise ParseError("NUL characters (\\u0000) are not allowed.")
    try:
        text = raw.decode(encoding)
        # One decoder for every body (json.loads with an option builds a new one per call); json.loads
        # itself for a body with a byte order mark, which it refuses with its own message.
        data = json.loads(text, parse_constant=_refuse_constant) if text.startswith("\ufeff") else _DECODER.decode(text)
    except RecursionError as exc:
        raise ParseError("JSON nested too deeply.") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(f"JSON parse error - {exc}") from exc
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ParseError("Strings must be valid Unicode (no lone surrogates).") from exc
        except RecursionError as exc:
            raise ParseError("JSON nested too deeply.") from exc
    return data


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
