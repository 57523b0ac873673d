"""API key authentication and authorisation: 401 for missing/wrong/revoked keys, 403 for missing scope or channel."""
import pytest
from django.core.management import call_command
from rest_framework import status
from rest_framework.test import APIClient

from apps.apikeys.models import ApiKey
from apps.apikeys.services import api_key_check, api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db

EMAIL = {"to": "alice@example.com", "subject": "Hi", "body": "Hello"}
SMS = {"to": "+12025550123", "body": "Your code is 123456"}


def _client(raw: str | None) -> APIClient:
    client = APIClient()
    if raw is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_it_answers_401_without_a_key():
    response = _client(None).post("/api/v1/notifications/email/", EMAIL, format="json")
    assert response.status_code == status.HTTP_401_UNAUTHORIZED
    assert response.json()["errors"]["detail"]
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer nk_deadbeef_wrongsecret", "Bearer nothing-like-a-key", "Basic abc",
                                    "Bearer", "Bearer a b"])
def test_it_answers_401_for_a_wrong_key(api_key, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/api/v1/notifications/").status_code == status.HTTP_401_UNAUTHORIZED


def test_it_answers_401_for_a_key_with_a_known_prefix_but_wrong_secret(api_key):
    forged = api_key.raw[:-4] + ("AAAA" if not api_key.raw.endswith("AAAA") else "BBBB")
    assert _client(forged).get("/api/v1/notifications/").status_code == status.HTTP_401_UNAUTHORIZED


def test_a_revoked_key_is_refused_on_the_very_next_request_even_when_cached(api_key):
    client = _client(api_key.raw)
    assert client.get("/api/v1/notifications/").status_code == status.HTTP_200_OK  # now cached in this process

    api_key_revoke(prefix=api_key.api_key.prefix)
    # Simulate another API process whose cache still holds the key as active.
    from apps.apikeys import services

    services._cache.clear()
    services._cache[services._hash(api_key.raw)] = (float("inf"), ApiKey.objects.get(pk=api_key.api_key.pk))
    ApiKey.objects.filter(pk=api_key.api_key.pk).update(revoked_at=None)  # only Redis knows now

    response = client.get("/api/v1/notifications/")
    assert response.status_code == status.HTTP_401_UNAUTHORIZED


def test_revoke_command_makes_the_key_answer_401(api_key, capsys):
    call_command("revoke_api_key", api_key.api_key.prefix)
    assert "Revoked" in capsys.readouterr().out
    assert _client(api_key.raw).post("/api/v1/notifications/email/", EMAIL, format="json").status_code == 401
    assert api_key_check(api_key.raw) is None


def test_a_read_only_key_cannot_post():
    issued = api_key_create(name="reader", scopes=["notifications:read"])
    client = _client(issued.raw)
    assert client.get("/api/v1/notifications/").status_code == status.HTTP_200_OK
    response = client.post("/api/v1/notifications/email/", EMAIL, format="json")
    assert response.status_code == status.HTTP_403_FORBIDDEN
    assert "scope" in response.json()["errors"]["detail"][0]


def test_a_write_only_key_cannot_read_notifications():
    issued = api_key_create(name="writer", scopes=["notifications:write"])
    client = _client(issued.raw)
    created = client.post("/api/v1/notifications/email/", EMAIL, format="json")
    assert created.status_code == status.HTTP_202_ACCEPTED
    assert client.get(f"/api/v1/notifications/{created.json()['id']}/").status_code == status.HTTP_403_FORBIDDEN
    assert client.get("/api/v1/notifications/").status_code == status.HTTP_403_FORBIDDEN


def test_a_key_limited_to_email_cannot_post_sms():
    issued = api_key_create(name="mailer", allowed_channels=["email"])
    client = _client(issued.raw)
    assert client.post("/api/v1/notifications/email/", EMAIL, format="json").status_code == 202
    response = client.post("/api/v1/notifications/sms/", SMS, format="json")
    assert response.status_code == status.HTTP_403_FORBIDDEN
    assert "sms" in response.json()["errors"]["detail"][0]


def test_create_command_prints_the_key_once_and_stores_only_its_hash(capsys):
    call_command("create_api_key", "ci", "--scopes", "notifications:read", "--channels", "email", "--rate", "5",
                 "--burst", "10")
    raw = capsys.readouterr().out.strip()
    key = ApiKey.objects.get(name="ci")
    assert raw.startswith(f"nk_{key.prefix}_")
    assert raw not in key.key_hash and len(key.key_hash) == 64
    assert (key.scopes, key.allowed_channels, key.rate_limit, key.rate_burst) == (
        ["notifications:read"], ["email"], 5.0, 10)
