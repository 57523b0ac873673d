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
                          env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **env})


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


SECRETS_SCRIPT = """
import json, logging, os, django, sentry_sdk
django.setup()
from django.test import Client

s = json.loads(os.environ["TEST_SECRETS"])
log = logging.getLogger("notifier.delivery")
with sentry_sdk.start_transaction(name="deliver", op="queue.task"):
    with sentry_sdk.start_span(op="http.client",
                               description=f"POST https://fcm.googleapis.com/fcm/send/{s['device']}?token={s['jwt']}") as span:
        span.set_data("http.request.header.authorization", f"Bearer {s['api_key']}")
        span.set_data("device_tokens", [s["device"]])
    log.warning("slow relay for %s and %s", s["email"], s["phone"])  # a breadcrumb and a log
    sentry_sdk.add_breadcrumb(category="push", message=f"pushed for {s['email']} with key {s['api_key']}",
                              data={"token": s["device"], "url": f"/x?token={s['jwt']}"})
    try:
        raise ValueError(f"could not reach {s['email']} (Authorization: Bearer {s['api_key']}, secret {s['whsec']})")
    except ValueError:
        sentry_sdk.capture_exception()
# A request: its transaction carries the URL, the query string and the headers.
Client().get(f"/api/v1/recipients/{s['email']}/inbox/?token={s['jwt']}", HTTP_AUTHORIZATION=f"Bearer {s['api_key']}")
sentry_sdk.flush(10)
"""


def _items(bodies) -> list[tuple[dict, str]]:
    """(item header, payload text) of every envelope item received."""
    items = []
    for _, body in bodies:
        lines = body.decode("utf-8", "replace").split("\n")
        i = 1  # line 0 is the envelope header
        while i < len(lines):
            try:
                header = json.loads(lines[i])
            except ValueError:
                i += 1
                continue
            items.append((header, lines[i + 1] if i + 1 < len(lines) else ""))
            i += 2
    return items


def test_sentry_errors_transactions_breadcrumbs_and_logs_hold_no_address_credential_or_token(sentry_server, db):
    import secrets
    from urllib.parse import quote

    values = {
        "email": "alice.liddell@example.com", "phone": "+12025550123",
        "api_key": f"nk_1a2b3c4d_{secrets.token_urlsafe(32)}",
        "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsInJpZCI6MX0." + secrets.token_urlsafe(32),
        "device": f"{secrets.token_urlsafe(16)}:APA91b{secrets.token_urlsafe(100)}",
        "whsec": "whsec_" + secrets.token_urlsafe(24),
    }
    port = sentry_server.server_address[1]
    result = subprocess.run(
        [sys.executable, "-c", SECRETS_SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "TEST_SECRETS": json.dumps(values),
             "SENTRY_DSN": f"http://publickey@127.0.0.1:{port}/1", "SENTRY_TRACES_SAMPLE_RATE": "1.0",
             "SENTRY_ENABLE_LOGS": "1", "LOG_LEVEL": "INFO"})
    assert result.returncode == 0, result.stderr

    items = _items(_Ingest.bodies)
    kinds = {header.get("type") for header, _ in items}
    assert {"event", "transaction", "log"} <= kinds, kinds
    payloads = "\n".join(payload for _, payload in items)
    assert '"breadcrumbs"' in payloads and "fcm.googleapis.com/fcm/send/" in payloads  # they were sent, scrubbed
    secret_parts = [values["email"], quote(values["email"]), values["phone"], quote(values["phone"]),
                    values["api_key"], values["api_key"].rsplit("_", 1)[1], values["jwt"],
                    values["jwt"].rsplit(".", 1)[1], values["device"], values["device"].split(":")[1],
                    values["whsec"]]
    for secret in secret_parts:
        leak = payloads.find(secret)
        assert leak == -1, f"{secret} leaked: ...{payloads[max(0, leak - 200):leak + 50]}"
    assert "a***@example.com" in payloads and "[Filtered]" in payloads
