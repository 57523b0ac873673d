"""An ASGI app that serves async paths on the event loop and everything else as WSGI on a thread pool."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from asgiref.wsgi import WsgiToAsgiInstance

_run_wsgi_sync = WsgiToAsgiInstance.__dict__["run_wsgi_app"].func  # the undecorated method


class _PooledWsgiInstance(WsgiToAsgiInstance):
    """asgiref's WSGI adapter, but calls run on our long-lived threads instead of one shared thread."""

    executor: ThreadPoolExecutor

    async def run_wsgi_app(self, body):
        await sync_to_async(_run_wsgi_sync, thread_sensitive=False, executor=self.executor)(self, body)


class HybridApp:
    def __init__(self, *, asgi_app, wsgi_app, async_paths, threads: int, max_body_bytes: int):
        self.asgi_app = asgi_app
        self.wsgi_app = wsgi_app
        self.async_paths = tuple(async_paths)
        self.max_body_bytes = max_body_bytes
        self.executor = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="wsgi")

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "http" and scope["path"] in self.async_paths:
            await self.asgi_app(scope, receive, send)
        elif kind == "http":
            if self._too_large(scope):
                await self._reject_too_large(send)
                return
            instance = _PooledWsgiInstance(self.wsgi_app)
            instance.executor = self.executor
            await instance(scope, receive, send)
        else:  # websocket: not served
            await send({"type": "websocket.close", "code": 1000})

    def _too_large(self, scope) -> bool:
        """Refuse bodies over the limit before reading them (the WSGI side would buffer them first)."""
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    return int(value) > self.max_body_bytes
                except ValueError:
                    return False
        return False

    async def _reject_too_large(self, send):
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
