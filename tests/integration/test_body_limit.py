"""NOTIFIER_MAX_BODY_BYTES against the real servers: config.asgi on gunicorn's ASGI worker (the Procfile's
web process) and config.wsgi on gunicorn's gthread worker, spoken to over raw sockets.

A chunked body has no Content-Length: the servers must count it as it arrives. The clients here hold
back the end of an over-limit body until they have their answer, so a 413 shows that the server
decided without the whole body; the worker's peak memory (VmHWM, reset before the requests) shows
that it did not hold it either.
"""
from __future__ import annotations

import http.client
import json
import socket
import threading
from pathlib import Path

import pytest

from apps.apikeys.services import api_key_create
from apps.notifications.models import Notification
from tests.live import Gunicorn

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
LIMIT = MIB
BIG = 5 * MIB
PIECE = 64 * 1024
CREATE = "/api/v1/notifications/email/"


@pytest.fixture
def asgi_server(tmp_path, transactional_db, purge_queues):
    server = Gunicorn(tmp_path, workers=1, asgi=True, env={"NOTIFIER_MAX_BODY_BYTES": str(LIMIT)}).start()
    yield server
    server.stop()


@pytest.fixture
def wsgi_server(tmp_path, transactional_db):
    server = Gunicorn(tmp_path, workers=1, threads=2, env={"NOTIFIER_MAX_BODY_BYTES": str(LIMIT)}).start()
    yield server
    server.stop()


class Answer:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


def post(server: Gunicorn, path: str, *, body: bytes = b"", size: int | None = None, key: str | None = None,
         chunked: bool = True, content_length: int | None = None, hold_end: bool = False) -> Answer:
    """POST over a raw socket. The body (``body``, or ``size`` bytes of filler) goes out in 64 KiB
    chunks from a thread while this one reads the answer. With ``hold_end`` the chunked body's last
    chunk waits until the answer is in: the server has to answer from what it has counted so far (a
    server that waits for the whole body never answers, and the read times out)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if key:
        head.append(f"Authorization: Bearer {key}")
    if chunked:
        head.append("Transfer-Encoding: chunked")
    else:
        head.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    answered = threading.Event()

    def pieces():
        if size is None:
            for start in range(0, len(body), PIECE):
                yield body[start:start + PIECE]
        else:
            filler = b"x" * PIECE
            for start in range(0, size, PIECE):
                yield filler[:min(PIECE, size - start)]

    def pump():
        try:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            for piece in pieces():
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                if hold_end:
                    answered.wait(30)
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server closed the connection: the rest is not wanted
            pass

    sender = threading.Thread(target=pump, daemon=True)
    sender.start()
    try:
        response = http.client.HTTPResponse(sock)
        response.begin()
        answer = Answer(response.status, response.headers, response.read())
    finally:
        answered.set()
        sender.join(30)
        sock.close()
    return answer


def _status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


def peak_memory_growth(server: Gunicorn, requests) -> int:
    """How far the worker's peak resident memory rose above where it stood while ``requests`` ran."""
    (pid,) = server.worker_pids()
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _status(pid)["VmRSS"]
    requests()
    return _status(pid)["VmHWM"] - before


def assert_refused(answer: Answer, limit: int = LIMIT):
    assert answer.status == 413, (answer.status, answer.body[:300])
    assert answer.json() == {"errors": {"non_field_errors": [f"Request body is over the limit of {limit} bytes."]}}


def test_a_chunked_body_over_the_limit_is_refused_with_413_before_its_end_with_or_without_a_key(asgi_server):
    key = api_key_create(name="big-sender").raw
    assert_refused(post(asgi_server, CREATE, size=BIG, hold_end=True))  # code paths and allocator warmed up
    answers = []
    growth = peak_memory_growth(asgi_server, lambda: answers.extend([
        post(asgi_server, CREATE, size=BIG, hold_end=True),
        post(asgi_server, CREATE, size=BIG, key=key, hold_end=True),
    ]))
    for answer in answers:
        assert_refused(answer)
        assert answer.headers["Connection"] == "close"
    # At most the limit is held: the 5 MiB body would raise the peak by 5 MiB or more.
    assert growth < 3 * MIB, growth
    assert Notification.objects.count() == 0


def test_a_chunked_body_under_the_limit_is_handled_normally(asgi_server):
    key = api_key_create(name="chunked-sender").raw
    # 400,000 characters of html: several ASGI messages, each counted.
    item = {"to": "alice@example.com", "subject": "Chunked", "body": "Hi", "html": "y" * 400_000}
    body = json.dumps(item).encode()
    # Twice: the first goes through Django (its key is not cached yet), the next through the express lane.
    answers = [post(asgi_server, CREATE, body=body, key=key) for _ in range(2)]
    assert [a.status for a in answers] == [202, 202], [a.body[:300] for a in answers]
    assert [len(n.content["html"]) for n in Notification.objects.filter(content__subject="Chunked")] == [400_000] * 2


def test_a_content_length_over_the_limit_is_refused_before_any_body_is_sent(asgi_server):
    answer = post(asgi_server, CREATE, chunked=False, content_length=BIG)  # headers only: the body never comes
    assert answer.status == 413
    assert answer.json()["errors"]["non_field_errors"]
    assert answer.headers["Connection"] == "close"


def test_a_chunked_body_over_the_limit_to_an_async_path_is_refused_with_413(asgi_server):
    assert_refused(post(asgi_server, "/api/v1/inbox/stream/", size=BIG, hold_end=True))


def test_the_wsgi_app_refuses_a_chunked_body_over_the_limit_with_413_before_its_end(wsgi_server):
    key = api_key_create(name="big-wsgi-sender").raw
    assert_refused(post(wsgi_server, CREATE, size=BIG, hold_end=True))
    answers = []
    growth = peak_memory_growth(wsgi_server, lambda: answers.extend([
        post(wsgi_server, CREATE, size=BIG, hold_end=True),
        post(wsgi_server, CREATE, size=BIG, key=key, hold_end=True),
    ]))
    for answer in answers:
        assert_refused(answer)
    assert growth < 3 * MIB, growth


def test_the_wsgi_app_reads_a_chunked_body_under_the_limit(wsgi_server, purge_queues):
    key = api_key_create(name="chunked-wsgi-sender").raw
    body = json.dumps({"to": "alice@example.com", "subject": "Chunked WSGI", "body": "z" * 1000}).encode()
    answer = post(wsgi_server, CREATE, body=body, key=key)
    assert answer.status == 202, answer.body[:300]
    assert Notification.objects.get(content__subject="Chunked WSGI").content["body"] == "z" * 1000
