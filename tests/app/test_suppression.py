"""The cross-channel suppression list: what goes on it, and what it stops."""

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework import status

from apps.notifications.delivery.worker import deliver_chunk
from apps.notifications.models import Notification
from apps.providers.checks import suppressed_at_acceptance
from apps.providers.models import Suppression
from apps.providers.services import SuppressionInput, suppressions_record
from apps.recipients.models import Device, Recipient
from notifier.channels.registry import providers_for
from notifier.unsubscribe import make_token

pytestmark = pytest.mark.django_db


def _suppress(channel, address, reason="hard_bounce", category=""):
    suppressions_record(items=[SuppressionInput(channel=channel, address=address, reason=reason,
                                                category=category, detail="550 5.1.1 No such user")])


def _post(api, channel, **body):
    response = api.post(f"/api/v1/notifications/{channel}/", body, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    return response.json()


def test_a_send_to_a_hard_bounced_address_is_suppressed_at_acceptance_with_the_reason(api):
    _suppress("email", "Bounced@Example.com")
    body = _post(api, "email", to="bounced@example.COM", subject="Hi", body="Hello")
    assert body["status"] == "suppressed"
    detail = api.get(f"/api/v1/notifications/{body['id']}/").json()
    assert [e["status"] for e in detail["events"]] == ["suppressed"]
    assert "hard bounce" in detail["events"][0]["detail"]


def test_a_recipients_suppressed_phone_number_suppresses_sms(api):
    Recipient.objects.create(external_id="u1", phone="+12025550123")
    _suppress("sms", "+12025550123", reason="invalid_number")
    assert _post(api, "sms", recipient="u1", body="code 1")["status"] == "suppressed"


def test_the_list_is_cross_channel_but_only_by_address(api):
    _suppress("email", "gone@example.com")
    assert _post(api, "email", to="other@example.com", subject="Hi", body="x")["status"] == "queued"


def test_an_unregistered_push_token_suppresses_direct_sends_to_it(api):
    _suppress("push", "dead-token", reason="unregistered_device")
    assert _post(api, "push", device_tokens=["dead-token"], title="t", body="b")["status"] == "suppressed"
    assert _post(api, "push", device_tokens=["dead-token", "live-token"], title="t", body="b")["status"] == "queued"


def test_an_unsubscribe_stops_its_category_but_never_one_time_passwords(api):
    _suppress("email", "bob@example.com", reason="unsubscribed")
    assert _post(api, "email", to="bob@example.com", subject="Sale", body="x",
                 category="marketing")["status"] == "suppressed"
    assert _post(api, "email", to="bob@example.com", subject="Code", body="123",
                 category="otp")["status"] == "queued"


def test_a_category_specific_unsubscribe_leaves_other_categories(api):
    _suppress("email", "carol@example.com", reason="unsubscribed", category="marketing")
    assert _post(api, "email", to="carol@example.com", subject="Sale", body="x",
                 category="marketing")["status"] == "suppressed"
    assert _post(api, "email", to="carol@example.com", subject="Receipt", body="x")["status"] == "queued"


def test_the_acceptance_check_is_one_query_for_a_whole_batch(django_assert_num_queries):
    from apps.notifications.specs import NotificationSpec

    _suppress("email", "x5@example.com")
    specs = [NotificationSpec(channel="email", category="transactional", priority="normal",
                              content={"subject": "s", "body": "b"}, to=f"x{i}@example.com") for i in range(200)]
    with django_assert_num_queries(1):
        suppressed_at_acceptance(specs, timezone.now())
    assert [s.status for s in specs].count("suppressed") == 1 and specs[5].status == "suppressed"


def _queued_email(to):
    now = timezone.now()
    return Notification.objects.create(channel="email", to=to, content={"subject": "s", "body": "b"},
                                       status="queued", created_at=now, updated_at=now, queued_at=now)


def test_an_address_suppressed_after_acceptance_is_suppressed_before_sending(smtp_sink, settings):
    settings.EMAIL_PORT = smtp_sink.port
    providers_for.cache_clear()
    n = _queued_email("late@example.com")
    _suppress("email", "late@example.com")
    assert deliver_chunk([n.id]) == {"suppressed": 1}
    assert smtp_sink.messages == []
    n.refresh_from_db()
    assert n.attempts == 0


def test_a_hard_bounce_during_delivery_fails_at_once_and_suppresses_the_address(smtp_sink, settings, api):
    settings.EMAIL_PORT = smtp_sink.port
    providers_for.cache_clear()
    smtp_sink.reject_rcpt("550 5.1.1 No such user")
    n = _queued_email("nobody@example.com")
    assert deliver_chunk([n.id]) == {"failed": 1}
    n.refresh_from_db()
    assert n.attempts == 1
    row = Suppression.objects.get(address="nobody@example.com")
    assert row.reason == "hard_bounce" and row.notification_id == n.id and "550" in row.detail
    assert _post(api, "email", to="nobody@example.com", subject="s", body="b")["status"] == "suppressed"


def test_an_unregistered_device_is_deactivated_and_its_token_suppressed(fake_fcm, settings):
    settings.NOTIFIER_PROVIDERS = {**settings.NOTIFIER_PROVIDERS, "push": ["fcm"]}
    settings.FCM_CREDENTIALS_FILE = fake_fcm.credentials_file
    settings.FCM_API_BASE_URL = fake_fcm.url
    providers_for.cache_clear()
    fake_fcm.unregistered.add("dead-token")
    recipient = Recipient.objects.create(external_id="dev-owner")
    dead = Device.objects.create(recipient=recipient, platform="android", token="dead-token")
    live = Device.objects.create(recipient=recipient, platform="ios", token="live-token")
    now = timezone.now()
    n = Notification.objects.create(channel="push", recipient=recipient, content={"title": "t", "body": "b"},
                                    status="queued", created_at=now, updated_at=now, queued_at=now)

    assert deliver_chunk([n.id]) == {"sent": 1}
    dead.refresh_from_db()
    live.refresh_from_db()
    assert not dead.active and "UNREGISTERED" in dead.deactivated_reason
    assert live.active
    assert Suppression.objects.get(address="dead-token").reason == "unregistered_device"
    event = n.events.get(status="sent")
    assert f"device {dead.id} (android): fcm: FCM 404" in event.detail
    assert f"device {live.id} (ios): fcm: accepted" in event.detail


# --- unsubscribe links ------------------------------------------------------------------

def _sent_email(to="dave@example.com", category="marketing"):
    now = timezone.now()
    return Notification.objects.create(channel="email", to=to, category=category,
                                       content={"subject": "s", "body": "b"}, status="sent",
                                       created_at=now, updated_at=now)


def test_the_unsubscribe_link_shows_a_confirmation_and_a_post_unsubscribes(api):
    n = _sent_email()
    url = f"/unsubscribe/{make_token(str(n.id))}/"
    page = Client().get(url)
    assert page.status_code == 200 and b"<form method=\"post\">" in page.content
    assert not Suppression.objects.exists()  # a link scanner's GET unsubscribes nobody

    done = Client().post(url, {"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    row = Suppression.objects.get(address="dave@example.com")
    assert row.reason == "unsubscribed" and row.category == "marketing"
    assert _post(api, "email", to="dave@example.com", subject="s", body="b",
                 category="marketing")["status"] == "suppressed"


def test_a_forged_unsubscribe_link_is_404():
    n = _sent_email()
    assert Client().post(f"/unsubscribe/{n.id}:forged/").status_code == 404
    assert not Suppression.objects.exists()


def test_the_admin_lists_suppressions(admin_client):
    _suppress("email", "listed@example.com")
    response = admin_client.get("/admin/providers/suppression/")
    assert response.status_code == 200
    assert b"l***@example.com" in response.content


def test_an_address_added_in_the_admin_is_stored_canonically_and_stops_sends(admin_client, api):
    response = admin_client.post("/admin/providers/suppression/add/", {
        "address": " Eve@Example.COM ", "channel": "email", "category": "", "reason": "manual",
        "detail": "asked by phone"})
    assert response.status_code == 302, response.content
    assert Suppression.objects.get().address == "eve@example.com"
    assert _post(api, "email", to="eve@example.com", subject="s", body="b")["status"] == "suppressed"


def test_suppressions_are_found_for_addresses_with_quotes_commas_braces_and_backslashes():
    from apps.providers.selectors import suppressions_by_address

    odd = ['"quoted, name"@example.com', "back\\slash@example.com", "{brace}@example.com", "NULL", " spaced "]
    plain = ["plain@example.com"]
    for address in odd + plain:
        Suppression.objects.create(address=address, channel="email", reason="hard_bounce")
    assert set(suppressions_by_address(odd + plain + ["other@example.com"])) == set(odd + plain)
    assert set(suppressions_by_address(plain + ["other@example.com"])) == set(plain)
