"""Idempotency-Key on POST /api/v1/notifications/{channel}/ (SPEC: at most 255 chars, 24 h, 409, 422)."""
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework import status
from rest_framework.test import APIClient

from apps.apikeys.services import api_key_create
from apps.idempotency.models import IdempotencyRecord
from apps.idempotency.services import idempotency_purge, request_fingerprint
from apps.notifications.models import Notification

pytestmark = pytest.mark.django_db

BODY = {"to": "alice@example.com", "subject": "Receipt", "body": "Thanks"}
URL = "/api/v1/notifications/email/"


def _post(api, body=BODY, key="order-42", url=URL):
    return api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_repeat_returns_the_first_response_and_creates_nothing(api):
    first = _post(api)
    assert first.status_code == status.HTTP_202_ACCEPTED
    second = _post(api)
    assert second.status_code == status.HTTP_202_ACCEPTED
    assert second.json() == first.json()
    assert second["Location"] == first["Location"] == f"/api/v1/notifications/{first.json()['id']}/"
    assert second["Idempotent-Replayed"] == "true"
    assert Notification.objects.count() == 1


def test_the_same_body_in_another_key_order_is_the_same_request(api):
    first = _post(api)
    second = _post(api, body=dict(reversed(list(BODY.items()))))
    assert second.json()["id"] == first.json()["id"]


def test_the_same_key_with_another_body_is_422(api):
    _post(api)
    response = _post(api, body={**BODY, "subject": "Another"})
    assert response.status_code == status.HTTP_422_UNPROCESSABLE_ENTITY
    assert "Idempotency-Key" in response.json()["errors"]
    assert Notification.objects.count() == 1


def test_the_same_key_on_another_channel_is_422(api):
    _post(api, body={"to": "+12025550123", "body": "hi"}, url="/api/v1/notifications/sms/")
    response = _post(api, body={"to": "+12025550123", "body": "hi"}, url="/api/v1/notifications/in_app/")
    assert response.status_code == status.HTTP_422_UNPROCESSABLE_ENTITY


def test_a_repeat_while_the_first_is_in_flight_is_409(api, api_key):
    now = timezone.now()
    IdempotencyRecord.objects.create(
        api_key=api_key.api_key, key="order-42", fingerprint=request_fingerprint("POST", URL, BODY),
        created_at=now, locked_at=now,
    )
    response = _post(api)
    assert response.status_code == status.HTTP_409_CONFLICT
    assert response["Retry-After"] == "1"
    assert Notification.objects.count() == 0


def test_an_abandoned_first_request_is_taken_over_after_the_lock_timeout(api, api_key, settings):
    long_ago = timezone.now() - timedelta(seconds=settings.NOTIFIER_IDEMPOTENCY_LOCK_TIMEOUT + 5)
    IdempotencyRecord.objects.create(
        api_key=api_key.api_key, key="order-42", fingerprint=request_fingerprint("POST", URL, BODY),
        created_at=long_ago, locked_at=long_ago,
    )
    assert _post(api).status_code == status.HTTP_202_ACCEPTED
    assert Notification.objects.count() == 1


def test_keys_are_scoped_per_api_key(api):
    other = api_key_create(name="other")
    other_client = APIClient()
    other_client.credentials(HTTP_AUTHORIZATION=f"Bearer {other.raw}")
    first = _post(api)
    second = _post(other_client)
    assert second.status_code == status.HTTP_202_ACCEPTED
    assert second.json()["id"] != first.json()["id"]
    assert Notification.objects.count() == 2


def test_a_key_expires_after_24_hours(api, settings):
    first = _post(api)
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(seconds=settings.NOTIFIER_IDEMPOTENCY_TTL + 1))
    second = _post(api, body={**BODY, "subject": "A new order"})
    assert second.status_code == status.HTTP_202_ACCEPTED
    assert second.json()["id"] != first.json()["id"]


def test_a_validation_error_is_not_kept_so_a_corrected_retry_runs(api):
    bad = _post(api, body={**BODY, "to": "not-an-address"})
    assert bad.status_code == status.HTTP_400_BAD_REQUEST
    assert not IdempotencyRecord.objects.exists()
    good = _post(api, body=BODY)
    assert good.status_code == status.HTTP_202_ACCEPTED


@pytest.mark.parametrize("key", ["x" * 256, ""])
def test_a_key_longer_than_255_characters_or_empty_is_400(api, key):
    response = _post(api, key=key)
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "Idempotency-Key" in response.json()["errors"]
    assert _post(api, key="y" * 255).status_code == status.HTTP_202_ACCEPTED


def test_without_a_key_every_request_creates(api):
    api.post(URL, BODY, format="json")
    api.post(URL, BODY, format="json")
    assert Notification.objects.count() == 2


def test_purge_forgets_records_older_than_the_ttl(api, settings):
    _post(api, key="old")
    _post(api, key="new")
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(seconds=settings.NOTIFIER_IDEMPOTENCY_TTL + 1))
    assert idempotency_purge() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
