"""Per-recipient frequency caps per category, across channels (apps/notifications/caps.py)."""
import pytest
from rest_framework import status

from apps.notifications.categories import clear_cache
from apps.notifications.models import Category, Notification
from apps.recipients.models import Recipient

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cap_buckets():
    from apps.notifications.caps import cap_limiter

    client = cap_limiter().client
    for key in client.scan_iter("notifier:cap:*"):
        client.delete(key)


@pytest.fixture
def marketing_capped():
    Category.objects.filter(slug="marketing").update(cap_count=3, cap_period_seconds=86400, cap_action="suppress")
    clear_cache()


def _mail(api, to="alice@example.com", category="marketing", **extra):
    response = api.post("/api/v1/notifications/email/",
                        {"to": to, "subject": "Sale", "body": "50% off", "category": category, **extra}, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    return response.json()


def test_a_cap_of_three_marketing_mails_per_day_suppresses_the_fourth(api, marketing_capped):
    answers = [_mail(api) for _ in range(4)]
    assert [a["status"] for a in answers] == ["queued", "queued", "queued", "suppressed"]
    detail = api.get(f"/api/v1/notifications/{answers[3]['id']}/").json()
    assert detail["events"][-1]["status"] == "suppressed"
    assert detail["events"][-1]["detail"].startswith("rate_limited")


def test_the_cap_is_per_recipient_and_per_category(api, marketing_capped):
    assert [_mail(api)["status"] for _ in range(4)][-1] == "suppressed"
    assert _mail(api, to="bob@example.com")["status"] == "queued"
    assert _mail(api, category="transactional")["status"] == "queued"


def test_the_cap_counts_across_channels_for_a_recipient(api, marketing_capped):
    Recipient.objects.create(external_id="u1", email="carol@example.com", phone="+12025550123")
    statuses = []
    for channel, content in [("email", {"subject": "s", "body": "b"}), ("sms", {"body": "b"}),
                             ("in_app", {"title": "t", "body": "b"}), ("email", {"subject": "s", "body": "b"})]:
        response = api.post(f"/api/v1/notifications/{channel}/",
                            {"recipient": "u1", "category": "marketing", **content}, format="json")
        statuses.append(response.json()["status"])
    assert statuses == ["queued", "queued", "queued", "suppressed"]


def test_a_hold_category_schedules_over_the_cap_instead(api):
    Category.objects.filter(slug="otp").update(cap_count=2, cap_period_seconds=60, cap_action="hold")
    clear_cache()
    answers = [api.post("/api/v1/notifications/sms/", {"to": "+12025550123", "body": "code", "category": "otp"},
                        format="json").json() for _ in range(3)]
    assert [a["status"] for a in answers] == ["queued", "queued", "scheduled"]
    held = Notification.objects.get(pk=answers[2]["id"])
    delay = (held.next_attempt_at - held.created_at).total_seconds()
    assert 25 <= delay <= 31  # the next slot of a 2-per-minute bucket


def test_categories_without_a_cap_are_never_capped(api):
    assert {_mail(api, category="transactional")["status"] for _ in range(6)} == {"queued"}


def test_a_batch_of_specs_costs_one_redis_script_call(marketing_capped, monkeypatch):
    from apps.notifications import caps
    from apps.notifications.intake.create import notifications_create
    from apps.notifications.specs import NotificationSpec

    real = caps.cap_limiter()
    calls = []

    class CountingLimiter:
        def hit_many(self, items):
            calls.append(len(items))
            return real.hit_many(items)

    monkeypatch.setattr(caps, "cap_limiter", lambda: CountingLimiter())
    specs = [NotificationSpec(channel="email", category="marketing", priority="low", to=f"u{i % 2}@example.com",
                              content={"subject": "s", "body": "b"}) for i in range(8)]
    created = notifications_create(specs=specs)
    assert calls == [8]
    # 4 each for two recipients with a cap of 3: the 4th of each is suppressed, in order.
    assert [n.status for n in created] == ["queued"] * 6 + ["suppressed"] * 2
