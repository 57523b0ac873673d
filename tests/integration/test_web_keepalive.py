"""Keep-alive connections of the web server as make run starts it (config/gunicorn.py, ASGI worker)."""
from __future__ import annotations

import socket
import time

import pytest

from tests.live import Gunicorn

pytestmark = pytest.mark.integration


def _get(sock: socket.socket, path: str) -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_an_idle_keep_alive_connection_is_still_served_after_a_pause_of_several_seconds(tmp_path):
    """Client pools reuse a connection after seconds of quiet (httpx up to 5 s, aiohttp 15 s, requests
    always): the server must not have closed it (gunicorn's own default closes after 2 s)."""
    server = Gunicorn(tmp_path, workers=1, asgi=True).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            assert _get(sock, "/healthz").startswith(b"HTTP/1.1 200")
            time.sleep(5.5)
            assert _get(sock, "/healthz").startswith(b"HTTP/1.1 200"), "the server closed the idle connection"
    finally:
        server.stop()

