"""Preferences and quiet hours at acceptance and right before sending (checks run in-process)."""
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from rest_framework import status

from apps.notifications import policy
from apps.notifications.categories import clear_cache
from apps.notifications.models import Category, Notification
from apps.recipients.models import Recipient
from apps.recipients.policy import check_before_send
from notifier import clock

pytestmark = pytest.mark.django_db

NY = ZoneInfo("America/New_York")


@pytest.fixture(autouse=True)
def _reset_clock():
    yield
    clock.reset()


@pytest.fixture
def alice(api):
    api.put("/api/v1/recipients/alice/", {"email": "alice@example.com", "phone": "+12025550123",
                                          "timezone": "America/New_York"}, format="json")
    return Recipient.objects.get(external_id="alice")


def prefs(api, document):
    response = api.put("/api/v1/recipients/alice/preferences/", document, format="json")
    assert response.status_code == status.HTTP_200_OK, response.content


def post(api, channel="email", **fields):
    body = {"recipient": "alice", **fields}
    if channel == "email":
        body.setdefault("subject", "Hello")
    body.setdefault("body", "Text")
    response = api.post(f"/api/v1/notifications/{channel}/", body, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    return response.json()


def detail(api, notification_id):
    return api.get(f"/api/v1/notifications/{notification_id}/").json()


def test_an_opt_out_of_email_for_marketing_suppresses_marketing_mail_only(api, alice):
    prefs(api, {"categories": {"marketing": {"email": False}}})

    marketing = post(api, category="marketing")
    alert = post(api, category="security_alert")
    marketing_sms = post(api, "sms", category="marketing")

    assert marketing["status"] == "suppressed"
    events = detail(api, marketing["id"])["events"]
    assert [e["status"] for e in events] == ["suppressed"]
    assert "opted out of email for marketing" in events[0]["detail"]
    assert alert["status"] == "queued"
    assert marketing_sms["status"] == "queued"


def test_a_channel_opt_out_suppresses_every_category_that_allows_opting_out(api, alice):
    prefs(api, {"channels": {"email": False}})
    assert post(api, category="transactional")["status"] == "suppressed"
    assert post(api, category="marketing")["status"] == "suppressed"
    assert post(api, category="otp")["status"] == "queued"
    assert post(api, category="security_alert")["status"] == "queued"
    assert post(api, "sms")["status"] == "queued"


def test_a_category_preference_wins_over_the_channel_preference(api, alice):
    prefs(api, {"channels": {"email": False}, "categories": {"transactional": {"email": True}}})
    assert post(api, category="transactional")["status"] == "queued"
    assert post(api, category="marketing")["status"] == "suppressed"


def test_a_category_that_forbids_opting_out_ignores_the_opt_out(api, alice):
    prefs(api, {"categories": {"marketing": {"email": False}, "security_alert": {"email": False}}})
    assert post(api, category="security_alert")["status"] == "queued"

    Category.objects.filter(slug="marketing").update(allow_opt_out=False)  # an operator changes the category
    clear_cache()
    assert post(api, category="marketing")["status"] == "queued"


def test_direct_addresses_have_no_preferences(api, alice):
    prefs(api, {"channels": {"email": False}})
    response = api.post("/api/v1/notifications/email/", {"to": "alice@example.com", "subject": "s", "body": "b"},
                        format="json")
    assert response.json()["status"] == "queued"


def test_in_quiet_hours_marketing_is_held_until_they_end_and_otp_is_not(api, alice):
    prefs(api, {"quiet_hours": {"start": "22:00", "end": "07:00"}})
    clock.freeze(datetime(2026, 1, 15, 23, 0, tzinfo=NY))

    held = post(api, category="marketing", priority="normal")
    otp = post(api, "sms", category="otp", body="Your code is 123456")
    transactional = post(api, category="transactional")

    assert held["status"] == "scheduled"
    row = Notification.objects.get(pk=held["id"])
    assert row.next_attempt_at == datetime(2026, 1, 16, 7, 0, tzinfo=NY)
    assert row.next_attempt_at == datetime(2026, 1, 16, 12, 0, tzinfo=timezone.utc)
    assert row.priority == "normal"
    [event] = detail(api, held["id"])["events"]
    assert event["status"] == "scheduled"
    assert "quiet hours 22:00–07:00 America/New_York" in event["detail"]
    assert otp["status"] == "queued"
    assert transactional["status"] == "queued"  # transactional ignores quiet hours


def test_outside_quiet_hours_nothing_is_held(api, alice):
    prefs(api, {"quiet_hours": {"start": "22:00", "end": "07:00"}})
    clock.freeze(datetime(2026, 1, 16, 7, 0, tzinfo=NY))
    assert post(api, category="marketing")["status"] == "queued"


def test_a_notification_scheduled_into_quiet_hours_is_held_from_there(api, alice):
    prefs(api, {"quiet_hours": {"start": "22:00", "end": "07:00"}})
    clock.freeze(datetime(2026, 1, 15, 12, 0, tzinfo=NY))
    held = post(api, category="marketing", scheduled_for="2026-01-15T23:30:00-05:00")
    assert held["status"] == "scheduled"
    assert Notification.objects.get(pk=held["id"]).next_attempt_at == datetime(2026, 1, 16, 7, 0, tzinfo=NY)


def test_an_opt_out_wins_over_quiet_hours(api, alice):
    prefs(api, {"quiet_hours": {"start": "22:00", "end": "07:00"}, "categories": {"marketing": {"email": False}}})
    clock.freeze(datetime(2026, 1, 15, 23, 0, tzinfo=NY))
    assert post(api, category="marketing")["status"] == "suppressed"


def test_the_send_check_uses_preferences_as_they_are_at_send_time(api, alice):
    queued = post(api, category="marketing")
    assert queued["status"] == "queued"
    prefs(api, {"categories": {"marketing": {"email": False}}})

    rows = list(Notification.objects.select_related("recipient").filter(pk=queued["id"]))
    verdicts = policy.before_send(rows, clock.now())
    verdict = verdicts[rows[0].id]
    assert verdict.status == "suppressed"
    assert "opted out of email for marketing" in verdict.detail

    prefs(api, {"categories": {"marketing": {"email": True}}, "quiet_hours": {"start": "22:00", "end": "07:00"}})
    clock.freeze(datetime(2026, 1, 15, 23, 0, tzinfo=NY))
    rows = list(Notification.objects.select_related("recipient").filter(pk=queued["id"]))
    verdict = policy.before_send(rows, clock.now())[rows[0].id]
    assert verdict.status == "scheduled"
    assert verdict.hold_until == datetime(2026, 1, 16, 7, 0, tzinfo=NY)


def test_the_send_check_loads_preferences_of_a_whole_chunk_in_one_query(api, alice, django_assert_num_queries):
    for n in range(6):
        api.put(f"/api/v1/recipients/r{n}/", {"email": f"r{n}@example.com"}, format="json")
        post(api, recipient=f"r{n}", category="marketing")
    for n in (1, 3):
        api.put(f"/api/v1/recipients/r{n}/preferences/", {"channels": {"email": False}}, format="json")
    rows = list(Notification.objects.select_related("recipient").filter(status="queued"))
    assert len(rows) == 6

    with django_assert_num_queries(1):
        verdicts = check_before_send(rows, clock.now())

    stopped = sorted(n.recipient.external_id for n in rows if n.id in verdicts)
    assert stopped == ["r1", "r3"]
    assert {v.status for v in verdicts.values()} == {"suppressed"}


def test_categories_without_opt_out_or_quiet_hours_cost_no_preference_query(api, alice, django_assert_num_queries):
    prefs(api, {"channels": {"email": False}})
    post(api, category="otp")
    rows = list(Notification.objects.select_related("recipient").all())
    with django_assert_num_queries(0):
        assert check_before_send(rows, clock.now()) == {}
