"""Ownership over the real stack: a worker delivers each project's notifications to that project's
recipients, and a webhook endpoint hears only of its own project's notifications."""
import json

import pytest
from rest_framework.test import APIClient

from apps.apikeys.services import api_key_create
from apps.notifications.models import Notification
from tests.stack import wait_for
from tests.webserver import WebhookReceiver

pytestmark = pytest.mark.integration

WORKER_ENV = {"NOTIFIER_WEBHOOK_ALLOW_PRIVATE": "1"}


def _client(project: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(name=project, project=project).raw}")
    return client


def test_each_projects_user_42_gets_the_mail_sent_to_user_42_by_that_project(stack, smtp_sink):
    a, b = _client("project-a"), _client("project-b")
    assert a.put("/api/v1/recipients/user-42/", {"email": "ada@a.example.com"}, format="json").status_code == 201
    assert b.put("/api/v1/recipients/user-42/", {"email": "bob@b.example.com"}, format="json").status_code == 201
    stack.worker()

    sent = {}
    for slug, client in (("a", a), ("b", b)):
        response = client.post("/api/v1/notifications/email/", {"recipient": "user-42", "subject": f"for {slug}",
                                                                "body": "hello"}, format="json")
        assert response.status_code == 202, response.content
        sent[slug] = response.json()["id"]

    wait_for(lambda: len(smtp_sink.messages) == 2, timeout=60, message="both mails")
    delivered = {m["X-Notifier-Id"]: (m["To"], m["Subject"]) for m in smtp_sink.messages}
    assert delivered == {sent["a"]: ("ada@a.example.com", "for a"), sent["b"]: ("bob@b.example.com", "for b")}


def test_a_webhook_endpoint_hears_nothing_of_another_projects_notifications(stack, settings):
    settings.NOTIFIER_WEBHOOK_ALLOW_PRIVATE = True  # the receivers are on 127.0.0.1
    a, b = _client("project-a"), _client("project-b")
    receiver_a, receiver_b = WebhookReceiver(), WebhookReceiver()
    try:
        for client, receiver in ((a, receiver_a), (b, receiver_b)):
            response = client.post("/api/v1/webhooks/endpoints/", {"url": receiver.url,
                                                                   "events": ["notification.sent"]}, format="json")
            assert response.status_code == 201, response.content
        a.put("/api/v1/recipients/user-42/", {}, format="json")
        b.put("/api/v1/recipients/user-42/", {}, format="json")
        stack.worker(env=WORKER_ENV)

        a_ids = [a.post("/api/v1/notifications/in_app/", {"recipient": "user-42", "title": f"A{i}", "body": "x"},
                        format="json").json()["id"] for i in range(3)]
        b_id = b.post("/api/v1/notifications/in_app/", {"recipient": "user-42", "title": "B", "body": "x"},
                      format="json").json()["id"]

        wait_for(lambda: len(receiver_a.requests) == 3 and len(receiver_b.requests) == 1, timeout=60,
                 message="each endpoint's events")
        # Every delivery has been made (sent), so nothing more is on its way to either receiver.
        wait_for(lambda: Notification.objects.filter(channel="webhook").exclude(status="sent").count() == 0
                 and Notification.objects.filter(channel="webhook").count() == 4, timeout=60,
                 message="the webhook deliveries to be sent")
        heard_a = sorted(json.loads(body)["data"]["id"] for _, body in receiver_a.requests)
        heard_b = [json.loads(body)["data"]["id"] for _, body in receiver_b.requests]
        assert heard_a == sorted(a_ids)
        assert heard_b == [b_id]
    finally:
        receiver_a.close()
        receiver_b.close()
