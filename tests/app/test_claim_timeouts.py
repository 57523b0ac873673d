"""The sweep counts each claim that timed out (its worker died or hung) and, at
NOTIFIER_MAX_CLAIM_TIMEOUTS, fails the notification into the dead-letter queue instead of taking it back
for ever (issue 22)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.notifications import maintenance, store
from apps.notifications.commands import notifications_requeue
from apps.notifications.intake.create import notifications_create
from apps.notifications.models import Notification, NotificationEvent
from apps.notifications.outbox import process_dead_letters
from apps.notifications.specs import NotificationSpec

pytestmark = pytest.mark.django_db(transaction=True)


def _claimed_by_a_worker_that_never_finished(count=1, *, timeouts=0) -> list[str]:
    specs = [NotificationSpec(channel="email", category="transactional", priority="normal", to=f"u{i}@example.com",
                              content={"subject": "s", "body": "b"}) for i in range(count)]
    ids = [str(n.id) for n in notifications_create(specs=specs)]
    Notification.objects.filter(id__in=ids).update(claim_timeouts=timeouts)
    long_ago = timezone.now() - timedelta(seconds=400)  # NOTIFIER_CLAIM_TIMEOUT is 330 s
    assert len(store.claim(ids, long_ago)) == count
    return ids


def _dead_letters() -> list[dict]:
    letters = []
    process_dead_letters(limit=None, select=lambda letter: True, handle=letters.append, consume=False)
    return letters


def test_a_row_whose_claim_timed_out_is_put_back_with_the_timeout_counted(purge_queues):
    [notification_id] = _claimed_by_a_worker_that_never_finished()

    assert maintenance.sweep() == {"reclaimed": 1, "republished": 0, "failed": 0}

    row = Notification.objects.get(pk=notification_id)
    assert (row.status, row.claim_timeouts, row.attempts) == ("queued", 1, 0)
    last = NotificationEvent.objects.filter(notification_id=notification_id).order_by("id").last()
    assert last.status == "queued" and "claim timed out 1 of 3 times" in last.detail


def test_a_row_whose_claim_timed_out_three_times_ends_failed_in_the_dead_letter_queue(purge_queues):
    ids = _claimed_by_a_worker_that_never_finished(2, timeouts=2)

    assert maintenance.sweep() == {"reclaimed": 0, "republished": 0, "failed": 2}

    for row in Notification.objects.filter(id__in=ids):
        assert (row.status, row.claim_timeouts, row.attempts) == ("failed", 3, 0)
        assert row.last_error == "delivery never completed (claimed 3 times)"
        assert row.claimed_at is None
        statuses = list(NotificationEvent.objects.filter(notification_id=row.id).order_by("id")
                        .values_list("status", flat=True))  # by id: this test claimed it "400 s ago"
        assert statuses == ["queued", "sending", "failed"]
    letters = {letter["id"]: letter for letter in _dead_letters()}
    assert set(letters) == set(ids)
    assert all(letter["attempts"] == 0 and letter["last_error"] == "delivery never completed (claimed 3 times)"
               for letter in letters.values())
    assert maintenance.sweep()["failed"] == 0  # failed once


def test_a_replayed_notification_starts_its_claim_timeouts_again(purge_queues):
    [notification_id] = _claimed_by_a_worker_that_never_finished(timeouts=2)
    maintenance.sweep()

    assert notifications_requeue(ids=[notification_id], detail="replayed") == 1

    row = Notification.objects.get(pk=notification_id)
    assert (row.status, row.claim_timeouts) == ("queued", 0)
