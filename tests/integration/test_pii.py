"""No email address or phone number in the logs of a real API (gunicorn) and a real worker that
sent both, nor in the task messages Flower would show."""
import json

import httpx
import pytest

from apps.apikeys.services import api_key_create
from apps.notifications.models import Notification
from apps.recipients.models import Recipient
from tests.live import Gunicorn
from tests.stack import ALL_QUEUES, CELERY, wait_for

pytestmark = pytest.mark.integration

EMAIL, PHONE = "alice.liddell@example.com", "+12025550123"
REFUSED = "bob.builder@example.org"
RAW = (EMAIL, PHONE, REFUSED, "alice.liddell%40example.com", "%2B12025550123")


def test_logs_of_api_and_worker_that_sent_email_and_sms_hold_no_address(tmp_path, stack, smtp_sink):
    env = {"LOG_LEVEL": "INFO", "DELIVERY_LOG_LEVEL": "INFO", "WORKER_TASK_LOG_LEVEL": "INFO"}
    worker = stack._start([CELERY, "-A", "config.celery_app", "worker", "-Q", ALL_QUEUES, "-n", "pii@test", "-c",
                           "2", "--pool", "prefork", "--without-gossip", "--without-mingle", "-l", "INFO"],
                          "pii@test", env)
    stack.wait_ready(worker)
    server = Gunicorn(tmp_path / "api", workers=2, threads=4, env=env).start()
    try:
        Recipient.objects.create(external_id=EMAIL, email=EMAIL, phone=PHONE)
        issued = api_key_create(name="pii")
        api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {issued.raw}"}, timeout=30)
        smtp_sink.reject_rcpt(f"550 5.1.1 <{REFUSED}>: Recipient address rejected")
        refused = api.post("/api/v1/notifications/email/", json={"to": REFUSED, "subject": "s", "body": "b"}).json()
        wait_for(lambda: Notification.objects.get(pk=refused["id"]).status == "failed", timeout=60,
                 message="the refused mail to fail")
        smtp_sink.heal()

        ids = [
            api.post("/api/v1/notifications/email/", json={"to": EMAIL, "subject": "Hi", "body": "Hello"}).json()["id"],
            api.post("/api/v1/notifications/sms/", json={"to": PHONE, "body": "code 123456"}).json()["id"],
            api.post("/api/v1/notifications/sms/", json={"recipient": EMAIL, "body": "code 654321"}).json()["id"],
        ]
        # Addresses in URLs: Django logs 404s with their path, gunicorn logs every request line.
        assert api.get(f"/api/v1/notifications/{EMAIL}/").status_code == 404
        assert api.get("/api/v1/notifications/", params={"recipient": EMAIL}).status_code == 200
        assert api.get(f"/api/v1/notifications/?recipient={PHONE}").status_code == 200
        assert api.post("/api/v1/notifications/sms/", json={"to": EMAIL, "body": "x"}).status_code == 400

        wait_for(lambda: set(Notification.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"sent"},
                 timeout=60, message="email and sms sent")
        assert [m["To"] for m in smtp_sink.messages] == [EMAIL]
        failed = api.get(f"/api/v1/notifications/{refused['id']}/").json()
        assert failed["status"] == "failed" and "<b***@example.org>" in failed["last_error"]
        assert REFUSED not in json.dumps(failed)
    finally:
        server.stop()
        stack.stop_all()

    api_log, worker_log = server.output(), worker.output()
    for raw in RAW:
        assert raw not in api_log, f"{raw} in the API log:\n{api_log[-3000:]}"
        assert raw not in worker_log, f"{raw} in the worker log:\n{worker_log[-3000:]}"
    # The addresses did reach the logs, masked (so the check above is not vacuous).
    assert "Not Found: /api/v1/notifications/a***@example.com/" in api_log
    assert "recipient=a***%40example.com" in api_log
    assert "+1********23" in worker_log  # the console SMS provider


def test_task_messages_carry_ids_not_addresses(transactional_db, purge_queues):
    from config.celery_app import app

    response_ids = []
    issued = api_key_create(name="flower")
    client = httpx.Client(transport=httpx.WSGITransport(app=_wsgi()), base_url="http://testserver",
                          headers={"Authorization": f"Bearer {issued.raw}"})
    response_ids.append(client.post("/api/v1/notifications/email/",
                                    json={"to": EMAIL, "subject": "s", "body": "b"}).json()["id"])
    response_ids.append(client.post("/api/v1/notifications/sms/",
                                    json={"to": PHONE, "body": "b", "priority": "high"}).json()["id"])
    # The 202 means committed; the confirmed publish follows on the web process's publisher thread.
    from apps.notifications.outbox import publisher_drain

    assert publisher_drain(timeout=10)
    messages = []
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        for queue in ("notifications.normal", "notifications.high"):
            message = channel.basic_get(queue, no_ack=True)
            assert message is not None, queue
            messages.append(message)
    for message in messages:
        body = message.body.decode() if isinstance(message.body, bytes) else message.body
        text = json.dumps({"body": body, "headers": message.headers}, default=str)
        assert message.headers["task"] == "notifier.deliver"
        assert EMAIL not in text and PHONE not in text
        assert any(i in message.headers["argsrepr"] for i in response_ids)  # what Flower shows: ids


def _wsgi():
    from config.wsgi import application

    return application


