"""GET /api/v1/inbox/stream/: Server-Sent Events for one recipient's inbox.

An async view: each open stream is a coroutine waiting on Redis pub/sub, not a
thread or a worker process, so thousands of browsers can keep one open. It
needs a recipient token (``Authorization: Bearer`` or ``?token=``, since
EventSource cannot set headers) and pushes:

- ``ready``: on connect, with the current ``unread_count``;
- ``items``: new inbox items (``{"items": [...], "unread_count"}``), published by
  the workers in the transaction that marks them ``sent``;
- ``update``: items read, unread, archived (``{"items"?, "unread_count"}``);
- ``expired``: the token expired; the stream ends and the client mints a new one;
- ``: keep-alive`` comments every NOTIFIER_INBOX_STREAM_HEARTBEAT seconds.

It serves no sync gunicorn worker per client: ``config.asgi`` routes this path
to Django's ASGI handler (see docs/inbox.md).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.http import JsonResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from . import pubsub
from .tokens import InvalidToken, looks_like_token, recipient_token_verify

logger = logging.getLogger(__name__)


def _error(status: int, message: str) -> JsonResponse:
    response = JsonResponse({"errors": {"detail": [message]}, "detail": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response


def _credential(request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header:
        parts = header.split()
        return parts[1] if len(parts) == 2 and parts[0].lower() == "bearer" else ""
    return request.GET.get("token")


def _unread_count(recipient_id: int) -> int | None:
    """The recipient's unread count, or None if it no longer exists. Runs in a thread."""
    from apps.recipients.models import Recipient

    from .selectors import inbox_unread_count

    try:
        if not Recipient.objects.filter(pk=recipient_id).exists():
            return None
        return inbox_unread_count(recipient_id=recipient_id)
    finally:
        # This thread belongs to one request: do not leave its connection behind.
        connections.close_all()


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@require_GET
async def inbox_stream(request):
    raw = _credential(request)
    if not raw:
        return _error(401, "A recipient token is required (Authorization: Bearer <token> or ?token=).")
    if not looks_like_token(raw):
        return _error(403 if raw.startswith("nk_") else 401, "The inbox stream takes a recipient token.")
    try:
        token = recipient_token_verify(raw)
    except InvalidToken as exc:
        return _error(401, str(exc))
    unread = await sync_to_async(_unread_count)(token.recipient_id)
    if unread is None:
        return _error(401, "The recipient of this token no longer exists.")
    response = StreamingHttpResponse(_events(token, unread), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache, no-transform"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer
    return response


async def _events(token, unread: int):
    import redis.asyncio as aioredis

    heartbeat = settings.NOTIFIER_INBOX_STREAM_HEARTBEAT
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    channel = pubsub.channel_name(token.recipient_id)
    subscription = client.pubsub()
    try:
        await subscription.subscribe(channel)
        # Wait for Redis to confirm the subscription before "ready": anything published from then on
        # reaches this client.
        confirmed = None
        while confirmed is None or confirmed.get("type") != "subscribe":
            confirmed = await subscription.get_message(timeout=5.0)
            if confirmed is None:
                raise ConnectionError("Redis did not confirm the inbox subscription")
        yield f"retry: {settings.NOTIFIER_INBOX_STREAM_RETRY_MS}\n".encode() + sse("ready", {"unread_count": unread})
        last_sent = time.monotonic()
        while True:
            remaining = (token.expires_at - timezone.now()).total_seconds()
            if remaining <= 0:
                yield sse("expired", {"detail": "The recipient token has expired."})
                return
            wait = max(0.05, min(heartbeat - (time.monotonic() - last_sent), remaining))
            message = await subscription.get_message(timeout=wait)
            if message is not None and message.get("type") == "message":
                try:
                    payload = json.loads(message["data"])
                except (TypeError, ValueError):
                    continue
                yield sse(payload.pop("type", "update"), payload)
                last_sent = time.monotonic()
            elif time.monotonic() - last_sent >= heartbeat:
                yield b": keep-alive\n\n"
                last_sent = time.monotonic()
    except asyncio.CancelledError:
        # The client went away: Django cancels the streaming task.
        raise
    finally:
        try:
            await subscription.unsubscribe()
            await subscription.aclose()
            await client.aclose()
        except Exception:  # noqa: BLE001 - the connection may already be gone
            logger.debug("inbox stream cleanup failed", exc_info=True)
