"""The notifications API on real PostgreSQL (no workers: messages are published but not consumed)."""
import json

import pytest
from django.test import override_settings
from rest_framework import status
from rest_framework.test import APIClient

from apps.notifications.models import Notification
from apps.recipients.models import Recipient

pytestmark = pytest.mark.django_db

EMAIL = {"to": "alice@example.com", "subject": "Hello", "body": "Hi there"}


def post(api, channel, body, **kwargs):
    return api.post(f"/api/v1/notifications/{channel}/", body, format="json", **kwargs)


def errors(response):
    data = response.json()
    assert set(data) >= {"errors"}, data
    return data["errors"]


# --- authentication -------------------------------------------------------------

def test_it_answers_401_without_a_key():
    response = APIClient().post("/api/v1/notifications/email/", EMAIL, format="json")
    assert response.status_code == status.HTTP_401_UNAUTHORIZED
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_answers_401_for_a_wrong_key():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer nk_deadbeef_wrong")
    assert client.post("/api/v1/notifications/email/", EMAIL, format="json").status_code == 401


def test_a_read_only_key_cannot_post(db):
    from apps.apikeys.services import api_key_create

    key = api_key_create(name="reader", scopes=["notifications:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.raw}")
    assert client.post("/api/v1/notifications/email/", EMAIL, format="json").status_code == 403
    assert client.get("/api/v1/notifications/").status_code == 200


# --- creation ---------------------------------------------------------------------

@pytest.mark.parametrize("channel, body", [
    ("email", EMAIL),
    ("sms", {"to": "+12025550123", "body": "Your code is 123456", "category": "otp"}),
    ("push", {"device_tokens": ["tok-1", "tok-2"], "title": "Hi", "body": "New message", "data": {"k": 1}}),
])
def test_each_channel_accepts_a_valid_notification_with_202_and_location(api, channel, body):
    response = post(api, channel, body)
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    data = response.json()
    assert set(data) == {"id", "channel", "status", "priority", "category", "created_at", "scheduled_for"}
    assert data["status"] == "queued" and data["channel"] == channel
    assert response["Location"] == f"/api/v1/notifications/{data['id']}/"
    row = Notification.objects.get(pk=data["id"])
    assert [e.status for e in row.events.all()] == ["queued"]


def test_in_app_goes_to_a_known_recipient(api):
    Recipient.objects.create(external_id="u-1")
    response = post(api, "in_app", {"recipient": "u-1", "title": "Welcome", "body": "Hello"})
    assert response.status_code == 202
    assert Notification.objects.get(pk=response.json()["id"]).recipient.external_id == "u-1"


def test_priority_defaults_to_the_categorys(api):
    assert post(api, "sms", {"to": "+12025550123", "body": "1234", "category": "otp"}).json()["priority"] == "high"
    assert post(api, "email", {**EMAIL, "category": "marketing"}).json()["priority"] == "low"
    assert post(api, "email", {**EMAIL, "category": "marketing", "priority": "high"}).json()["priority"] == "high"


def test_a_future_scheduled_for_is_scheduled(api):
    response = post(api, "email", {**EMAIL, "scheduled_for": "2099-01-01T09:00:00+00:00"})
    assert response.json()["status"] == "scheduled"
    assert response.json()["scheduled_for"].startswith("2099-01-01T09:00:00")


def test_strings_are_stored_verbatim(api):
    body = "  <b>5 > 3</b> & \"quotes\"  "
    notification_id = post(api, "email", {**EMAIL, "body": body}).json()["id"]
    assert Notification.objects.get(pk=notification_id).content["body"] == body


# --- validation -------------------------------------------------------------------

@pytest.mark.parametrize("channel, body, field", [
    ("email", {**EMAIL, "to": "not-an-email"}, "to"),
    ("email", {"subject": "s", "body": "b"}, "to"),
    ("email", {**EMAIL, "recipient": "u-1"}, "to"),
    ("email", {"to": "a@example.com", "body": "b"}, "subject"),
    ("email", {"to": "a@example.com", "subject": "s"}, "body"),
    ("email", {**EMAIL, "subject": ""}, "subject"),
    ("sms", {"to": "2025550123", "body": "x"}, "to"),
    ("sms", {"to": "+1 202 555 0123", "body": "x"}, "to"),
    ("sms", {"to": "+12025550123"}, "body"),
    ("sms", {"to": "+12025550123", "body": "x" * 1601}, "body"),
    ("push", {"title": "t", "body": "b"}, "to"),
    ("push", {"device_tokens": "abc", "title": "t", "body": "b"}, "device_tokens"),
    ("push", {"device_tokens": ["abc"], "title": "t", "body": "b", "data": [1, 2]}, "data"),
    ("in_app", {"to": "a@example.com", "title": "t", "body": "b"}, "to"),
    ("email", {**EMAIL, "recipient": "nobody"}, "to"),
    ("email", {"recipient": "nobody", "subject": "s", "body": "b"}, "recipient"),
    ("email", {**EMAIL, "category": "no-such-category"}, "category"),
    ("email", {**EMAIL, "priority": "urgent"}, "priority"),
    ("email", {**EMAIL, "metadata": ["not", "an", "object"]}, "metadata"),
    ("email", {**EMAIL, "metadata": "text"}, "metadata"),
    ("email", {**EMAIL, "template": "welcome"}, "template"),
    ("email", {**EMAIL, "scheduled_for": "tomorrow"}, "scheduled_for"),
    ("email", {**EMAIL, "scheduled_for": "2099-01-01T09:00:00"}, "scheduled_for"),
    ("email", {**EMAIL, "expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
    ("email", {**EMAIL, "ttl_seconds": 0}, "ttl_seconds"),
    ("email", {**EMAIL, "ttl_seconds": "soon"}, "ttl_seconds"),
    ("email", {**EMAIL, "subject": 12}, "subject"),
    ("email", {**EMAIL, "subject": {"a": 1}}, "subject"),
    ("email", {**EMAIL, "group_key": "g" * 256}, "group_key"),
    ("email", {**EMAIL, "metadata": {"deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}}}, "metadata"),
])
def test_invalid_input_gets_400_with_field_errors(api, channel, body, field):
    count = Notification.objects.count()
    response = post(api, channel, body)
    assert response.status_code == status.HTTP_400_BAD_REQUEST, response.content
    assert field in errors(response), response.json()
    assert Notification.objects.count() == count


def test_recipient_without_the_channels_address_is_refused(api):
    Recipient.objects.create(external_id="u-2", email="u2@example.com")
    response = post(api, "sms", {"recipient": "u-2", "body": "hi"})
    assert response.status_code == 400 and "recipient" in errors(response)


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"text"', "null", "42"])
def test_malformed_or_non_object_json_gets_400_non_field_errors(api, raw):
    response = api.post("/api/v1/notifications/email/", raw, content_type="application/json")
    assert response.status_code == 400
    assert "non_field_errors" in errors(response)


def test_non_json_body_gets_415(api):
    response = api.post("/api/v1/notifications/email/", "to=a@example.com", content_type="application/x-www-form-urlencoded")
    assert response.status_code == status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    assert "errors" in response.json()


@override_settings(NOTIFIER_MAX_BODY_BYTES=1024)
def test_body_over_the_limit_gets_413(api):
    response = api.post("/api/v1/notifications/email/", json.dumps({**EMAIL, "body": "x" * 2000}),
                        content_type="application/json")
    assert response.status_code == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    assert "errors" in response.json()


def test_unknown_channel_is_404(api):
    assert post(api, "fax", EMAIL).status_code == 404


# --- reading ----------------------------------------------------------------------

@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-000000000000"])
def test_malformed_or_unknown_id_is_a_json_404(api, bad_id):
    response = api.get(f"/api/v1/notifications/{bad_id}/")
    assert response.status_code == 404
    assert "errors" in response.json()


def test_detail_masks_the_address_and_shows_history(api):
    notification_id = post(api, "email", {**EMAIL, "metadata": {"order": 42}}).json()["id"]
    data = api.get(f"/api/v1/notifications/{notification_id}/").json()
    assert data["to"] == "a***@example.com"
    assert data["metadata"] == {"order": 42}
    assert data["attempts"] == 0 and data["last_error"] == "" and data["sent_at"] is None
    assert [e["status"] for e in data["events"]] == ["queued"]
    for key in ("recipient", "provider", "provider_message_id", "delivered_at"):
        assert key in data


def test_list_filters_and_paginates_with_a_cursor(api):
    Recipient.objects.create(external_id="u-9", email="u9@example.com")
    for _ in range(3):
        post(api, "email", EMAIL)
    post(api, "email", {"recipient": "u-9", "subject": "s", "body": "b", "category": "marketing"})
    post(api, "sms", {"to": "+12025550123", "body": "x"})

    page = api.get("/api/v1/notifications/?channel=email&page_size=2").json()
    assert set(page) == {"results", "next"} and len(page["results"]) == 2 and page["next"]
    rest = api.get(page["next"]).json()
    assert len(rest["results"]) == 2 and rest["next"] is None
    seen = {r["id"] for r in page["results"] + rest["results"]}
    assert len(seen) == 4

    assert len(api.get("/api/v1/notifications/?recipient=u-9").json()["results"]) == 1
    assert len(api.get("/api/v1/notifications/?category=marketing").json()["results"]) == 1
    assert len(api.get("/api/v1/notifications/?status=queued&channel=sms").json()["results"]) == 1
    assert api.get("/api/v1/notifications/?status=sent").json()["results"] == []


def test_schema_is_served_without_a_key():
    response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/notifications/" in response.content
