"""Preferences, quiet hours and templates through real workers: API → PostgreSQL → RabbitMQ → worker → SMTP."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from rest_framework import status

from apps.notifications.models import Notification
from apps.templating.models import Template
from apps.templating.services import clear_cache as clear_template_cache
from notifier import clock
from tests.stack import wait_for

pytestmark = pytest.mark.integration

NY = ZoneInfo("America/New_York")
TIMEOUT = 60


@pytest.fixture(autouse=True)
def _reset_clock():
    clock.reset()
    yield
    clock.reset()


def put_alice(api, **extra):
    body = {"email": "alice@example.com", "timezone": "America/New_York", **extra}
    assert api.put("/api/v1/recipients/alice/", body, format="json").status_code in (200, 201)


def prefs(api, document):
    response = api.put("/api/v1/recipients/alice/preferences/", document, format="json")
    assert response.status_code == status.HTTP_200_OK, response.content


def post_email(api, category, subject, **extra):
    body = {"recipient": "alice", "category": category, "subject": subject, "body": f"{subject} body", **extra}
    response = api.post("/api/v1/notifications/email/", body, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    return response.json()


def row(notification_id) -> Notification:
    return Notification.objects.get(pk=notification_id)


def statuses(notification_id) -> list[str]:
    return list(row(notification_id).events.order_by("at", "id").values_list("status", flat=True))


def subjects(sink) -> list[str]:
    return sorted(m["Subject"] for m in sink.messages)


def test_an_opt_out_of_marketing_email_suppresses_marketing_while_security_alert_mail_arrives(api, stack, smtp_sink):
    stack.worker()
    put_alice(api)
    prefs(api, {"categories": {"marketing": {"email": False}}})

    marketing = post_email(api, "marketing", "Spring sale")
    alert = post_email(api, "security_alert", "New sign-in")

    wait_for(lambda: row(alert["id"]).status == "sent", timeout=TIMEOUT, message="security alert sent")
    assert marketing["status"] == "suppressed"
    suppressed = row(marketing["id"])
    assert suppressed.status == "suppressed"
    assert "opted out of email for marketing" in suppressed.events.get().detail
    assert subjects(smtp_sink) == ["New sign-in"]


def test_a_preference_changed_after_acceptance_wins_at_send_time(api, stack, smtp_sink):
    put_alice(api)
    marketing = post_email(api, "marketing", "Spring sale")
    assert marketing["status"] == "queued"
    prefs(api, {"categories": {"marketing": {"email": False}}})  # before any worker picked it up

    stack.worker()

    wait_for(lambda: row(marketing["id"]).status == "suppressed", timeout=TIMEOUT, message="suppressed at send")
    assert statuses(marketing["id"]) == ["queued", "sending", "suppressed"]
    assert row(marketing["id"]).attempts == 0
    assert smtp_sink.messages == []


def test_a_category_that_forbids_opting_out_ignores_the_opt_out(api, stack, smtp_sink):
    stack.worker()
    put_alice(api)
    prefs(api, {"channels": {"email": False}, "categories": {"security_alert": {"email": False}}})

    alert = post_email(api, "security_alert", "New sign-in")
    receipt = post_email(api, "transactional", "Your receipt")

    wait_for(lambda: row(alert["id"]).status == "sent", timeout=TIMEOUT, message="security alert sent")
    assert receipt["status"] == "suppressed"
    assert subjects(smtp_sink) == ["New sign-in"]


def test_quiet_hours_hold_a_normal_notification_posted_at_23_new_york_until_07_while_otp_goes_at_once(
        api, stack, smtp_sink):
    # 23:00 in New York on a day ahead of the real one; every clock of the test reads from there and ticks on.
    day = (timezone.now() + timedelta(days=30)).astimezone(NY).date()
    posted_at = datetime(day.year, day.month, day.day, 23, 0, tzinfo=NY)
    release = datetime.combine(day + timedelta(days=1), datetime.min.time().replace(hour=7), tzinfo=NY)
    night = clock.offset_to(posted_at)
    clock.set_offset(night)
    env = {"NOTIFIER_TEST_CLOCK_OFFSET": str(night.total_seconds())}
    worker = stack.worker(env=env, wait=False)  # worker and beat start together
    stack.beat(env=env)
    stack.wait_ready(worker)
    put_alice(api)
    prefs(api, {"quiet_hours": {"start": "22:00", "end": "07:00"}})

    held = post_email(api, "marketing", "Spring sale", priority="normal")
    otp = post_email(api, "otp", "Your code is 123456")

    assert held["status"] == "scheduled"
    assert row(held["id"]).priority == "normal"
    assert row(held["id"]).next_attempt_at == release  # 07:00 New York time = 12:00 or 11:00 UTC
    wait_for(lambda: row(otp["id"]).status == "sent", timeout=TIMEOUT, message="otp sent at once")
    assert subjects(smtp_sink) == ["Your code is 123456"]

    # Night goes on with the dispatcher running: the held one stays held.
    wait_for(lambda: clock.now() > posted_at + timedelta(seconds=4), timeout=TIMEOUT)
    assert row(held["id"]).status == "scheduled"
    assert statuses(held["id"]) == ["scheduled"]

    # Released too early (at 23:0x), the check right before sending holds it again until 07:00.
    Notification.objects.filter(pk=held["id"]).update(next_attempt_at=clock.now())
    wait_for(lambda: statuses(held["id"]) == ["scheduled", "queued", "sending", "scheduled"], timeout=TIMEOUT,
             message="held again right before sending")
    assert row(held["id"]).next_attempt_at == release
    assert "quiet hours 22:00–07:00 America/New_York" in row(held["id"]).events.order_by("-id").first().detail
    assert subjects(smtp_sink) == ["Your code is 123456"]

    # Morning: restart worker and dispatcher (together) with clocks 6 s before 07:00 New York time.
    stack.stop_all()
    morning = clock.offset_to(release - timedelta(seconds=6))
    clock.set_offset(morning)
    env = {"NOTIFIER_TEST_CLOCK_OFFSET": str(morning.total_seconds())}
    worker = stack.worker(env=env, wait=False)
    stack.beat(env=env)
    stack.wait_ready(worker)

    wait_for(lambda: row(held["id"]).status == "sent", timeout=TIMEOUT, message="sent once quiet hours ended")
    sent = row(held["id"])
    released = sent.events.filter(status="queued", detail="released by the dispatcher").order_by("-at").first()
    assert released.at + morning >= release  # not released before 07:00 by the workers' clock
    assert sent.sent_at + morning >= release
    assert statuses(held["id"])[-3:] == ["queued", "sending", "sent"]
    assert subjects(smtp_sink) == ["Spring sale", "Your code is 123456"]
    assert sent.attempts == 1


def test_a_template_email_for_pt_br_arrives_in_pt_with_the_context_escaped_in_html(api, stack, smtp_sink):
    Template.objects.create(slug="welcome", channel="email", locale="", subject="Welcome {{ name }}",
                            body="Hello {{ name }}", html="<p>Hello {{ name }}</p>")
    Template.objects.create(slug="welcome", channel="email", locale="pt", subject="Bem-vindo {{ name }}",
                            body="Olá {{ name }}", html="<p>Olá <b>{{ name }}</b></p>")
    clear_template_cache()
    stack.worker()
    put_alice(api, locale="pt-BR")

    response = api.post("/api/v1/notifications/email/",
                        {"recipient": "alice", "template": "welcome", "context": {"name": "<Ana & Bia>"}},
                        format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    wait_for(lambda: row(response.json()["id"]).status == "sent", timeout=TIMEOUT, message="template email sent")

    [message] = smtp_sink.messages
    assert message["Subject"] == "Bem-vindo <Ana & Bia>"
    text = message.get_body(("plain",)).get_content().strip()
    html = message.get_body(("html",)).get_content().strip()
    assert text == "Olá <Ana & Bia>"
    assert html == "<p>Olá <b>&lt;Ana &amp; Bia&gt;</b></p>"

    missing = api.post("/api/v1/notifications/email/",
                       {"recipient": "alice", "template": "welcome", "context": {}}, format="json")
    assert missing.status_code == status.HTTP_400_BAD_REQUEST
    assert "context" in missing.json()["errors"]
