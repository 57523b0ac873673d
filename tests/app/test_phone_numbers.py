"""SMS numbers are valid E.164 numbers, written exactly so: on the single create (Django and the
express lane), in batch items and in a recipient's phone (real PostgreSQL)."""
from __future__ import annotations

import json

import pytest
from rest_framework import status

from apps.notifications import outbox
from apps.notifications.models import Notification
from apps.recipients.models import Recipient

pytestmark = pytest.mark.django_db

MESSAGE = "Enter a phone number in E.164 format, e.g. +12025550123."
REFUSED = ["+12", "+1202555012", "+999123456789", "+9991234567890", "+1 202 555 0123", "+12025550123\n"]
ACCEPTED = ["+12025550123", "+447911123456"]


@pytest.fixture
def no_publish(monkeypatch):
    monkeypatch.setattr("apps.notifications.outbox.publish_deliveries", lambda items: None)


@pytest.mark.parametrize("number", REFUSED)
def test_the_sms_endpoint_refuses_a_number_that_is_not_a_valid_e164_number(api, number):
    response = api.post("/api/v1/notifications/sms/", {"to": number, "body": "x"}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert response.json() == {"errors": {"to": [MESSAGE]}}
    assert not Notification.objects.exists()


@pytest.mark.parametrize("number", ACCEPTED)
def test_the_sms_endpoint_accepts_a_valid_e164_number(api, no_publish, number):
    response = api.post("/api/v1/notifications/sms/", {"to": number, "body": "x"}, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    assert Notification.objects.get(id=response.json()["id"]).to == number


def test_a_batch_answers_an_error_for_each_invalid_number_and_queues_the_valid_ones(api, no_publish):
    numbers = [*REFUSED, *ACCEPTED]
    items = [{"channel": "sms", "to": number, "body": "x"} for number in numbers]
    response = api.post("/api/v1/notifications/batch/", {"notifications": items}, format="json")

    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    results = response.json()["results"]
    assert results[:len(REFUSED)] == [{"errors": {"to": [MESSAGE]}}] * len(REFUSED)
    assert [r["status"] for r in results[len(REFUSED):]] == ["queued"] * len(ACCEPTED)
    assert sorted(Notification.objects.values_list("to", flat=True)) == sorted(ACCEPTED)


# Longer ones fail max_length first; the recipient API trims surrounding whitespace, as it does for email.
@pytest.mark.parametrize("number", [n for n in REFUSED if len(n) <= 16 and n == n.strip()])
def test_a_recipient_put_refuses_a_phone_that_is_not_a_valid_e164_number(api, number):
    response = api.put("/api/v1/recipients/bob/", {"phone": number}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert response.json() == {"errors": {"phone": [MESSAGE]}}
    assert not Recipient.objects.filter(external_id="bob").exists()


def test_a_recipient_put_refuses_a_phone_longer_than_e164_allows(api):
    response = api.put("/api/v1/recipients/bob/", {"phone": "+9991234567890123"}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert list(response.json()["errors"]) == ["phone"]


@pytest.mark.parametrize("number", ACCEPTED)
def test_a_recipient_put_accepts_a_valid_e164_phone(api, number):
    response = api.put("/api/v1/recipients/bob/", {"phone": number}, format="json")
    assert response.status_code == status.HTTP_201_CREATED, response.content
    assert Recipient.objects.get(external_id="bob").phone == number


def test_the_recipient_admin_refuses_a_phone_that_is_not_a_valid_e164_number(admin_client):
    from tests.app.test_admin import form_data

    data = form_data(admin_client.get("/admin/recipients/recipient/add/"))
    data.update({"external_id": "bob", "timezone": "UTC", "phone": "+12"})
    response = admin_client.post("/admin/recipients/recipient/add/", data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["phone"] == [MESSAGE]
    assert not Recipient.objects.filter(external_id="bob").exists()


@pytest.mark.django_db(transaction=True)  # the express lane's committer has its own connection
def test_the_express_lane_refuses_a_number_that_is_not_a_valid_e164_number(monkeypatch):
    from apps.apikeys.services import api_key_check, api_key_create
    from tests.app.test_express_create import Served

    monkeypatch.setattr(outbox, "publish", lambda items, **options: None)
    key = api_key_create(name="express")
    assert api_key_check(key.raw) is not None
    served = Served()
    code, _, body = served.post("/api/v1/notifications/sms/", {"to": "+12", "body": "x"}, key.raw)
    assert code == 400
    assert json.loads(body) == {"errors": {"to": [MESSAGE]}}
    code, _, body = served.post("/api/v1/notifications/sms/", {"to": "+12025550123", "body": "x"}, key.raw)
    assert code == 202, body
