"""Real providers end to end: API → PostgreSQL → RabbitMQ → worker process → a protocol peer on 127.0.0.1."""
import socket
import time

import pytest
from django.test import Client
from rest_framework import status
from twilio.request_validator import RequestValidator

from apps.notifications.models import Notification
from apps.providers.models import Suppression
from apps.recipients.models import Device, Recipient
from notifier import circuit
from notifier.devtools.smtp_sink import SmtpSink
from tests.peers import Reply
from tests.stack import wait_for

pytestmark = pytest.mark.integration

PUBLIC_URL = "https://notify.example.com"


def _post(api, channel, **body):
    response = api.post(f"/api/v1/notifications/{channel}/", body, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    return response.json()["id"]


def _get(pk):
    return Notification.objects.get(pk=pk)


def _terminal_or_sent(pk):
    n = _get(pk)
    return n if n.status in ("sent", "failed", "delivered", "suppressed") else None


def _dead_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- SMS through Twilio --------------------------------------------------------------

@pytest.fixture
def twilio_env(fake_twilio, settings):
    settings.TWILIO_AUTH_TOKEN = fake_twilio.auth_token  # the webhook in this process checks signatures
    settings.NOTIFIER_PUBLIC_URL = PUBLIC_URL
    return {
        "NOTIFIER_SMS_PROVIDERS": "twilio", "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
        "TWILIO_AUTH_TOKEN": fake_twilio.auth_token, "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_BASE_URL": fake_twilio.url, "NOTIFIER_PUBLIC_URL": PUBLIC_URL,
        "NOTIFIER_PROVIDER_TIMEOUT": "1",
    }


def _twilio_callback(url, token, sid, message_status):
    params = {"MessageSid": sid, "MessageStatus": message_status, "AccountSid": "AC" + "1" * 32}
    signature = RequestValidator(token).compute_signature(url, params)
    return params, signature


def test_sms_reaches_twilio_stores_its_sid_and_a_signed_callback_marks_it_delivered(api, stack, fake_twilio,
                                                                                    twilio_env):
    stack.worker(env=twilio_env)
    pk = _post(api, "sms", to="+12025550123", body="Your code is 123456", category="otp")

    n = wait_for(lambda: _terminal_or_sent(pk), timeout=60, message="sms sent")
    assert n.status == "sent" and n.provider == "twilio" and n.attempts == 1
    [request] = fake_twilio.messages
    assert fake_twilio.authorised(request)
    assert request.form["To"] == ["+12025550123"]
    assert request.form["From"] == ["+15005550006"]
    assert request.form["Body"] == ["Your code is 123456"]
    callback_url = request.form["StatusCallback"][0]
    assert callback_url == f"{PUBLIC_URL}/api/v1/webhooks/twilio/status/"
    assert n.provider_message_id == fake_twilio.sids[0]

    # Twilio calls back; a forged call first.
    params, signature = _twilio_callback(callback_url, "wrong-token", n.provider_message_id, "delivered")
    forged = Client().post("/api/v1/webhooks/twilio/status/", params, HTTP_X_TWILIO_SIGNATURE=signature)
    assert forged.status_code == status.HTTP_403_FORBIDDEN
    assert _get(pk).status == "sent"

    params, signature = _twilio_callback(callback_url, fake_twilio.auth_token, n.provider_message_id, "delivered")
    response = Client().post("/api/v1/webhooks/twilio/status/", params, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == status.HTTP_200_OK
    detail = api.get(f"/api/v1/notifications/{pk}/").json()
    assert detail["status"] == "delivered" and detail["delivered_at"]
    assert [e["status"] for e in detail["events"]] == ["queued", "sending", "sent", "delivered"]


def test_sms_retries_500_429_and_timeouts_then_sends(api, stack, fake_twilio, twilio_env):
    fake_twilio.script(
        Reply(500, {"code": 20500, "message": "Internal Server Error", "status": 500}),
        Reply(429, {"code": 20429, "message": "Too Many Requests", "status": 429}, headers={"Retry-After": "0"}),
        Reply(201, {"sid": "SMtoolate"}, delay=2.5),  # longer than NOTIFIER_PROVIDER_TIMEOUT
    )
    stack.worker(env=twilio_env)
    stack.beat(env=twilio_env)
    pk = _post(api, "sms", to="+12025550123", body="hello")

    n = wait_for(lambda: _terminal_or_sent(pk), timeout=90, message="sms sent after retries")
    assert n.status == "sent"
    assert n.attempts == 4
    assert n.provider_message_id == fake_twilio.sids[-1]
    statuses = list(n.events.values_list("status", flat=True))
    assert statuses == ["queued", "sending", "queued", "sending", "queued", "sending", "queued", "sending", "sent"]
    details = " ".join(n.events.values_list("detail", flat=True))
    assert "500" in details and "429" in details and "timeout" in details.lower()


def test_sms_to_an_invalid_number_fails_at_once_and_suppresses_it(api, stack, fake_twilio, twilio_env):
    fake_twilio.invalid_numbers.add("+12025550999")
    stack.worker(env=twilio_env)
    pk = _post(api, "sms", to="+12025550999", body="hello")

    n = wait_for(lambda: _terminal_or_sent(pk), timeout=60, message="sms failed")
    assert n.status == "failed" and n.attempts == 1
    assert "21211" in n.last_error
    assert len(fake_twilio.messages) == 1
    assert Suppression.objects.get(address="+12025550999").reason == "invalid_number"
    again = api.post("/api/v1/notifications/sms/", {"to": "+12025550999", "body": "again"}, format="json")
    assert again.json()["status"] == "suppressed"


# --- Push through FCM and Web Push -------------------------------------------------

@pytest.fixture
def push_env(fake_fcm, web_push):
    return {
        "NOTIFIER_PUSH_PROVIDERS": "fcm,webpush", "FCM_CREDENTIALS_FILE": fake_fcm.credentials_file,
        "FCM_API_BASE_URL": fake_fcm.url, "VAPID_PRIVATE_KEY": web_push.vapid_private_key,
        "VAPID_SUBJECT": "mailto:ops@example.com", "NOTIFIER_PROVIDER_TIMEOUT": "2",
        "NOTIFIER_PUSH_ALLOW_PRIVATE": "1",  # the push service is on 127.0.0.1, over plain http
    }


def test_push_fans_out_to_every_active_device_by_platform(api, stack, fake_fcm, web_push, push_env):
    recipient = Recipient.objects.create(external_id="user-42")
    android = Device.objects.create(recipient=recipient, platform="android", token="android-token")
    ios = Device.objects.create(recipient=recipient, platform="ios", token="ios-token")
    web = Device.objects.create(recipient=recipient, platform="web", token=web_push.subscribe())
    dead = Device.objects.create(recipient=recipient, platform="android", token="dead-token")
    Device.objects.create(recipient=recipient, platform="android", token="inactive-token", active=False)
    fake_fcm.unregistered.add("dead-token")
    stack.worker(env=push_env)

    pk = _post(api, "push", recipient="user-42", title="Order shipped", body="It arrives tomorrow.",
               data={"order_id": 42, "express": True})
    n = wait_for(lambda: _terminal_or_sent(pk), timeout=60, message="push sent")

    assert n.status == "sent"
    fcm_messages = {r.json()["message"]["token"]: r for r in fake_fcm.messages}
    assert set(fcm_messages) == {"android-token", "ios-token", "dead-token"}
    for request in fcm_messages.values():
        assert request.headers["Authorization"].removeprefix("Bearer ") in fake_fcm.issued
        message = request.json()["message"]
        assert message["notification"] == {"title": "Order shipped", "body": "It arrives tomorrow."}
        assert message["data"] == {"order_id": "42", "express": "true"}
    assert fake_fcm.assertions and fake_fcm.assertions[0]["iss"] == fake_fcm.service_account["client_email"]
    [delivered] = web_push.delivered
    assert delivered["payload"]["title"] == "Order shipped"
    assert delivered["payload"]["body"] == "It arrives tomorrow."
    assert delivered["payload"]["notification_id"] == pk

    dead.refresh_from_db()
    assert not dead.active
    assert all(Device.objects.get(pk=d.pk).active for d in (android, ios, web))
    detail = n.events.get(status="sent").detail
    for device, what in ((android, "fcm: accepted"), (ios, "fcm: accepted"), (web, "webpush: accepted"),
                         (dead, "fcm: FCM 404")):
        assert f"device {device.id} ({device.platform}): {what}" in detail


def test_push_to_an_unregistered_device_only_fails_at_once_and_deactivates_it(api, stack, fake_fcm, push_env):
    recipient = Recipient.objects.create(external_id="user-43")
    dead = Device.objects.create(recipient=recipient, platform="ios", token="gone-token")
    fake_fcm.unregistered.add("gone-token")
    stack.worker(env=push_env)

    pk = _post(api, "push", recipient="user-43", title="t", body="b")
    n = wait_for(lambda: _terminal_or_sent(pk), timeout=60, message="push failed")
    assert n.status == "failed" and n.attempts == 1
    dead.refresh_from_db()
    assert not dead.active and "UNREGISTERED" in dead.deactivated_reason
    # Direct sends to that token are now suppressed.
    again = api.post("/api/v1/notifications/push/", {"device_tokens": ["gone-token"], "title": "t", "body": "b"},
                     format="json")
    assert again.json()["status"] == "suppressed"


# --- SMTP failover and circuit breakers -------------------------------------------------

@pytest.mark.slow
def test_with_the_first_smtp_relay_down_mail_goes_out_through_the_second(api, stack, smtp_sink):
    stack.worker(env={"NOTIFIER_EMAIL_PROVIDERS": "smtp,smtp2", "EMAIL_PORT": str(_dead_port()),
                      "EMAIL2_HOST": "127.0.0.1", "EMAIL2_PORT": str(smtp_sink.port)})
    pk = _post(api, "email", to="alice@example.com", subject="Receipt", body="Thanks", html="<p>Thanks</p>")

    n = wait_for(lambda: _terminal_or_sent(pk), timeout=60, message="email sent")
    assert n.status == "sent" and n.provider == "smtp2" and n.attempts == 1
    [message] = smtp_sink.messages
    assert message["To"] == "alice@example.com" and message.get_content_type() == "multipart/alternative"
    detail = api.get(f"/api/v1/notifications/{pk}/").json()["events"][-1]["detail"]
    assert "smtp: SMTP connection error" in detail and "smtp2: accepted" in detail


@pytest.mark.slow
def test_with_every_relay_down_the_breaker_opens_retries_stop_burning_and_mail_flows_when_a_relay_returns(
        api, stack):
    port2 = _dead_port()
    env = {"NOTIFIER_EMAIL_PROVIDERS": "smtp,smtp2", "EMAIL_PORT": str(_dead_port()), "EMAIL_TIMEOUT": "1",
           "EMAIL2_HOST": "127.0.0.1", "EMAIL2_PORT": str(port2), "EMAIL2_TIMEOUT": "1",
           "NOTIFIER_CIRCUIT_THRESHOLD": "2", "NOTIFIER_CIRCUIT_COOLDOWN": "8"}
    stack.worker(env=env)
    stack.beat(env=env)
    ids = [_post(api, "email", to=f"user{i}@example.com", subject="Hello", body="x") for i in range(3)]

    def both_open():
        states = {s["provider"]: s for s in circuit.states({"email": ["smtp", "smtp2"]})}
        return states if all(s["state"] == "open" for s in states.values()) else None

    states = wait_for(both_open, timeout=60, message="both breakers open")
    half_open_at = min(s["opened_until"] for s in states.values())

    def all_waiting():
        rows = list(Notification.objects.filter(id__in=ids))
        waiting = all(r.status == "queued" and "waiting for an open circuit" in r.events.order_by("-id")[0].detail
                      for r in rows)
        return rows if waiting else None

    rows = wait_for(all_waiting, timeout=30, message="every notification waiting for the breaker")
    attempts = {r.id: r.attempts for r in rows}
    # Attempts made before the breakers opened (0 for one that arrived after), and no more.
    assert all(a <= 2 for a in attempts.values()) and max(attempts.values()) >= 1, attempts
    # While the breakers are open nothing is attempted and nothing fails, though the retry
    # back-off (0.05-0.5 s in tests) would have spent the whole budget several times over.
    time.sleep(max(0.0, half_open_at - time.time() - 1.0))
    rows = list(Notification.objects.filter(id__in=ids))
    assert {r.id: r.attempts for r in rows} == attempts
    assert {r.status for r in rows} == {"queued"}

    relay = SmtpSink(port=port2).start()  # the second relay comes back
    try:
        sent = wait_for(lambda: [n for n in Notification.objects.filter(id__in=ids) if n.status == "sent"]
                        if Notification.objects.filter(id__in=ids, status="sent").count() == 3 else None,
                        timeout=90, message="mail flowing again")
        assert {n.provider for n in sent} == {"smtp2"}
        assert all(n.attempts <= 4 for n in sent)
        assert sorted(m["To"] for m in relay.messages) == [f"user{i}@example.com" for i in range(3)]
    finally:
        relay.stop()
