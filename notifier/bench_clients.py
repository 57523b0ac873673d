"""The HTTP clients of ``manage.py bench`` (no Django here).

``raw``: the bench's own keep-alive HTTP/1.1 client on asyncio streams, cheap
per request so that the load generator leaves the CPU to the service it
measures. ``httpx``: ``httpx.AsyncClient``, the request as Python applications
send it (its own headers, headers and body in separate writes, its pool and
its parser). Both have ``await post(path, body)`` -> (status, body) and
``await aclose()``; ``connect`` makes one connection of either.

What httpx costs, measured against a server that answers at once
(docs/performance.md, "The clients"):
- httpcore imports ``sniffio`` on every request to learn which event loop runs
  it; without sniffio installed that is a failed import (a search of the whole
  ``sys.path``) several times per request. sniffio is pinned in
  requirements/base.txt;
- one AsyncClient shared by many concurrent requests costs more per request
  the more requests are in flight (its pool looks at every connection for
  each of them): 64 in one client cost 1.4-1.9 ms of CPU per request, one
  client per connection 0.6 ms;
- every AsyncClient builds its own SSL context (loads the CA bundle) unless
  given one, so the clients share one.
"""
from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

CLIENTS = ("raw", "httpx")
# What a failed request can raise besides the client's own errors (``client_errors``).
BASE_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError,
               IndexError)


class RawConnection:
    """One keep-alive HTTP/1.1 connection on asyncio streams.

    The load generator shares the 2 cores with the service it measures, so it
    must be cheap: aiohttp cost about 0.5 ms of CPU per request here (a tenth
    of a core at 200 requests/s); this sends pre-encoded bytes and reads the
    answer by Content-Length (notifier always sends it).
    """

    def __init__(self, url: str, api_key: str):
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.head = (f"Host: {parts.netloc}\r\nAuthorization: Bearer {api_key}\r\n"
                     "Content-Type: application/json\r\nAccept: application/json\r\n").encode()
        self.reader = self.writer = None

    async def post(self, path: str, body: bytes, timeout: float = 60.0) -> tuple[int, bytes]:
        try:
            return await asyncio.wait_for(self._post(path, body), timeout)
        except BaseException:
            self.close()  # a half-read answer must not be taken for the next one
            raise

    async def _post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\n" + self.head
                          + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        payload = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def aclose(self) -> None:
        self.close()


_ssl_context = None


def shared_ssl_context():
    """One SSL context for every AsyncClient of this process (httpx would load the CA bundle for each)."""
    global _ssl_context
    if _ssl_context is None:
        import ssl

        import certifi

        _ssl_context = ssl.create_default_context(cafile=certifi.where())
    return _ssl_context


class HttpxConnection:
    """One connection through an ``httpx.AsyncClient`` of its own (a pool of one connection)."""

    def __init__(self, url: str, api_key: str):
        import httpx

        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would be the bench's own cost
        parts = urlsplit(url)
        self.client = httpx.AsyncClient(
            base_url=f"{parts.scheme}://{parts.netloc}",  # the bench's paths carry the URL's own path
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1), verify=shared_ssl_context())

    async def post(self, path: str, body: bytes, timeout: float = 60.0) -> tuple[int, bytes]:
        response = await self.client.post(path, content=body, timeout=timeout)
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self.client.aclose()


def connect(client: str, url: str, api_key: str) -> RawConnection | HttpxConnection:
    """A connection of the named client (``CLIENTS``) to the API at ``url``."""
    if client == "raw":
        return RawConnection(url, api_key)
    if client == "httpx":
        return HttpxConnection(url, api_key)
    raise ValueError(f"client must be one of {', '.join(CLIENTS)}")


def client_errors(client: str) -> tuple[type[BaseException], ...]:
    """The exceptions a failed request of the named client raises (counted as errors, not raised)."""
    if client == "httpx":
        import httpx

        return (*BASE_ERRORS, httpx.HTTPError)
    return BASE_ERRORS


def run_event_loop(coro):
    """``asyncio.run(coro)`` on uvloop when it is installed (it is pinned: gunicorn runs on it), the default
    loop otherwise. The loop's own cost per request is part of the client's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)
