"""Per API key throttling in Redis: 429 with Retry-After, limits per key."""
import pytest
from rest_framework import status
from rest_framework.test import APIClient

from apps.apikeys.services import api_key_create

pytestmark = pytest.mark.django_db


def _client(raw):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_a_key_over_its_burst_gets_429_with_retry_after():
    issued = api_key_create(name="slow", rate_limit=0.5, rate_burst=3)
    client = _client(issued.raw)
    codes = [client.get("/api/v1/notifications/").status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200]
    assert codes[3:] == [429, 429]
    response = client.get("/api/v1/notifications/")
    assert response.status_code == status.HTTP_429_TOO_MANY_REQUESTS
    assert 1 <= int(response["Retry-After"]) <= 2  # one token per 2 s
    assert response.json()["errors"]["detail"]


def test_limits_are_per_key():
    busy = api_key_create(name="busy", rate_limit=0.01, rate_burst=1)
    calm = api_key_create(name="calm", rate_limit=0.01, rate_burst=1)
    assert _client(busy.raw).get("/api/v1/notifications/").status_code == 200
    assert _client(busy.raw).get("/api/v1/notifications/").status_code == 429
    assert _client(calm.raw).get("/api/v1/notifications/").status_code == 200


def test_a_rate_of_zero_is_unlimited():
    issued = api_key_create(name="internal", rate_limit=0, rate_burst=1)
    client = _client(issued.raw)
    assert {client.get("/api/v1/notifications/").status_code for _ in range(5)} == {200}


def test_defaults_come_from_settings(settings):
    settings.NOTIFIER_API_RATE = 0.01
    settings.NOTIFIER_API_BURST = 2
    issued = api_key_create(name="default")
    client = _client(issued.raw)
    assert [client.get("/api/v1/notifications/").status_code for _ in range(3)] == [200, 200, 429]


def test_unauthenticated_endpoints_are_not_throttled_by_key():
    assert APIClient().get("/api/schema/").status_code == 200
