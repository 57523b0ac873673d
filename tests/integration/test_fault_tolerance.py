"""Nothing is lost when a worker dies, and priorities do not wait behind each other."""
import signal
from collections import Counter

import pytest
from django.test import override_settings

from apps.notifications.intake.create import notifications_create
from apps.notifications.models import Notification
from apps.notifications.specs import NotificationSpec
from tests.stack import wait_for

pytestmark = pytest.mark.integration


def _emails(count, *, priority="normal", category="transactional", tag="bulk"):
    specs = [
        NotificationSpec(channel="email", category=category, priority=priority, to=f"{tag}{i}@example.com",
                         content={"subject": f"{tag} {i}", "body": "hello"})
        for i in range(count)
    ]
    return [str(n.id) for n in notifications_create(specs=specs)]


@pytest.mark.slow
@override_settings(NOTIFIER_CHUNK_SIZE=50)
def test_a_worker_killed_with_sigkill_mid_batch_loses_nothing(stack, smtp_sink, capsys):
    smtp_sink.delay = 0.01
    env = {"NOTIFIER_CLAIM_TIMEOUT": "3", "NOTIFIER_SWEEP_INTERVAL": "1"}
    ids = _emails(400)
    victim = stack.worker(concurrency=2, env=env, prefetch=4)
    wait_for(lambda: len(smtp_sink.messages) >= 150, timeout=60, message="the first sends")

    victim.kill(signal.SIGKILL)
    victim.popen.wait(10)
    unsent_at_kill = Notification.objects.filter(id__in=ids).exclude(status="sent").count()
    assert unsent_at_kill > 0, "the kill should land in the middle of the batch"

    stack.worker(concurrency=2, env=env)
    stack.beat(env=env)
    wait_for(lambda: Notification.objects.filter(id__in=ids, status="sent").count() == len(ids), timeout=120,
             message="every notification to be sent after the kill")

    received = Counter(m["X-Notifier-Id"] for m in smtp_sink.messages)
    assert set(received) == set(ids), "every notification reached the SMTP server"
    duplicates = sum(count - 1 for count in received.values())
    with capsys.disabled():
        print(f"\n[sigkill] {len(ids)} notifications, {unsent_at_kill} unsent when the worker was killed, "
              f"{duplicates} duplicate deliveries (at-least-once)")


@override_settings(NOTIFIER_CHUNK_SIZE=25)
def test_high_priority_mail_posted_behind_a_low_priority_backlog_is_sent_first(api, stack, smtp_sink):
    smtp_sink.delay = 0.02
    low_ids = _emails(300, priority="low", category="marketing", tag="promo")
    one_session = {"NOTIFIER_SMTP_CONNECTIONS": "1"}  # the backlog drains at the sink's pace, one mail at a time
    stack.worker(queues="notifications.low", concurrency=1, prefetch=1, env=one_session)
    stack.worker(queues="notifications.high", concurrency=1, prefetch=1, env=one_session)
    wait_for(lambda: Notification.objects.filter(id__in=low_ids, status="sent").exists(), timeout=60,
             message="the low-priority backlog to start draining")

    response = api.post("/api/v1/notifications/email/", {
        "to": "ceo@example.com", "subject": "Sign-in code", "body": "123456", "category": "security_alert",
    }, format="json")
    assert response.json()["priority"] == "high"
    high = wait_for(lambda: (n := Notification.objects.get(pk=response.json()["id"])).status == "sent" and n,
                    timeout=30, message="the high-priority mail")

    low_unsent = Notification.objects.filter(id__in=low_ids).exclude(status="sent").count()
    assert low_unsent > 100, "the high-priority mail did not wait for the low-priority backlog"
    wait_for(lambda: Notification.objects.filter(id__in=low_ids, status="sent").count() == len(low_ids),
             timeout=120, message="the backlog to drain")
    low_sent_after = Notification.objects.filter(id__in=low_ids, sent_at__gt=high.sent_at).count()
    assert low_sent_after > 100


def _drop_other_database_connections() -> int:
    """What a PostgreSQL restart or failover does to every process: their connections are cut."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
                       " WHERE datname = current_database() AND pid <> pg_backend_pid()")
        pids = [pid for pid, terminated in cursor.fetchall() if terminated]

        def gone():  # the backends have ended (their sockets closed), as after a restart
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [pids])
            return cursor.fetchone()[0] == 0

        wait_for(gone, timeout=30, interval=0.05, message="the terminated backends to end")
    return len(pids)


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_delivery_resumes_after_postgresql_cuts_the_workers_connections(stack, smtp_sink, pool):
    """The workers' claims run on psycopg's own cursors (binary rows). A connection cut under them
    once raised psycopg's error: the chunk was not retried (its rows waited for the 10-minute sweep)
    and the worker thread kept its dead connection, so every later chunk failed the same way."""
    stack.worker(concurrency=2, pool=pool, prefetch=1)
    before = [i for n in range(4) for i in _emails(5, tag=f"before{n}-")]  # a chunk for each thread
    wait_for(lambda: Notification.objects.filter(id__in=before, status="sent").count() == len(before), timeout=30,
             message="the first notifications, which open the workers' connections")

    assert _drop_other_database_connections() >= 1
    after = _emails(40, tag="after")
    for chunk in range(4):  # more chunks than worker threads: each thread meets its cut connection
        after += _emails(5, tag=f"chunk{chunk}-")
    wait_for(lambda: Notification.objects.filter(id__in=after, status="sent").count() == len(after), timeout=40,
             message="every notification created after the cut to be sent (retried, on new connections)")
    received = {m["X-Notifier-Id"] for m in smtp_sink.messages}
    assert set(before + after) <= received


def test_the_api_answers_again_after_postgresql_cuts_its_connections(tmp_path, transactional_db, purge_queues):
    """Single creates (the event loop's express lane and the group committer) and batches (a WSGI
    thread, binary COPY) on the web server as the Procfile runs it: after every connection is cut,
    every request is answered 202 and created (the first single used to get a 500)."""
    import http.client
    import json

    from apps.apikeys.services import api_key_create
    from tests.live import Gunicorn

    key = api_key_create(name="cut").raw
    server = Gunicorn(tmp_path, workers=1, asgi=True).start()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    single = {"to": "a@example.com", "subject": "s", "body": "b"}
    batch = {"notifications": [{"channel": "email", **single, "to": f"b{i}@example.com"} for i in range(30)]}

    def post(path, body):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            conn.request("POST", path, json.dumps(body), headers)
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            conn.close()

    try:
        assert post("/api/v1/notifications/email/", single)[0] == 202
        assert post("/api/v1/notifications/batch/", batch)[0] == 202
        assert _drop_other_database_connections() >= 1

        answers = [post("/api/v1/notifications/email/", single) for _ in range(10)]
        answers += [post("/api/v1/notifications/batch/", batch) for _ in range(3)]
    finally:
        server.stop()
    statuses = [status for status, _ in answers]
    # The committer sees its idle connection was closed (groupcommit.closed_by_server) and takes a new one;
    # a batch's WSGI thread health-checks its connection at the start of the request.
    assert statuses == [202] * 13, statuses
    created = [body["id"] for status, body in answers[:10] if status == 202]
    created += [item["id"] for status, body in answers[10:] if status == 202 for item in body["results"] if "id" in item]
    assert Notification.objects.filter(id__in=created).count() == len(created)


_SINGLE = {"to": "a@example.com", "subject": "s", "body": "b"}
_BATCH = {"notifications": [{"channel": "email", **_SINGLE, "to": f"b{i}@example.com"} for i in range(5)]}


def _api_through_proxy(tmp_path, name: str, **env):
    """An API key, a TCP proxy to the test database, and the web server as the Procfile runs it (one ASGI
    process) reaching the database only through that proxy."""
    from apps.apikeys.services import api_key_create
    from tests.live import Gunicorn
    from tests.peers import CountingTcpProxy

    key = api_key_create(name=name).raw
    proxy = CountingTcpProxy("127.0.0.1", 5432).start()
    env["NOTIFIER_TEST_DATABASE_URL"] = f"postgres://127.0.0.1:{proxy.port}/notifier"
    try:
        server = Gunicorn(tmp_path, workers=1, asgi=True, env=env).start()
    except BaseException:
        proxy.stop()
        raise
    return key, proxy, server


def _request(server, key: str, method: str, path: str, body=None):
    """(status, Retry-After, decoded body, seconds) of one request on a new connection."""
    import http.client
    import json
    import time

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    started = time.monotonic()
    try:
        conn.request(method, path, json.dumps(body) if body is not None else None,
                     {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        response = conn.getresponse()
        answer = json.loads(response.read() or b"null")
        return response.status, response.getheader("Retry-After"), answer, time.monotonic() - started
    finally:
        conn.close()


def test_the_api_answers_503_with_retry_after_while_postgresql_is_unreachable(tmp_path, transactional_db,
                                                                               purge_queues):
    """The web server as the Procfile runs it reaches PostgreSQL through a proxy that the test cuts: while
    the database is gone, a single create (the express lane), a batch and a read each answer 503 with
    Retry-After and the API's error shape (they answered 500: an outage looked like a bug to clients'
    retry policies and to dashboards); once it is back, every request is 202 again and its rows exist."""
    key, proxy, server = _api_through_proxy(tmp_path, "outage")

    def request(method, path, body=None):
        return _request(server, key, method, path, body)[:3]

    try:
        status, _, first = request("POST", "/api/v1/notifications/email/", _SINGLE)
        assert status == 202
        assert proxy.accepted >= 1  # the server's database connections go through the proxy
        proxy.cut()
        during = [request("POST", "/api/v1/notifications/email/", _SINGLE) for _ in range(3)]
        during += [request("POST", "/api/v1/notifications/batch/", _BATCH),
                   request("GET", f"/api/v1/notifications/{first['id']}/")]
        proxy.restore()
        after = [request("POST", "/api/v1/notifications/email/", _SINGLE) for _ in range(3)]
        after.append(request("POST", "/api/v1/notifications/batch/", _BATCH))
    finally:
        server.stop()
        proxy.stop()
    assert [(status, retry_after) for status, retry_after, _ in during] == [(503, "5")] * 5, during
    for _, _, body in during:
        assert body["errors"]["detail"] == [body["detail"]] and "unavailable" in body["detail"]
    assert [status for status, _, _ in after] == [202] * 4, after
    created = [body["id"] for _, _, body in after[:3]] + [item["id"] for item in after[3][2]["results"]]
    assert Notification.objects.filter(id__in=created).count() == len(created) == 8


def test_a_database_that_stops_answering_costs_a_request_the_connect_timeout_not_a_hang(tmp_path, transactional_db,
                                                                                     purge_queues):
    """PostgreSQL stops answering (a partition, a host gone without a reset): the web server's connections
    are gone and a new one is accepted but never answered. libpq used to wait for ever, so the request (and
    the group committer with every single behind it) hung; with DB_CONNECT_TIMEOUT it gives up, and the
    request answers 503 with Retry-After. Once the database answers again, so does the API."""
    from django.conf import settings

    options = settings.DATABASES["default"]["OPTIONS"]  # the defaults every process gets
    assert (options["connect_timeout"], options["tcp_user_timeout"], options["keepalives"]) == (5, 30000, 1)
    key, proxy, server = _api_through_proxy(tmp_path, "partition", DB_CONNECT_TIMEOUT="2")

    def request(method, path, body=None):
        status, retry_after, _, took = _request(server, key, method, path, body)
        return status, retry_after, took

    try:
        assert request("POST", "/api/v1/notifications/email/", _SINGLE)[0] == 202
        proxy.blackhole()
        during = [request("POST", "/api/v1/notifications/email/", _SINGLE),
                  request("POST", "/api/v1/notifications/batch/", _BATCH)]
        proxy.restore()
        after = [request("POST", "/api/v1/notifications/email/", _SINGLE)[0],
                 request("POST", "/api/v1/notifications/batch/", _BATCH)[0]]
    finally:
        server.stop()
        proxy.stop()
    assert [(status, retry_after) for status, retry_after, _ in during] == [(503, "5")] * 2, during
    assert all(1.5 < took < 15 for _, _, took in during), during  # the connect timeout, not a hang
    assert after == [202, 202]
