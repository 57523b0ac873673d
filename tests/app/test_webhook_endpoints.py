"""Registering webhook endpoints, and notification events becoming webhook deliveries."""
import json

import pytest
from django.test import TestCase
from rest_framework import status

from apps.notifications.delivery import worker
from apps.notifications.models import Notification
from apps.recipients.models import Recipient
from apps.webhooks.models import WebhookEndpoint
from apps.webhooks.selectors import clear_cache

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_subscriptions():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def allow_private(settings):
    settings.NOTIFIER_WEBHOOK_ALLOW_PRIVATE = True


def _deliver(ids):
    # The result hooks (webhook events among them) run after the results' commit: inside the test's
    # transaction, when the callbacks are executed.
    with TestCase.captureOnCommitCallbacks(execute=True):
        return worker.deliver_chunk(ids)


def _register(api, url="http://127.0.0.1:9/hook", events=("notification.sent",), **extra):
    return api.post("/api/v1/webhooks/endpoints/", {"url": url, "events": list(events), **extra}, format="json")


def test_a_url_pointing_at_a_private_address_is_refused_at_registration(api, settings):
    settings.NOTIFIER_WEBHOOK_ALLOW_PRIVATE = False
    for url in ("http://127.0.0.1:8080/hook", "http://localhost/hook", "http://169.254.169.254/latest/",
                "http://10.0.0.7/hook", "http://[::1]/hook"):
        response = _register(api, url=url)
        assert response.status_code == status.HTTP_400_BAD_REQUEST, url
        assert "non-public" in response.json()["errors"]["url"][0]
    assert WebhookEndpoint.objects.count() == 0


def test_registration_returns_the_secret_once(api, allow_private):
    response = _register(api, events=["notification.sent", "notification.failed"], description="orders")
    assert response.status_code == status.HTTP_201_CREATED, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["events"] == ["notification.failed", "notification.sent"]
    assert body["active"] is True and body["disabled_reason"] == ""
    assert response["Location"] == f"/api/v1/webhooks/endpoints/{body['id']}/"

    listed = api.get("/api/v1/webhooks/endpoints/").json()
    assert [e["id"] for e in listed["results"]] == [body["id"]]
    assert "secret" not in listed["results"][0]
    assert "secret" not in api.get(f"/api/v1/webhooks/endpoints/{body['id']}/").json()

    assert api.delete(f"/api/v1/webhooks/endpoints/{body['id']}/").status_code == status.HTTP_204_NO_CONTENT
    assert api.get(f"/api/v1/webhooks/endpoints/{body['id']}/").status_code == 404
    assert api.delete("/api/v1/webhooks/endpoints/not-an-id/").status_code == 404


def test_bad_registrations_are_400(api, allow_private):
    assert "events" in _register(api, events=["notification.exploded"]).json()["errors"]
    assert "events" in _register(api, events=[]).json()["errors"]
    assert "url" in _register(api, url="not a url").json()["errors"]
    assert "url" in _register(api, url="ftp://127.0.0.1/x").json()["errors"]
    response = api.post("/api/v1/webhooks/endpoints/", [1], format="json")
    assert response.status_code == 400


def test_webhook_channel_cannot_be_posted_through_the_notifications_api(api):
    response = api.post("/api/v1/notifications/webhook/", {"to": "x", "body": "y"}, format="json")
    assert response.status_code == 404


def test_a_sent_notification_becomes_one_webhook_delivery_per_subscribed_endpoint(api, allow_private):
    subscribed = _register(api, events=["notification.sent"]).json()
    _register(api, events=["notification.failed"])  # not interested in sent
    Recipient.objects.create(external_id="alice")
    posted = api.post("/api/v1/notifications/in_app/", {"recipient": "alice", "title": "t", "body": "b",
                                                        "metadata": {"order": 7}}, format="json").json()
    _deliver([posted["id"]])

    [hook] = Notification.objects.filter(channel="webhook")
    assert hook.to == subscribed["id"]
    assert hook.status == "queued"
    payload = json.loads(hook.content["body"])
    assert payload["type"] == "notification.sent"
    assert payload["data"]["id"] == posted["id"]
    assert payload["data"]["status"] == "sent"
    assert payload["data"]["recipient"] == "alice"
    assert payload["data"]["metadata"] == {"order": 7}
    assert payload["data"]["sent_at"]


def test_reading_an_inbox_item_emits_notification_delivered(api, allow_private):
    _register(api, events=["notification.delivered"])
    Recipient.objects.create(external_id="alice")
    posted = api.post("/api/v1/notifications/in_app/", {"recipient": "alice", "title": "t", "body": "b"},
                      format="json").json()
    _deliver([posted["id"]])
    assert not Notification.objects.filter(channel="webhook").exists()
    api.post(f"/api/v1/recipients/alice/inbox/{posted['id']}/read/")
    [hook] = Notification.objects.filter(channel="webhook")
    payload = json.loads(hook.content["body"])
    assert payload["type"] == "notification.delivered"
    assert payload["data"]["status"] == "delivered" and payload["data"]["delivered_at"]


def test_no_events_about_webhook_deliveries_themselves(api, allow_private):
    _register(api, url="http://127.0.0.1:9/hook", events=["notification.sent", "notification.failed"])
    Recipient.objects.create(external_id="alice")
    posted = api.post("/api/v1/notifications/in_app/", {"recipient": "alice", "title": "t", "body": "b"},
                      format="json").json()
    _deliver([posted["id"]])
    [hook] = Notification.objects.filter(channel="webhook")
    _deliver([str(hook.id)])  # port 9 refuses: a transient failure, retried later
    assert Notification.objects.filter(channel="webhook").count() == 1


def test_an_endpoint_that_answers_410_gone_is_disabled_at_once_with_the_reason(api, allow_private):
    from tests.webserver import WebhookReceiver

    gone = WebhookReceiver(status=410)
    try:
        endpoint = _register(api, url=gone.url).json()
        Recipient.objects.create(external_id="alice")
        posted = api.post("/api/v1/notifications/in_app/", {"recipient": "alice", "title": "t", "body": "b"},
                          format="json").json()
        _deliver([posted["id"]])
        hook = Notification.objects.get(channel="webhook")
        assert _deliver([str(hook.id)]) == {"failed": 1}  # permanent: no retry
        assert len(gone.requests) == 1
        body = api.get(f"/api/v1/webhooks/endpoints/{endpoint['id']}/").json()
        assert body["active"] is False
        assert "410 Gone" in body["disabled_reason"]

        # Later events for it fail without a request; re-enabling brings it back.
        second = api.post("/api/v1/notifications/in_app/", {"recipient": "alice", "title": "t", "body": "b"},
                          format="json").json()
        clear_cache()
        _deliver([second["id"]])
        assert Notification.objects.filter(channel="webhook").count() == 1  # disabled: not subscribed any more
        response = api.post(f"/api/v1/webhooks/endpoints/{endpoint['id']}/enable/")
        assert response.json()["active"] is True and response.json()["disabled_reason"] == ""
    finally:
        gone.close()


def test_a_project_cannot_register_more_webhook_endpoints_than_the_limit(api, allow_private, settings):
    from rest_framework.test import APIClient

    from apps.apikeys.models import Project
    from apps.apikeys.services import api_key_create

    settings.NOTIFIER_WEBHOOK_MAX_ENDPOINTS = 2
    assert _register(api).status_code == status.HTTP_201_CREATED
    assert _register(api, events=["notification.failed"]).status_code == status.HTTP_201_CREATED

    response = _register(api)
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert response.json() == {"errors": {"non_field_errors": [
        "This project already has the most webhook endpoints allowed (2); delete one before registering another."]}}
    assert WebhookEndpoint.objects.count() == 2

    # The limit is per project: another project's key still registers ...
    other = APIClient()
    other_key = api_key_create(name="o", project=Project.objects.create(slug="o"))
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {other_key.raw}")
    assert _register(other).status_code == status.HTTP_201_CREATED
    # ... and deleting one makes room again.
    first = api.get("/api/v1/webhooks/endpoints/").json()["results"][0]["id"]
    assert api.delete(f"/api/v1/webhooks/endpoints/{first}/").status_code == status.HTTP_204_NO_CONTENT
    assert _register(api).status_code == status.HTTP_201_CREATED
