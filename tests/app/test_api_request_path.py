"""The lean parts of an API request (issue 7) answer exactly what Django and DRF answered before."""
from datetime import datetime, timedelta, timezone

import pytest
from rest_framework import status
from rest_framework.test import APIClient

from apps.notifications.api.serializers import NotificationAcceptedSerializer
from apps.notifications.api.views import accepted_body
from apps.notifications.models import Notification

pytestmark = pytest.mark.django_db

EMAIL = {"to": "alice@example.com", "subject": "Hello", "body": "Hi there"}


@pytest.mark.parametrize("scheduled_for", [None, "2099-01-31T09:00:00+02:00", "2099-06-01T00:00:00Z"])
def test_the_accepted_body_is_what_the_serializer_gives(api, scheduled_for):
    body = dict(EMAIL, **({"scheduled_for": scheduled_for} if scheduled_for else {}))
    response = api.post("/api/v1/notifications/email/", body, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED
    notification = Notification.objects.get(id=response.json()["id"])
    expected = dict(NotificationAcceptedSerializer(notification).data)
    assert response.json() == expected
    assert accepted_body(notification) == expected


def test_the_accepted_body_keeps_none_and_converts_offsets_to_utc():
    n = Notification(channel="sms", status="scheduled", priority="high", category="otp",
                     created_at=datetime(2030, 1, 1, tzinfo=timezone.utc),
                     scheduled_for=datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))))
    assert accepted_body(n) == dict(NotificationAcceptedSerializer(n).data)
    n.scheduled_for = None
    assert accepted_body(n)["scheduled_for"] is None


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/json; indent=2",
                                    "text/html, */*;q=0.8"])
def test_json_is_answered_for_any_accept_header_that_allows_it(api, accept):
    extra = {"HTTP_ACCEPT": accept} if accept is not None else {}
    response = api.post("/api/v1/notifications/email/", EMAIL, format="json", **extra)
    assert response.status_code == status.HTTP_202_ACCEPTED
    assert response["Content-Type"].startswith("application/json")


def test_an_accept_header_without_json_still_gets_406(api):
    response = api.post("/api/v1/notifications/email/", EMAIL, format="json", HTTP_ACCEPT="text/html")
    assert response.status_code == status.HTTP_406_NOT_ACCEPTABLE


def test_api_requests_set_no_cookie_and_keep_their_security_headers(api):
    api.cookies["csrftoken"] = "x" * 32
    response = api.post("/api/v1/notifications/email/", EMAIL, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED
    assert not response.cookies
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Request-ID"]


def test_the_admin_still_has_sessions_csrf_users_and_messages(admin_user):
    client = APIClient(enforce_csrf_checks=True)
    login = client.get("/admin/login/")
    assert login.status_code == 200
    assert "csrftoken" in login.cookies
    refused = client.post("/admin/login/", {"username": admin_user.username, "password": "password"})
    assert refused.status_code == 403  # no CSRF token: refused, as before
    client.force_login(admin_user)
    assert client.get("/admin/").status_code == 200
