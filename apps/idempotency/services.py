"""``Idempotency-Key`` for POST endpoints (SPEC: REST API, Notifications).

A repeat with the same key and body within NOTIFIER_IDEMPOTENCY_TTL (24 h) gets the
first response (same status, body and Location) and creates nothing; the same key
with another body gets 422; a repeat while the first is still running gets 409.
Keys are scoped per API key.

How races are settled: the first request INSERTs its record (autocommit, ``ON
CONFLICT DO NOTHING`` on the unique (api_key, key) constraint), so exactly one
request owns a key. The owner then runs the endpoint and stores the response in
ONE transaction: either the notifications exist and the response is stored, or
neither. Non-2xx answers (validation errors, 404, 403) are not kept: the record
is deleted and a corrected retry with the same key runs again. A record whose
owner died before finishing is taken over after NOTIFIER_IDEMPOTENCY_LOCK_TIMEOUT.

Use from a view::

    def post(self, request, ...):
        return idempotent(request, lambda: self.create(request, ...))
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Callable

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
HEADER_META = "HTTP_IDEMPOTENCY_KEY"  # how WSGI/ASGI name it in request.META
MAX_KEY_LENGTH = 255
KEPT_HEADERS = ("Location",)
TABLE = IdempotencyRecord._meta.db_table


class _Discard(Exception):
    """Roll back the producer's transaction and answer ``response`` without keeping it."""

    def __init__(self, response: Response):
        self.response = response


def _error(code: int, message: str, **headers) -> Response:
    return Response({"errors": {HEADER: [message]}}, status=code, headers=headers or None)


def request_fingerprint(method: str, path: str, data) -> str:
    """SHA-256 of the method, path and canonical JSON of the parsed body."""
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    digest = hashlib.sha256(f"{method.upper()} {path}\n".encode())
    digest.update(body.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def idempotent(request, producer: Callable[[], Response]) -> Response:
    """Run ``producer`` under the request's ``Idempotency-Key`` header, if it has one."""
    # request.META, not request.headers: the latter builds a mapping of every header per request.
    key = request.META.get(HEADER_META)
    if key is None:
        return producer()
    fingerprint = request_fingerprint(request.method, request.path, request.data)
    return idempotent_response(api_key=request.auth, key=key, fingerprint=fingerprint, producer=producer)


def idempotent_response(*, api_key, key: str, fingerprint: str, producer: Callable[[], Response],
                        now: datetime | None = None) -> Response:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        return Response(
            {"errors": {HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} printable characters."]}},
            status=status.HTTP_400_BAD_REQUEST,
        )
    record = None
    for _ in range(5):
        now = now or timezone.now()
        record_id = _insert(api_key.pk, key, fingerprint, now)
        if record_id is not None:
            record = (record_id, now)
            break
        existing = IdempotencyRecord.objects.filter(api_key=api_key, key=key).first()
        if existing is None:
            now = None
            continue  # its owner just released it; try again
        if existing.created_at < now - timedelta(seconds=settings.NOTIFIER_IDEMPOTENCY_TTL):
            IdempotencyRecord.objects.filter(pk=existing.pk, created_at=existing.created_at).delete()
            now = None
            continue  # expired: the key is free again
        if existing.fingerprint != fingerprint:
            return _error(status.HTTP_422_UNPROCESSABLE_ENTITY,
                          "This key was already used with a different request.")
        if existing.completed_at is not None:
            return _replay(existing)
        if existing.locked_at < now - timedelta(seconds=settings.NOTIFIER_IDEMPOTENCY_LOCK_TIMEOUT):
            taken = IdempotencyRecord.objects.filter(
                pk=existing.pk, locked_at=existing.locked_at, completed_at__isnull=True,
            ).update(locked_at=now)
            if taken:
                record = (existing.pk, now)
                break
            now = None
            continue
        return _in_flight()
    if record is None:
        return _in_flight()

    record_id, locked_at = record
    try:
        with transaction.atomic():
            response = producer()
            if not 200 <= response.status_code < 300:
                raise _Discard(response)
            stored = IdempotencyRecord.objects.filter(pk=record_id, locked_at=locked_at).update(
                completed_at=timezone.now(), status_code=response.status_code,
                response_body=json.loads(JSONRenderer().render(response.data) or b"null"),
                response_headers={h: response[h] for h in KEPT_HEADERS if response.has_header(h)},
            )
            if not stored:  # our lock timed out and another request took the key over
                raise _Discard(_in_flight())
    except _Discard as discard:
        _release(record_id, locked_at)
        return discard.response
    except BaseException:
        _release(record_id, locked_at)
        raise
    return response


def _insert(api_key_id: int, key: str, fingerprint: str, now: datetime) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (api_key_id, key, fingerprint, created_at, locked_at, response_headers) "
            f"VALUES (%s, %s, %s, %s, %s, '{{}}'::jsonb) "
            f"ON CONFLICT (api_key_id, key) DO NOTHING RETURNING id",
            [api_key_id, key, fingerprint, now, now],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _release(record_id: int, locked_at: datetime) -> None:
    IdempotencyRecord.objects.filter(pk=record_id, locked_at=locked_at, completed_at__isnull=True).delete()


def _replay(record: IdempotencyRecord) -> Response:
    headers = {**(record.response_headers or {}), "Idempotent-Replayed": "true"}
    return Response(record.response_body, status=record.status_code, headers=headers)


def _in_flight() -> Response:
    return _error(status.HTTP_409_CONFLICT,
                  "A request with this key is still being processed; retry in a moment.", **{"Retry-After": "1"})


def idempotency_purge(*, now: datetime | None = None) -> int:
    """Delete records older than NOTIFIER_IDEMPOTENCY_TTL. Returns how many."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.NOTIFIER_IDEMPOTENCY_TTL)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
