"""An ASGI app that serves async paths on the event loop and everything else as WSGI on a thread pool."""
from __future__ import annotations

import asyncio
import io
import json
import sys
from concurrent.futures import ThreadPoolExecutor

# What ``HybridApp._read_body`` returns for a body over the limit.
TOO_LARGE = object()

# WSGI environ keys of request headers, computed once per header name.
_ENVIRON_KEYS = {b"content-length": "CONTENT_LENGTH", b"content-type": "CONTENT_TYPE"}


def _environ_key(name: bytes) -> str:
    key = _ENVIRON_KEYS.get(name)
    if key is None:
        key = "HTTP_" + name.decode("latin1").upper().replace("-", "_")
        if len(_ENVIRON_KEYS) < 1000:  # header names come from clients: keep the cache bounded
            _ENVIRON_KEYS[name] = key
    return key


def wsgi_environ(scope: dict, body: bytes) -> dict:
    """The WSGI environ (PEP 3333) of an ASGI HTTP scope and its whole request body."""
    script_name = scope.get("root_path", "").encode("utf8").decode("latin1")
    path_info = scope["path"].encode("utf8").decode("latin1")
    if script_name and path_info.startswith(script_name):
        path_info = path_info[len(script_name):]
    server = scope.get("server") or ("localhost", 80)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": scope["query_string"].decode("ascii"),
        "SERVER_PROTOCOL": "HTTP/" + scope["http_version"],
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1] if server[1] is not None else 0),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client is not None:
        environ["REMOTE_ADDR"] = client[0]
    for name, value in scope.get("headers", ()):
        key = _environ_key(name)
        value = value.decode("latin1")
        if key in environ:  # a repeated header: one value, as RFC 9110 combines them (cookies with "; ")
            value = environ[key] + ("; " if key == "HTTP_COOKIE" else ",") + value
        environ[key] = value
    if body and "CONTENT_LENGTH" not in environ:  # a chunked body: Django reads CONTENT_LENGTH bytes
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def run_wsgi(app, environ: dict) -> tuple[int, list, bytes]:
    """Run a WSGI app to the end of its response: (status code, ASGI headers, body).

    The whole body is collected here, in the calling thread, and the iterable closed (which ends
    Django's request: ``request_finished``). The sync side serves JSON and admin pages; anything
    streamed goes through the async paths.
    """
    started = []

    def start_response(status, headers, exc_info=None):
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [status, headers]

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started
    return int(status[:3]), [(name.lower().encode("latin1"), value.encode("latin1")) for name, value in headers], body


class HybridApp:
    def __init__(self, *, asgi_app, wsgi_app, async_paths, threads: int, max_body_bytes: int, express=None):
        self.asgi_app = asgi_app
        self.wsgi_app = wsgi_app
        # Answers some requests on the loop (``match(scope)``, then ``await handle(scope, body, match)``,
        # which returns (status, headers, body) or None to hand the request to the WSGI app).
        self.express = express
        self.async_paths = tuple(async_paths)
        self.max_body_bytes = max_body_bytes
        self.executor = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="wsgi")

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "http":
            if self._too_large(scope):
                await self._reject_too_large(send)
            elif scope["path"] in self.async_paths:
                await self._asgi(scope, receive, send)
            else:
                await self._wsgi(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:  # websocket: not served
            await send({"type": "websocket.close", "code": 1000})

    async def _rest_of_body(self, body: bytes, more: bool, receive):
        """The request body, counted as it arrives, from its first message's ``body`` on: bytes,
        ``TOO_LARGE`` as soon as more than ``max_body_bytes`` came (nothing more is read, and no more
        than the limit is held), or None when the client went away. A Content-Length plays no part:
        a chunked body has none, and one that lies is caught by the count all the same."""
        limit = self.max_body_bytes
        size = len(body)
        chunks = [body]
        while more and size <= limit:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
            more = message.get("more_body", False)
        if size > limit:
            return TOO_LARGE
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _asgi(self, scope, receive, send):
        """An async path through Django's ASGI handler, with its body read (and limited) here first:
        Django's handler would otherwise spool any body, however large, before looking at it."""
        message = await receive()
        if message["type"] != "http.request":
            return
        body = await self._rest_of_body(message.get("body", b""), message.get("more_body", False), receive)
        if body is None:
            return
        if body is TOO_LARGE:
            await self._reject_too_large(send)
            return
        pending = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay():
            return pending.pop() if pending else await receive()  # then disconnects, as Django listens

        await self.asgi_app(scope, replay, send)

    async def _wsgi(self, scope, receive, send):
        """The request on a pool thread, in one hand-off each way: the body is read here first, and the
        response is sent from here once the app has made all of it. (asgiref's WsgiToAsgi crossed
        threads again for each message it sent, and that was the larger part of a small request's
        CPU in the web process.)"""
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return
        body = message.get("body", b"")
        # The common request: its whole body in one message, one receive(), no copy. Anything else is
        # counted as it arrives (_rest_of_body).
        if message.get("more_body") or len(body) > self.max_body_bytes:
            body = await self._rest_of_body(body, message.get("more_body", False), receive)
            if body is None:
                return
            if body is TOO_LARGE:
                await self._reject_too_large(send)
                return
        express = self.express
        if express is not None and (match := express.match(scope)) is not None:
            answer = await express.handle(scope, body, match)
            if answer is not None:
                await self._respond(send, *answer)
                return
        environ = wsgi_environ(scope, body)
        status, headers, content = await asyncio.get_running_loop().run_in_executor(
            self.executor, run_wsgi, self.wsgi_app, environ)
        await self._respond(send, status, headers, content)

    @staticmethod
    async def _respond(send, status: int, headers: list, content: bytes) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def _too_large(self, scope) -> bool:
        """A Content-Length over the limit: refused before any of the body is read."""
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    return int(value) > self.max_body_bytes
                except ValueError:
                    return False
        return False

    async def _reject_too_large(self, send):
        """413, and the connection closes: the rest of the body is never read."""
        body = json.dumps({"errors": {"non_field_errors": [
            f"Request body is over the limit of {self.max_body_bytes} bytes."]}}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.executor.shutdown(wait=False)
                await send({"type": "lifespan.shutdown.complete"})
                return
