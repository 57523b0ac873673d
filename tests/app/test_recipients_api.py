"""REST API for recipients and their devices, on real PostgreSQL."""
import base64
import json
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from rest_framework import status
from rest_framework.test import APIClient

from apps.apikeys.services import api_key_create
from apps.notifications.models import Notification, NotificationEvent
from apps.recipients.models import Device, Preference, Recipient

pytestmark = pytest.mark.django_db

URL = "/api/v1/recipients/{}/"


def client_with(*scopes):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(name='scoped', scopes=list(scopes)).raw}")
    return client


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def web_subscription(endpoint="https://93.184.215.14/send/abc"):  # a public address: no DNS in tests
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    keys = {"p256dh": b64url(public), "auth": b64url(os.urandom(16))}
    return {"endpoint": endpoint, "expirationTime": None, "keys": keys}


def put_alice(api, **extra):
    body = {"email": "alice@example.com", "phone": "+12025550123", "timezone": "America/New_York",
            "locale": "pt-BR", "name": "Alice", **extra}
    return api.put(URL.format("alice"), body, format="json")


# --- recipients -------------------------------------------------------------------

def test_put_creates_a_recipient_with_201_and_a_second_put_updates_with_200(api):
    response = put_alice(api)
    assert response.status_code == status.HTTP_201_CREATED, response.content
    assert response.json()["external_id"] == "alice"
    assert response.json()["timezone"] == "America/New_York"

    response = api.put(URL.format("alice"), {"name": "Alice B."}, format="json")
    assert response.status_code == status.HTTP_200_OK
    body = api.get(URL.format("alice")).json()
    assert body["name"] == "Alice B."
    assert body["email"] == "alice@example.com"  # fields not given are kept
    assert body["locale"] == "pt-BR"


def test_put_normalises_the_locale_and_clears_fields_given_empty(api):
    put_alice(api)
    response = api.put(URL.format("alice"), {"locale": "pt_br", "phone": None, "email": ""}, format="json")
    assert response.status_code == status.HTTP_200_OK
    assert response.json()["locale"] == "pt-BR"
    assert response.json()["phone"] == ""
    assert response.json()["email"] == ""


@pytest.mark.parametrize("field,value", [
    ("email", "not-an-email"),
    ("phone", "2025550123"),
    ("phone", "+1 202 555 0123"),
    ("timezone", "Mars/Olympus_Mons"),
    ("timezone", "EST5EDTX"),
    ("locale", "portuguese!"),
    ("name", 12 * "x" * 30),
])
def test_put_rejects_invalid_fields_with_400_naming_the_field(api, field, value):
    response = api.put(URL.format("bob"), {field: value}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert field in response.json()["errors"]
    assert not Recipient.objects.filter(external_id="bob").exists()


def test_put_rejects_unknown_fields_and_bodies_that_are_not_objects(api):
    response = api.put(URL.format("bob"), {"emial": "bob@example.com"}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert response.json()["errors"] == {"emial": ["Unknown field."]}
    response = api.put(URL.format("bob"), [1, 2], format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "non_field_errors" in response.json()["errors"]
    response = api.generic("PUT", URL.format("bob"), "{not json", content_type="application/json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "non_field_errors" in response.json()["errors"]


def test_get_of_an_unknown_recipient_is_404(api):
    response = api.get(URL.format("nobody"))
    assert response.status_code == status.HTTP_404_NOT_FOUND
    assert "errors" in response.json()


def test_delete_answers_204_and_a_later_get_404(api):
    put_alice(api)
    assert api.delete(URL.format("alice")).status_code == status.HTTP_204_NO_CONTENT
    assert api.get(URL.format("alice")).status_code == status.HTTP_404_NOT_FOUND
    assert api.delete(URL.format("alice")).status_code == status.HTTP_404_NOT_FOUND


def test_delete_erases_personal_data_and_devices_but_keeps_anonymised_history(api):
    put_alice(api)
    api.post(URL.format("alice") + "devices/", {"platform": "android", "token": "fcm-token-1"}, format="json")
    api.put(URL.format("alice") + "preferences/", {"channels": {"sms": False}}, format="json")
    sent = api.post("/api/v1/notifications/email/", {"recipient": "alice", "subject": "Hi Alice",
                                                      "body": "Hello alice@example.com", "metadata": {"x": 1}},
                    format="json").json()["id"]
    direct = api.post("/api/v1/notifications/sms/", {"to": "+12025550123", "body": "code"}, format="json")
    Notification.objects.filter(pk=sent).update(status="sent", to="alice@example.com")
    NotificationEvent.objects.create(notification_id=sent, status="failed", at=Notification.objects.get(pk=sent)
                                     .created_at, detail="SMTP recipient refused: alice@example.com")

    assert api.delete(URL.format("alice")).status_code == status.HTTP_204_NO_CONTENT

    assert not Recipient.objects.filter(external_id="alice").exists()
    assert not Device.objects.exists()
    assert not Preference.objects.exists()
    kept = Notification.objects.get(pk=sent)
    assert (kept.recipient_id, kept.to, kept.content, kept.metadata) == (None, "", {}, {})
    assert (kept.status, kept.channel, kept.category) == ("sent", "email", "transactional")
    details = " ".join(kept.events.values_list("detail", flat=True))
    assert "alice@example.com" not in details
    assert kept.events.count() == 2
    # A notification to a direct address is not the recipient's: untouched.
    assert Notification.objects.get(pk=direct.json()["id"]).to == "+12025550123"


def test_delete_cancels_the_recipients_notifications_not_yet_sent(api):
    put_alice(api)
    queued = api.post("/api/v1/notifications/email/", {"recipient": "alice", "subject": "s", "body": "b"},
                      format="json").json()["id"]
    api.delete(URL.format("alice"))
    notification = Notification.objects.get(pk=queued)
    assert notification.status == "cancelled"
    assert list(notification.events.values_list("status", flat=True)) == ["queued", "cancelled"]


# --- devices ----------------------------------------------------------------------

def test_registering_a_device_answers_201_with_its_id(api):
    put_alice(api)
    response = api.post(URL.format("alice") + "devices/", {"platform": "ios", "token": "apns-token-1"}, format="json")
    assert response.status_code == status.HTTP_201_CREATED, response.content
    body = response.json()
    device = Device.objects.get(pk=body["id"])
    assert (device.platform, device.token, device.active) == ("ios", "apns-token-1", True)
    listed = api.get(URL.format("alice") + "devices/").json()["results"]
    assert [d["id"] for d in listed] == [body["id"]]


def test_registering_the_same_token_again_keeps_one_device_and_reactivates_it(api):
    put_alice(api)
    first = api.post(URL.format("alice") + "devices/", {"platform": "android", "token": "t1"}, format="json").json()
    Device.objects.filter(pk=first["id"]).update(active=False, deactivated_reason="unregistered")
    again = api.post(URL.format("alice") + "devices/", {"platform": "android", "token": "t1"}, format="json")
    assert again.status_code == status.HTTP_201_CREATED
    assert again.json()["id"] == first["id"]
    assert again.json()["active"] is True
    assert Device.objects.count() == 1


def test_a_token_registered_by_another_recipient_moves_to_them(api):
    put_alice(api)
    api.put(URL.format("bob"), {}, format="json")
    api.post(URL.format("alice") + "devices/", {"platform": "android", "token": "shared"}, format="json")
    api.post(URL.format("bob") + "devices/", {"platform": "android", "token": "shared"}, format="json")
    assert list(Device.objects.values_list("recipient__external_id", flat=True)) == ["bob"]


def test_a_web_device_takes_a_push_subscription_object_or_its_json_text(api):
    put_alice(api)
    subscription = web_subscription()
    response = api.post(URL.format("alice") + "devices/", {"platform": "web", "token": subscription}, format="json")
    assert response.status_code == status.HTTP_201_CREATED, response.content
    stored = json.loads(Device.objects.get(pk=response.json()["id"]).token)
    assert stored["endpoint"] == subscription["endpoint"]
    assert stored["keys"] == subscription["keys"]
    as_text = api.post(URL.format("alice") + "devices/", {"platform": "web", "token": json.dumps(subscription)},
                       format="json")
    assert as_text.status_code == status.HTTP_201_CREATED
    assert as_text.json()["id"] == response.json()["id"]  # the same subscription


@pytest.mark.parametrize("mutate", [
    lambda s: s.pop("endpoint"),
    lambda s: s.update(endpoint="not a url"),
    lambda s: s.pop("keys"),
    lambda s: s["keys"].pop("p256dh"),
    lambda s: s["keys"].pop("auth"),
    lambda s: s["keys"].update(auth="!!!"),
    lambda s: s["keys"].update(p256dh=b64url(b"\x04" + b"x" * 10)),
])
def test_a_web_subscription_without_endpoint_and_keys_is_400(api, mutate):
    put_alice(api)
    subscription = web_subscription()
    mutate(subscription)
    response = api.post(URL.format("alice") + "devices/", {"platform": "web", "token": subscription}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "token" in response.json()["errors"]
    assert not Device.objects.exists()


@pytest.mark.parametrize("body,field", [
    ({"platform": "windows", "token": "t"}, "platform"),
    ({"platform": "android"}, "token"),
    ({"platform": "android", "token": ""}, "token"),
    ({"platform": "android", "token": {"a": 1}}, "token"),
    ({"platform": "web", "token": "not json"}, "token"),
    ({"token": "t"}, "platform"),
])
def test_invalid_device_registrations_are_400(api, body, field):
    put_alice(api)
    response = api.post(URL.format("alice") + "devices/", body, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert field in response.json()["errors"]


def test_devices_of_an_unknown_recipient_are_404(api):
    response = api.post(URL.format("nobody") + "devices/", {"platform": "android", "token": "t"}, format="json")
    assert response.status_code == status.HTTP_404_NOT_FOUND
    assert api.get(URL.format("nobody") + "devices/").status_code == status.HTTP_404_NOT_FOUND


def test_deleting_a_device_answers_204_then_404(api):
    put_alice(api)
    device_id = api.post(URL.format("alice") + "devices/", {"platform": "android", "token": "t1"},
                         format="json").json()["id"]
    assert api.delete(URL.format("alice") + f"devices/{device_id}/").status_code == status.HTTP_204_NO_CONTENT
    assert not Device.objects.exists()
    assert api.delete(URL.format("alice") + f"devices/{device_id}/").status_code == status.HTTP_404_NOT_FOUND


def test_a_device_of_another_recipient_or_a_malformed_id_is_404(api):
    put_alice(api)
    api.put(URL.format("bob"), {}, format="json")
    device_id = api.post(URL.format("alice") + "devices/", {"platform": "android", "token": "t1"},
                         format="json").json()["id"]
    assert api.delete(URL.format("bob") + f"devices/{device_id}/").status_code == status.HTTP_404_NOT_FOUND
    assert api.delete(URL.format("alice") + "devices/abc/").status_code == status.HTTP_404_NOT_FOUND
    assert Device.objects.filter(pk=device_id).exists()


# --- scopes -----------------------------------------------------------------------

def test_a_read_only_key_reads_but_cannot_write(api):
    put_alice(api)
    reader = client_with("recipients:read")
    assert reader.get(URL.format("alice")).status_code == status.HTTP_200_OK
    assert reader.get(URL.format("alice") + "preferences/").status_code == status.HTTP_200_OK
    assert reader.get(URL.format("alice") + "devices/").status_code == status.HTTP_200_OK
    assert reader.put(URL.format("alice"), {"name": "x"}, format="json").status_code == status.HTTP_403_FORBIDDEN
    assert reader.delete(URL.format("alice")).status_code == status.HTTP_403_FORBIDDEN
    assert reader.post(URL.format("alice") + "devices/", {"platform": "ios", "token": "t"},
                       format="json").status_code == status.HTTP_403_FORBIDDEN
    assert reader.put(URL.format("alice") + "preferences/", {"channels": {"sms": False}},
                      format="json").status_code == status.HTTP_403_FORBIDDEN
    device_id = api.post(URL.format("alice") + "devices/", {"platform": "ios", "token": "t"}, format="json").json()["id"]
    assert reader.get(URL.format("alice") + f"devices/{device_id}/").status_code == status.HTTP_200_OK
    assert reader.delete(URL.format("alice") + f"devices/{device_id}/").status_code == status.HTTP_403_FORBIDDEN
    assert Device.objects.filter(pk=device_id).exists()
    assert Recipient.objects.get(external_id="alice").name == "Alice"
    assert not Preference.objects.exists()


def test_a_write_only_key_writes_but_cannot_read():
    writer = client_with("recipients:write")
    assert put_alice(writer).status_code == status.HTTP_201_CREATED
    assert writer.get(URL.format("alice")).status_code == status.HTTP_403_FORBIDDEN
    assert writer.get(URL.format("alice") + "preferences/").status_code == status.HTTP_403_FORBIDDEN
    assert writer.put(URL.format("alice") + "preferences/", {"channels": {"sms": False}},
                      format="json").status_code == status.HTTP_200_OK
    device = writer.post(URL.format("alice") + "devices/", {"platform": "ios", "token": "t"}, format="json")
    assert device.status_code == status.HTTP_201_CREATED
    assert writer.delete(URL.format("alice") + f"devices/{device.json()['id']}/").status_code == 204
    assert writer.delete(URL.format("alice")).status_code == status.HTTP_204_NO_CONTENT


def test_a_notifications_key_has_no_access_to_recipients():
    other = client_with("notifications:write", "notifications:read")
    assert other.get(URL.format("alice")).status_code == status.HTTP_403_FORBIDDEN
    assert put_alice(other).status_code == status.HTTP_403_FORBIDDEN


def test_requests_without_a_valid_key_are_401():
    anonymous = APIClient()
    assert anonymous.get(URL.format("alice")).status_code == status.HTTP_401_UNAUTHORIZED
    assert put_alice(anonymous).status_code == status.HTTP_401_UNAUTHORIZED
    anonymous.credentials(HTTP_AUTHORIZATION="Bearer nk_wrong_key")
    assert anonymous.get(URL.format("alice") + "preferences/").status_code == status.HTTP_401_UNAUTHORIZED
