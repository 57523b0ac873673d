"""Retries, the dead-letter queue and replays, with real workers, beat and an SMTP server."""
import json

import pytest
from django.core.management import call_command

from apps.notifications.models import Notification
from apps.notifications.outbox import process_dead_letters
from apps.providers.models import Suppression
from tests.stack import wait_for

pytestmark = pytest.mark.integration


def _post(api, to="bob@example.com"):
    response = api.post("/api/v1/notifications/email/", {"to": to, "subject": "Hi", "body": "Body"}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def _final(notification_id, statuses=("sent", "failed"), timeout=30):
    return wait_for(
        lambda: (n := Notification.objects.get(pk=notification_id)).status in statuses and n,
        timeout=timeout, message=f"notification to reach {statuses}",
    )


def _dead_letters():
    letters = []
    process_dead_letters(limit=None, select=lambda letter: True, handle=letters.append, consume=False)
    return letters


def test_two_transient_failures_then_success_ends_sent_with_three_attempts(api, stack, smtp_sink):
    smtp_sink.fail_next(2, "451 4.3.0 Mailbox busy")
    stack.worker()
    stack.beat()
    notification_id = _post(api)

    notification = _final(notification_id)

    assert notification.status == "sent"
    assert notification.attempts == 3
    assert len(smtp_sink.messages) == 1
    statuses = [e.status for e in notification.events.order_by("at", "id")]
    assert statuses == ["queued", "sending", "queued", "sending", "queued", "sending", "sent"]
    assert _dead_letters() == []


def test_always_failing_ends_failed_with_four_attempts_in_the_dead_letter_queue_and_replay_delivers_it(
        api, stack, smtp_sink, capsys):
    smtp_sink.fail_always("421 4.7.0 Service not available")
    stack.worker()
    stack.beat()
    notification_id = _post(api)

    notification = _final(notification_id)
    assert notification.status == "failed"
    assert notification.attempts == 4
    assert "421" in notification.last_error
    letters = wait_for(_dead_letters, message="a dead letter")
    assert letters == [{
        "id": notification_id, "channel": "email", "priority": "normal", "category": "transactional",
        "attempts": 4, "last_error": notification.last_error, "failed_at": letters[0]["failed_at"],
    }]

    call_command("replay_dead_letters", "--dry-run")
    assert "would replay" in capsys.readouterr().out
    assert len(_dead_letters()) == 1 and Notification.objects.get(pk=notification_id).status == "failed"

    smtp_sink.heal()
    call_command("replay_dead_letters")
    assert f"replayed {notification_id}" in capsys.readouterr().out
    notification = _final(notification_id, statuses=("sent",))
    assert notification.attempts == 5
    assert _dead_letters() == []
    assert len(smtp_sink.messages) == 1
    details = [e.detail for e in notification.events.all()]
    assert any("dead-letter" in d for d in details)


def test_a_permanent_failure_fails_after_one_attempt_without_a_dead_letter(api, stack, smtp_sink):
    smtp_sink.reject_rcpt("550 5.1.1 No such user here")
    stack.worker()
    stack.beat()
    notification_id = _post(api, to="ghost@example.com")

    notification = _final(notification_id)

    assert notification.status == "failed"
    assert notification.attempts == 1
    assert "550" in notification.last_error
    assert smtp_sink.messages == []
    assert _dead_letters() == []


def test_replay_command_requeues_failed_notifications_from_the_database(api, stack, smtp_sink, capsys):
    # A permanent rejection of the content (not of the address, which would suppress it for good).
    smtp_sink.fail_always("554 5.6.0 Message content rejected")
    stack.worker()
    stack.beat()
    ids = [_post(api, to=f"user{i}@example.com") for i in range(3)]
    for notification_id in ids:
        _final(notification_id)

    call_command("replay", "--status", "failed", "--since", "1h", "--channel", "email", "--dry-run")
    out = capsys.readouterr().out
    assert all(f"would requeue {i}" in out for i in ids)
    assert Notification.objects.filter(status="failed").count() == 3

    smtp_sink.heal()
    call_command("replay", "--status", "failed", "--since", "1h")
    assert "Requeued 3" in capsys.readouterr().out
    for notification_id in ids:
        notification = _final(notification_id, statuses=("sent",))
        assert notification.attempts == 2
    assert json.dumps(sorted(m["To"] for m in smtp_sink.messages)) == json.dumps(
        sorted(f"user{i}@example.com" for i in range(3)))


def test_replay_skips_a_failed_notification_whose_address_was_suppressed_and_unsuppress_sends_it(
        api, stack, smtp_sink, capsys):
    # A hard bounce fails the notification and puts its address on the suppression list.
    smtp_sink.reject_rcpt("550 5.1.1 No such user here")
    stack.worker()
    stack.beat()
    notification_id = _post(api, to="ghost@example.com")
    assert _final(notification_id).status == "failed"
    wait_for(lambda: Suppression.objects.filter(address="ghost@example.com").exists(), message="a suppression")
    smtp_sink.heal()  # the mailbox exists now
    events_before = Notification.objects.get(pk=notification_id).events.count()

    call_command("replay", "--status", "failed", "--since", "1h")
    out = capsys.readouterr().out
    assert "1 skipped: address on the suppression list (use --unsuppress to lift the entry and send)." in out
    assert "Requeued 0 failed notification(s)." in out
    notification = Notification.objects.get(pk=notification_id)
    assert notification.status == "failed" and notification.events.count() == events_before  # not requeued
    assert Suppression.objects.filter(address="ghost@example.com").exists()

    call_command("replay", "--status", "failed", "--since", "1h", "--unsuppress")
    out = capsys.readouterr().out
    assert "Lifted 1 suppression entry." in out and "Requeued 1 failed notification(s)." in out
    notification = _final(notification_id, statuses=("sent",))
    assert notification.attempts == 2
    assert [m["To"] for m in smtp_sink.messages] == ["ghost@example.com"]
    assert not Suppression.objects.filter(address="ghost@example.com").exists()
    assert any("suppression lifted: hard bounce" in e.detail for e in notification.events.all())
