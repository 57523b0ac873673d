"""The real web server (gunicorn's ASGI worker on config.asgi, as in the Procfile) for integration tests."""
from __future__ import annotations

import json
import queue
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.stack import Proc, Stack, wait_for

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_web(stack: Stack, *, env: dict[str, str] | None = None, workers: int = 1) -> str:
    """Start the API on a free port; returns its base URL once it answers."""
    port = free_port()
    args = [GUNICORN, "config.asgi:application", "-k", "asgi", "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--graceful-timeout", "3", "--log-level", "warning"]
    proc: Proc = stack._start(args, f"web-{port}", env)
    base = f"http://127.0.0.1:{port}"

    def answers():
        if not proc.alive():
            raise AssertionError(f"web server exited:\n{proc.output()}")
        try:
            return httpx.get(f"{base}/api/v1/notifications/", timeout=2).status_code == 401
        except httpx.TransportError:
            return False

    wait_for(answers, timeout=60, interval=0.2, message="the web server to answer")
    return base


class SseClient:
    """Reads a Server-Sent Events stream on a thread; events land in ``self.events`` as
    (monotonic time of arrival, event name, parsed data)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None):
        self.url, self.headers = url, headers or {}
        self.events: queue.Queue = queue.Queue()
        self.comments = 0
        self.status: int | None = None
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(5.0, read=None))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            with self._client.stream("GET", self.url, headers=self.headers) as response:
                self.status = response.status_code
                name, data = "message", []
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line == "":
                        if data:
                            self.events.put((time.monotonic(), name, json.loads("\n".join(data))))
                        name, data = "message", []
                    elif line.startswith(":"):
                        self.comments += 1
                    elif line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
        except (httpx.HTTPError, ValueError) as exc:
            if not self._stop.is_set():
                self.events.put((time.monotonic(), "error", {"error": repr(exc)}))

    def next_event(self, name: str, *, timeout: float = 30.0, where=lambda data: True):
        """The next event called ``name`` whose data satisfies ``where`` (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {name!r} event within {timeout}s")
            try:
                at, event, data = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if event == "error":
                raise AssertionError(f"stream failed: {data}")
            if event == name and where(data):
                return at, data

    def close(self):
        self._stop.set()
        self._client.close()
        self._thread.join(5)


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers ``status``."""

    def __init__(self, status: int = 204):
        self.status = status
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/notifier"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
