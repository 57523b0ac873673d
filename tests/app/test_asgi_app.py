"""config.asgi: async paths on the event loop, everything else as WSGI on the thread pool, 413 before reading."""
import asyncio
import json

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


class _Recorder:
    """A WSGI app and an express lane that record what reached them."""

    def __init__(self):
        self.wsgi_calls, self.express_bodies = [], []

    def wsgi(self, environ, start_response):
        self.wsgi_calls.append(dict(environ, body=environ["wsgi.input"].read()))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def match(self, scope):
        return "email" if scope["path"] == "/api/v1/notifications/email/" else None

    async def handle(self, scope, body, match):
        self.express_bodies.append(body)
        return None  # to the WSGI app


def _hybrid(recorder, limit=100):
    from config.hybrid import HybridApp

    return HybridApp(asgi_app=None, wsgi_app=recorder.wsgi, async_paths=[], threads=1, max_body_bytes=limit,
                     express=recorder)


def _send_parts(hybrid, scope, parts):
    """Every part queued as an ``http.request`` message (the last one ends the body), then the answer
    and how many messages were left unread."""
    async def run():
        app = ApplicationCommunicator(hybrid, scope)
        for index, part in enumerate(parts):
            await app.send_input({"type": "http.request", "body": part, "more_body": index < len(parts) - 1})
        start = await app.receive_output(10)
        body = await app.receive_output(10)
        await app.wait(10)
        return start, body["body"], app.input_queue.qsize()
    try:
        return asyncio.run(run())
    finally:
        hybrid.executor.shutdown()


@pytest.mark.parametrize("headers", [
    [(b"transfer-encoding", b"chunked")],  # no Content-Length
    [(b"content-length", b"10")],  # one that understates the body (a server that trusts the client)
])
def test_a_body_over_the_limit_is_counted_as_it_arrives_and_refused_without_reading_the_rest(headers):
    recorder = _Recorder()
    scope = _scope("/api/v1/notifications/email/", "POST", [(b"content-type", b"application/json"), *headers])
    start, body, unread = _send_parts(_hybrid(recorder, limit=100), scope, [b"x" * 40] * 5)
    assert start["status"] == 413
    assert (b"connection", b"close") in start["headers"]
    assert json.loads(body) == {"errors": {"non_field_errors": ["Request body is over the limit of 100 bytes."]}}
    assert unread == 2  # 120 bytes in three messages were enough to know
    assert recorder.wsgi_calls == [] and recorder.express_bodies == []  # no app, no authentication


def test_a_chunked_body_under_the_limit_reaches_the_app_whole_with_its_length():
    recorder = _Recorder()
    scope = _scope("/api/v1/notifications/email/", "POST", [(b"transfer-encoding", b"chunked")])
    start, _, _ = _send_parts(_hybrid(recorder, limit=100), scope, [b"x" * 40, b"y" * 40, b"z" * 20, b""])
    assert start["status"] == 200
    assert recorder.express_bodies == [b"x" * 40 + b"y" * 40 + b"z" * 20]
    (environ,) = recorder.wsgi_calls
    assert environ["body"] == b"x" * 40 + b"y" * 40 + b"z" * 20
    assert environ["CONTENT_LENGTH"] == "100"  # Django reads CONTENT_LENGTH bytes, none without it


def test_a_body_in_one_message_is_handed_on_as_it_came_without_a_copy():
    recorder = _Recorder()
    payload = b'{"to": "a@example.com"}' * 4
    start, _, _ = _send_parts(_hybrid(recorder, limit=len(payload)),
                                   _scope("/api/v1/notifications/email/", "POST"), [payload])
    assert start["status"] == 200
    assert recorder.express_bodies[0] is payload


def test_an_async_path_refuses_a_content_length_over_the_limit(settings):
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(settings.NOTIFIER_MAX_BODY_BYTES + 1).encode())]
    start, body = asyncio.run(_request(_scope("/api/v1/inbox/stream/", "POST", headers)))
    assert start["status"] == 413
    assert json.loads(body)["errors"]["non_field_errors"]


def test_an_async_path_refuses_a_chunked_body_over_the_limit_before_django_reads_it():
    from config.hybrid import HybridApp

    called = []

    async def django_asgi(scope, receive, send):
        called.append(scope)

    hybrid = HybridApp(asgi_app=django_asgi, wsgi_app=None, async_paths=["/stream/"], threads=1, max_body_bytes=100)
    start, _, unread = _send_parts(hybrid, _scope("/stream/", "POST", [(b"transfer-encoding", b"chunked")]),
                                   [b"x" * 60] * 4)
    assert start["status"] == 413 and unread == 2 and called == []


def test_an_async_path_gets_its_body_and_then_the_client_s_disconnect():
    from config.hybrid import HybridApp

    received = []

    async def django_asgi(scope, receive, send):
        received.append(await receive())
        received.append(await receive())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    hybrid = HybridApp(asgi_app=django_asgi, wsgi_app=None, async_paths=["/stream/"], threads=1, max_body_bytes=100)

    async def run():
        app = ApplicationCommunicator(hybrid, _scope("/stream/", "POST", [(b"transfer-encoding", b"chunked")]))
        await app.send_input({"type": "http.request", "body": b"ab", "more_body": True})
        await app.send_input({"type": "http.request", "body": b"cd", "more_body": False})
        await app.send_input({"type": "http.disconnect"})
        start = await app.receive_output(10)
        await app.receive_output(10)
        return start
    try:
        assert asyncio.run(run())["status"] == 204
    finally:
        hybrid.executor.shutdown()
    assert received == [{"type": "http.request", "body": b"abcd", "more_body": False}, {"type": "http.disconnect"}]
