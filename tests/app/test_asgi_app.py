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


async def _request(scope, body=b"", app=application, parts=None):
    app = ApplicationCommunicator(app, scope)
    for part in parts or ():
        await app.send_input({"type": "http.request", "body": part, "more_body": True})
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


def test_a_wsgi_request_gets_its_whole_body_headers_and_environ_and_its_response_is_closed():
    from config.hybrid import HybridApp

    seen, closed = {}, []

    class Body(list):
        def close(self):
            closed.append(True)

    def wsgi_app(environ, start_response):
        seen.update(environ, body=environ["wsgi.input"].read())
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-Two", "2")])
        return Body([b"made ", b"it"])

    hybrid = HybridApp(asgi_app=None, wsgi_app=wsgi_app, async_paths=[], threads=1, max_body_bytes=100)
    scope = _scope("/api/v1/x/", "POST", [(b"content-type", b"application/json"), (b"x-forwarded-for", b"1.1.1.1"),
                                          (b"x-forwarded-for", b"2.2.2.2"), (b"cookie", b"a=1"), (b"cookie", b"b=2")])
    scope["query_string"] = b"q=1"
    try:
        start, body = asyncio.run(_request(scope, b'"c"}', app=hybrid, parts=[b'{"a": ', b'"b", ']))
    finally:
        hybrid.executor.shutdown()
    assert start["status"] == 201
    assert (b"x-two", b"2") in start["headers"] and (b"content-type", b"text/plain") in start["headers"]
    assert body == b"made it"
    assert closed == [True]  # Django ends its request (request_finished) when the response is closed
    assert seen["body"] == b'{"a": "b", "c"}'
    assert seen["REQUEST_METHOD"] == "POST" and seen["PATH_INFO"] == "/api/v1/x/" and seen["QUERY_STRING"] == "q=1"
    assert seen["CONTENT_TYPE"] == "application/json" and seen["REMOTE_ADDR"] == "127.0.0.1"
    assert seen["HTTP_X_FORWARDED_FOR"] == "1.1.1.1,2.2.2.2"
    assert seen["HTTP_COOKIE"] == "a=1; b=2"
    assert seen["SERVER_NAME"] == "testserver" and seen["SERVER_PORT"] == "80"
