"""config.asgi: async paths on the event loop, everything else as WSGI on the thread pool, 413 before reading."""
import asyncio

import pytest
from asgiref.testing import ApplicationCommunicator

from config.asgi import application


def _scope(path, method="GET", headers=()):
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"testserver"), *headers], "client": ("127.0.0.1", 5000),
            "server": ("testserver", 80)}


async def _request(scope, body=b""):
    app = ApplicationCommunicator(application, scope)
    await app.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await app.receive_output(10)
    chunks = []
    while True:
        message = await app.receive_output(10)
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return start, b"".join(chunks)


def test_sync_views_are_served_from_the_thread_pool():
    start, body = asyncio.run(_request(_scope("/api/v1/notifications/")))
    assert start["status"] == 401
    assert b'"errors"' in body


def test_the_stream_path_goes_to_the_async_view():
    start, body = asyncio.run(_request(_scope("/api/v1/inbox/stream/")))
    assert start["status"] == 401
    assert b"recipient token" in body


def test_bodies_over_the_limit_are_refused_before_being_read(settings):
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(settings.NOTIFIER_MAX_BODY_BYTES + 1).encode())]
    start, body = asyncio.run(_request(_scope("/api/v1/notifications/email/", "POST", headers)))
    assert start["status"] == 413
    assert b"errors" in body


def test_it_answers_lifespan_events_and_stops_its_threads_at_shutdown():
    from config.hybrid import HybridApp

    hybrid = HybridApp(asgi_app=None, wsgi_app=None, async_paths=[], threads=2, max_body_bytes=10)

    async def run():
        app = ApplicationCommunicator(hybrid, {"type": "lifespan"})
        await app.send_input({"type": "lifespan.startup"})
        assert (await app.receive_output(5))["type"] == "lifespan.startup.complete"
        await app.send_input({"type": "lifespan.shutdown"})
        assert (await app.receive_output(5))["type"] == "lifespan.shutdown.complete"
    asyncio.run(run())
    with pytest.raises(RuntimeError):
        hybrid.executor.submit(print)
