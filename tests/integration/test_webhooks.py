"""Outbound webhooks over the real stack: a worker POSTs signed events to an HTTP server run by the test."""
import base64
import hashlib
import hmac
import json
import time

import pytest

from apps.notifications import outbox
from apps.notifications.models import Notification
from apps.recipients.models import Recipient
from tests.stack import wait_for
from tests.webserver import WebhookReceiver

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver():
    r = WebhookReceiver()
    yield r
    r.close()


@pytest.fixture
def register(api, settings):
    settings.NOTIFIER_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on 127.0.0.1

    def _register(url, events):
        response = api.post("/api/v1/webhooks/endpoints/", {"url": url, "events": events}, format="json")
        assert response.status_code == 201, response.content
        return response.json()
    return _register


WORKER_ENV = {"NOTIFIER_WEBHOOK_ALLOW_PRIVATE": "1"}


def _expected_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_endpoint_receives_a_correctly_signed_notification_sent_event(api, stack, receiver, register):
    endpoint = register(receiver.url, ["notification.sent"])
    Recipient.objects.create(external_id="alice")
    stack.worker(env=WORKER_ENV)
    posted = api.post("/api/v1/notifications/in_app/", {"recipient": "alice", "title": "Hi", "body": "there",
                                                        "metadata": {"order": 42}}, format="json").json()

    wait_for(lambda: receiver.requests, timeout=60, message="the webhook POST")
    [(headers, body)] = receiver.requests
    assert headers["content-type"] == "application/json"
    assert headers["webhook-signature"] == _expected_signature(
        endpoint["secret"], headers["webhook-id"], headers["webhook-timestamp"], body)
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 120
    event = json.loads(body)
    assert event["type"] == "notification.sent"
    assert event["data"]["id"] == posted["id"]
    assert event["data"]["status"] == "sent"
    assert event["data"]["channel"] == "in_app"
    assert event["data"]["recipient"] == "alice"
    assert event["data"]["metadata"] == {"order": 42}

    # The delivery itself is a notification with a history, ending `sent`.
    hook = Notification.objects.get(pk=headers["webhook-id"])
    wait_for(lambda: Notification.objects.get(pk=hook.pk).status == "sent", message="webhook delivery sent")
    detail = api.get(f"/api/v1/notifications/{hook.pk}/").json()
    assert detail["channel"] == "webhook" and detail["attempts"] == 1
    assert [e["status"] for e in detail["events"]] == ["queued", "sending", "sent"]


@pytest.mark.slow
def test_a_500ing_endpoint_is_retried_then_dead_lettered_and_disabled(api, stack, register):
    failing = WebhookReceiver(status=500)
    try:
        endpoint = register(failing.url, ["notification.sent"])
        Recipient.objects.create(external_id="alice")
        stack.worker(env={**WORKER_ENV, "NOTIFIER_WEBHOOK_DISABLE_AFTER": "1"})
        stack.beat()  # releases the retries when their back-off has passed
        api.post("/api/v1/notifications/in_app/", {"recipient": "alice", "title": "Hi", "body": "there"},
                 format="json")

        hook = wait_for(lambda: Notification.objects.filter(channel="webhook").first(), timeout=60,
                        message="the webhook delivery")
        wait_for(lambda: Notification.objects.get(pk=hook.pk).status == "failed", timeout=90,
                 message="the webhook delivery to fail")
        hook.refresh_from_db()
        assert hook.attempts == 4  # the first try and 3 retries
        assert "HTTP 500" in hook.last_error
        assert len(failing.requests) == 4
        assert {h["webhook-id"] for h, _ in failing.requests} == {str(hook.pk)}  # same id on every retry
        statuses = [e["status"] for e in api.get(f"/api/v1/notifications/{hook.pk}/").json()["events"]]
        assert statuses.count("sending") == 4 and statuses[-1] == "failed"

        letters = []
        outbox.process_dead_letters(limit=None, select=lambda letter: letter["id"] == str(hook.pk),
                                    handle=letters.append, consume=True)
        assert [(letter["id"], letter["attempts"]) for letter in letters] == [(str(hook.pk), 4)]
        assert "HTTP 500" in letters[0]["last_error"]

        body = wait_for(lambda: (b := api.get(f"/api/v1/webhooks/endpoints/{endpoint['id']}/").json())
                        and not b["active"] and b, timeout=30, message="the endpoint to be disabled")
        assert "1 deliveries in a row failed" in body["disabled_reason"]
        assert "HTTP 500" in body["disabled_reason"]
        assert body["consecutive_failures"] == 1
    finally:
        failing.close()


def test_the_worker_refuses_to_call_a_private_address_when_not_allowed(api, stack, receiver, register):
    """Registered while allowed, then the worker runs with private addresses refused (as in production)."""
    register(receiver.url, ["notification.sent"])
    Recipient.objects.create(external_id="alice")
    stack.worker(env={"NOTIFIER_WEBHOOK_ALLOW_PRIVATE": "0"})
    api.post("/api/v1/notifications/in_app/", {"recipient": "alice", "title": "Hi", "body": "there"}, format="json")
    hook = wait_for(lambda: Notification.objects.filter(channel="webhook", status="failed").first(), timeout=60,
                    message="the webhook delivery to be refused")
    assert "non-public address" in hook.last_error
    assert hook.attempts == 1  # permanent: not retried
    assert receiver.requests == []
