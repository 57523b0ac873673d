"""The express lane of single creates (apps/notifications/api/express.py): the common request is
answered on the event loop and the group committer, as Django would answer it; every other request
is handed to Django with its body, and Django's answer is the one the client gets."""
import asyncio
import json

import pytest
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.db import connections

from apps.apikeys.services import api_key_check, api_key_create
from apps.notifications import outbox, store
from apps.notifications.api.express import ExpressCreate
from apps.notifications.intake import groupcommit
from apps.notifications.models import Notification, NotificationEvent
from apps.recipients.models import Recipient
from apps.recipients.services import preferences_update
from config.hybrid import HybridApp

pytestmark = pytest.mark.django_db(transaction=True)  # the committer and Django's threads have their own connections

EMAIL = {"to": "ada@example.com", "subject": "Hello", "body": "Hi Ada"}


class Served:
    """A HybridApp over Django's WSGI app, recording the requests Django answered."""

    def __init__(self, express: bool = True):
        self.django_paths: list[str] = []
        django_app = get_wsgi_application()

        def wsgi(environ, start_response):
            self.django_paths.append(environ["PATH_INFO"])
            try:
                return django_app(environ, start_response)
            finally:
                connections.close_all()  # this pool thread's connection must not outlive the test

        self.app = HybridApp(asgi_app=None, wsgi_app=wsgi, async_paths=[], threads=4,
                             max_body_bytes=settings.NOTIFIER_MAX_BODY_BYTES,
                             express=ExpressCreate() if express else None)

    def post(self, path, body, key, headers=()):
        return asyncio.run(self.post_many([(path, body, key, headers)]))[0]

    async def post_many(self, requests):
        return await asyncio.gather(*(self._post(*request) for request in requests))

    async def _post(self, path, body, key, headers=()):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        all_headers = [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                       (b"content-length", str(len(raw)).encode())]
        if key is not None:
            all_headers.append((b"authorization", f"Bearer {key}".encode()))
        all_headers = [h for h in all_headers if h[0] not in {n for n, _ in headers}] + list(headers)
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": all_headers, "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
        app = ApplicationCommunicator(self.app, scope)
        await app.send_input({"type": "http.request", "body": raw, "more_body": False})
        start = await app.receive_output(30)
        body = (await app.receive_output(30))["body"]
        return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


@pytest.fixture
def published(monkeypatch):
    """What the committer publishes (recorded instead of sent)."""
    calls: list = []
    monkeypatch.setattr(outbox, "publish", lambda items, **options: calls.extend(items))
    return calls


@pytest.fixture
def key():
    issued = api_key_create(name="express")
    assert api_key_check(issued.raw) is not None  # in this process's key cache, as after a first request
    return issued


def test_a_plain_create_is_answered_without_django_and_stored_queued_and_published(key, published):
    served = Served()
    status, headers, body = served.post("/api/v1/notifications/email/", EMAIL, key.raw)
    assert served.django_paths == []
    assert status == 202, body
    data = json.loads(body)
    assert headers["location"] == f"/api/v1/notifications/{data['id']}/"
    assert (data["channel"], data["status"], data["priority"], data["category"], data["scheduled_for"]) == \
        ("email", "queued", "normal", "transactional", None)
    row = Notification.objects.get(id=data["id"])
    assert (row.to, row.content, row.status, row.api_key_id) == \
        ("ada@example.com", {"subject": "Hello", "body": "Hi Ada"}, "queued", key.api_key.pk)
    assert list(NotificationEvent.objects.filter(notification=row).values_list("status", flat=True)) == ["queued"]
    assert [str(i) for i, _ in published] == [data["id"]]


def test_its_answer_has_the_headers_and_body_of_djangos_answer(key, published):
    express, django = Served(), Served(express=False)
    request_headers = [(b"x-request-id", b"client-id-1")]
    fast = express.post("/api/v1/notifications/sms/", {"to": "+12025550123", "body": "code"}, key.raw, request_headers)
    slow = django.post("/api/v1/notifications/sms/", {"to": "+12025550123", "body": "code"}, key.raw, request_headers)
    assert (express.django_paths, django.django_paths) == ([], ["/api/v1/notifications/sms/"])
    assert fast[0] == slow[0] == 202
    assert fast[1]["x-request-id"] == slow[1]["x-request-id"] == "client-id-1"
    varying = {"location", "content-length"}
    assert {k: v for k, v in fast[1].items() if k not in varying} == \
        {k: v for k, v in slow[1].items() if k not in varying}
    fast_body, slow_body = json.loads(fast[2]), json.loads(slow[2])
    assert list(fast_body) == list(slow_body)
    assert {k: v for k, v in fast_body.items() if k not in ("id", "created_at")} == \
        {k: v for k, v in slow_body.items() if k not in ("id", "created_at")}
    assert len(fast_body["created_at"]) == len(slow_body["created_at"])  # the same format


@pytest.mark.parametrize(("label", "body", "headers", "expected"), [
    ("invalid address", {**EMAIL, "to": "ada@example"}, [], 400),
    ("missing content", {"to": "ada@example.com"}, [], 400),
    ("malformed JSON", b'{"to": ', [], 400),
    ("JSON that is not an object", b"[1, 2]", [], 400),
    ("NUL in the body", b'{"to": "a\\u0000@example.com"}', [], 400),
    ("not JSON", EMAIL, [(b"content-type", b"text/plain")], 415),
    ("an Accept the API does not serve", EMAIL, [(b"accept", b"text/html")], 406),
    ("an idempotent request", EMAIL, [(b"idempotency-key", b"order-1")], 202),
])
def test_requests_it_does_not_answer_get_djangos_answer(key, published, label, body, headers, expected):
    served = Served()
    status, _, answer = served.post("/api/v1/notifications/email/", body, key.raw, headers)
    assert served.django_paths == ["/api/v1/notifications/email/"], label
    assert status == expected, answer
    if expected >= 400:
        assert "errors" in json.loads(answer)


def test_keys_it_cannot_vouch_for_get_djangos_401_or_403(published):
    served = Served()
    assert served.post("/api/v1/notifications/email/", EMAIL, None)[0] == 401
    assert served.post("/api/v1/notifications/email/", EMAIL, "nk_bogus_key")[0] == 401
    reader = api_key_create(name="reader", scopes=["notifications:read"])
    api_key_check(reader.raw)
    assert served.post("/api/v1/notifications/email/", EMAIL, reader.raw)[0] == 403
    sms_only = api_key_create(name="sms only", allowed_channels=["sms"])
    api_key_check(sms_only.raw)
    assert served.post("/api/v1/notifications/email/", EMAIL, sms_only.raw)[0] == 403
    assert len(served.django_paths) == 4
    assert not Notification.objects.exists()


def test_a_key_not_yet_in_the_cache_goes_through_django_once(published):
    fresh = api_key_create(name="fresh")
    served = Served()
    statuses = [served.post("/api/v1/notifications/email/", EMAIL, fresh.raw)[0] for _ in range(3)]
    assert statuses == [202, 202, 202]
    assert served.django_paths == ["/api/v1/notifications/email/"]  # the first request cached the key


def test_a_disallowed_host_gets_djangos_400(key, published, settings):
    settings.ALLOWED_HOSTS = ["api.example.com"]
    served = Served()
    assert served.post("/api/v1/notifications/email/", EMAIL, key.raw)[0] == 400
    assert served.django_paths == ["/api/v1/notifications/email/"]
    status, _, _ = served.post("/api/v1/notifications/email/", EMAIL, key.raw, [(b"host", b"api.example.com")])
    assert status == 202
    assert len(served.django_paths) == 1


def test_an_https_redirect_is_djangos(key, published, settings):
    settings.SECURE_SSL_REDIRECT = True
    served = Served()
    assert served.post("/api/v1/notifications/email/", EMAIL, key.raw)[0] == 301
    assert served.django_paths == ["/api/v1/notifications/email/"]


def test_each_request_takes_one_throttle_token_and_the_throttled_get_djangos_429(published):
    slow = api_key_create(name="slow", rate_limit=0.01, rate_burst=3)
    api_key_check(slow.raw)
    served = Served()
    answers = asyncio.run(served.post_many([("/api/v1/notifications/email/", EMAIL, slow.raw)] * 5))
    assert sorted(status for status, _, _ in answers) == [202, 202, 202, 429, 429]
    throttled = [headers for status, headers, _ in answers if status == 429]
    assert all(int(h["retry-after"]) >= 1 for h in throttled)
    assert len(served.django_paths) == 2  # the two throttled ones, answered by Django's throttle
    assert Notification.objects.count() == 3


def test_invalid_requests_take_no_throttle_token(published):
    slow = api_key_create(name="slow", rate_limit=0.01, rate_burst=2)
    api_key_check(slow.raw)
    served = Served()
    assert served.post("/api/v1/notifications/email/", {**EMAIL, "to": "bad"}, slow.raw)[0] == 400  # Django's token
    assert served.post("/api/v1/notifications/email/", EMAIL, slow.raw)[0] == 202
    assert served.post("/api/v1/notifications/email/", EMAIL, slow.raw)[0] == 429


def test_recipients_and_their_preferences_apply(key, published):
    Recipient.objects.create(external_id="ada", email="ada@example.com")
    out = Recipient.objects.create(external_id="bob", email="bob@example.com")
    preferences_update(recipient=out, channels={"email": False})
    served = Served()
    requests = [("/api/v1/notifications/email/", {"recipient": name, "subject": "s", "body": "b"}, key.raw)
                for name in ("ada", "bob", "nobody")]
    (ada, bob, nobody) = asyncio.run(served.post_many(requests))
    assert (ada[0], json.loads(ada[2])["status"]) == (202, "queued")
    assert (bob[0], json.loads(bob[2])["status"]) == (202, "suppressed")
    assert nobody[0] == 400 and "recipient" in json.loads(nobody[2])["errors"]
    assert served.django_paths == ["/api/v1/notifications/email/"]  # only the unknown recipient
    assert Notification.objects.get(id=json.loads(ada[2])["id"]).recipient.external_id == "ada"
    assert [str(i) for i, _ in published] == [json.loads(ada[2])["id"]]


def test_concurrent_requests_are_created_together_and_each_gets_its_own_row(key, published, monkeypatch):
    groups = []
    create_group = groupcommit.create_group
    monkeypatch.setattr(groupcommit, "create_group", lambda tickets: (groups.append(len(tickets)),
                                                                       create_group(tickets)))
    served = Served()
    bodies = [{"to": f"user{i}@example.com", "subject": f"s{i}", "body": f"b{i}"} for i in range(40)]
    answers = asyncio.run(served.post_many([("/api/v1/notifications/email/", b, key.raw) for b in bodies]))
    assert served.django_paths == []
    ids = [json.loads(body)["id"] for status, _, body in answers]
    assert [status for status, _, _ in answers] == [202] * 40
    rows = {str(n.id): n.to for n in Notification.objects.all()}
    assert [rows[i] for i in ids] == [b["to"] for b in bodies]
    assert sum(groups) == 40 and len(groups) < 40  # shared commits
    assert sorted(str(i) for i, _ in published) == sorted(ids)


def test_a_failed_commit_answers_500_and_the_committer_carries_on(key, published, monkeypatch):
    real = store.insert_notifications
    monkeypatch.setattr(store, "insert_notifications", lambda **kw: (_ for _ in ()).throw(RuntimeError("db down")))
    served = Served()
    status, headers, body = served.post("/api/v1/notifications/email/", EMAIL, key.raw)
    assert status == 500 and json.loads(body)["errors"]["detail"] == ["Internal server error."]
    assert headers["x-request-id"]
    monkeypatch.setattr(store, "insert_notifications", real)
    assert served.post("/api/v1/notifications/email/", EMAIL, key.raw)[0] == 202
    assert served.django_paths == []


def test_a_database_outage_answers_503_with_retry_after_in_the_lane_as_in_django(key, published, monkeypatch):
    from django.db import OperationalError
    from django.test import Client

    def refused(**kw):
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")

    monkeypatch.setattr(store, "insert_notifications", refused)
    served = Served()
    status, headers, body = served.post("/api/v1/notifications/email/", EMAIL, key.raw)
    lane = (status, headers["retry-after"], json.loads(body))
    django = Client(raise_request_exception=False).post(  # the same error on Django's path (a group of one)
        "/api/v1/notifications/email/?via=django", EMAIL, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key.raw}")
    assert lane == (503, "5", django.json())
    assert (django.status_code, django["Retry-After"]) == (503, "5")
    assert "unavailable" in django.json()["detail"]
    assert served.django_paths == []


def test_its_requests_are_counted_like_djangos(key, published):
    from django.test import Client

    from tests.metrics_helpers import scrape, total

    before = scrape(Client())
    Served().post("/api/v1/notifications/email/", EMAIL, key.raw)
    after = scrape(Client())
    labels = {"method": "POST", "route": "api/v1/notifications/<str:key>/"}
    assert total(after, "notifier_http_requests_total", status="202", **labels) - \
        total(before, "notifier_http_requests_total", status="202", **labels) == 1
    assert total(after, "notifier_http_request_duration_seconds_count", **labels) - \
        total(before, "notifier_http_request_duration_seconds_count", **labels) == 1
    assert total(after, "notifier_notifications_total", channel="email", status="queued") - \
        total(before, "notifier_notifications_total", channel="email", status="queued") == 1


def test_the_lane_is_off_when_configured_so(key, published, settings):
    from apps.notifications.api.express import express_create

    settings.NOTIFIER_EXPRESS_CREATE = False
    assert express_create() is None
    settings.NOTIFIER_EXPRESS_CREATE = True
    settings.NOTIFIER_GROUP_COMMIT = False  # the lane hands its requests to the committer
    served = Served()
    assert served.post("/api/v1/notifications/email/", EMAIL, key.raw)[0] == 202
    assert served.django_paths == ["/api/v1/notifications/email/"]


def _headers_sent_by(client: str, tmp_path) -> list[tuple[bytes, bytes]]:
    """The request headers a common HTTP client really sends for a JSON POST (caught by a local socket)."""
    import shutil
    import socket
    import subprocess
    import threading

    caught: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def serve():
        while not caught:
            conn, _ = server.accept()
            with conn:
                data = chunk = b""
                while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                    data += chunk
                if b"\r\n\r\n" not in data:
                    continue  # a connection closed without a request (wrk opens one first to check the address)
                caught.append(data.split(b"\r\n\r\n", 1)[0])
                conn.sendall(b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 2\r\n"
                             b"connection: close\r\n\r\n{}")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}/api/v1/notifications/email/"
    auth = {"Authorization": "Bearer x"}
    if client == "httpx":
        import httpx

        httpx.post(url, json=EMAIL, headers=auth)
    elif client == "requests":
        import requests

        requests.post(url, json=EMAIL, headers=auth)
    elif client == "aiohttp":
        import aiohttp

        async def post():
            async with aiohttp.ClientSession() as session, session.post(url, json=EMAIL, headers=auth) as response:
                await response.read()

        asyncio.run(post())
    elif client == "curl":
        if not shutil.which("curl"):
            pytest.skip("no curl here")
        subprocess.run(["curl", "-s", "-o", "/dev/null", "-X", "POST", url, "-H", "Authorization: Bearer x",
                        "-H", "Content-Type: application/json", "-d", json.dumps(EMAIL)], check=True, timeout=10)
    elif client == "wrk":  # only Host and the script's headers; it reconnects after this server's close
        if not shutil.which("wrk"):
            pytest.skip("no wrk here")
        script = tmp_path / "post.lua"
        script.write_text(f"wrk.method = 'POST'\nwrk.body = '{json.dumps(EMAIL)}'\n"
                          "wrk.headers['Content-Type'] = 'application/json'\n"
                          "wrk.headers['Authorization'] = 'Bearer x'\n")
        subprocess.run(["wrk", "-t1", "-c1", "-d1s", "-s", str(script), url], capture_output=True, timeout=20)
    elif client == "axios-like":  # what axios and several browser libraries send
        import requests

        requests.post(url, json=EMAIL, headers={**auth, "Accept": "application/json, text/plain, */*"})
    thread.join(10)
    server.close()
    lines = caught[0].split(b"\r\n")[1:]
    headers = [(name.strip().lower(), value.strip()) for name, _, value in (line.partition(b":") for line in lines)]
    return [(n, v) for n, v in headers if n not in (b"host", b"content-length", b"authorization")]


@pytest.mark.parametrize("client", ["httpx", "requests", "aiohttp", "curl", "wrk", "axios-like"])
def test_the_requests_common_clients_send_are_answered_by_the_lane(key, published, client, tmp_path):
    """Each client's own headers (Accept, Accept-Encoding, User-Agent, Connection...) keep the request
    on the express lane: none of them is handed to Django's slower request cycle."""
    headers = _headers_sent_by(client, tmp_path)
    served = Served()
    status, _, body = served.post("/api/v1/notifications/email/", EMAIL, key.raw, headers)
    assert status == 202, body
    assert served.django_paths == [], f"{client} sent {headers}"


@pytest.mark.parametrize("accept", [b"text/html", b"application/xml", b"text/html, application/xhtml+xml"])
def test_an_accept_without_json_is_still_djangos_to_refuse(key, published, accept):
    served = Served()
    status, _, _ = served.post("/api/v1/notifications/email/", EMAIL, key.raw, [(b"accept", accept)])
    assert (status, served.django_paths) == (406, ["/api/v1/notifications/email/"])


def test_each_request_of_a_group_finds_its_recipient_in_its_own_keys_project(published, monkeypatch):
    """Two projects' `user-42` in one group commit: one recipient query, each request gets its own."""
    from apps.apikeys.services import project_get_or_create

    groups = []
    create_group = groupcommit.create_group
    monkeypatch.setattr(groupcommit, "create_group", lambda tickets: (groups.append(len(tickets)),
                                                                       create_group(tickets)))
    keys = {}
    for slug in ("project-a", "project-b"):
        project, _ = project_get_or_create(slug)
        Recipient.objects.create(project=project, external_id="user-42", email=f"{slug}@example.com")
        keys[slug] = api_key_create(name=slug, project=project)
    for issued in keys.values():
        api_key_check(issued.raw)  # after every api_key_create: each one clears the process's key cache
    Recipient.objects.create(project=project_get_or_create("project-a")[0], external_id="only-in-a",
                             email="x@example.com")
    served = Served()
    body = {"recipient": "user-42", "subject": "s", "body": "b"}
    requests = [("/api/v1/notifications/email/", body, keys[slug].raw) for slug in ("project-a", "project-b") * 10]
    requests.append(("/api/v1/notifications/email/", {**body, "recipient": "only-in-a"}, keys["project-b"].raw))
    answers = asyncio.run(served.post_many(requests))

    assert [status for status, _, _ in answers[:-1]] == [202] * 20
    assert answers[-1][0] == 400  # Django's answer: B has no recipient only-in-a
    assert served.django_paths == ["/api/v1/notifications/email/"]
    for (status, _, answer), (_, _, raw) in zip(answers[:-1], requests):
        row = Notification.objects.select_related("recipient", "project").get(id=json.loads(answer)["id"])
        slug = next(s for s, k in keys.items() if k.raw == raw)
        assert (row.project.slug, row.recipient.email) == (slug, f"{slug}@example.com")
    assert len(groups) < 21  # requests of both projects shared groups
