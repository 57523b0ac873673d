"""POST /api/v1/webhooks/twilio/status/: Twilio's status callbacks, checked by X-Twilio-Signature alone."""
import json

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework import status
from twilio.request_validator import RequestValidator

from apps.notifications.models import Notification
from apps.providers.models import Suppression

URL = "/api/v1/webhooks/twilio/status/"
TOKEN = "twilio-test-token"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def twilio_settings(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.NOTIFIER_PUBLIC_URL = "https://notify.example.com"


def _sent_sms(sid="SM" + "a" * 32, to="+12025550123"):
    now = timezone.now()
    return Notification.objects.create(channel="sms", to=to, content={"body": "hi"}, status="sent",
                                       provider="twilio", provider_message_id=sid, attempts=1,
                                       created_at=now, updated_at=now, sent_at=now)


def _callback(sid, message_status, token=TOKEN, url="https://notify.example.com" + URL, **extra):
    params = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": message_status, "AccountSid": "AC" + "1" * 32,
              "To": "+12025550123", "From": "+15005550006", "ApiVersion": "2010-04-01", **extra}
    signature = RequestValidator(token).compute_signature(url, params)
    return Client().post(URL, params, HTTP_X_TWILIO_SIGNATURE=signature)


def test_a_correctly_signed_delivered_callback_moves_it_to_delivered():
    n = _sent_sms()
    response = _callback(n.provider_message_id, "delivered")
    assert response.status_code == status.HTTP_200_OK
    n.refresh_from_db()
    assert n.status == "delivered"
    assert n.delivered_at is not None
    assert list(n.events.values_list("status", flat=True)) == ["delivered"]


def test_a_wrongly_signed_callback_gets_403_and_changes_nothing():
    n = _sent_sms()
    response = _callback(n.provider_message_id, "delivered", token="not-the-auth-token")
    assert response.status_code == status.HTTP_403_FORBIDDEN
    assert response.json()["errors"]
    n.refresh_from_db()
    assert n.status == "sent" and n.delivered_at is None and not n.events.exists()


def test_a_callback_signed_for_another_url_gets_403():
    n = _sent_sms()
    response = _callback(n.provider_message_id, "delivered", url="https://evil.example.com" + URL)
    assert response.status_code == status.HTTP_403_FORBIDDEN


def test_a_callback_without_a_signature_gets_401():
    n = _sent_sms()
    response = Client().post(URL, {"MessageSid": n.provider_message_id, "MessageStatus": "delivered"})
    assert response.status_code == status.HTTP_401_UNAUTHORIZED
    n.refresh_from_db()
    assert n.status == "sent"


def test_a_tampered_body_gets_403():
    n = _sent_sms()
    params = {"MessageSid": n.provider_message_id, "MessageStatus": "failed"}
    signature = RequestValidator(TOKEN).compute_signature("https://notify.example.com" + URL, params)
    response = Client().post(URL, {**params, "MessageStatus": "delivered"}, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == status.HTTP_403_FORBIDDEN


def test_an_unknown_message_sid_is_a_2xx_no_op():
    response = _callback("SM" + "f" * 32, "delivered")
    assert response.status_code == status.HTTP_200_OK
    assert response.json() == {"result": "unknown"}


def test_a_repeated_callback_is_idempotent():
    n = _sent_sms()
    _callback(n.provider_message_id, "delivered")
    delivered_at = Notification.objects.get(pk=n.pk).delivered_at
    _callback(n.provider_message_id, "delivered")
    n.refresh_from_db()
    assert n.status == "delivered" and n.delivered_at == delivered_at
    assert n.events.count() == 1


def test_a_late_sent_or_failed_never_overwrites_delivered():
    n = _sent_sms()
    _callback(n.provider_message_id, "delivered")
    _callback(n.provider_message_id, "sent")
    _callback(n.provider_message_id, "undelivered", ErrorCode="30003")
    n.refresh_from_db()
    assert n.status == "delivered"
    assert list(n.events.values_list("status", flat=True)) == ["delivered"]


def test_an_intermediate_status_changes_nothing():
    n = _sent_sms()
    assert _callback(n.provider_message_id, "sent").json() == {"result": "ignored"}
    n.refresh_from_db()
    assert n.status == "sent"


def test_an_undelivered_callback_fails_it_with_the_error_code():
    n = _sent_sms()
    _callback(n.provider_message_id, "undelivered", ErrorCode="30003", ErrorMessage="Unreachable handset")
    n.refresh_from_db()
    assert n.status == "failed"
    assert "30003" in n.last_error
    assert not Suppression.objects.exists()


def test_a_failed_callback_for_an_unknown_destination_suppresses_the_number():
    n = _sent_sms(to="+12025550777")
    _callback(n.provider_message_id, "failed", ErrorCode="30005")
    assert Suppression.objects.get(address="+12025550777").reason == "invalid_number"


def test_the_webhook_needs_no_api_key_but_refuses_get():
    assert Client().get(URL).status_code == status.HTTP_405_METHOD_NOT_ALLOWED


def test_it_refuses_everything_when_twilio_is_not_configured(settings):
    settings.TWILIO_AUTH_TOKEN = ""
    n = _sent_sms()
    response = _callback(n.provider_message_id, "delivered")
    assert response.status_code == status.HTTP_403_FORBIDDEN


def test_a_delivery_receipt_emits_notification_delivered_to_subscribed_webhook_endpoints(settings):
    from apps.webhooks.services import webhook_endpoint_create

    settings.NOTIFIER_WEBHOOK_ALLOW_PRIVATE = True
    endpoint = webhook_endpoint_create(url="http://127.0.0.1:9/hook", events=["notification.delivered"])
    n = _sent_sms()

    assert _callback(n.provider_message_id, "delivered").status_code == status.HTTP_200_OK

    [delivery] = Notification.objects.filter(channel="webhook")
    assert delivery.status == "queued"
    assert delivery.to == str(endpoint.pk)
    assert delivery.metadata == {"event": "notification.delivered", "notification_id": str(n.pk)}
    body = json.loads(delivery.content["body"])
    assert body["type"] == "notification.delivered"
    assert body["data"]["id"] == str(n.pk) and body["data"]["status"] == "delivered"
