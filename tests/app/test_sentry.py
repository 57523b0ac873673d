"""Sentry: enabled by SENTRY_DSN for Django and Celery, events scrubbed of personal data.

A real HTTP server on 127.0.0.1 plays Sentry's ingestion endpoint; a fresh
Python process loads the settings with SENTRY_DSN pointing at it.
"""
import gzip
import json
import os
import subprocess
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import django, sentry_sdk
django.setup()
client = sentry_sdk.get_client()
print("integrations:", ",".join(sorted(client.integrations)))
try:
    raise ValueError("could not reach bob@example.com at +12025550123")
except ValueError:
    sentry_sdk.capture_exception()
sentry_sdk.flush(10)
"""


class _Ingest(BaseHTTPRequestHandler):
    bodies: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        self.bodies.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def sentry_server():
    _Ingest.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ingest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def _events(bodies):
    events = []
    for _, body in bodies:
        for line in body.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and "exception" in item:
                events.append(item)
    return events


def _run(env):
    return subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings", **env})


def test_an_error_reaches_sentry_with_release_and_environment_and_no_personal_data(sentry_server):
    port = sentry_server.server_address[1]
    result = _run({"SENTRY_DSN": f"http://publickey@127.0.0.1:{port}/42", "SENTRY_RELEASE": "notifier@1.2.3",
                   "SENTRY_ENVIRONMENT": "staging"})
    assert result.returncode == 0, result.stderr
    assert "celery" in result.stdout and "django" in result.stdout

    [event] = _events(_Ingest.bodies)
    raw = json.dumps(event)
    assert event["release"] == "notifier@1.2.3"
    assert event["environment"] == "staging"
    assert "bob@example.com" not in raw and "+12025550123" not in raw
    assert "b***@example.com" in raw
    assert all(path == "/api/42/envelope/" for path, _ in _Ingest.bodies)


def test_the_release_defaults_to_the_git_commit(sentry_server):
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if not sha:
        pytest.skip("not a git checkout")
    port = sentry_server.server_address[1]
    result = _run({"SENTRY_DSN": f"http://publickey@127.0.0.1:{port}/42", "SENTRY_RELEASE": ""})
    assert result.returncode == 0, result.stderr
    [event] = _events(_Ingest.bodies)
    assert event["release"] == sha


def test_sentry_stays_off_without_a_dsn():
    result = _run({"SENTRY_DSN": ""})
    assert result.returncode == 0, result.stderr
    assert "integrations: \n" in result.stdout or result.stdout.strip() == "integrations:"
