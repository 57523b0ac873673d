"""The request body limit (``NOTIFIER_MAX_BODY_BYTES``) for WSGI bodies without a Content-Length.

A chunked request reaches a WSGI app with no ``CONTENT_LENGTH`` and a ``wsgi.input`` that the
server ends at the end of the body (``wsgi.input_terminated``, as gunicorn sets it). Django reads
no body at all then, so whatever follows would read it whole. Here it is read in pieces, never more
than the limit and one byte, before anything else: over the limit, the caller answers 413 and the
rest stays unread; otherwise ``wsgi.input`` is replaced by the bytes read and ``CONTENT_LENGTH``
set, and the request goes on as one that had a Content-Length.

Used by ``config/wsgi.py`` (in front of Django) and ``BodySizeLimitMiddleware`` (any other WSGI
entry). The ASGI side counts its ``http.request`` messages instead (``config/hybrid.py``).
"""
from __future__ import annotations

import io
import json

PIECE_BYTES = 64 * 1024


def too_large_content(limit: int) -> bytes:
    """The 413 body: ``{"errors": {"non_field_errors": [...]}}``."""
    return json.dumps({"errors": {"non_field_errors": [f"Request body is over the limit of {limit} bytes."]}}).encode()


def is_unframed(environ: dict) -> bool:
    """A request body without a Content-Length that the server lets us read to its end."""
    return (not environ.get("CONTENT_LENGTH") and "HTTP_TRANSFER_ENCODING" in environ
            and bool(environ.get("wsgi.input_terminated")))


def read_unframed_body(environ: dict, limit: int) -> bool:
    """Read an unframed body (``is_unframed``) in pieces, at most ``limit + 1`` bytes.

    False when it is over the limit (what was read is dropped, the rest is left unread); True once
    ``wsgi.input`` holds the whole body as bytes and ``CONTENT_LENGTH`` says how many."""
    stream = environ["wsgi.input"]
    buffer = io.BytesIO()
    left = limit + 1
    while left > 0:
        piece = stream.read(min(PIECE_BYTES, left))
        if not piece:
            break
        buffer.write(piece)
        left -= len(piece)
    if left <= 0:
        return False
    size = buffer.tell()
    buffer.seek(0)
    environ["wsgi.input"] = buffer
    environ["CONTENT_LENGTH"] = str(size)
    return True


class BodyLimitApp:
    """A WSGI app in front of ``app`` that answers 413 for an unframed body over ``limit`` before
    ``app`` sees the request, and hands ``app`` any other unframed body as one with a length."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    def __call__(self, environ, start_response):
        if "HTTP_TRANSFER_ENCODING" in environ and is_unframed(environ) and not read_unframed_body(
                environ, self.limit):
            content = too_large_content(self.limit)
            start_response("413 Request Entity Too Large", [("Content-Type", "application/json"),
                                                            ("Content-Length", str(len(content)))])
            return [content]
        return self.app(environ, start_response)
