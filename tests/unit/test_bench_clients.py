"""notifier.bench_clients: the bench's raw and httpx clients against a local HTTP server."""
import asyncio
import json
import sys

import pytest

from notifier.bench_clients import (
    BASE_ERRORS, HttpxConnection, RawConnection, client_errors, connect, run_event_loop, shared_ssl_context,
)

ANSWER = b'{"id": "x", "status": "queued"}'


async def _serve_keep_alive(seen: list, connections: list):
    """A server that answers every POST with a 202 on the same connection; records (request line, headers,
    JSON body) and one entry per connection."""

    async def serve(reader, writer):
        connections.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                fields = (line.partition(b":") for line in lines[1:] if line)
                headers = {name.strip().lower(): value.strip() for name, _, value in fields}
                body = await reader.readexactly(int(headers[b"content-length"]))
                seen.append((lines[0], headers, json.loads(body)))
                writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(ANSWER)).encode() + b"\r\n\r\n" + ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


@pytest.mark.parametrize("client", ["raw", "httpx"])
def test_each_client_posts_over_one_keep_alive_connection_with_the_key_and_json(client):
    async def exchange():
        seen, connections = [], []
        server = await _serve_keep_alive(seen, connections)
        port = server.sockets[0].getsockname()[1]
        conn = connect(client, f"http://127.0.0.1:{port}/ignored-path", "k3y")
        answers = [await conn.post("/api/v1/notifications/email/", json.dumps({"n": n}).encode()) for n in (1, 2)]
        await conn.aclose()
        server.close()
        return seen, connections, answers

    seen, connections, answers = asyncio.run(exchange())

    assert answers == [(202, ANSWER)] * 2
    assert len(connections) == 1, "both requests on one connection"
    assert [s[0] for s in seen] == [b"POST /api/v1/notifications/email/ HTTP/1.1"] * 2
    assert [s[2] for s in seen] == [{"n": 1}, {"n": 2}]
    for _, headers, _ in seen:
        assert headers[b"authorization"] == b"Bearer k3y" and headers[b"content-type"] == b"application/json"


def test_httpx_connections_have_a_client_each_and_share_one_ssl_context():
    first, second = (HttpxConnection("https://127.0.0.1:1", "k") for _ in range(2))

    assert first.client is not second.client
    for conn in (first, second):
        pool = conn.client._transport._pool
        assert pool._max_connections == 1
        assert pool._ssl_context is shared_ssl_context()


def test_an_httpx_request_imports_nothing_once_warm():
    """httpcore imports sniffio on every request; were it missing, each request would search sys.path for it
    (a failed import, several times per request: ~0.2 ms of CPU here). sniffio is pinned in requirements."""

    class Recorder:
        def __init__(self):
            self.names = []

        def find_spec(self, name, path=None, target=None):
            self.names.append(name)
            return None

    async def exchange(recorder):
        server = await _serve_keep_alive([], [])
        port = server.sockets[0].getsockname()[1]
        conn = HttpxConnection(f"http://127.0.0.1:{port}", "k")
        await conn.post("/a/", b"{}")  # warm: the first request's imports are once per process
        sys.meta_path.insert(0, recorder)
        try:
            for _ in range(3):
                await conn.post("/a/", b"{}")
        finally:
            sys.meta_path.remove(recorder)
        await conn.aclose()
        server.close()

    recorder = Recorder()
    asyncio.run(exchange(recorder))

    assert recorder.names == []


def test_the_raw_connection_closes_when_the_server_says_so_and_reconnects():
    async def exchange():
        connections = []

        async def serve(reader, writer):
            connections.append(writer)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int([line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")][0])
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        conn = RawConnection(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", "k")
        answers = [await conn.post("/a/", b"{}") for _ in range(2)]
        await conn.aclose()
        server.close()
        return connections, answers

    connections, answers = asyncio.run(exchange())

    assert answers == [(202, b"{}")] * 2 and len(connections) == 2


def test_the_errors_counted_per_client_and_an_unknown_client_refused():
    import httpx

    assert client_errors("raw") == BASE_ERRORS
    assert httpx.HTTPError in client_errors("httpx") and set(BASE_ERRORS) <= set(client_errors("httpx"))
    with pytest.raises(ValueError, match="raw, httpx"):
        connect("curl", "http://127.0.0.1:1", "k")


def test_the_load_runs_on_uvloop():
    async def loop_module():
        return type(asyncio.get_running_loop()).__module__

    assert run_event_loop(loop_module()).startswith("uvloop")
