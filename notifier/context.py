"""Per-request context that follows work from the API into the workers.

The request id lives in a context variable: the API middleware sets it from
``X-Request-ID`` (or makes one), the publisher copies it into the task's
message headers, and the worker restores it before the task runs, so every
log line of one request, on any process, carries the same id.
"""
from __future__ import annotations

import random
import re
from contextvars import ContextVar, Token

REQUEST_ID_HEADER = "request_id"  # key in Celery message headers
_VALID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

request_id_var: ContextVar[str | None] = ContextVar("notifier_request_id", default=None)


def new_request_id() -> str:
    """32 random hex digits. Not ``uuid4()``: its ``os.urandom`` is a system call that lets go of the
    GIL on the API's event loop thread for every request; an id that only correlates log lines needs
    no cryptographic randomness (``random`` is reseeded in every forked process)."""
    return "%032x" % random.getrandbits(128)


def clean_request_id(value: str | None) -> str | None:
    """A client-supplied id if it is short and plain (it ends up in logs), else None."""
    if value and _VALID.match(value):
        return value
    return None


def get_request_id() -> str | None:
    return request_id_var.get()


def set_request_id(value: str | None) -> Token:
    return request_id_var.set(value)


def reset_request_id(token: Token) -> None:
    request_id_var.reset(token)


def task_headers() -> dict[str, str]:
    """Headers to add to a published task so the worker can restore the request id."""
    request_id = request_id_var.get()
    return {REQUEST_ID_HEADER: request_id} if request_id else {}
