"""/healthz, /readyz, /metrics, request ids and `manage.py check_stack`."""
import socket
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from rest_framework import status

from tests.metrics_helpers import scrape, total, value

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_readiness():
    from apps.ops.readiness import clear_cache

    clear_cache()
    yield
    clear_cache()


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthz_answers_without_an_api_key():
    response = Client().get("/healthz")
    assert response.status_code == status.HTTP_200_OK
    assert response.json() == {"status": "ok"}


def test_readyz_answers_200_when_postgresql_rabbitmq_and_redis_answer():
    response = Client().get("/readyz")
    assert response.status_code == status.HTTP_200_OK, response.content
    assert response.json() == {"status": "ok", "checks": {"postgresql": "ok", "rabbitmq": "ok", "redis": "ok"}}


def test_readyz_answers_503_naming_rabbitmq_when_the_broker_port_is_closed():
    with override_settings(CELERY_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{closed_port()}//"):
        response = Client().get("/readyz")
    assert response.status_code == status.HTTP_503_SERVICE_UNAVAILABLE
    assert response.json() == {"status": "unavailable",
                               "checks": {"postgresql": "ok", "rabbitmq": "down", "redis": "ok"}}


def test_readyz_answers_503_naming_redis_when_redis_is_unreachable():
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0"):
        body = Client().get("/readyz").json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"] == "down"
    assert body["checks"]["rabbitmq"] == "ok"


def test_readyz_names_the_component_that_is_down_but_not_its_host_port_or_error(caplog):
    port = closed_port()
    with override_settings(CELERY_BROKER_URL=f"amqp://guest:guest@localhost:{port}//"), \
            caplog.at_level("WARNING", logger="apps.ops.readiness"):
        response = Client().get("/readyz")
    assert response.status_code == status.HTTP_503_SERVICE_UNAVAILABLE
    text = response.content.decode()
    assert response.json()["checks"]["rabbitmq"] == "down"
    for secret in ("localhost", "127.0.0.1", str(port), "Error", "refused", "guest"):
        assert secret not in text
    # The operator finds the reason in the log.
    assert any("rabbitmq is down" in r.getMessage() and "error:" in r.getMessage() for r in caplog.records)


@pytest.fixture
def counted_backends(settings):
    """PostgreSQL, RabbitMQ and Redis for the readiness checks reached through counting TCP proxies."""
    import warnings
    from urllib.parse import urlsplit, urlunsplit

    from django.db import connection

    from tests.peers import CountingTcpProxy

    def proxied(url, default_port):
        parts = urlsplit(url)
        proxy = CountingTcpProxy(parts.hostname or "127.0.0.1", parts.port or default_port).start()
        netloc = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return proxy, urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{proxy.port}"))

    db = dict(connection.settings_dict)
    pg = CountingTcpProxy(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)).start()
    amqp, settings.CELERY_BROKER_URL = proxied(settings.CELERY_BROKER_URL, 5672)
    redis_proxy, settings.REDIS_URL = proxied(settings.REDIS_URL, 6379)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Overriding setting DATABASES": only the readiness check reads it
        settings.DATABASES = {**settings.DATABASES, "default": {**db, "HOST": "127.0.0.1", "PORT": pg.port}}
    proxies = {"postgresql": pg, "rabbitmq": amqp, "redis": redis_proxy}
    yield proxies
    for proxy in proxies.values():
        proxy.stop()


def test_readyz_checks_at_most_once_a_second_per_process_however_many_ask(counted_backends):
    import threading
    import time

    from apps.ops import readiness

    answers = []

    def ask():
        answers.append(Client().get("/readyz").status_code)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    ask()  # and one more right after
    assert answers == [200] * 9
    assert {name: proxy.accepted for name, proxy in counted_backends.items()} == \
        {"postgresql": 1, "rabbitmq": 1, "redis": 1}

    time.sleep(readiness.CACHE_SECONDS + 0.1)  # the result has aged out: the next call checks again
    ask()
    assert answers[-1] == 200
    assert {name: proxy.accepted for name, proxy in counted_backends.items()} == \
        {"postgresql": 2, "rabbitmq": 2, "redis": 2}


def test_check_stack_prints_every_service_and_the_queues():
    out = StringIO()
    call_command("check_stack", stdout=out)
    text = out.getvalue()
    for name in ("postgresql", "rabbitmq", "redis", "notifications.high", "notifications.maintenance",
                 "notifications.dead"):
        assert name in text
    assert "ready" in text


def test_check_stack_exits_non_zero_naming_the_service_that_is_down():
    out, err = StringIO(), StringIO()
    with override_settings(CELERY_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{closed_port()}//"):
        with pytest.raises(SystemExit) as exc:
            call_command("check_stack", stdout=out, stderr=err)
    assert exc.value.code == 1
    assert "rabbitmq" in err.getvalue()


def test_metrics_need_no_api_key_and_report_queues_and_the_broker():
    samples = scrape(Client())
    assert value(samples, "notifier_broker_up") == 1
    for queue in ("notifications.high", "notifications.normal", "notifications.low", "notifications.maintenance"):
        assert ("notifier_queue_consumers", frozenset({("queue", queue)})) in samples
    assert ("notifier_dead_letter_messages", frozenset()) in samples


def test_metrics_report_the_broker_down_instead_of_failing():
    with override_settings(CELERY_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{closed_port()}//"):
        samples = scrape(Client())
    assert value(samples, "notifier_broker_up") == 0


def test_accepting_a_notification_moves_the_counters(api, purge_queues):
    before = scrape(Client())
    response = api.post("/api/v1/notifications/email/",
                        {"to": "carol@example.com", "subject": "Hi", "body": "Hello"}, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED
    after = scrape(Client())

    def delta(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    # The test transaction never commits, so count on a transactional test below; here: API metrics.
    assert delta("notifier_http_requests_total", method="POST", status="202",
                 route="api/v1/notifications/<str:key>/") == 1
    assert delta("notifier_http_request_duration_seconds_count", method="POST") == 1


@pytest.mark.django_db(transaction=True)
def test_committed_notifications_are_counted_as_accepted_and_queued(api, purge_queues):
    client = Client()
    before = scrape(client)
    for _ in range(2):
        response = api.post("/api/v1/notifications/sms/", {"to": "+12025550123", "body": "code 1234"}, format="json")
        assert response.status_code == status.HTTP_202_ACCEPTED
    after = scrape(client)
    name = "notifier_notifications_total"
    assert value(after, name, channel="sms", status="queued") - value(before, name, channel="sms", status="queued") == 2
    accepted = "notifier_notifications_accepted_total"
    assert (total(after, accepted, channel="sms", category="transactional", priority="normal")
            - total(before, accepted, channel="sms", category="transactional", priority="normal")) == 2


def test_request_id_is_echoed_or_made_up(api):
    response = api.get("/api/v1/notifications/", HTTP_X_REQUEST_ID="client-id-123")
    assert response["X-Request-ID"] == "client-id-123"
    generated = api.get("/api/v1/notifications/", HTTP_X_REQUEST_ID="not ok\nat all")["X-Request-ID"]
    assert generated and generated != "not ok\nat all" and len(generated) == 32


def test_serve_metrics_exposes_this_hosts_process_counters(tmp_path):
    """A worker-only host serves its processes' counters without the API."""
    import os
    import subprocess
    import sys

    import httpx

    from notifier import metrics
    from tests.stack import ROOT, wait_for

    metrics.notifications_entered([("push", "otp", "high", "expired")] * 3)
    port = closed_port()
    proc = subprocess.Popen([sys.executable, "manage.py", "serve_metrics", "--port", str(port), "--address",
                             "127.0.0.1"], cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def body():
            try:
                return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                return None

        text = wait_for(body, timeout=30, interval=0.2, message="serve_metrics to answer")
    finally:
        proc.terminate()
        proc.wait(10)
    expected = metrics.NOTIFICATIONS.labels("push", "expired")._value.get()
    assert expected >= 3
    assert f'notifier_notifications_total{{channel="push",status="expired"}} {expected}' in text


@pytest.mark.django_db(transaction=True)
def test_the_api_logs_an_accepted_notification_as_json_with_its_id_and_request_id(api, purge_queues, caplog):
    import json
    import logging

    from notifier.logs import JsonFormatter, RequestIdFilter

    with caplog.at_level(logging.INFO, logger="apps.notifications.lifecycle"):
        response = api.post("/api/v1/notifications/email/", {"to": "dave@example.com", "subject": "Hi", "body": "Yo"},
                            format="json", HTTP_X_REQUEST_ID="req-api-log-1")
    assert response.status_code == status.HTTP_202_ACCEPTED
    [record] = [r for r in caplog.records if r.getMessage() == "notification accepted"]
    RequestIdFilter().filter(record)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["notification_id"] == response.json()["id"]
    assert (entry["channel"], entry["priority"], entry["status"]) == ("email", "normal", "queued")
    assert entry["request_id"] == "req-api-log-1"


def test_a_group_commit_of_several_requests_logs_one_line_naming_each_request_and_notification(caplog):
    import json
    import logging
    import uuid

    from apps.notifications import lifecycle
    from notifier.logs import JsonFormatter

    ids = [uuid.uuid4() for _ in range(3)]
    requests = [("req-a", [("email", "transactional", "normal", "queued")], [ids[0]]),
                ("req-b", [("sms", "transactional", "high", "queued")], [ids[1]]),
                ("req-c", [("email", "marketing", "normal", "suppressed")], [ids[2]])]
    with caplog.at_level(logging.INFO, logger="apps.notifications.lifecycle"):
        lifecycle.created_by_requests(requests)
    [record] = [r for r in caplog.records if r.name == "apps.notifications.lifecycle"]
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "3 notifications accepted"
    assert entry["notification_ids"] == [str(i) for i in ids]
    assert entry["request_ids"] == ["req-a", "req-b", "req-c"]
    assert (entry["channels"], entry["priorities"], entry["statuses"]) == (
        ["email", "sms"], ["high", "normal"], {"queued": 2, "suppressed": 1})
