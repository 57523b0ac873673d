"""Result hooks over the running stack: a worker sends mail to the SMTP sink and a subscribed endpoint (an
HTTP server run by the test) hears of it once; when the webhook fan-out fails after the provider accepted
the mail, the mail stays recorded `sent` and is not sent again, and the event arrives once the fan-out
works again, through the beat job (issue 22)."""
import json

import pytest

from apps.notifications.models import Notification, ResultHookOutbox
from tests.conftest import WEBHOOK_INSERTS_REFUSED
from tests.stack import wait_for
from tests.webserver import WebhookReceiver

pytestmark = pytest.mark.integration

ENV = {"NOTIFIER_WEBHOOK_ALLOW_PRIVATE": "1", "NOTIFIER_RESULT_HOOK_INTERVAL": "1"}


def _send(api, to):
    response = api.post("/api/v1/notifications/email/", {"to": to, "subject": "s", "body": "b"}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def _status(notification_id):
    return Notification.objects.get(pk=notification_id).status


def test_a_sent_email_reaches_a_subscribed_endpoint_once_even_when_its_fan_out_failed_at_first(
        api, stack, smtp_sink, settings, webhook_inserts_fail):
    settings.NOTIFIER_WEBHOOK_ALLOW_PRIVATE = True
    receiver = WebhookReceiver()
    try:
        response = api.post("/api/v1/webhooks/endpoints/", {"url": receiver.url, "events": ["notification.sent"]},
                            format="json")
        assert response.status_code == 201, response.content
        webhook_inserts_fail.repair()  # healthy first
        stack.worker(env=ENV)
        stack.beat(env=ENV)

        # Healthy: the mail goes out and its event arrives.
        first = _send(api, "first@example.com")
        wait_for(lambda: receiver.requests, timeout=90, message="the first event")
        # Broken: PostgreSQL refuses the fan-out's insert after the relay accepted the mail.
        webhook_inserts_fail.fail()
        second = _send(api, "second@example.com")
        wait_for(lambda: _status(second) == "sent", timeout=60, message="the second mail to be recorded sent")
        row = wait_for(lambda: ResultHookOutbox.objects.filter(attempts__gte=1).first(), timeout=30,
                       message="the failed hook's outbox row")
        assert WEBHOOK_INSERTS_REFUSED in row.last_error
        assert len(receiver.requests) == 1
        # Repaired: the beat job's retry makes the event, once.
        webhook_inserts_fail.repair()
        wait_for(lambda: len(receiver.requests) == 2, timeout=90, message="the second event")
        wait_for(lambda: not Notification.objects.filter(channel="webhook").exclude(status="sent").exists(),
                 timeout=60, message="the webhook deliveries to be sent")
        wait_for(lambda: not ResultHookOutbox.objects.exists(), timeout=30, message="the outbox to empty")

        events = [json.loads(body) for _, body in receiver.requests]
        assert [(e["type"], e["data"]["id"], e["data"]["status"]) for e in events] == [
            ("notification.sent", first, "sent"), ("notification.sent", second, "sent")]
        assert sorted(m["To"] for m in smtp_sink.messages) == ["first@example.com", "second@example.com"]
        assert _status(first) == _status(second) == "sent"
        assert Notification.objects.filter(channel="webhook").count() == 2
    finally:
        receiver.close()
